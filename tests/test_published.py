"""Notebook 05's shipped artifacts: written with checksums, read back only when intact and for the same test set."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fmnist_utils.lab import published


@pytest.fixture
def artifacts(tmp_path):
    """Synthetic artifacts for 50 test images of 3 classes, exported into ``tmp_path/toy``."""
    rng = np.random.default_rng(0)
    y_test = rng.integers(0, 3, 50)
    probabilities = rng.dirichlet(np.ones(3), 50)
    history = pd.DataFrame({"epoch": [0, 1], "accuracy": [0.5, 0.7], "val_accuracy": [0.4, 0.6]})
    path = published.export(
        tmp_path / "toy",
        probabilities=probabilities,
        features=rng.normal(size=(10, 4)),
        feature_indices=np.arange(0, 50, 5),
        histories={7: history},
        y_test=y_test,
        info={"predictor": "toy", "members": [7]},
    )
    return path, y_test, probabilities


def test_export_then_load_gives_back_what_was_written(artifacts, tmp_path):
    path, y_test, probabilities = artifacts
    manifest = json.loads(path.read_text())
    assert manifest["predictor"] == "toy" and manifest["history_steps"] == [7]
    assert manifest["test_accuracy"] == pytest.approx(np.mean(probabilities.argmax(1) == y_test))
    assert sorted(manifest["files"]) == [
        "feature_indices.npy",
        "features.npy",
        "history_step7.csv",
        "test_probabilities.npy",
    ]
    loaded = published.load("toy", y_test, tmp_path)
    np.testing.assert_allclose(loaded.probabilities, probabilities, atol=1e-3)  # stored as float16
    assert loaded.features.shape == (10, 4) and loaded.feature_indices.tolist() == list(range(0, 50, 5))
    assert loaded.histories[7]["val_accuracy"].tolist() == [0.4, 0.6]


def test_an_altered_or_missing_file_is_refused(artifacts, tmp_path):
    path, y_test, _ = artifacts
    features = path.parent / "features.npy"
    features.write_bytes(features.read_bytes()[:-2] + b"\x00\x01")
    with pytest.raises(published.PublishedArtifactError, match="features.npy does not match its SHA-256"):
        published.load("toy", y_test, tmp_path)
    features.unlink()
    with pytest.raises(published.PublishedArtifactError, match="features.npy is missing"):
        published.load("toy", y_test, tmp_path)
    with pytest.raises(published.PublishedArtifactError, match="No published artifacts for mnist"):
        published.load("mnist", y_test, tmp_path)


def test_other_test_labels_are_refused(artifacts, tmp_path):
    _, y_test, _ = artifacts
    with pytest.raises(published.PublishedArtifactError, match="not those of the published toy predictions"):
        published.load("toy", y_test[::-1], tmp_path)  # the same labels in another order


def test_the_committed_artifacts_are_intact_and_match_the_full_test_sets():
    """The files notebook 05 ships: checksums hold, and they belong to the verified full test sets."""
    from fmnist_utils import data

    summary = json.loads((published.default_dir().parent / "summary.json").read_text())
    for name in ("fashion_mnist", "mnist"):
        (_, _), (_, y_test) = data.load_dataset(name)
        shipped = published.load(name, y_test)
        [winner] = [s for s in summary["datasets"][name]["ablation"] if s["chosen"]]
        assert shipped.manifest["members"] == [winner["step"]] and shipped.manifest["seed"] == summary["seed"]
        assert shipped.manifest["member_recipes"] == {str(winner["step"]): winner["recipe"]}
        assert shipped.probabilities.shape == (len(y_test), 10)
        assert np.mean(shipped.probabilities.argmax(1) == y_test) == pytest.approx(
            shipped.manifest["test_accuracy"], abs=2e-4
        )
        assert len(shipped.histories[winner["step"]]) == winner["epochs"]
