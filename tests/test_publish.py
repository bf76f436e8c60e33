"""Publishing helpers that need no executed run: parameter folding, the notebook-05 table, the CLI."""

from __future__ import annotations

import json

import nbformat
import pytest

from fmnist_utils.comparison import protocol_notes
from tools import publish
from tools.publish import PublishError, beyond_table, fold_injected_parameters, publish_metrics


def _notebook(parameters: str, injected: str | None):
    cells = [
        nbformat.v4.new_markdown_cell("# Title ≥ unicode"),
        nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
    ]
    if injected is not None:
        cells.append(nbformat.v4.new_code_cell(injected, metadata={"tags": ["injected-parameters"]}))
    cells.append(nbformat.v4.new_code_cell("print(epochs)"))
    return nbformat.v4.new_notebook(cells=cells)


def test_fold_writes_injected_values_into_the_parameters_cell_and_keeps_comments():
    parameters = (
        "# Parameters (keep literals)\n"
        'datasets = ["fashion_mnist", "mnist"]   # both — “quoted” ≥ text\n'
        "epochs = 15                 # epochs of every trial\n"
        "seed = 0\n"
        "output_dir = None           # None: <project>/runs\n"
        'progress = "auto"\n'
    )
    nb = _notebook(
        parameters,
        '# Parameters\nepochs = 12\nseed = 0\noutput_dir = "/home/me/runs/x"\n'
        'progress = "epoch"\ndatasets = "fashion_mnist"\n',
    )
    written = fold_injected_parameters(nb)
    assert written == {"datasets": '"fashion_mnist"', "epochs": "12"}
    assert [c.source for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])] == []
    assert nb.cells[1].source == (
        "# Parameters (keep literals)\n"
        'datasets = "fashion_mnist"   # both — “quoted” ≥ text\n'
        "epochs = 12                 # epochs of every trial\n"
        "seed = 0\n"
        "output_dir = None           # None: <project>/runs\n"
        'progress = "auto"\n'
    )
    assert len(nb.cells) == 3


def test_fold_without_injected_cell_changes_nothing():
    nb = _notebook("epochs = 15  # e\n", None)
    assert fold_injected_parameters(nb) == {} and nb.cells[1].source == "epochs = 15  # e\n"


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
        "| Fashion-MNIST | input_norm=bn_channel | 0.9200 → 0.9300 | **0.9412** | 0.9323 | ≥ 0.9400 "
        "| yes | 12 epochs, 8.3 min (mixed_bfloat16) |"
    )
    assert "| no |" in beyond_table(_summary(False))
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


def test_readme_tables_are_the_ones_the_committed_results_give():
    from fmnist_utils.params import project_root
    from tools.publish import readme_tables

    readme = (project_root() / "README.md").read_text()
    for (start, end), table in readme_tables(project_root()).items():
        assert start in readme and end in readme, f"README lacks {start}"
        shown = readme[readme.index(start) + len(start) : readme.index(end)]
        assert shown == "\n" + table, (
            f"README's {start} table differs from results/: python -m tools.publish --readme-only"
        )


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


def test_a_notebook_with_stderr_an_error_a_reused_run_or_a_machine_path_is_not_published(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from tools.publish import PublishError, _publish_notebook

    clean = new_code_cell("print(1)", outputs=[new_output("stream", name="stdout", text="1\n")])
    cases = {
        "stderr": new_output("stream", name="stderr", text="E0000 failed call to cuInit\n"),
        "error": new_output("error", ename="ValueError", evalue="bad", traceback=[]),
        "reused": new_output("stream", name="stdout", text="loaded from runs/x, not trained again.\n"),
        "path": new_output("stream", name="stdout", text="results go to /home/ada/project/runs/mnist\n"),
    }
    for name, output in cases.items():
        src = tmp_path / f"{name}.ipynb"
        nbformat.write(new_notebook(cells=[clean, new_code_cell("x", outputs=[output])]), src)
        with pytest.raises(PublishError, match=f"{name}.ipynb cannot be published: cell 1 "):
            _publish_notebook(src, tmp_path / "out" / src.name)
    assert not (tmp_path / "out").exists(), "nothing is written for a refused notebook"
    nbformat.write(new_notebook(cells=[clean]), tmp_path / "clean.ipynb")
    _publish_notebook(tmp_path / "clean.ipynb", tmp_path / "out" / "clean.ipynb")
    assert (tmp_path / "out" / "clean.ipynb").is_file()
