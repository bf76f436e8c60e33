"""Publishing helpers that need no executed run: parameter folding, the notebook-05 table, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from fmnist_utils.comparison import protocol_notes
from tools import publish
from tools.publish import (
    PublishError,
    beyond_table,
    code_digest,
    drop_local_parameters,
    output_problems,
    publish_metrics,
    recorded_digest,
)


def _machine_path(rest: str) -> str:
    """An absolute path of a machine, joined here so that this file holds none (tests/test_repository_paths.py)."""
    return "/" + rest


RUNS_X, NOTEBOOK_05 = _machine_path("home/me/runs/x"), _machine_path("home/me/project/notebooks/05.ipynb")


def _notebook(parameters: str, injected: str | None):
    cells = [
        nbformat.v4.new_markdown_cell("# Title ≥ unicode"),
        nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
    ]
    if injected is not None:
        cells.append(nbformat.v4.new_code_cell(injected, metadata={"tags": ["injected-parameters"]}))
    cells.append(nbformat.v4.new_code_cell("print(epochs)"))
    return nbformat.v4.new_notebook(cells=cells)


PARAMETERS = (
    "# Parameters (keep literals)\n"
    'datasets = ["fashion_mnist", "mnist"]   # both — “quoted” ≥ text\n'
    "epochs = 15                 # epochs of every trial\n"
    "seed = 0\n"
    "output_dir = None           # None: <project>/runs\n"
    'progress = "auto"\n'
)


def test_publishing_keeps_the_injected_values_that_decide_outputs_and_drops_paths():
    nb = _notebook(
        PARAMETERS,
        f'# Parameters\nepochs = 12\nseed = 3\noutput_dir = "{RUNS_X}"\nprogress = "epoch"\n'
        'datasets = "fashion_mnist"\n',
    )
    nb.metadata["papermill"] = {
        "input_path": NOTEBOOK_05,
        "output_path": _machine_path("tmp/run/05.ipynb"),
        "parameters": {"epochs": 12, "seed": 3, "output_dir": RUNS_X, "progress": "epoch"},
    }
    drop_local_parameters(nb)
    injected = [c.source for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected == ['# Parameters\nepochs = 12\nseed = 3\ndatasets = "fashion_mnist"']
    assert nb.cells[1].source == PARAMETERS, "the parameters cell keeps the defaults a user's run starts from"
    assert nb.metadata["papermill"]["parameters"] == {"epochs": 12, "seed": 3}
    assert output_problems(nb) == [], "no path of the machine that ran it is left"
    only_local = _notebook(PARAMETERS, f'# Parameters\noutput_dir = "{_machine_path("tmp/x")}"\n')
    drop_local_parameters(only_local)
    assert len(only_local.cells) == 3, "an injected cell that set only paths goes"


def test_the_code_digest_follows_code_and_the_values_a_run_used_not_markdown():
    nb = _notebook(PARAMETERS, "# Parameters\nseed = 3\n")
    digest = code_digest(nb)
    nb.cells[0].source += "\nMore prose."
    nb.cells[1].source = nb.cells[1].source.replace("seed = 0", "seed = 1")  # overridden: the run used 3
    nb.cells[1].source = nb.cells[1].source.replace("# epochs of every trial", "# another comment")
    assert code_digest(nb) == digest
    edits = {
        "a code cell": lambda n: setattr(n.cells[3], "source", "print(epochs * 2)"),
        "a default the run used": lambda n: setattr(
            n.cells[1], "source", n.cells[1].source.replace("epochs = 15", "epochs = 16")
        ),
        "an injected value": lambda n: setattr(n.cells[2], "source", "# Parameters\nseed = 4\n"),
        "a new code cell": lambda n: n.cells.append(nbformat.v4.new_code_cell("x = 1")),
    }
    for name, edit in edits.items():
        changed = _notebook(PARAMETERS, "# Parameters\nseed = 3\n")
        edit(changed)
        assert code_digest(changed) != digest, f"editing {name} must change the digest"


def _summary(met: bool) -> dict:
    ablation = [
        {"step": 0, "kept": True, "chosen": False, "epochs": 12, "minutes": 7.0},
        {"step": 1, "kept": True, "chosen": True, "epochs": 12, "minutes": 8.26},
        {"step": 2, "kept": True, "chosen": False, "epochs": 30, "minutes": 19.0},
    ]
    row = {
        "best_recipe_text": "input_norm=bn_channel",
        "val_accuracy_seed_recipe": 0.92,
        "val_accuracy_best_recipe": 0.93,
        "test_accuracy_best_recipe": 0.94123,
        "seed_2017_test_accuracy": 0.9323,
        "target": 0.94,
        "target_met": met,
        "ablation": ablation,
    }
    return {"precision": "mixed_bfloat16", "datasets": {"fashion_mnist": row}}


def test_beyond_table_reports_the_winner_once_with_its_cost():
    table = beyond_table(_summary(True)).splitlines()
    assert len(table) == 3
    assert table[2] == (
        "| Fashion-MNIST | input_norm=bn_channel | 0.9200 → 0.9300 | **0.9412** | 0.9323 "
        "| 12 epochs, 8.3 min (mixed_bfloat16) |"
    )
    assert "target" not in beyond_table(_summary(False)), "a reader's table: results, no project targets"
    summary = _summary(True)
    summary["datasets"]["fashion_mnist"]["ensemble"] = {"used": True, "members": [1, 2], "val_accuracy": 0.94}
    assert beyond_table(summary).splitlines()[2].endswith("| 12 + 30 epochs, 27.3 min (mixed_bfloat16) |")


def test_cli_refuses_a_folder_without_a_notebook_05_run(tmp_path, capsys):
    assert publish.main([str(tmp_path), "--beyond-only"]) == 1
    assert "no finished 05_beyond_the_seed run" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        publish.main([str(tmp_path), "--beyond-only", "--metrics-only"])


SEED_PROTOCOL = {"is_sample": False, "epochs": 30, "batch_size": 256, "dtype_policy": "float32"}


def test_protocol_notes_name_another_precision_or_numerics():
    assert protocol_notes(SEED_PROTOCOL) == []
    assert protocol_notes(SEED_PROTOCOL | {"dtype_policy": "mixed_bfloat16"}) == [
        "precision mixed_bfloat16 (seed: float32)"
    ]
    assert protocol_notes(SEED_PROTOCOL | {"numerics": "keras2"}) == [
        "numerics=keras2 (recorded apart from the seed table)"
    ]


def test_a_bfloat16_run_is_not_published_as_the_seed_protocol(tmp_path):
    run = tmp_path / "run" / "fashion_mnist"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(
        json.dumps(SEED_PROTOCOL | {"dtype_policy": "mixed_bfloat16", "seed": 1})
    )
    (run / "history.csv").write_text("epoch,accuracy,val_accuracy\n0,0.5,0.5\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    with pytest.raises(PublishError, match=r"precision mixed_bfloat16 \(seed: float32\)"):
        publish_metrics(tmp_path / "run", repo=repo)
    assert not any(repo.iterdir()), "nothing recorded"


def test_the_results_tables_readme_links_are_the_ones_the_committed_results_give():
    from fmnist_utils.params import project_root
    from tools.publish import results_tables

    for path, table in results_tables(project_root()).items():
        assert path.read_text() == table, (
            f"{path} differs from results/: python -m tools.publish --tables-only"
        )
        assert path.relative_to(project_root()).as_posix() in (project_root() / "README.md").read_text()


def test_readme_stays_short():
    """About 1,500 words at most outside code blocks: everything else is a link to the notebook that tells it."""
    import re

    from fmnist_utils.params import project_root

    text = re.sub(r"```.*?```", "", (project_root() / "README.md").read_text(), flags=re.S)
    assert len(text.split()) <= 1500


def test_a_recipes_minutes_say_when_one_seed_was_timed_or_the_pipeline_autotuned():
    from tools.publish import _timing_note

    assert _timing_note({"seeds": [0, 1, 2], "autotune": False}) == ""
    assert (
        _timing_note({"seeds": [0, 1, 2], "timed_seeds": [0], "autotune": True})
        == " (seed 0 alone; autotuned)"
    )


def test_a_notebook_with_stderr_an_error_or_a_machine_path_is_not_published(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from tools.publish import PublishError, _publish_notebook

    clean = new_code_cell("print(1)", outputs=[new_output("stream", name="stdout", text="1\n")])
    cases = {
        "stderr": new_output("stream", name="stderr", text="E0000 failed call to cuInit\n"),
        "error": new_output("error", ename="ValueError", evalue="bad", traceback=[]),
        "path": new_output(
            "stream", name="stdout", text=f"results go to {_machine_path('home/ada/runs/mnist')}\n"
        ),
    }
    for name, output in cases.items():
        src = tmp_path / f"{name}.ipynb"
        nbformat.write(new_notebook(cells=[clean, new_code_cell("x", outputs=[output])]), src)
        with pytest.raises(PublishError, match=f"{name}.ipynb cannot be published: cell 1 "):
            _publish_notebook(src, tmp_path / "out" / src.name)
    pics = _machine_path("home/ada/pics")
    injected = new_code_cell(f'# Parameters\nimages_dir = "{pics}"\n')
    injected.metadata["tags"] = ["injected-parameters"]
    nbformat.write(new_notebook(cells=[injected, clean]), tmp_path / "folder.ipynb")
    with pytest.raises(PublishError, match=f"cell 0's source holds a path of this machine: '{pics}"):
        _publish_notebook(tmp_path / "folder.ipynb", tmp_path / "out" / "folder.ipynb")
    assert not (tmp_path / "out").exists(), "nothing is written for a refused notebook"
    nbformat.write(new_notebook(cells=[clean]), tmp_path / "clean.ipynb")
    _publish_notebook(tmp_path / "clean.ipynb", tmp_path / "out" / "clean.ipynb")
    published = nbformat.read(tmp_path / "out" / "clean.ipynb", as_version=4)
    assert recorded_digest(published) == code_digest(published), "publishing records the code that ran"


def test_a_notebook_published_into_another_folder_keeps_its_links_working(tmp_path):
    from tools.publish import relink

    notebooks, results = tmp_path / "notebooks", tmp_path / "results" / "seed"
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell(
                "Next: [04](04_compare.ipynb#section-1), [A1](appendix/A1.ipynb), [self](../results/seed/x.ipynb),"
                " [web](https://example.org/a.ipynb), [anchor](#top)"
            ),
            nbformat.v4.new_code_cell("x = '[a](b.ipynb)'"),
        ]
    )
    relink(nb, notebooks, results)
    assert nb.cells[0].source == (
        "Next: [04](../../notebooks/04_compare.ipynb#section-1), [A1](../../notebooks/appendix/A1.ipynb), "
        "[self](x.ipynb), [web](https://example.org/a.ipynb), [anchor](#top)"
    )
    assert nb.cells[1].source == "x = '[a](b.ipynb)'", "code is never touched"


def _series_run(root: Path) -> Path:
    """A finished full-protocol series run (seed 0, both datasets) whose files publish needs, all clean."""
    from tools.publish import ASSETS, SERIES_NOTEBOOKS

    clean = nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output("stream", text="1\n")])
    for executed in SERIES_NOTEBOOKS:
        (root / executed).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nbformat.v4.new_notebook(cells=[clean]), root / executed)
    for asset in ASSETS:
        (root / asset).parent.mkdir(parents=True, exist_ok=True)
        (root / asset).write_bytes(b"figure")
    for name in ("fashion_mnist", "mnist"):
        metrics = SEED_PROTOCOL | {
            "dataset": name,
            "seed": 0,
            "data_source": "FMNIST_DATA_DIR",
            "data_location": _machine_path(f"home/ada/datasets/{name}"),  # as older runs recorded it
            "test_accuracy": 0.93,
            "mean_epoch_seconds": 60.0,
            "machine": {"cpu": "a CPU", "cpu_count": 2, "gpus": []},
        }
        (root / name / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (root / name / "history.csv").write_text("epoch,accuracy,val_accuracy\n0,0.5,0.5\n")
    return root


def _published_repository(root: Path) -> Path:
    """A repository that already holds a published series: one seed record, its table and a notebook."""
    (root / "results" / "seed").mkdir(parents=True)
    (root / "notebooks").mkdir()
    (root / "results" / "seed" / "mnist-seed5.json").write_text(
        json.dumps(
            {
                "seed": 5,
                "test_accuracy": 0.99,
                "mean_epoch_seconds": 50.0,
                "machine": {"cpu": "x", "cpu_count": 2, "gpus": []},
            }
        )
    )
    (root / "results" / "seed" / "summary.md").write_text("the table\n")
    (root / "notebooks" / "01_data_exploration.ipynb").write_text("{}\n")
    return root


def _snapshot(repo: Path) -> dict[str, bytes]:
    """Every file of ``repo`` and its bytes."""
    return {p.relative_to(repo).as_posix(): p.read_bytes() for p in sorted(repo.rglob("*")) if p.is_file()}


def test_a_run_with_one_bad_notebook_changes_nothing_in_the_repository(tmp_path):
    from tools.publish import SERIES_NOTEBOOKS, publish

    run = _series_run(tmp_path / "run")
    last = run / list(SERIES_NOTEBOOKS)[-1]
    bad = nbformat.read(last, as_version=4)
    bad.cells[0].outputs.append(nbformat.v4.new_output("stream", name="stderr", text="W0000 a warning\n"))
    nbformat.write(bad, last)
    repo = _published_repository(tmp_path / "repo")
    before = _snapshot(repo)
    with pytest.raises(
        PublishError,
        match=rf"(?s){last.name} cannot be published: cell 0 wrote to stderr.*Nothing was published",
    ):
        publish(run, repo=repo)
    assert _snapshot(repo) == before, "a refused run leaves every file of the repository as it was"


def test_a_published_seed_record_is_replaced_only_by_the_same_record(tmp_path):
    from tools.publish import publish

    run, repo = _series_run(tmp_path / "run"), _published_repository(tmp_path / "repo")
    publish(run, repo=repo)
    published = _snapshot(repo)
    publish(run, repo=repo)
    assert _snapshot(repo) == published, "publishing the same run again changes nothing"
    metrics = json.loads((run / "mnist" / "metrics.json").read_text())
    (run / "mnist" / "metrics.json").write_text(json.dumps(metrics | {"test_accuracy": 0.5}))
    with pytest.raises(
        PublishError, match=r"mnist-seed0\.json already records seed 0 with other results; delete"
    ):
        publish(run, repo=repo)
    assert _snapshot(repo) == published, "nothing is written when a record would be replaced"


def test_a_published_record_names_the_data_source_not_a_folder_of_the_machine(tmp_path):
    from tools.publish import MACHINE_PATH, publish_metrics

    run, repo = _series_run(tmp_path / "run"), tmp_path / "repo"
    results = publish_metrics(run, repo=repo)
    for name in ("fashion_mnist", "mnist"):
        metrics = json.loads((run / name / "metrics.json").read_text())
        text = (results / f"{name}-seed0.json").read_text()
        assert json.loads(text) == metrics | {"data_location": "FMNIST_DATA_DIR"}
        assert not MACHINE_PATH.search(text)


def test_a_published_output_shows_a_temporary_folder_without_the_machines_temporary_root(tmp_path):
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from tools.publish import _publish_notebook

    printed = ".../tmp/tmpq24nio0b holds a killed run of another configuration\n"
    cell = new_code_cell("print(refused)", outputs=[new_output("stream", name="stdout", text=printed)])
    nbformat.write(new_notebook(cells=[cell]), tmp_path / "run.ipynb")
    _publish_notebook(tmp_path / "run.ipynb", tmp_path / "out" / "run.ipynb")
    [output] = nbformat.read(tmp_path / "out" / "run.ipynb", as_version=4).cells[0].outputs
    assert output.text == ".../tmpq24nio0b holds a killed run of another configuration\n"
