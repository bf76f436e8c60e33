"""The notebook series, executed headlessly by the batch runner on the sample, offline, and what it writes."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from notebook_outputs import NOTEBOOKS, SOURCE_NOTEBOOKS, digest, displayed, errors, printed

from fmnist_utils import data, run_notebooks
from fmnist_utils.lab import ablation
from fmnist_utils.params import project_root
from tools.publish import PublishError, publish, publish_beyond, publish_metrics

pytestmark = pytest.mark.notebooks


#: A machine with no copy of either dataset and no network: every download fails at once.
OFFLINE = {
    "FMNIST_DATA_DIR": None,
    "FMNIST_CACHE_DIR": None,
    "XDG_CACHE_HOME": None,
    "KERAS_HOME": None,
    "FMNIST_MIRROR_URL": "http://127.0.0.1:9/",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
}


@pytest.fixture(scope="module")
def quick_series(tmp_path_factory):
    """The batch runner's quick preset on the bundled sample, into a temporary folder, on a machine with no
    data anywhere (no FMNIST_DATA_DIR, an empty home, downloads failing): what the README promises."""
    before = digest(SOURCE_NOTEBOOKS)
    out = tmp_path_factory.mktemp("series")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HOME", str(tmp_path_factory.mktemp("empty_home")))
        for name, value in OFFLINE.items():
            env.delenv(name, raising=False) if value is None else env.setenv(name, value)
        with pytest.raises(data.DataNotFoundError):
            data.load_dataset("fashion_mnist", verbose=False)
        console = io.StringIO()
        with contextlib.redirect_stdout(console):
            rc = run_notebooks.main(
                ["--quick", "--beyond", "--data-source", "sample", "--output-dir", str(out)]
            )
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
        "05_beyond_the_seed.ipynb",
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
    assert [line.split("] ", 1)[1] for line in console if line.startswith("[")] == [
        s for s in run_notebooks_order() if s in executed
    ]
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
        stderr = [
            o.text
            for c in nb.cells
            if c.cell_type == "code"
            for o in c.get("outputs", [])
            if o.output_type == "stream" and o.name == "stderr"
        ]
        assert not stderr, f"{path.name} printed to stderr: {stderr}"


def run_notebooks_order() -> list[str]:
    """The executed notebooks' names in the order the runner plans them."""
    steps = run_notebooks.plan(
        project_root() / "runs-never-written",
        data_source="sample",
        epochs=1,
        train_limit=None,
        seed=0,
        embedding_points=None,
        notebooks_dir=NOTEBOOKS,
        beyond=True,
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
        "augmentation.png",
        "confusion_best_fashion_mnist.png",
        "confusion_best_mnist.png",
        "reliability_fashion_mnist.png",
        "reliability_mnist.png",
        "misclassified_upper_body.png",
        "embeddings_raw_vs_learned.png",
        "schedules.png",
        "winner_curves.png",
    }
    nb = nbformat.read(quick_series / "05_beyond_the_seed.ipynb", as_version=4)
    assert "SAMPLE DATA" in printed(nb) and "\r" not in printed(nb)
    assert "5-NN accuracy" in displayed(nb) and "learned features" in displayed(nb)


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
        "06_train_fast.ipynb",
        "07_your_own_images.ipynb",
        "appendix",
    ]
    assert sorted(f"appendix/{p.name}" for p in (repo / "notebooks" / "appendix").iterdir()) == sorted(
        run_notebooks.APPENDICES
    )
    published = nbformat.read(repo / "notebooks" / "03_training.ipynb", as_version=4)
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in published.cells)
    assert "parameters" in published.cells[1].metadata.get("tags", []) and not errors(published)
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
    before = digest((repo / "notebooks").iterdir())
    publish_metrics(extra, repo=repo)
    assert digest((repo / "notebooks").iterdir()) == before
    first = json.loads((results / "fashion_mnist-seed0.json").read_text())["test_accuracy"]
    summary = (results / "summary.md").read_text()
    assert "| Fashion-MNIST | 2 |" in summary and "| MNIST | 1 |" in summary and "1: 0.5000" in summary
    assert f"{(first + 0.5) / 2:.4f} ± " in summary and summary in (repo / "README.md").read_text()
    with pytest.raises(PublishError, match="holds no finished training run"):
        publish_metrics(tmp_path / "empty", repo=repo)


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
    assert len(list((tmp_path / "repo" / "assets").glob("beyond_*.png"))) == 10  # every figure of 05
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


def test_your_own_images_compares_three_starts_on_the_demo_folder(quick_series):
    """07 on scikit-learn's digit scans written as PNG folders, starting from the two models 03 just saved."""
    results = pd.read_csv(quick_series / "your_own_images" / "results.csv", dtype={"images per class": str})
    starts = ["from scratch", "MNIST convolutions", "Fashion-MNIST convolutions"]
    assert results["start"].tolist() == starts * 3
    assert results["images per class"].tolist() == ["5"] * 3 + ["20"] * 3 + ["all"] * 3
    assert results["training images"].tolist() == [50] * 3 + [200] * 3 + [1257] * 3
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
