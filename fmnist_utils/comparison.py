"""Reading two training runs (one per dataset) and putting them beside the seed's published results."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fmnist_utils.data import DISPLAY_NAMES
from fmnist_utils.training import SEED_BATCH_SIZE, SEED_EPOCHS, load_run

#: Test accuracy of the 2017 seed notebook.
SEED_RESULTS = {"mnist": 0.9942, "fashion_mnist": 0.9323}
#: How the Fashion-MNIST benchmark lists the seed (its README's benchmark table, rounded there).
BENCHMARK_ROW = {"classifier": "2 Conv+3 FC ~1.8M parameters", "fashion_mnist": 0.932, "mnist": 0.994}
DATASET_LABELS = DISPLAY_NAMES


def load_runs(
    runs_dir: str | os.PathLike, datasets=("mnist", "fashion_mnist")
) -> dict[str, tuple[dict, Any]]:
    """``dataset -> (metrics, history)`` from ``runs_dir/<dataset>``; a missing run names the command."""
    runs_dir = Path(runs_dir)
    runs, missing = {}, []
    for name in datasets:
        try:
            runs[name] = load_run(runs_dir / name)
        except FileNotFoundError:
            missing.append(name)
    if missing:
        commands = "\n".join(
            f"  papermill notebooks/03_training.ipynb {runs_dir}/03_training_{name}.ipynb "
            f"-p dataset {name} -p output_dir {runs_dir / name}"
            for name in missing
        )
        raise FileNotFoundError(
            f"No finished training run for {', '.join(missing)} in {runs_dir}. Produce it with:\n{commands}\n"
            f"or run the whole series: python -m fmnist_utils.run_notebooks --output-dir {runs_dir}"
        )
    return runs


def protocol_notes(metrics: dict[str, Any]) -> list[str]:
    """How a run departs from the seed protocol (sample data, fewer epochs, a train limit...)."""
    notes = []
    if metrics.get("is_sample"):
        notes.append("SAMPLE DATA")
    if metrics.get("epochs") != SEED_EPOCHS:
        notes.append(f"{metrics.get('epochs')} epochs (seed: {SEED_EPOCHS})")
    if metrics.get("batch_size") != SEED_BATCH_SIZE:
        notes.append(f"batch {metrics.get('batch_size')} (seed: {SEED_BATCH_SIZE})")
    if metrics.get("train_limit"):
        notes.append(f"train_limit={metrics['train_limit']}")
    if metrics.get("variant", "seed") != "seed":
        notes.append(f"variant={metrics['variant']}")
    if metrics.get("dtype_policy") != "float32":
        notes.append(f"precision {metrics.get('dtype_policy')} (seed: float32)")
    if metrics.get("numerics", "keras3") != "keras3":
        notes.append(f"numerics={metrics['numerics']} (recorded apart from the seed table)")
    return notes


def results_table(runs: dict[str, tuple[dict, Any]]):
    """One row per dataset: this project's test accuracy beside the seed's and the benchmark's."""
    import pandas as pd

    rows = []
    for name, (m, _) in runs.items():
        rows.append(
            {
                "dataset": DATASET_LABELS.get(name, name),
                "this run: test accuracy": m.get("test_accuracy"),
                "seed (2017)": SEED_RESULTS.get(name),
                f"benchmark: {BENCHMARK_ROW['classifier']}": BENCHMARK_ROW.get(name),
                "difference vs seed (pp)": (
                    100 * (m["test_accuracy"] - SEED_RESULTS[name])
                    if m.get("test_accuracy") is not None and name in SEED_RESULTS
                    else None
                ),
                "epochs": m.get("epochs_completed"),
                "seconds / epoch": m.get("mean_epoch_seconds"),
                "hardware": m.get("machine", {}).get("cpu"),
                "protocol notes": ", ".join(protocol_notes(m)) or "seed protocol",
            }
        )
    return pd.DataFrame(rows).set_index("dataset")


def published_seed_runs(results_dir: str | os.PathLike | None = None, also: list[dict[str, Any]] = ()):
    """Every published seed-protocol run (``results/seed/<dataset>-seed<N>.json``), one row each, plus the
    full-protocol runs among ``also`` (metrics dicts, e.g. the run a notebook just made) not yet published
    (a DataFrame)."""
    import pandas as pd

    from fmnist_utils.params import project_root

    folder = Path(results_dir) if results_dir else (project_root() or Path(".")) / "results" / "seed"
    published = [json.loads(path.read_text()) for path in sorted(folder.glob("*-seed*.json"))]
    seen = {(m["dataset"], m["seed"]) for m in published}
    rows = []
    for m in published + [m for m in also if not protocol_notes(m) and (m["dataset"], m["seed"]) not in seen]:
        rows.append(
            {
                "dataset": m["dataset"],
                "seed": m["seed"],
                "test_accuracy": m["test_accuracy"],
                "final_val_accuracy": m["final_val_accuracy"],
                "mean_epoch_seconds": m["mean_epoch_seconds"],
                "cpu": m["machine"]["cpu"],
                "cpu_count": m["machine"]["cpu_count"],
                "gpus": m["machine"]["gpus"],
            }
        )
    return pd.DataFrame(rows)


def seed_spread(runs, test_images: int = 10_000) -> Any:
    """Per dataset: how many seeds, the test accuracy's mean, sample standard deviation, min and max, the
    test set's own sampling error (the standard error of an accuracy measured on ``test_images`` images:
    how much another draw of test images would move it) and the seed notebook's number beside them
    (``runs`` from :func:`published_seed_runs`; a DataFrame)."""
    import numpy as np

    table = runs.groupby("dataset")["test_accuracy"].agg(
        seeds="count", mean="mean", std="std", min="min", max="max"
    )
    table["test-set standard error"] = np.sqrt(table["mean"] * (1 - table["mean"]) / test_images)
    table["seed (2017)"] = [SEED_RESULTS[name] for name in table.index]
    table["2017 minus mean (pp)"] = 100 * (table["seed (2017)"] - table["mean"])
    return table.rename(index=DATASET_LABELS)


#: The Keras 2 (2017) against Keras 3 numerics experiments (``tools.seed_protocol_any_backend`` on an H200,
#: Keras on JAX): file -> what the two arms' losses start from.
NUMERICS_RUNS = {
    "numerics_from_logits_fashion_mnist_h200.json": "the scores (clipped in Keras 2 only)",
    "numerics_fashion_mnist_h200.json": "the probabilities (clipped in both: Adam's ε differs)",
}


def numerics_spread(folder: str | os.PathLike | None = None) -> Any:
    """Keras 3 against Keras 2 (2017) numerics, several seeds each: per experiment and numerics the seeds,
    the test accuracy's mean, standard deviation, min and max (a DataFrame)."""
    import pandas as pd

    from fmnist_utils.params import project_root

    folder = Path(folder) if folder else (project_root() or Path(".")) / "results" / "seed"
    runs = pd.concat(
        [
            pd.DataFrame(json.loads((folder / name).read_text())["runs"]).assign(loss_from=loss_from)
            for name, loss_from in NUMERICS_RUNS.items()
        ]
    )
    runs["numerics"] = runs["numerics"].map({"keras3": "Keras 3", "keras2": "Keras 2 (2017)"})
    table = runs.groupby(["loss_from", "numerics"], sort=False)["test_accuracy"].agg(
        seeds="count", mean="mean", std="std", min="min", max="max"
    )
    return table.rename_axis(["loss computed from", "numerics"])
