"""The notebook series, executed headlessly by the batch runner on the sample, offline, and what it writes."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from notebook_outputs import (
    NOTEBOOKS,
    SOURCE_NOTEBOOKS,
    digest,
    displayed,
    errors,
    html,
    offline,
    printed,
    stderr,
)

from fmnist_utils import data, run_notebooks
from fmnist_utils.params import project_root
from tools.publish import PublishError, code_digest, publish, publish_metrics, recorded_digest

pytestmark = pytest.mark.notebooks


@pytest.fixture(scope="module")
def quick_series(tmp_path_factory):
    """The batch runner's quick preset on the bundled sample, into a temporary folder, on a machine with no
    data anywhere (no FMNIST_DATA_DIR, an empty home, downloads failing): what the README promises. (05's
    ladder, which ``--beyond`` adds, runs in test_beyond.py, beside this one.)"""
    before = digest(SOURCE_NOTEBOOKS)
    out = tmp_path_factory.mktemp("series")
    with offline(tmp_path_factory.mktemp("empty_home")):
        with pytest.raises(data.DataNotFoundError):
            data.load_dataset("fashion_mnist", verbose=False)
        console = io.StringIO()
        with contextlib.redirect_stdout(console):
            rc = run_notebooks.main(["--quick", "--data-source", "sample", "--output-dir", str(out)])
    (out / "console.txt").write_text(console.getvalue())
    assert rc == 0, console.getvalue()
    assert digest(SOURCE_NOTEBOOKS) == before, "running the series must not modify the committed notebooks"
    return out


def _executed(run) -> list[Path]:
    """The notebooks a series run executed: the course's, then the appendices'."""
    return sorted(run.glob("*.ipynb")) + sorted((run / "appendix").glob("*.ipynb"))


def test_series_runs_every_notebook_without_errors(quick_series):
    executed = _executed(quick_series)
    assert [p.relative_to(quick_series).as_posix() for p in executed] == [
        "01_data_exploration.ipynb",
        "02_model_build.ipynb",
        "03_training_fashion_mnist.ipynb",
        "03_training_mnist.ipynb",
        "04_compare_mnist_fashion.ipynb",
        "06_train_fast.ipynb",
        "07_your_own_images.ipynb",
        *run_notebooks.APPENDICES,
    ]
    for path in executed:
        nb = nbformat.read(path, as_version=4)
        assert not errors(nb), f"{path.name}: {errors(nb)}"
        if path.parent == quick_series:
            assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    first_release = printed(nbformat.read(quick_series / run_notebooks.APPENDICES[0], as_version=4))
    assert "skipped on the sample" in first_release, "A1 needs the full test labels, which the sample lacks"


def test_the_runner_shows_progress_not_kernel_noise(quick_series):
    """One line per notebook and per epoch, a summary; TensorFlow's start-up lines and every warning a kernel
    writes go to the run's logs/, never into the console or an executed notebook."""
    console = (quick_series / "console.txt").read_text().splitlines()
    executed = sorted(p.stem for p in _executed(quick_series))
    assert len(console) < 60, "\n".join(console)
    assert [line.split("] ", 1)[1] for line in console if line.startswith("[")] == run_notebooks_order()
    epochs = [line for line in console if line.lstrip().startswith("epoch ")]
    assert len(epochs) == 2 and all(
        " 1/1 " in line and "val_accuracy" in line and "left" in line for line in epochs
    )
    assert console[-1].startswith(f"All {len(executed)} notebooks ran in ")
    noise = ("Executing", "cudart", "E0000", "absl", "WARNING", "Kernel")
    assert not [line for line in console if any(word in line for word in noise)]
    assert sorted(p.stem for p in (quick_series / "logs").glob("*.log")) == executed
    for path in _executed(quick_series):
        nb = nbformat.read(path, as_version=4)
        assert not stderr(nb), f"{path.name} printed to stderr: {stderr(nb)}"


def run_notebooks_order() -> list[str]:
    """The notebooks' names in the order the runner plans them (without ``--beyond``)."""
    steps = run_notebooks.plan(
        project_root() / "runs-never-written",
        data_source="sample",
        epochs=1,
        train_limit=None,
        seed=0,
        embedding_points=None,
        notebooks_dir=NOTEBOOKS,
    )
    return [Path(s.output_name).stem for s in steps]


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
            "reliability",
            "split_prediction",
            "filters",
            "feature_maps",
            "gradcam",
        )
    }
    text = printed(nbformat.read(quick_series / f"03_training_{name}.ipynb", as_version=4))
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
    summary = re.sub(r"\x1b\[[0-9;]*m", "", printed(model_build)) + displayed(
        model_build
    )  # either, by frontend
    assert "Total params: 1,879,098" in summary  # model.summary() of the notebook's plain-Keras network
    comparison = displayed(nbformat.read(quick_series / "04_compare_mnist_fashion.ipynb", as_version=4))
    assert "SAMPLE DATA" in comparison and "errors vs MNIST" in comparison


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
    results = publish(run, repo=repo)
    assert sorted(p.name for p in (repo / "notebooks").iterdir()) == [
        "01_data_exploration.ipynb",
        "02_model_build.ipynb",
        "03_training.ipynb",
        "04_compare_mnist_fashion.ipynb",
        "06_train_fast.ipynb",
        "07_your_own_images.ipynb",
        "appendix",
    ]
    assert sorted(f"appendix/{p.name}" for p in (repo / "notebooks" / "appendix").iterdir()) == sorted(
        run_notebooks.APPENDICES
    )
    published = nbformat.read(repo / "notebooks" / "03_training.ipynb", as_version=4)
    assert not [c for c in published.cells if "injected-parameters" in c.metadata.get("tags", [])]
    [parameters] = [c.source for c in published.cells if "parameters" in c.metadata.get("tags", [])]
    assert "\nepochs = 1  # seed: 30" in parameters and "\ntrain_limit = 2000  #" in parameters, (
        "its one parameters cell holds the values that ran, each line's comment kept"
    )
    assert "\noutput_dir = None  #" in parameters and '\nprogress = "auto"  #' in parameters, (
        "not where it wrote"
    )
    assert recorded_digest(published) == code_digest(published) and not errors(published)
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

    # another seed of one dataset: its metrics join the table; notebooks and figures stay as published
    extra = tmp_path / "seed1"
    shutil.copytree(run / "fashion_mnist", extra / "fashion_mnist")
    path = extra / "fashion_mnist" / "metrics.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {"seed": 1, "test_accuracy": 0.5}))
    before = digest((repo / "notebooks").rglob("*.ipynb"))
    publish_metrics(extra, repo=repo)
    assert digest((repo / "notebooks").rglob("*.ipynb")) == before
    first = json.loads((results / "fashion_mnist-seed0.json").read_text())["test_accuracy"]
    summary = (results / "summary.md").read_text()
    assert "| Fashion-MNIST | 2 |" in summary and "| MNIST | 1 |" in summary and "1: 0.5000" in summary
    assert f"{(first + 0.5) / 2:.4f} ± " in summary
    with pytest.raises(PublishError, match="holds no finished training run"):
        publish_metrics(tmp_path / "empty", repo=repo)


def test_your_own_images_compares_three_starts_on_the_demo_folder(quick_series):
    """07 on scikit-learn's digit scans written as PNG folders, starting from the two models 03 just saved."""
    results = pd.read_csv(quick_series / "your_own_images" / "results.csv", dtype={"images per class": str})
    trained = ["MNIST convolutions", "Fashion-MNIST convolutions"]
    small = ["from scratch", "frozen random convolutions", *trained]  # the control runs at the small sizes
    assert results["start"].tolist() == small * 2 + ["from scratch", *trained]
    assert results["images per class"].tolist() == ["5"] * 4 + ["20"] * 4 + ["all"] * 3
    assert results["training images"].tolist() == [50] * 4 + [200] * 4 + [1257] * 3
    assert results["test accuracy"].between(0, 1).all() and (results["epochs run"] == 1).all()
    figures = {p.name for p in (quick_series / "your_own_images" / "figures").iterdir()}
    assert figures == {
        "sample_grid.png",
        "curves_scratch.png",
        "confusion_scratch.png",
        "accuracy_per_images.png",
    }
    assert len(list((quick_series / "your_own_images" / "digits").rglob("*.png"))) == 1797
    nb = nbformat.read(quick_series / "07_your_own_images.ipynb", as_version=4)
    assert "Found 1797 files belonging to 10 classes" in printed(nb)
    assert displayed(nb).count("the SAMPLE") == 2, "the table of starts says both models saw only the sample"


def test_notebook_06_draws_the_committed_measurements(quick_series):
    """The default, source="published", as the series runs it (one timed step a network): training steps
    timed on this machine, the committed recipe runs as tables and figures, no benchmark and no recipe trained."""
    from fmnist_utils.lab import speed

    nb = nbformat.read(quick_series / "06_train_fast.ipynb", as_version=4)
    assert not errors(nb)
    shown = displayed(nb) + html(nb)
    for name, recipe in speed.load_recipes().items():
        assert name in shown and f"{recipe['test_accuracy_mean']:.4f}" in shown, f"recipe {name} is shown"
    assert f"{speed.seed_protocol()['test_accuracy_mean']:.4f}" in shown
    assert "the full benchmark did not run" in printed(nb) and "SAMPLE" not in printed(nb)
    for timed in ("measured: images per second", "bfloat16 speed-up", "VGG-lite, pool first"):
        assert timed in shown, f"the page times {timed!r} here"
    assert "The input pipeline alone delivers" in printed(nb)
    injected = next(c.source for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert "timed_steps = 1" in injected, "--quick times one step a network"
    assert sorted(p.name for p in (quick_series / "train_fast" / "figures").glob("*.png")) == [
        "accuracy_against_minutes.png",
        "layer_flops.png",
        "layer_times.png",
    ]
    assert sorted(p.name for p in (quick_series / "train_fast").iterdir()) == ["figures"], (
        "nothing was measured"
    )
