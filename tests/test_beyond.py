"""Notebook 05's ablation ladder as ``run_notebooks --quick --beyond`` trains it, on the sample, offline (in a
file of its own so that it runs beside the series of test_notebooks.py), and what publish and replicate make of
it."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import keras
import nbformat
import numpy as np
import pytest
from notebook_outputs import NOTEBOOKS, SOURCE_NOTEBOOKS, digest, displayed, errors, offline, printed, stderr

from fmnist_utils import data, run_notebooks
from fmnist_utils.lab import ablation, published
from tools import replicate
from tools.publish import PublishError, code_digest, publish_beyond, recorded_digest

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]


@pytest.fixture(scope="module")
def beyond_series(tmp_path_factory):
    """A series folder holding only what ``--quick --beyond --data-source sample`` adds: 05 and beyond/."""
    before = digest(SOURCE_NOTEBOOKS)
    out = tmp_path_factory.mktemp("beyond_series")
    steps = run_notebooks.plan(
        out, data_source="sample", seed=0, notebooks_dir=NOTEBOOKS, beyond=True, **run_notebooks.QUICK
    )
    [step] = [s for s in steps if s.notebook == "05_beyond_the_seed.ipynb"]
    with offline(tmp_path_factory.mktemp("empty_home")):
        run_notebooks.run_step(step, NOTEBOOKS, out, verbose=False, quiet=True)
    assert digest(SOURCE_NOTEBOOKS) == before, "running 05 must not modify the committed notebooks"
    return out


def test_beyond_runs_without_errors_or_stderr(beyond_series):
    nb = nbformat.read(beyond_series / "05_beyond_the_seed.ipynb", as_version=4)
    assert not errors(nb)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    assert not stderr(nb), stderr(nb)


def test_beyond_the_seed_ladder_table_test_once_and_embeddings(beyond_series):
    """05 on the sample: each dataset's ladder follows its definitions, the winner is tested once, everything
    is flagged as sample. Which recipes win is left to the trials: every check holds whatever their accuracies
    (the stand-in tests of test_ablation pin the choices for known accuracies)."""
    beyond = beyond_series / "beyond"
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
        tested = {folder: metrics for folder, metrics in records.items() if any("test" in k for k in metrics)}
        assert list(tested) == [f"step{winner['step']}"], "only the winner's metrics carry a test result"
        [record] = tested.values()
        measured = row["test_accuracy_best_recipe"]
        assert "test_accuracy" not in record, "the predictor's accuracy is not recorded as the trial's own"
        assert record["predictor_test_accuracy"] == pytest.approx(measured) and 0.2 < measured <= 1.0
        assert record["predictor"] == {
            "test_time_flips": flips["used"],
            "ensemble_members": ensemble["members"],
        }
        assert record["test_size"] == 500 and len(record["test_data_sha256"]) == 64, "with its test set"
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
    nb = nbformat.read(beyond_series / "05_beyond_the_seed.ipynb", as_version=4)
    assert "SAMPLE DATA" in printed(nb) and "\r" not in printed(nb)
    assert "5-NN accuracy" in displayed(nb) and "learned features" in displayed(nb)


def test_publish_beyond_refuses_sample_runs_and_copies_full_ones(beyond_series, tmp_path):
    with pytest.raises(PublishError, match="trained on the sample or a subset"):
        publish_beyond(beyond_series, repo=tmp_path / "refused")
    assert not (tmp_path / "refused").exists()
    with pytest.raises(PublishError, match="no finished 05_beyond_the_seed run"):
        publish_beyond(tmp_path, repo=tmp_path / "repo")
    run = tmp_path / "run"  # the copy mechanics, on a quick run relabelled as full data (never published)
    shutil.copytree(beyond_series, run)
    summary = json.loads((run / "beyond" / "summary.json").read_text())
    summary["train_limit"] = None
    for row in summary["datasets"].values():
        row["is_sample"] = False
    (run / "beyond" / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "repo").mkdir()
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
    copied = nbformat.read(tmp_path / "repo" / "notebooks" / "05_beyond_the_seed.ipynb", as_version=4)
    assert not [c for c in copied.cells if "injected-parameters" in c.metadata.get("tags", [])]
    parameters = next(c.source for c in copied.cells if "parameters" in c.metadata.get("tags", []))
    assert (
        "\nepochs = 1  #" in parameters and "\ntrain_limit = 2000  #" in parameters
    )  # what the outputs came from
    assert "\noutput_dir = None " in parameters and recorded_digest(copied) == code_digest(copied)


def test_replicate_exports_the_winner_for_notebook_05(beyond_series, tmp_path):
    """``--winner-only --export``: the ladder's winner retrained, its artifacts written and loadable."""
    run = beyond_series / "beyond"
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


def test_replicate_retrains_the_reported_predictor_with_another_seed(beyond_series, tmp_path, capsys):
    """Notebook 05's tested predictor (winner or ensemble) retrained with seed 1, from its summary.json alone."""
    run = tmp_path / "beyond"
    run.mkdir()
    summary = json.loads((beyond_series / "beyond" / "summary.json").read_text())
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
