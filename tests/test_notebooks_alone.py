"""Each notebook run alone with papermill: parameter validation, the committed results it reads, the runner's errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat
import papermill as pm
import pytest
from notebook_outputs import (
    NOTEBOOKS,
    SOURCE_NOTEBOOKS,
    assert_all_rejected,
    assert_rejected,
    displayed,
    errors,
    executed,
    html,
    printed,
)

from fmnist_utils import run_notebooks
from fmnist_utils.params import project_root

pytestmark = pytest.mark.notebooks


def test_every_source_notebook_has_one_parameters_cell_then_validation():
    assert [p.name[:2] for p in SOURCE_NOTEBOOKS][:4] == ["01", "02", "03", "04"]
    for path in SOURCE_NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        tagged = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
        assert tagged == [0], f"{path.name}: exactly one parameters cell, the first code cell"
        validation = "\n".join(c.source for c in code[1:3])
        assert "check_" in validation or "resolve_dir" in validation, f"{path.name}: validate right after"
        for line in code[0].source.splitlines():  # literals only: papermill injects after this cell
            assert not line.strip() or line.lstrip().startswith("#") or "(" not in line.split("#")[0], line


#: Bad parameters of 05, 03 and 06 with the error each must give (the first of each: through papermill too).
REJECTED = {
    "05_beyond_the_seed.ipynb": [
        (
            {"datasets": ["cifar10"]},
            "Parameter 'datasets' must be one of 'fashion_mnist', 'fashion-mnist', 'mnist'; got 'cifar10'",
        ),
        (
            {"datasets": []},
            "Parameter 'datasets' must be a non-empty list of 'fashion_mnist', 'mnist'; got []",
        ),
        (
            {"datasets": "mnist,svhn"},
            "Parameter 'datasets' must be one of 'fashion_mnist', 'fashion-mnist', 'mnist'; got 'svhn'",
        ),
        ({"epochs": 1.5}, "Parameter 'epochs' must be an integer >= 1; got 1.5"),
        ({"long_epochs": -1}, "Parameter 'long_epochs' must be an integer >= 0; got -1"),
        (
            {"longer_epochs": 30},
            "Parameter 'longer_epochs' must be 0 (no third stage) or more than 'long_epochs' (30, ",
        ),
        (
            {"long_epochs": 0},
            "Parameter 'longer_epochs' must be 0 (no third stage) or more than 'long_epochs' (0, ",
        ),
        ({"ensemble": "yes"}, "Parameter 'ensemble' must be one of True, False; got 'yes'"),
        ({"winner_seeds": -1}, "Parameter 'winner_seeds' must be an integer >= 0; got -1"),
        ({"trial_images": 50}, "Parameter 'trial_images' must be 0 (no trial) or at least 100; got 50"),
        ({"trial_epochs": 0}, "Parameter 'trial_epochs' must be an integer >= 1; got 0"),
        ({"source": "cached"}, "Parameter 'source' must be one of 'published', 'train'; got 'cached'"),
        ({"data_source": "sample"}, "Parameter 'data_source' must be 'auto' with source='published'"),
        (
            {"published_dir": "/nonexistent/beyond"},
            "Parameter 'published_dir': no summary.json in /nonexistent/beyond",
        ),
        (
            {"ensemble": False, "winner_seeds": 1},
            "Parameter 'winner_seeds' trains ensemble candidates: with ensemble=False it must be 0; got 1",
        ),
    ],
    "03_training.ipynb": [
        ({"epochs": 0}, "Parameter 'epochs' must be an integer >= 1; got 0"),
        (
            {"dataset": "cifar10"},
            "Parameter 'dataset' must be one of 'fashion_mnist', 'fashion-mnist', 'mnist'; got 'cifar10'",
        ),
        ({"data_source": "internet"}, "Parameter 'data_source' must be one of 'auto', 'sample'"),
        (
            {"precision": "fp8"},
            "Parameter 'precision' must be one of 'float32', 'mixed_bfloat16', 'mixed_float16'",
        ),
    ],
    "06_train_fast.ipynb": [
        ({"source": "train"}, "Parameter 'source' must be one of 'published', 'measure'; got 'train'"),
        ({"images": 10}, "Parameter 'images' must be an integer >= 256; got 10"),
        ({"timed_steps": 0}, "Parameter 'timed_steps' must be an integer >= 1; got 0"),
        ({"batch_sizes": [256, 0]}, "Parameter 'batch_sizes' must be an integer >= 1; got 0"),
        ({"batch_sizes": 256}, "Parameter 'batch_sizes' must be a non-empty list of integers >= 1; got 256"),
        ({"recipe_epochs": -1}, "Parameter 'recipe_epochs' must be an integer >= 0 or None; got -1"),
        ({"results_dir": "/nonexistent/results"}, "Parameter 'results_dir': no benchmark/throughput.json in"),
    ],
}


@pytest.mark.parametrize("notebook", REJECTED)
def test_bad_parameters_fail_with_a_clear_error(tmp_path, notebook):
    assert_all_rejected(notebook, tmp_path, REJECTED[notebook])


@pytest.mark.parametrize("notebook", REJECTED)
def test_papermill_refuses_a_bad_parameter_before_running_anything(tmp_path, notebook):
    parameters, message = REJECTED[notebook][0]
    assert_rejected(notebook, tmp_path, parameters, message)


def test_comparison_names_the_command_when_runs_are_missing(tmp_path):
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(
            str(NOTEBOOKS / "04_compare_mnist_fashion.ipynb"),
            str(tmp_path / "out.ipynb"),
            parameters={"runs_dir": str(tmp_path)},
            progress_bar=False,
        )
    assert err.value.ename == "FileNotFoundError"
    assert (
        "papermill notebooks/03_training.ipynb" in err.value.evalue and "-p dataset mnist" in err.value.evalue
    )


def test_runner_names_the_failing_notebook_and_cell(tmp_path, capsys):
    broken = tmp_path / "notebooks"
    broken.mkdir()
    for path in SOURCE_NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        if path.name.startswith("01"):
            nb.cells.insert(3, nbformat.v4.new_code_cell('raise RuntimeError("boom")'))
        (broken / path.relative_to(NOTEBOOKS)).parent.mkdir(exist_ok=True)
        nbformat.write(nb, broken / path.relative_to(NOTEBOOKS))
    rc = run_notebooks.main(
        [
            "--quick",
            "--data-source",
            "sample",
            "--quiet",
            "--notebooks-dir",
            str(broken),
            "--output-dir",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 1
    assert "FAILED: 01_data_exploration.ipynb" in err and "RuntimeError: boom" in err and "cell [" in err
    assert not (tmp_path / "out" / "02_model_build.ipynb").exists(), "the series stops at the failure"


def test_runner_rejects_bad_arguments(capsys):
    assert run_notebooks.main(["--epochs", "0"]) == 2
    assert "--epochs must be a positive integer" in capsys.readouterr().err


@pytest.mark.full_data
@pytest.mark.slow  # trains 03 on 2,000 full-data images and tests it on 10,000
def test_papermill_cli_from_another_directory_on_full_data(full_data_root, tmp_path):
    """The issue's command, run from an unrelated working directory, on the user's full data copy."""
    env = {**os.environ, "FMNIST_DATA_DIR": str(full_data_root), "FMNIST_RUNS_DIR": str(tmp_path / "runs")}
    env.pop("JPY_SESSION_NAME", None)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cmd = [
        sys.executable,
        "-m",
        "papermill",
        str(NOTEBOOKS / "03_training.ipynb"),
        "out.ipynb",
        "-p",
        "dataset",
        "fashion_mnist",
        "-p",
        "epochs",
        "1",
        "-p",
        "train_limit",
        "2000",
    ]
    subprocess.run(cmd, cwd=elsewhere, env=env, check=True, capture_output=True, timeout=600)
    metrics = json.loads((tmp_path / "runs" / "fashion_mnist" / "metrics.json").read_text())
    assert metrics["data_source"] == "FMNIST_DATA_DIR" and metrics["is_sample"] is False
    assert metrics["test_size"] == 10_000 and metrics["train_size"] == 1700
    assert 0.2 < metrics["test_accuracy"] <= 1.0
    nb = nbformat.read(elsewhere / "out.ipynb", as_version=4)
    assert not errors(nb) and printed(nb).count("val_accuracy: ") == 1


@pytest.mark.parametrize("path", SOURCE_NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_sees_every_parameter(path):
    """`papermill --help-notebook` lists each parameter (a '=' in a comment would hide it)."""
    nb = nbformat.read(path, as_version=4)
    source = next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assigned = [
        line.split("=")[0].strip() for line in source.splitlines() if line and not line.startswith("#")
    ]
    assert list(pm.inspect_notebook(str(path))) == assigned


@pytest.mark.slow  # 05 in train mode (its published mode runs in the default tier)
def test_beyond_the_seed_accepts_dataset_names_as_papermill_cli_text(tmp_path):
    """`papermill -p datasets mnist` passes a string: it means that one dataset."""
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(
        str(NOTEBOOKS / "05_beyond_the_seed.ipynb"),
        str(out),
        progress_bar=False,
        parameters={
            "source": "train",
            "datasets": "mnist",
            "data_source": "sample",
            "epochs": 1,
            "long_epochs": 0,  # the first stage alone
            "longer_epochs": 0,
            "train_limit": 300,
            "embedding_points": 60,
            "ensemble": False,
            "winner_seeds": 0,
            "trial_images": 0,  # section 2's trial runs in the default tier's test of the published mode
            "output_dir": str(tmp_path / "run"),
        },
    )
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert list(summary["datasets"]) == ["mnist"] and not errors(nbformat.read(out, as_version=4))
    row = summary["datasets"]["mnist"]  # ensemble=False: the winner alone is tested
    [winner] = [step for step in row["ablation"] if step["chosen"]]
    assert summary["ensemble"] is False and row["ensemble"] == {"used": False, "members": [winner["step"]]}
    assert winner["test_accuracy"] == pytest.approx(row["test_accuracy_best_recipe"])


def test_notebook_05_explores_the_committed_ladder_from_the_shipped_artifacts(tmp_path):
    """The default, source="published": a small label-smoothing trial trains on the page, then the committed
    ladder and the shipped winners' predictions on the full test sets, in minutes, no ladder trial trained."""
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(
        str(NOTEBOOKS / "05_beyond_the_seed.ipynb"),
        str(out),
        progress_bar=False,
        parameters={
            "embedding_points": 150,
            "trial_images": 400,
            "trial_epochs": 2,
            "output_dir": str(tmp_path / "run"),
        },
    )
    nb = nbformat.read(out, as_version=4)
    assert not errors(nb)
    stdout, shown = printed(nb), displayed(nb) + html(nb)
    assert "nothing is trained" in stdout and "Training cnn_" not in stdout and "SAMPLE" not in stdout
    for smoothing in ("0.0", "0.1"):  # section 2's trial trains on the page, with its fit log
        assert (
            f"--- label_smoothing={smoothing}\nEpoch 1/2" in stdout
            and f"label_smoothing={smoothing}" in html(nb)
        )
    assert "Epoch 2/2" in stdout and "mean top probability (validation)" in html(nb)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["figures"], "no trial was trained"
    summary = json.loads((project_root() / "results" / "beyond" / "summary.json").read_text())
    for name in ("fashion_mnist", "mnist"):
        manifest = json.loads(
            (project_root() / "results" / "beyond" / "published" / name / "manifest.json").read_text()
        )
        assert f"{manifest['test_accuracy']:.4f}" in shown, (
            "section 4 shows the shipped winner's test accuracy"
        )
        assert f"{summary['datasets'][name]['test_accuracy_best_recipe']:.4f}" in shown
    assert "5-NN accuracy" in shown and "gain ÷ notebook 03's range" in html(
        nb
    )  # gains set against one scale
    assert sorted(p.name for p in (tmp_path / "run" / "figures").glob("*.png")) == sorted(
        [
            "ablation.png",
            "augmentation.png",
            "embeddings_raw_vs_learned.png",
            "misclassified_upper_body.png",
            "schedules.png",
            "winner_curves.png",
            *(
                f"{kind}_{name}.png"
                for kind in ("confusion_best", "reliability")
                for name in ("fashion_mnist", "mnist")
            ),
        ]
    )


def test_markdown_cells_stay_short():
    """At most about 250 words a markdown cell (tables included), in every notebook."""
    for path in SOURCE_NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        long = [(i, len(c.source.split())) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"]
        assert [(i, n) for i, n in long if n > 250] == [], path.name


@pytest.mark.slow
def test_notebook_06_times_this_machine_and_trains_the_recipe_on_the_sample(tmp_path):
    """source="measure": the benchmark runs here (its JSON saved) and the page's plain-Keras recipe trains,
    loudly marked as sample data."""
    quick = {"images": 256, "repeats": 1, "batch_sizes": [64, 128], "recipe_epochs": 1, "timed_steps": 1}
    nb = executed(
        "06_train_fast.ipynb",
        tmp_path,
        {"source": "measure", "data_source": "sample", **quick, "output_dir": str(tmp_path / "run")},
    )
    assert not errors(nb)
    stdout = printed(nb)
    assert "*** SAMPLE DATA" in stdout and "1 epochs (" in stdout and "test " in stdout
    mine = json.loads((tmp_path / "run" / "throughput.json").read_text())
    assert mine["is_sample"] and [row["batch_size"] for row in mine["batch_sizes"]] == [64, 128]
    assert len(mine["throughput"]) == 5 and mine["parity"] == []
