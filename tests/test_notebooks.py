"""The notebook series, executed headlessly with papermill exactly as users and the batch runner do."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace

import nbformat
import papermill as pm
import pytest

from fmnist_utils import run_notebooks
from fmnist_utils.lab import ablation
from fmnist_utils.params import project_root
from tools.publish import PublishError, publish, publish_beyond, publish_metrics

pytestmark = pytest.mark.notebooks
NOTEBOOKS = project_root() / "notebooks"
SOURCE_NOTEBOOKS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _digest(paths) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _errors(nb) -> list[str]:
    return [
        f"{o.ename}: {o.evalue}"
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]


def _displayed(nb) -> str:
    """Every plain-text rendering a notebook displayed (tables, values), joined, terminal colours removed."""
    text = "".join(
        o.get("data", {}).get("text/plain", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.output_type in ("execute_result", "display_data")
    )
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _html(nb) -> str:
    """Every HTML rendering a notebook displayed (styled tables have no plain-text twin worth reading)."""
    return "".join(
        o.get("data", {}).get("text/html", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.output_type in ("execute_result", "display_data")
    )


def _stdout(nb) -> str:
    return "".join(
        o.text
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.output_type == "stream" and o.name == "stdout"
    )


def _executed(notebook: str, tmp_path, parameters: dict):
    """``notebook`` run by papermill with ``parameters`` into ``tmp_path``, read back."""
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(str(NOTEBOOKS / notebook), str(out), progress_bar=False, parameters=parameters)
    return nbformat.read(out, as_version=4)


def _assert_rejected(notebook: str, tmp_path, parameters: dict, message: str) -> None:
    """Executing ``notebook`` with ``parameters`` fails in validation with ``message``, writing nothing."""
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(
            str(NOTEBOOKS / notebook),
            str(tmp_path / "out.ipynb"),
            parameters={"output_dir": str(tmp_path / "run"), **parameters},
            progress_bar=False,
        )
    assert err.value.ename == "ValueError" and message in err.value.evalue
    assert not (tmp_path / "run").exists(), "nothing is written before the parameters are valid"


@pytest.fixture(scope="module")
def quick_series(tmp_path_factory):
    """The batch runner's quick preset on the bundled sample, into a temporary folder."""
    before = _digest(SOURCE_NOTEBOOKS)
    out = tmp_path_factory.mktemp("series")
    rc = run_notebooks.main(
        ["--quick", "--beyond", "--data-source", "sample", "--output-dir", str(out), "--quiet"]
    )
    assert rc == 0
    assert _digest(SOURCE_NOTEBOOKS) == before, "running the series must not modify the committed notebooks"
    return out


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


def test_series_runs_every_notebook_without_errors(quick_series):
    executed = sorted(quick_series.glob("*.ipynb"))
    assert [p.name for p in executed] == [
        "01_data_exploration.ipynb",
        "02_model_build.ipynb",
        "03_training_fashion_mnist.ipynb",
        "03_training_mnist.ipynb",
        "04_compare_mnist_fashion.ipynb",
        "05_beyond_the_seed.ipynb",
        "06_train_fast.ipynb",
    ]
    for path in executed:
        nb = nbformat.read(path, as_version=4)
        assert not _errors(nb), f"{path.name}: {_errors(nb)}"
        assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)


@pytest.mark.parametrize("name", ["fashion_mnist", "mnist"])
def test_training_runs_write_real_metrics(quick_series, name):
    metrics = json.loads((quick_series / name / "metrics.json").read_text())
    assert metrics["dataset"] == name and metrics["is_sample"] is True and metrics["data_source"] == "sample"
    assert metrics["train_size"] + metrics["val_size"] == 2000 and metrics["test_size"] == 500
    assert metrics["epochs_completed"] == 1 and metrics["train_limit"] == 2000
    assert 0.2 < metrics["test_accuracy"] <= 1.0, "one epoch on the sample is already well above chance (0.1)"
    assert metrics["evaluation"]["accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    assert len(metrics["evaluation"]["confusion_matrix"]) == 10
    figures = {p.name for p in (quick_series / name / "figures").iterdir()}
    assert figures == {
        f"{kind}_{name}.png"
        for kind in (
            "curves",
            "per_class_accuracy",
            "confusion",
            "misclassified",
            "prediction_bars",
            "filters",
            "feature_maps",
            "saliency",
            "seed_log_comparison",
        )
    }
    text = _stdout(nbformat.read(quick_series / f"03_training_{name}.ipynb", as_version=4))
    assert "SAMPLE DATA" in text
    assert "\r" not in text and "━" not in text, "no per-batch progress bar in executed notebooks"
    assert text.count("val_accuracy: ") == 1, "exactly one log line per epoch"


def test_exploration_model_build_and_comparison_figures(quick_series):
    expected = {
        "exploration": {
            "class_balance_mnist.png",
            "class_balance_fashion_mnist.png",
            "sample_grid_mnist.png",
            "sample_grid_fashion_mnist.png",
            "mean_images_mnist.png",
            "mean_images_fashion_mnist.png",
            "pixel_histograms.png",
            "embeddings_raw_pixels.png",
        },
        "model_build": {
            "convolution.png",
            "relu.png",
            "max_pooling.png",
            "dropout.png",
            "softmax.png",
            "architecture.png",
            "batchnorm_axis.png",
            "learning_rate_schedule.png",
            "untrained_predictions.png",
        },
        "comparison": {
            "curves_overlay.png",
            "per_class_accuracy.png",
            "confusion_matrices.png",
            "misclassified_mnist.png",
            "misclassified_fashion_mnist.png",
        },
    }
    for folder, names in expected.items():
        written = {p.name for p in (quick_series / folder / "figures").iterdir()}
        assert written == names, folder
        for name in names:
            assert (quick_series / folder / "figures" / name).read_bytes()[:4] == b"\x89PNG"
    model_build = nbformat.read(quick_series / "02_model_build.ipynb", as_version=4)
    summary = re.sub(r"\x1b\[[0-9;]*m", "", _stdout(model_build)) + _displayed(
        model_build
    )  # either, by frontend
    assert "Total params: 1,879,098" in summary  # model.summary() of the notebook's plain-Keras network
    comparison = _displayed(nbformat.read(quick_series / "04_compare_mnist_fashion.ipynb", as_version=4))
    assert "SAMPLE DATA" in comparison and "errors vs MNIST" in comparison


def test_beyond_the_seed_ladder_table_test_once_and_embeddings(quick_series):
    """05 on the sample: each dataset's ladder follows its definitions, the winner is tested once, everything
    is flagged as sample. Which recipes win is left to the trials: every check holds whatever their accuracies
    (the stand-in tests of test_ablation pin the choices for known accuracies)."""
    beyond = quick_series / "beyond"
    summary = json.loads((beyond / "summary.json").read_text())
    assert summary["epochs"] == 1 and summary["long_epochs"] == 1 and summary["longer_epochs"] == 2
    assert summary["train_limit"] == 2000 and summary["ensemble"] is True
    stage_epochs = {"screening": 1, "long": 1, "longer": 2}
    changes = dict(ablation.LADDER + ablation.LONG_LADDER + ablation.LONGER_LADDER)
    for name in ("fashion_mnist", "mnist"):
        row = summary["datasets"][name]
        assert row["is_sample"] is True and row["target_met"] is False
        steps = row["ablation"]
        trials, others = steps[:-2], steps[-2:]  # winner_seeds=2 (the default): the winner with seeds 1, 2
        stages = {stage: [s for s in trials if s["stage"] == stage] for stage in stage_epochs}
        assert [s["step"] for s in steps] == list(range(len(steps)))
        grouped = [s["stage"] for rows in stages.values() for s in rows]
        assert [s["stage"] for s in steps] == grouped + ["seeds"] * 2, "the stages in order, one block each"
        labels = {stage: [s["change"] for s in rows] for stage, rows in stages.items()}
        suited = {
            stage: [label for label, c in ladder if ablation.suits(c, name)]
            for stage, ladder in (("long", ablation.LONG_LADDER), ("longer", ablation.LONGER_LADDER))
        }
        assert labels["screening"] == [label for label, _ in ablation.LADDER]
        # later stages: the steps that suit the dataset (no flips or erasing for digits), in order, minus any
        # whose recipe the stage trained already; no screening recipe has the fields of the long stage's steps
        # up to the VGG network, so those always run, and the third stage's steps run from the first
        vgg = next(label for label, c in ablation.LONG_LADDER if c == ablation.VGG)
        always = 1 + suited["long"].index(vgg)
        assert labels["long"][:always] == suited["long"][:always]
        assert labels["long"] == [label for label in suited["long"] if label in labels["long"]]
        assert labels["longer"] == suited["longer"][: len(labels["longer"])]
        assert all(len({s["recipe"] for s in rows}) == len(rows) for rows in stages.values()), (
            "a stage trained a recipe twice"
        )
        # each trial changes the recipe of the last kept trial before it, and is kept if it is its stage's
        # first (the reference for the stage's budget) or beats that trial on validation
        assert trials[0]["recipe"] == "seed" and trials[0]["kept"]
        for k, step in enumerate(trials[1:], start=1):
            best = [s for s in trials[:k] if s["kept"]][-1]
            recipe = replace(ablation.Recipe.parse(best["recipe"]), **changes[step["change"]])
            first = step["stage"] != trials[k - 1]["stage"]
            assert step["recipe"] == recipe.describe(), step
            assert step["kept"] == (first or step["val_accuracy"] > best["val_accuracy"]), step
        assert [(s["epochs"], s["seed"]) for s in trials] == [(stage_epochs[s["stage"]], 0) for s in trials]
        # the third stage runs only where the long stage won; the winner: the best stage winner (a tie: the
        # shorter stage's)
        winners = [[s for s in rows if s["kept"]][-1] for rows in stages.values() if rows]
        assert bool(stages["longer"]) == (winners[1]["val_accuracy"] > winners[0]["val_accuracy"])
        [winner] = [s for s in steps if s["chosen"]]
        assert winner == max(winners, key=lambda s: s["val_accuracy"])
        assert ablation.Recipe(**row["best_recipe"]).describe() == winner["recipe"]
        assert [(s["stage"], s["recipe"], s["epochs"], s["seed"], s["kept"]) for s in others] == [
            ("seeds", winner["recipe"], winner["epochs"], seed, False) for seed in (1, 2)
        ]
        flips, ensemble = row["test_time_flips"], row["ensemble"]
        assert ensemble["members"][0] == winner["step"] and ensemble["used"] == (len(ensemble["members"]) > 1)
        assert ensemble["val_accuracy"] == ensemble["path"][-1]
        assert flips["used"] is False or name == "fashion_mnist", "digits are never mirrored"
        # the test set: once, for what was chosen, recorded in the winner's folder alone; then every trial
        # scored on it for the record, after the choice
        records = {
            p.parent.name: json.loads(p.read_text()) for p in (beyond / name).glob("step*/metrics.json")
        }
        assert sorted(records) == sorted(f"step{s['step']}" for s in steps)
        tested = {folder: metrics for folder, metrics in records.items() if "test_accuracy" in metrics}
        assert list(tested) == [f"step{winner['step']}"], "only the winner's metrics carry a test accuracy"
        [record] = tested.values()
        measured = row["test_accuracy_best_recipe"]
        assert record["test_accuracy"] == pytest.approx(measured) and 0.2 < measured <= 1.0
        assert record["ensemble_members"] == ensemble["members"]
        assert record["test_time_flips"] == flips["used"]
        assert all(0.0 <= s["test_accuracy"] <= 1.0 for s in steps)
    figures = {p.name for p in (beyond / "figures").iterdir()}
    assert figures == {
        "ablation.png",
        "confusion_best_fashion_mnist.png",
        "confusion_best_mnist.png",
        "misclassified_upper_body.png",
        "embeddings_raw_vs_learned.png",
        "schedules.png",
        "winner_curves.png",
    }
    nb = nbformat.read(quick_series / "05_beyond_the_seed.ipynb", as_version=4)
    assert "SAMPLE DATA" in _stdout(nb) and "\r" not in _stdout(nb)
    assert "5-NN accuracy" in _displayed(nb) and "learned features" in _displayed(nb)


@pytest.mark.parametrize(
    "parameters,message",
    [
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
        ({"source": "cached"}, "Parameter 'source' must be one of 'published', 'train'; got 'cached'"),
        (
            {"published_dir": "/nonexistent/beyond"},
            "Parameter 'published_dir': no summary.json in /nonexistent/beyond",
        ),
        (
            {"ensemble": False, "winner_seeds": 1},
            "Parameter 'winner_seeds' trains ensemble candidates: with ensemble=False it must be 0; got 1",
        ),
    ],
)
def test_beyond_the_seed_rejects_bad_parameters(tmp_path, parameters, message):
    _assert_rejected("05_beyond_the_seed.ipynb", tmp_path, parameters, message)


@pytest.mark.parametrize(
    "parameters,message",
    [
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
)
def test_bad_parameters_fail_with_a_clear_error(tmp_path, parameters, message):
    _assert_rejected("03_training.ipynb", tmp_path, parameters, message)


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
        nbformat.write(nb, broken / path.name)
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
    assert not _errors(nb) and _stdout(nb).count("val_accuracy: ") == 1


def test_publish_refuses_runs_that_are_not_the_full_protocol(quick_series, tmp_path):
    with pytest.raises(PublishError, match=r"not a full seed-protocol run \(SAMPLE DATA, 1 epochs"):
        publish(quick_series, repo=tmp_path)
    assert not any(tmp_path.iterdir()), "nothing is copied from a refused run"


def test_publish_copies_notebooks_figures_and_metrics(quick_series, tmp_path):
    """The copy mechanics, on a copy of the quick run relabelled as full protocol (never published)."""
    run = tmp_path / "run"
    shutil.copytree(quick_series, run)
    for name in ("fashion_mnist", "mnist"):
        path = run / name / "metrics.json"
        metrics = json.loads(path.read_text()) | {"is_sample": False, "epochs": 30, "train_limit": None}
        path.write_text(json.dumps(metrics))
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "README.md").write_text(
        "# Title\n<!-- results-seed -->\nold table\n<!-- /results-seed -->\nafter\n"
    )
    results = publish(run, repo=repo)
    assert sorted(p.name for p in (repo / "notebooks").iterdir()) == [
        "01_data_exploration.ipynb",
        "02_model_build.ipynb",
        "03_training.ipynb",
        "04_compare_mnist_fashion.ipynb",
    ]
    published = nbformat.read(repo / "notebooks" / "03_training.ipynb", as_version=4)
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in published.cells)
    assert "parameters" in published.cells[1].metadata.get("tags", []) and not _errors(published)
    assert len({p.name for p in (repo / "assets").iterdir()}) == 12
    assert sorted(p.name for p in results.iterdir()) == [
        "03_training_mnist.ipynb",
        "fashion_mnist-seed0-history.csv",
        "fashion_mnist-seed0.json",
        "mnist-seed0-history.csv",
        "mnist-seed0.json",
        "summary.md",
    ]
    summary = (results / "summary.md").read_text()
    assert "| Fashion-MNIST | 1 |" in summary and "0.9323" in summary and "| MNIST | 1 |" in summary
    readme = (repo / "README.md").read_text()
    assert (
        "old table" not in readme and summary in readme and readme.endswith("<!-- /results-seed -->\nafter\n")
    )

    # another seed of one dataset: its metrics join the table; notebooks and figures stay as published
    extra = tmp_path / "seed1"
    shutil.copytree(run / "fashion_mnist", extra / "fashion_mnist")
    path = extra / "fashion_mnist" / "metrics.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"seed": 1, "test_accuracy": 0.5}))
    before = _digest((repo / "notebooks").iterdir())
    publish_metrics(extra, repo=repo)
    assert _digest((repo / "notebooks").iterdir()) == before
    first = json.loads((results / "fashion_mnist-seed0.json").read_text())["test_accuracy"]
    summary = (results / "summary.md").read_text()
    assert "| Fashion-MNIST | 2 |" in summary and "| MNIST | 1 |" in summary and "1: 0.5000" in summary
    assert f"{(first + 0.5) / 2:.4f} ± " in summary and summary in (repo / "README.md").read_text()
    with pytest.raises(PublishError, match="holds no finished training run"):
        publish_metrics(tmp_path / "empty", repo=repo)


@pytest.mark.parametrize("path", SOURCE_NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_sees_every_parameter(path):
    """`papermill --help-notebook` lists each parameter (a '=' in a comment would hide it)."""
    nb = nbformat.read(path, as_version=4)
    source = next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assigned = [
        line.split("=")[0].strip() for line in source.splitlines() if line and not line.startswith("#")
    ]
    assert list(pm.inspect_notebook(str(path))) == assigned


def test_publish_beyond_refuses_sample_runs_and_copies_full_ones(quick_series, tmp_path):
    with pytest.raises(PublishError, match="trained on the sample or a subset"):
        publish_beyond(quick_series, repo=tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    with pytest.raises(PublishError, match="no finished 05_beyond_the_seed run"):
        publish_beyond(tmp_path, repo=tmp_path / "repo")
    run = tmp_path / "run"  # the copy mechanics, on a quick run relabelled as full data (never published)
    shutil.copytree(quick_series, run)
    summary = json.loads((run / "beyond" / "summary.json").read_text())
    summary["train_limit"] = None
    for row in summary["datasets"].values():
        row["is_sample"] = False
    (run / "beyond" / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "README.md").write_text(
        "# T\n<!-- results-beyond -->\nold\n<!-- /results-beyond -->\nend\n"
    )
    results = publish_beyond(run, repo=tmp_path / "repo")
    assert sorted(p.name for p in results.iterdir()) == [
        "fashion_mnist-ablation.csv",
        "mnist-ablation.csv",
        "summary.json",
        "summary.md",
    ]
    (run / "beyond" / "replicate").mkdir()
    (run / "beyond" / "replicate" / "replicate.json").write_text('{"datasets": {}}')
    publish_beyond(run, repo=tmp_path / "repo")
    assert (results / "replicate.json").read_text() == '{"datasets": {}}', "the seed replication comes along"
    assert len(list((tmp_path / "repo" / "assets").glob("beyond_*.png"))) == 7  # every figure of 05
    table = (results / "summary.md").read_text()
    for row in summary["datasets"].values():
        test = row["test_accuracy_best_recipe"]
        assert f"| {row['dataset']} | {row['best_recipe_text']} |" in table
        assert f"**{test:.4f}**" in table
    readme = (tmp_path / "repo" / "README.md").read_text()
    assert "old" not in readme and table in readme and readme.endswith("<!-- /results-beyond -->\nend\n")
    published = nbformat.read(tmp_path / "repo" / "notebooks" / "05_beyond_the_seed.ipynb", as_version=4)
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in published.cells)
    parameters = next(c.source for c in published.cells if "parameters" in c.metadata.get("tags", []))
    assert (
        "\nepochs = 1 " in parameters and "\ntrain_limit = 2000 " in parameters
    )  # what the outputs came from
    assert "\noutput_dir = None " in parameters  # a user's re-run writes to the usual place


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
            "long_epochs": 1,
            "longer_epochs": 0,
            "train_limit": 300,
            "embedding_points": 60,
            "ensemble": False,
            "winner_seeds": 0,
            "output_dir": str(tmp_path / "run"),
        },
    )
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert list(summary["datasets"]) == ["mnist"] and not _errors(nbformat.read(out, as_version=4))
    row = summary["datasets"]["mnist"]  # ensemble=False: the winner alone is tested
    [winner] = [step for step in row["ablation"] if step["chosen"]]
    assert summary["ensemble"] is False and row["ensemble"] == {"used": False, "members": [winner["step"]]}
    assert winner["test_accuracy"] == pytest.approx(row["test_accuracy_best_recipe"])


def test_notebook_05_explores_the_committed_ladder_from_the_shipped_artifacts(tmp_path):
    """The default, source="published": the committed ladder and the shipped winners' predictions on the full
    test sets, in minutes, training nothing."""
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(
        str(NOTEBOOKS / "05_beyond_the_seed.ipynb"),
        str(out),
        progress_bar=False,
        parameters={"embedding_points": 150, "output_dir": str(tmp_path / "run")},
    )
    nb = nbformat.read(out, as_version=4)
    assert not _errors(nb)
    stdout, shown = _stdout(nb), _displayed(nb) + _html(nb)
    assert "nothing is trained" in stdout and "Training cnn_" not in stdout and "SAMPLE" not in stdout
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
    assert "5-NN accuracy" in shown and "seed-to-seed spread (pp)" in _html(nb)
    assert len(list((tmp_path / "run" / "figures").glob("*.png"))) == 7


def test_replicate_exports_the_winner_for_notebook_05(quick_series, tmp_path):
    """``--winner-only --export``: the ladder's winner retrained, its artifacts written and loadable."""
    from fmnist_utils import data
    from fmnist_utils.lab import published
    from tools import replicate

    run = quick_series / "beyond"
    assert (
        replicate.main(
            [str(run), "--seeds", "0", "--datasets", "mnist", "--winner-only", "--feature-points", "40"]
            + ["--work-dir", str(tmp_path / "work"), "--export", str(tmp_path / "published")]
        )
        == 0
    )
    row = json.loads((run / "summary.json").read_text())["datasets"]["mnist"]
    [winner] = [s for s in row["ablation"] if s["chosen"]]
    _, (_, y_test) = data.load_dataset("mnist", source="sample")
    shipped = published.load("mnist", y_test, tmp_path / "published")
    assert shipped.manifest["members"] == [winner["step"]] and shipped.manifest["test_time_flips"] is False
    assert shipped.manifest["ladder_test_accuracy"] == winner["test_accuracy"]
    assert shipped.features.shape[0] == len(shipped.feature_indices) == 40
    assert len(shipped.histories[winner["step"]]) == winner["epochs"]
    result = json.loads((tmp_path / "work" / "replicate" / "replicate.json").read_text())["datasets"]["mnist"]
    assert result["test_accuracy_by_seed"]["0"] == pytest.approx(shipped.manifest["test_accuracy"])
    with pytest.raises(replicate.ReplicateError, match="give one seed"):
        replicate.replicate(run, [0, 1], export_dir=tmp_path / "x")


def test_markdown_cells_stay_short():
    """At most about 250 words a markdown cell (tables included), in every notebook."""
    for path in SOURCE_NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        long = [(i, len(c.source.split())) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"]
        assert [(i, n) for i, n in long if n > 250] == [], path.name


def test_replicate_retrains_the_reported_predictor_with_another_seed(quick_series, tmp_path, capsys):
    """Notebook 05's tested predictor (winner or ensemble) retrained with seed 1, from its summary.json alone."""
    import keras
    import numpy as np

    from fmnist_utils import data
    from fmnist_utils.lab import ablation
    from tools import replicate

    run = tmp_path / "beyond"
    run.mkdir()
    summary = json.loads((quick_series / "beyond" / "summary.json").read_text())
    reported = summary["datasets"]["mnist"]
    # as if validation had chosen the winner and its seed-2 twin (a "seeds" step keeps its offset: 1 + 2 = 3)
    reported["ensemble"]["members"] = [reported["ensemble"]["members"][0], reported["ablation"][-1]["step"]]
    (run / "summary.json").write_text(json.dumps(summary))
    assert replicate.main([str(run), "--seeds", "1", "--datasets", "mnist"]) == 0
    assert "[SAMPLE DATA" in capsys.readouterr().out
    result = json.loads((run / "replicate" / "replicate.json").read_text())["datasets"]["mnist"]
    members = reported["ensemble"]["members"]
    assert (
        result["members"] == members
        and result["reported_test_accuracy"] == reported["test_accuracy_best_recipe"]
    )
    _, (x_test, y_test) = data.load_dataset("mnist", source="sample")
    probabilities = []
    for member in members:  # each member retrained with the new seed, same recipe and epochs
        folder = run / "replicate" / "seed1" / "mnist" / f"step{member}"
        metrics = json.loads((folder / "metrics.json").read_text())
        original = next(step for step in reported["ablation"] if step["step"] == member)
        assert metrics["seed"] == 1 + original["seed"] and metrics["epochs_completed"] == original["epochs"]
        assert ablation.Recipe(**metrics["recipe"]) == ablation.Recipe.parse(original["recipe"])
        assert "test_accuracy" not in metrics
        model = keras.saving.load_model(folder / "model.keras")
        probabilities.append(model.predict(x_test[..., None].astype("float32"), verbose=0))
    assert result["test_accuracy_by_seed"]["1"] == pytest.approx(
        np.mean(np.mean(probabilities, 0).argmax(1) == y_test)
    )
    assert result["min_over_all_seeds"] <= result["mean_over_all_seeds"] and result["is_sample"] is True
    # a later run for another dataset keeps this one; an entry whose predictor is no longer reported is dropped
    earlier = json.loads((run / "replicate" / "replicate.json").read_text())
    earlier["datasets"]["fashion_mnist"] = {**result, "members": [99]}  # stale: not the reported predictor
    (run / "replicate" / "replicate.json").write_text(json.dumps(earlier))
    replicate.replicate(run, [1], datasets=["mnist"])  # every trial reused
    assert set(json.loads((run / "replicate" / "replicate.json").read_text())["datasets"]) == {"mnist"}
    reported_fashion = summary["datasets"]["fashion_mnist"]
    earlier["datasets"]["fashion_mnist"] = {
        "members": reported_fashion["ensemble"]["members"],
        "reported_test_accuracy": reported_fashion["test_accuracy_best_recipe"],
    }
    (run / "replicate" / "replicate.json").write_text(json.dumps(earlier))
    replicate.replicate(run, [1], datasets=["mnist"])
    kept = json.loads((run / "replicate" / "replicate.json").read_text())["datasets"]
    assert (
        kept["fashion_mnist"] == earlier["datasets"]["fashion_mnist"] and kept["mnist"]["members"] == members
    )
    assert replicate.main([str(tmp_path / "nothing"), "--seeds", "1"]) == 1
    assert "No summary.json in" in capsys.readouterr().err
    with pytest.raises(replicate.ReplicateError, match="Dataset\\(s\\) cifar10 not in"):
        replicate.replicate(run, [1], datasets=["cifar10"])


def test_notebook_06_draws_the_committed_measurements(tmp_path):
    """The default, source="published": the committed throughput and recipe runs as tables and figures, in a
    minute, timing and training nothing."""
    from fmnist_utils.lab import speed

    nb = _executed("06_train_fast.ipynb", tmp_path, {"output_dir": str(tmp_path / "run")})
    assert not _errors(nb)
    shown = _displayed(nb) + _html(nb)
    for name, recipe in speed.load_recipes().items():
        assert name in shown and f"{recipe['test_accuracy_mean']:.4f}" in shown, f"recipe {name} is shown"
    assert f"{speed.seed_protocol()['test_accuracy_mean']:.4f}" in shown
    assert "nothing timed here" in _stdout(nb) and "SAMPLE" not in _stdout(nb)
    assert sorted(p.name for p in (tmp_path / "run" / "figures").glob("*.png")) == [
        "accuracy_against_minutes.png",
        "epoch_seconds.png",
        "layer_flops.png",
        "layer_times.png",
        "pass_timeline.png",
        "recipe_epochs.png",
        "throughput_by_batch.png",
        "validation_curves.png",
    ]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["figures"], "nothing was measured"


def test_notebook_06_times_this_machine_and_trains_the_recipe_on_the_sample(tmp_path):
    """source="measure": the benchmark runs here (its JSON saved) and the page's plain-Keras recipe trains,
    loudly marked as sample data."""
    quick = {"images": 256, "repeats": 1, "batch_sizes": [64, 128], "recipe_epochs": 1}
    nb = _executed(
        "06_train_fast.ipynb",
        tmp_path,
        {"source": "measure", "data_source": "sample", **quick, "output_dir": str(tmp_path / "run")},
    )
    assert not _errors(nb)
    stdout = _stdout(nb)
    assert "*** SAMPLE DATA" in stdout and "1 epochs (" in stdout and "test " in stdout
    mine = json.loads((tmp_path / "run" / "throughput.json").read_text())
    assert mine["is_sample"] and [row["batch_size"] for row in mine["batch_sizes"]] == [64, 128]
    assert len(mine["throughput"]) == 5 and mine["parity"] == []


@pytest.mark.parametrize(
    "parameters,message",
    [
        ({"source": "train"}, "Parameter 'source' must be one of 'published', 'measure'; got 'train'"),
        ({"images": 10}, "Parameter 'images' must be an integer >= 256; got 10"),
        ({"batch_sizes": [256, 0]}, "Parameter 'batch_sizes' must be an integer >= 1; got 0"),
        ({"batch_sizes": 256}, "Parameter 'batch_sizes' must be a non-empty list of integers >= 1; got 256"),
        ({"recipe_epochs": -1}, "Parameter 'recipe_epochs' must be an integer >= 0 or None; got -1"),
        ({"results_dir": "/nonexistent/results"}, "Parameter 'results_dir': no benchmark/throughput.json in"),
    ],
)
def test_notebook_06_rejects_bad_parameters(tmp_path, parameters, message):
    _assert_rejected("06_train_fast.ipynb", tmp_path, parameters, message)
