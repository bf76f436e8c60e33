"""Publish a finished full-protocol series run into the repository: notebooks, figures, metrics.

``python -m fmnist_utils.run_notebooks --output-dir RUN_DIR`` runs the series; ``python -m tools.publish RUN_DIR``
then publishes it (a maintainer's step: it writes into the repository). It copies:

* the executed notebooks, 06 and the appendices included, over ``notebooks/`` (Fashion-MNIST's training run becomes
  ``notebooks/03_training.ipynb``; MNIST's is kept as ``results/seed/03_training_mnist.ipynb``). The values
  papermill injected are written into each notebook's ``parameters`` cell and its injected cell dropped
  (:func:`bake_parameters`), less the paths and progress style (a user's re-run writes where the defaults say):
  the one cell a learner edits holds the values the outputs came from; a temporary folder printed in an
  output is shown without the machine's temporary root (``.../tmpab12cd``). Each records in its metadata
  (``fmnist_utils.code_sha256``) the digest of the code that ran (:func:`code_digest`): a test fails for any
  committed notebook whose code changed since. Markdown stays free to edit; a changed code cell means
  executing that notebook again: for 03 (both datasets), 04 and 07 with the series' finished run folders,
  which 03 reuses, showing each run's recorded epoch log, so that nothing trains again;
* the figures the README shows into ``assets/``;
* each run's ``metrics.json`` and ``history.csv`` into ``results/seed/<dataset>-seed<N>.*`` (no weights;
  ``--metrics-only`` records just these, for another seed of one or both datasets; the data's location is
  recorded as its source, e.g. ``FMNIST_DATA_DIR``, never a folder of the machine), and a regenerated
  ``results/seed/summary.md`` over every seed published so far (README links it). A record already published
  for a dataset and seed is never replaced by other results: delete it first to replace it.

Everything is checked before anything is written: a refused run leaves the repository as it was.

Only full-data seed-protocol runs are published: sample data, subsets, fewer epochs, another precision than
float32 or other numerics are refused, and so is an executed notebook with an error, a stderr output (start-up
lines, warnings) or a path of the machine that ran it. ``python -m tools.refresh`` re-executes the notebooks
that train no seed-protocol run (05 and 06 in their published modes, the appendices) and publishes them the
same way.

With ``--beyond`` (or :func:`publish_beyond`) the run's ``05_beyond_the_seed`` results are published too:
the executed notebook over ``notebooks/05_beyond_the_seed.ipynb``, ``summary.json`` and each dataset's
``ablation.csv`` (and ``replicate.json``, if :mod:`tools.replicate` ran) into ``results/beyond/``,
its figures into ``assets/beyond_*.png``, and its best results into ``results/beyond/summary.md``; full
data only. ``--beyond-only``
publishes just that, from a run of notebook 05 alone (``RUN_DIR/05_beyond_the_seed.ipynb`` and
``RUN_DIR/beyond/``). A new ladder makes ``results/beyond/published/`` stale (a test compares its winner with
``summary.json``): refresh it with ``python -m tools.replicate results/beyond --seeds 0 --winner-only --export
results/beyond/published --work-dir runs/export``, then execute notebook 05 (``source="published"``) over
``notebooks/05_beyond_the_seed.ipynb``.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import shutil
import sys
from fnmatch import fnmatch
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd

from fmnist_utils.comparison import DATASET_LABELS, error_ratio, protocol_notes
from fmnist_utils.files import atomic_path, write_text
from fmnist_utils.params import project_root, shown_path
from fmnist_utils.protocol import SEED_RESULTS
from fmnist_utils.run_notebooks import APPENDICES
from fmnist_utils.runs import load_run

DATASETS = ("fashion_mnist", "mnist")
ASSETS = {  # run-relative source -> assets/ name
    "exploration/figures/sample_grid_fashion_mnist.png": "sample_grid_fashion_mnist.png",
    "exploration/figures/sample_grid_mnist.png": "sample_grid_mnist.png",
    "exploration/figures/embeddings_raw_pixels.png": "embeddings_raw_pixels.png",
    "model_build/figures/learning_rate_schedule.png": "learning_rate_schedule.png",
    "model_build/figures/batchnorm_axis.png": "batchnorm_axis.png",
    "fashion_mnist/figures/curves_fashion_mnist.png": "curves_fashion_mnist.png",
    "mnist/figures/curves_mnist.png": "curves_mnist.png",
    "fashion_mnist/figures/confusion_fashion_mnist.png": "confusion_fashion_mnist.png",
    "mnist/figures/confusion_mnist.png": "confusion_mnist.png",
    "fashion_mnist/figures/misclassified_fashion_mnist.png": "misclassified_fashion_mnist.png",
    "comparison/figures/curves_overlay.png": "curves_overlay.png",
    "comparison/figures/per_class_accuracy.png": "per_class_accuracy.png",
}


#: Each executed notebook of a series run -> where publishing writes it, in the repository.
SERIES_NOTEBOOKS = {
    "01_data_exploration.ipynb": Path("notebooks") / "01_data_exploration.ipynb",
    "02_model_build.ipynb": Path("notebooks") / "02_model_build.ipynb",
    "03_training_fashion_mnist.ipynb": Path("notebooks") / "03_training.ipynb",
    "03_training_mnist.ipynb": Path("results") / "seed" / "03_training_mnist.ipynb",
    "04_compare_mnist_fashion.ipynb": Path("notebooks") / "04_compare_mnist_fashion.ipynb",
    "06_train_fast.ipynb": Path("notebooks") / "06_train_fast.ipynb",
    "07_your_own_images.ipynb": Path("notebooks") / "07_your_own_images.ipynb",
    **{name: Path("notebooks") / name for name in APPENDICES},
}
#: What publishing writes, decided before it writes anything: each destination and its bytes, or the file to copy.
Writes = dict[Path, bytes | Path]


class PublishError(RuntimeError):
    """The run is not publishable (incomplete, not the full seed protocol, or at odds with what is published)."""


def _write(writes: Writes) -> None:
    """Write every planned file, each atomically; or PublishError, writing nothing, if a file to copy is missing."""
    missing = [str(src) for src in writes.values() if isinstance(src, Path) and not src.is_file()]
    if missing:
        raise PublishError(
            f"nothing was published: the run is incomplete, {', '.join(missing)} missing; run it again"
        )
    for dest, content in writes.items():
        with atomic_path(dest) as tmp:
            if isinstance(content, Path):
                shutil.copyfile(content, tmp)
            else:
                tmp.write_bytes(content)


def _repository(repo: str | os.PathLike | None) -> Path:
    """The repository to publish into: ``repo``, else the project's checkout."""
    root = Path(repo) if repo else project_root()
    if root is None:
        raise PublishError("publishing needs the project's git checkout (pass repo=...)")
    return root


#: Parameters that say where a run read or wrote, or how it printed, not what it computed: a published notebook
#: leaves them out of papermill's injected cell and record, so that a user's re-run uses their defaults.
LOCAL_PARAMETERS = frozenset({"output_dir", "runs_dir", "models_dir", "progress"})
#: The notebook metadata key under which publishing records the digest of the code that made the outputs.
DIGEST_KEY = "fmnist_utils"


def _tagged(cell: nbformat.NotebookNode, tag: str) -> bool:
    return tag in cell.metadata.get("tags", [])


def _assignments(source: str) -> list[ast.Assign]:
    """The ``name = value`` statements of a cell."""
    return [
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
    ]


def drop_local_parameters(nb: nbformat.NotebookNode) -> None:
    """Leave :data:`LOCAL_PARAMETERS` out of papermill's injected cell (removed when nothing is left) and its
    record, and show the record's notebook paths as :func:`~fmnist_utils.params.shown_path` does."""
    for cell in [c for c in nb.cells if _tagged(c, "injected-parameters")]:
        kept = [n for n in _assignments(cell.source) if n.targets[0].id not in LOCAL_PARAMETERS]
        if kept:
            cell.source = "\n".join(["# Parameters", *(ast.get_source_segment(cell.source, n) for n in kept)])
        else:
            nb.cells.remove(cell)
    record = nb.metadata.get("papermill", {})
    record["parameters"] = {
        k: v for k, v in record.get("parameters", {}).items() if k not in LOCAL_PARAMETERS
    }
    for key in ("input_path", "output_path"):
        if record.get(key) and Path(record[key]).is_absolute():
            record[key] = shown_path(record[key])


def bake_parameters(nb: nbformat.NotebookNode) -> None:
    """Write the values papermill injected into the ``parameters`` cell (each line's comment kept) and drop the
    injected cell: a published notebook has one cell of parameters, holding the values its outputs came from,
    so that what a learner edits there takes effect (:func:`code_digest` is the same before and after)."""
    injected = [c for c in nb.cells if _tagged(c, "injected-parameters")]
    if not injected:
        return
    values = {
        n.targets[0].id: ast.get_source_segment(c.source, n.value)
        for c in injected
        for n in _assignments(c.source)
    }
    cells = [c for c in nb.cells if _tagged(c, "parameters")]
    if len(cells) != 1:
        raise PublishError(
            f"papermill injected parameters into a notebook with {len(cells)} parameters cells"
        )
    [cell] = cells
    lines = cell.source.splitlines()
    for node in _assignments(cell.source):
        name = node.targets[0].id
        if name in values and node.lineno == node.end_lineno:
            line = lines[node.lineno - 1]
            lines[node.lineno - 1] = (
                f"{line[: node.value.col_offset]}{values.pop(name)}{line[node.end_col_offset :]}"
            )
    if values:
        raise PublishError(f"papermill set parameters the parameters cell does not hold: {', '.join(values)}")
    cell.source = "\n".join(lines)
    for c in injected:
        nb.cells.remove(c)


def _literal(source: str) -> str:
    """A parameter's value written one way (``'a'`` and ``"a"`` alike)."""
    try:
        return repr(ast.literal_eval(source))
    except ValueError:
        return source


def run_parameters(nb: nbformat.NotebookNode) -> dict[str, str]:
    """The parameter values a run used: the ``parameters`` cell's, overridden by papermill's injected cell."""
    values = {}
    for tag in ("parameters", "injected-parameters"):
        for cell in (c for c in nb.cells if _tagged(c, tag)):
            values |= {
                n.targets[0].id: _literal(ast.get_source_segment(cell.source, n.value))
                for n in _assignments(cell.source)
            }
    return values


def code_digest(nb: nbformat.NotebookNode) -> str:
    """SHA-256 of what decides a notebook's outputs: its code cells in order, the parameter cells as the values
    the run used (a default that papermill overrode may change; markdown is free)."""
    cells = [
        c.source
        for c in nb.cells
        if c.cell_type == "code" and not (_tagged(c, "parameters") or _tagged(c, "injected-parameters"))
    ]
    payload = json.dumps({"parameters": run_parameters(nb), "code": cells}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def recorded_digest(nb: nbformat.NotebookNode) -> str | None:
    """The code digest publishing recorded in a notebook's metadata (None: never published)."""
    return nb.metadata.get(DIGEST_KEY, {}).get("code_sha256")


#: An absolute path of the machine that ran a notebook (a home, temporary or checkout folder): outputs print
#: paths relative to the project (``fmnist_utils.params.shown_path``).
MACHINE_PATH = re.compile(r"(?<![\w.])(/(home|root|tmp|work|mnt|Users|var/folders|private)/|[A-Z]:\\)")


#: A temporary folder as ``shown_path`` prints it (``.../tmp/tmpab12cd``): the system's temporary root is the
#: machine's, so a published output shows the folder alone (``.../tmpab12cd``).
TEMPORARY_FOLDER = re.compile(r"\.\.\./tmp/(tmp\w+)")


def elide_temporary_folders(nb: nbformat.NotebookNode) -> None:
    """Show a temporary folder in printed outputs without the machine's temporary root."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                output.text = TEMPORARY_FOLDER.sub(r".../\1", output.text)


def _text(output: nbformat.NotebookNode) -> str:
    """What an output shows as text: a stream, or every text rendering (plain, HTML, LaTeX) of a result."""
    if output.output_type == "stream":
        return output.text
    return "".join(str(v) for k, v in output.get("data", {}).items() if k.startswith("text/"))


def output_problems(nb: nbformat.NotebookNode) -> list[str]:
    """What a learner must not see in an executed notebook: in its outputs errors or stderr; anywhere (outputs,
    sources, metadata) a path of the machine that ran it."""
    problems = []
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            text = _text(output)
            found = MACHINE_PATH.search(text)
            if output.output_type == "error":
                problems.append(f"cell {i} raised {output.ename}")
            elif output.output_type == "stream" and output.name == "stderr":
                problems.append(f"cell {i} wrote to stderr: {output.text.strip()[:80]!r}")
            elif found:
                problems.append(f"cell {i} shows a path of this machine: {text[found.start() :][:60]!r}")
    places = {"the metadata": json.dumps(nb.metadata)}
    places |= {f"cell {i}'s source": c.source + json.dumps(c.metadata) for i, c in enumerate(nb.cells)}
    for place, text in places.items():
        found = MACHINE_PATH.search(text)
        if found:
            problems.append(f"{place} holds a path of this machine: {text[found.start() :][:60]!r}")
    return problems


#: A relative link of a markdown cell: its target and its anchor.
RELATIVE_LINK = re.compile(r"\]\((?![a-z]+:|#|/)([^)\s#]+)(#[^)\s]*)?\)")


def relink(nb: nbformat.NotebookNode, written_in: Path, moved_to: Path) -> None:
    """Point the relative links of a notebook's markdown, written for a notebook in ``written_in``, from its
    new folder ``moved_to``."""

    def moved(link: re.Match) -> str:
        return f"]({Path(os.path.relpath(written_in / link[1], moved_to)).as_posix()}{link[2] or ''})"

    for cell in (c for c in nb.cells if c.cell_type == "markdown"):
        cell.source = RELATIVE_LINK.sub(moved, cell.source)


def _published_notebook(src: Path, dest: Path, links_written_in: Path | None = None) -> bytes:
    """The executed ``src`` as published at ``dest``: without its local parameters, with the digest of its code
    (and its links relinked when its source sat in ``links_written_in``, another folder); or PublishError when a
    learner would see a problem."""
    nb = nbformat.read(src, as_version=4)
    drop_local_parameters(nb)
    if links_written_in is not None:
        relink(nb, links_written_in.resolve(), dest.parent.resolve())
    problems = output_problems(nb)
    if problems:
        raise PublishError(f"{src.name} cannot be published: " + "; ".join(problems))
    bake_parameters(nb)
    elide_temporary_folders(nb)
    nb.metadata[DIGEST_KEY] = {"code_sha256": code_digest(nb)}
    text = nbformat.writes(nb)
    return (text if text.endswith("\n") else text + "\n").encode()


def _publish_notebook(src: Path, dest: Path, links_written_in: Path | None = None) -> None:
    """Write the executed ``src`` to ``dest`` as :func:`_published_notebook` makes it (or write nothing)."""
    _write({dest: _published_notebook(src, dest, links_written_in)})


def _notebook_writes(notebooks: list[tuple[Path, Path, Path | None]]) -> Writes:
    """Each executed notebook (source, destination, folder its links were written in) as published; or one
    PublishError naming every notebook that cannot be."""
    writes, refused = {}, []
    for src, dest, links_written_in in notebooks:
        try:
            writes[dest] = _published_notebook(src, dest, links_written_in)
        except PublishError as exc:
            refused.append(str(exc))
    if refused:
        raise PublishError(
            "\n".join(
                [
                    *refused,
                    "Nothing was published: fix what these notebooks show, run them again, publish again.",
                ]
            )
        )
    return writes


def protocol_metrics(run_dir: Path, names=DATASETS) -> dict[str, dict]:
    """Metrics of the training runs ``run_dir/<name>``, or PublishError if one is missing or off-protocol."""
    metrics = {}
    for name in names:
        try:
            metrics[name], _ = load_run(run_dir / name)
        except FileNotFoundError as exc:
            raise PublishError(str(exc)) from exc
        notes = protocol_notes(metrics[name])
        if notes:
            raise PublishError(
                f"{run_dir / name} is not a full seed-protocol run ({', '.join(notes)}); "
                "only those are published."
            )
    return metrics


def check_publishable(run_dir: Path) -> dict[str, dict]:
    """Metrics of both datasets' runs, or PublishError saying what is missing or off-protocol."""
    metrics = protocol_metrics(run_dir)
    missing = [src for src in [*ASSETS, *SERIES_NOTEBOOKS] if not (run_dir / src).is_file()]
    if missing:
        raise PublishError(f"{run_dir} is incomplete, missing: {', '.join(missing)}")
    return metrics


def seed_records(results_dir: Path) -> dict[Path, dict]:
    """Every published seed-protocol record (``<dataset>-seed<N>.json``) in ``results_dir``, by path."""
    return {p: json.loads(p.read_text()) for name in DATASETS for p in results_dir.glob(f"{name}-seed*.json")}


def _runs(records: dict[Path, dict], name: str) -> list[dict]:
    """The seed records of dataset ``name``, in order of random seed."""
    runs = [r for p, r in records.items() if fnmatch(p.name, f"{name}-seed*.json")]
    return sorted(runs, key=lambda r: r["seed"])


def _timing_row(name: str, record: dict) -> str:
    """One run's row of the timing table: its random seed, machine, seconds per epoch and training minutes
    (blank for a record without its total)."""
    machine = record["machine"]
    gpus = f", {', '.join(machine['gpus'])}" if machine["gpus"] else ""
    minutes = f"{record['total_seconds'] / 60:.1f}" if "total_seconds" in record else ""
    shared = "cores shared with other jobs" if record.get("timing_shared_cores") else ""
    return (
        f"| {DATASET_LABELS[name]} | {record['seed']} | {machine['cpu']} ({machine['cpu_count']} cores){gpus} | "
        f"{record['mean_epoch_seconds']:.0f} | {minutes} | {shared} |"
    )


def errors_ratio(records: dict[Path, dict]) -> str:
    """A sentence: Fashion-MNIST's test errors over MNIST's (:func:`fmnist_utils.comparison.error_ratio` over
    the random seeds published for both), or "" unless two or more are."""
    runs = pd.DataFrame(
        [
            {"dataset": path.name.split("-seed")[0], "seed": r["seed"], "test_accuracy": r["test_accuracy"]}
            for path, r in records.items()
        ]
    )
    ratio = error_ratio(runs) if not runs.empty else {"seeds": 0}
    if ratio["seeds"] < 2:
        return ""
    return (
        f"\nTest errors on Fashion-MNIST over those on MNIST: {ratio['ratio_of_means']:.1f}× (the ratio of the mean "
        f"test errors over the {ratio['seeds']} random seeds run on both); random seed by random seed, "
        f"{ratio['lowest']:.1f}× to {ratio['highest']:.1f}×; one run against one run, any pairing, "
        f"{ratio['lowest_any']:.1f}× to {ratio['highest_any']:.1f}×.\n"
    )


def summary_table(records: dict[Path, dict]) -> str:
    """Markdown over seed records (:func:`seed_records`): each dataset's test accuracy (mean ± std) beside the
    2017 notebook's, the ratio of test errors (:func:`errors_ratio`), then each run's machine and time."""
    accuracy = [
        "| dataset | random seeds | test accuracy (mean ± std) | per random seed | 2017 notebook |",
        "|---|---|---|---|---|",
    ]
    timing = [
        "\n| dataset | random seed | machine | s / epoch (mean) | training minutes | note |",
        "|---|---|---|---|---|---|",
    ]
    for name in DATASETS:
        runs = _runs(records, name)
        if not runs:
            continue
        acc = np.array([r["test_accuracy"] for r in runs])
        std = f" ± {acc.std(ddof=1):.4f}" if len(acc) > 1 else " (one random seed)"
        per_seed = ", ".join(f"{r['seed']}: {r['test_accuracy']:.4f}" for r in runs)
        accuracy.append(
            f"| {DATASET_LABELS[name]} | {len(acc)} | {acc.mean():.4f}{std} | {per_seed} | {SEED_RESULTS[name]:.4f} |"
        )
        timing += [_timing_row(name, r) for r in runs]
    return "\n".join(accuracy) + "\n" + errors_ratio(records) + "\n".join(timing) + "\n"


def _timing_note(recipe: dict) -> str:
    """What a recipe's minutes need said: " (seed 0 alone)" when only some of its seeds have a usable training
    time, "autotuned" when its tf.data pipeline was (its minutes then include waits: notebook 06)."""
    timed = recipe.get("timed_seeds", recipe["seeds"])
    notes = [] if timed == recipe["seeds"] else [f"seed {', '.join(map(str, timed))} alone"]
    notes += ["autotuned"] if recipe.get("autotune") else []
    return f" ({'; '.join(notes)})" if notes else ""


def speed_table(results: Path) -> str:
    """Markdown table of notebook 06's results: every recipe's budget, training minutes, validation and test
    accuracy over its seeds, then the seed network's throughput by precision and input pipeline."""
    from fmnist_utils.lab import speed

    throughput = speed.load_throughput(results)
    recipes = {speed.SEED_PROTOCOL: speed.seed_protocol(results), **speed.load_recipes(results)}
    lines = [
        "| recipe | network, precision | epochs | training minutes (median) | test accuracy (mean ± std, seeds) |",
        "|---|---|---|---|---|",
    ]
    for name, r in recipes.items():
        lines.append(
            f"| {name} | {speed.network_name(r)}, {r['precision']}"
            f"{', test-time flips' if r['test_time_flips'] else ''} "
            f"| {r['epochs']} | {r['training_minutes_median']:.1f}{_timing_note(r)} | {r['test_accuracy_mean']:.4f} ± "
            f"{r['test_accuracy_std']:.4f} ({len(r['seeds'])}) |"
        )
    ceiling = throughput["machine"]["matmul_ceiling"]
    rate = {row["name"]: row["median_images_per_second"] for row in throughput["throughput"]}
    plain, float32, bfloat16 = (
        rate[throughput["baseline"]],
        rate["float32 + tf.data"],
        rate[throughput["fastest"]],
    )
    lines.append(
        f"\nThe seed network on the same machine ({throughput['machine']['cpu']}, "
        f"{throughput['machine']['cpu_count']} cores; median passes of {throughput['images']:,} images): "
        f"{float32:.0f} images/s in float32 and {bfloat16:.0f} in mixed_bfloat16, both fed by the project's "
        f"tf.data pipeline ({bfloat16 / float32:.2f}×); the plain port (float32, NumPy arrays into fit) "
        f"{plain:.0f} ({bfloat16 / plain:.2f}× to mixed_bfloat16 + tf.data). Matrix-product ceiling "
        f"{ceiling['float32_gflops_per_second']:.0f} / {ceiling['bfloat16_gflops_per_second']:.0f} GFLOP/s "
        "(float32 / bfloat16)."
    )
    return "\n".join(lines) + "\n"


def results_tables(repo: Path) -> dict[Path, str]:
    """The tables README links (path -> table), made from the committed results."""
    results = repo / "results"
    return {
        results / "seed" / "summary.md": summary_table(seed_records(results / "seed")),
        results / "beyond" / "summary.md": beyond_table(
            json.loads((results / "beyond" / "summary.json").read_text())
        ),
        results / "benchmark" / "summary.md": speed_table(results),
    }


def publish(run_dir: str | os.PathLike, repo: str | os.PathLike | None = None, beyond: bool = False) -> Path:
    """Copy a finished full-protocol run (and its notebook 05 results, with ``beyond``) into the repository (see
    module docstring), checking all of it before writing anything. Returns the results dir."""
    run_dir, repo = Path(run_dir).resolve(), _repository(repo)
    writes = _metrics_writes(run_dir, check_publishable(run_dir), repo)
    writes |= {repo / "assets" / dest: run_dir / src for src, dest in ASSETS.items()}
    writes |= _notebook_writes(
        [
            (run_dir / executed, repo / dest, repo / "notebooks" / Path(executed).parent)
            for executed, dest in SERIES_NOTEBOOKS.items()
        ]
    )
    if beyond:
        writes |= _beyond_writes(run_dir, repo)
    _write(writes)
    return repo / "results" / "seed"


def _seed_record(metrics: dict, dest: Path) -> dict:
    """A run's metrics as published at ``dest``, the data's location named by its source (``data_source``: never
    a folder of this machine); or PublishError if ``dest`` holds another record or it shows a machine path."""
    record = metrics | ({"data_location": metrics["data_source"]} if "data_location" in metrics else {})
    text = json.dumps(record, sort_keys=True)
    found = MACHINE_PATH.search(text)
    if found:
        raise PublishError(
            f"the metrics to publish as {dest.name} hold a path of this machine: {text[found.start() :][:60]!r}; "
            "remove it from the run's metrics.json, then publish again."
        )
    if dest.is_file() and json.dumps(json.loads(dest.read_text()), sort_keys=True) != text:
        raise PublishError(
            f"{dest} already records seed {metrics['seed']} with other results; "
            f"delete it and {dest.stem}-history.csv first if this run is meant to replace it, "
            "or publish a run of another seed."
        )
    return record


def _metrics_writes(run_dir: Path, metrics: dict[str, dict], repo: Path) -> Writes:
    """Each run's record and history for results/seed/, and summary.md over them and those published before."""
    results = repo / "results" / "seed"
    records: dict[Path, dict] = {}
    writes: Writes = {}
    for name, m in metrics.items():
        path = results / f"{name}-seed{m['seed']}.json"
        records[path] = _seed_record(m, path)
        writes[path] = (json.dumps(records[path], indent=2) + "\n").encode()
        writes[path.with_name(f"{path.stem}-history.csv")] = run_dir / name / "history.csv"
    writes[results / "summary.md"] = summary_table(seed_records(results) | records).encode()
    return writes


def _trained(run_dir: Path) -> list[str]:
    """The datasets with a finished training run in ``run_dir``; or PublishError if none has one."""
    names = [n for n in DATASETS if (run_dir / n / "metrics.json").is_file()]
    if not names:
        raise PublishError(f"{run_dir} holds no finished training run ({' or '.join(DATASETS)} folder)")
    return names


def publish_metrics(run_dir: str | os.PathLike, repo: str | os.PathLike | None = None) -> Path:
    """Another seed: record the metrics of every full-protocol training run in ``run_dir`` (one dataset
    or both) in results/seed/ and the tables, leaving the published notebooks and figures as they are."""
    run_dir, repo = Path(run_dir).resolve(), _repository(repo)
    _write(_metrics_writes(run_dir, protocol_metrics(run_dir, _trained(run_dir)), repo))
    return repo / "results" / "seed"


#: Where each dataset's executed notebook 03 is published.
TRAINING_NOTEBOOKS = {
    "fashion_mnist": Path("notebooks") / "03_training.ipynb",
    "mnist": Path("results") / "seed" / "03_training_mnist.ipynb",
}


def publish_training(run_dir: str | os.PathLike, repo: str | os.PathLike | None = None) -> Path:
    """Another seed, shown: :func:`publish_metrics`, plus each dataset's executed notebook 03 (Fashion-MNIST's
    becomes ``notebooks/03_training.ipynb``) and its figures in ``assets/``, all checked before any is written."""
    run_dir, repo = Path(run_dir).resolve(), _repository(repo)
    names = _trained(run_dir)
    writes = _metrics_writes(run_dir, protocol_metrics(run_dir, names), repo)
    writes |= _notebook_writes(
        [
            (run_dir / f"03_training_{n}.ipynb", repo / TRAINING_NOTEBOOKS[n], repo / "notebooks")
            for n in names
        ]
    )
    writes |= {
        repo / "assets" / asset: run_dir / src for src, asset in ASSETS.items() if src.split("/")[0] in names
    }
    _write(writes)
    return repo / "results" / "seed"


def publish_beyond(run_dir: str | os.PathLike, repo: str | os.PathLike | None = None) -> Path:
    """Copy a finished full-data run of notebook 05 (``run_dir/beyond``) into the repository."""
    run_dir, repo = Path(run_dir).resolve(), _repository(repo)
    _write(_beyond_writes(run_dir, repo))
    return repo / "results" / "beyond"


def _beyond_writes(run_dir: Path, repo: Path) -> Writes:
    """What :func:`publish_beyond` writes; or PublishError if the run is missing, not on full data, or its
    notebook cannot be published."""
    beyond, notebook = run_dir / "beyond", run_dir / "05_beyond_the_seed.ipynb"
    if not (beyond / "summary.json").is_file() or not notebook.is_file():
        raise PublishError(f"{run_dir} holds no finished 05_beyond_the_seed run (run it with --beyond)")
    summary = json.loads((beyond / "summary.json").read_text())
    if summary.get("train_limit") or any(d.get("is_sample") for d in summary["datasets"].values()):
        raise PublishError(
            f"{beyond} was trained on the sample or a subset; only full-data runs are published."
        )
    results = repo / "results" / "beyond"
    writes: Writes = {results / "summary.json": beyond / "summary.json"}
    writes |= {
        results / f"{name}-ablation.csv": beyond / name / "ablation.csv" for name in summary["datasets"]
    }
    if (beyond / "replicate" / "replicate.json").is_file():  # python -m tools.replicate, if it ran
        writes[results / "replicate.json"] = beyond / "replicate" / "replicate.json"
    writes |= {repo / "assets" / f"beyond_{f.name}": f for f in sorted((beyond / "figures").glob("*.png"))}
    writes |= _notebook_writes([(notebook, repo / "notebooks" / "05_beyond_the_seed.ipynb", None)])
    writes[results / "summary.md"] = beyond_table(summary).encode()
    return writes


def beyond_table(summary: dict) -> str:
    """Markdown table of notebook 05's ``summary.json``: per dataset the recipe chosen on validation, its
    test accuracy (measured once) against the seed's, and the training of what was tested
    (the winning trial, or every member of the ensemble)."""
    lines = [
        "| dataset | best recipe (chosen on validation) | "
        "validation: the ladder's first step (the seed's network) → best | "
        "**test, best recipe** (measured once) | 2017 notebook | training of what is tested |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in summary["datasets"].items():
        ensemble = row.get("ensemble", {"used": False})
        tested = (
            [step for step in row["ablation"] if step["step"] in ensemble["members"]]
            if ensemble["used"]
            else [step for step in row["ablation"] if step["chosen"]]
        )
        cost = (
            f"{' + '.join(str(step['epochs']) for step in tested)} epochs, "
            f"{sum(step['minutes'] for step in tested):.1f} min ({summary['precision']})"
        )
        lines.append(
            f"| {DATASET_LABELS[name]} | {row['best_recipe_text']} | "
            f"{row['val_accuracy_seed_recipe']:.4f} → {row['val_accuracy_best_recipe']:.4f} | "
            f"**{row['test_accuracy_best_recipe']:.4f}** | {row['seed_2017_test_accuracy']:.4f} | {cost} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.publish",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "run_dir", type=Path, nargs="?", help="a finished series run folder (from run_notebooks)"
    )
    only = parser.add_mutually_exclusive_group()
    only.add_argument(
        "--beyond", action="store_true", help="publish the run's 05_beyond_the_seed results too"
    )
    only.add_argument(
        "--beyond-only",
        action="store_true",
        help="publish only a finished 05_beyond_the_seed run (RUN_DIR/05_beyond_the_seed.ipynb, RUN_DIR/beyond)",
    )
    only.add_argument(
        "--metrics-only",
        action="store_true",
        help="another seed: record only its metrics in results/seed/ and its summary.md",
    )
    only.add_argument(
        "--training",
        action="store_true",
        help="another seed, shown: its metrics, its executed notebook 03 and its figures",
    )
    only.add_argument(
        "--tables-only",
        action="store_true",
        help="rewrite the results tables README links (results/*/summary.md) from the committed results",
    )
    args = parser.parse_args(argv)
    if args.tables_only:
        for path, table in results_tables(project_root()).items():
            write_text(path, table)
            print(f"{path} rewritten")
        return 0
    if args.run_dir is None:
        parser.error("RUN_DIR is needed (except with --tables-only)")
    try:
        if args.metrics_only or args.training:
            results = (publish_training if args.training else publish_metrics)(args.run_dir)
            print(f"Recorded the metrics of {args.run_dir} in {results}")
            print((results / "summary.md").read_text())
            return 0
        if args.beyond_only:
            beyond = publish_beyond(args.run_dir)
            print(f"Published notebook 05's results into {beyond}")
            print((beyond / "summary.md").read_text())
            return 0
        results = publish(args.run_dir, beyond=args.beyond)
        beyond = results.parent / "beyond" if args.beyond else None
    except PublishError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Published {args.run_dir} into notebooks/, assets/ and {results}")
    print((results / "summary.md").read_text())
    if beyond:
        print(f"Published notebook 05's results into {beyond}")
        print((beyond / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
