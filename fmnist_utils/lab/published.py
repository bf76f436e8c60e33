"""The small, checksummed artifacts that let notebook 05's sections 4-5 run in minutes, without the ladder.

For each dataset, ``results/beyond/published/<dataset>/`` holds what a retraining of the tested predictor
(``python -m tools.replicate ... --export``) left behind::

    manifest.json             what was trained, where, how accurate, and the SHA-256 of every file below
    test_probabilities.npy    the predictor's class probabilities for the 10,000 test images (float16)
    features.npy              the winner's penultimate features for some test images (float16)
    feature_indices.npy       which test images those are (int32)
    history_step<K>.csv       each member's training history, one row per epoch

:func:`load` verifies every checksum and that the caller's test labels are the ones the probabilities
belong to (same images, same order), so a changed file or another copy of the data fails loudly.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fmnist_utils.files import atomic_path, write_json
from fmnist_utils.params import project_root

MANIFEST = "manifest.json"


class PublishedArtifactError(ValueError):
    """A published artifact is missing, altered, or belongs to other test data."""


@dataclass
class Published:
    """One dataset's published artifacts, verified."""

    manifest: dict[str, Any]
    probabilities: np.ndarray  # (N_test, classes), float32
    features: np.ndarray  # (N_features, D), float32
    feature_indices: np.ndarray  # (N_features,), indices into the test set
    histories: dict[int, Any]  # step -> pandas DataFrame, one row per epoch


def default_dir() -> Path:
    """``results/beyond/published`` of the project (where the committed artifacts live)."""
    root = project_root()
    if root is None:
        raise PublishedArtifactError(
            "The published artifacts live in the project's results/beyond/published: "
            "run this from a checkout of the project, or pass the folder."
        )
    return root / "results" / "beyond" / "published"


def labels_sha256(y: np.ndarray) -> str:
    """The SHA-256 of labels as int64: the fingerprint of a test set's order and content."""
    return hashlib.sha256(np.ascontiguousarray(np.asarray(y, dtype=np.int64)).tobytes()).hexdigest()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _save_npy(path: Path, array: np.ndarray) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)
    return path


def export(
    folder: str | os.PathLike,
    *,
    probabilities: np.ndarray,
    features: np.ndarray,
    feature_indices: np.ndarray,
    histories: dict[int, Any],
    y_test: np.ndarray,
    info: dict[str, Any],
) -> Path:
    """Write one dataset's artifacts into ``folder`` and a manifest (``info`` plus checksums); returns it."""
    folder = Path(folder)
    files = [
        _save_npy(folder / "test_probabilities.npy", np.asarray(probabilities, dtype=np.float16)),
        _save_npy(folder / "features.npy", np.asarray(features, dtype=np.float16)),
        _save_npy(folder / "feature_indices.npy", np.asarray(feature_indices, dtype=np.int32)),
    ]
    for step, history in sorted(histories.items()):
        path = folder / f"history_step{int(step)}.csv"
        with atomic_path(path) as tmp:
            history.to_csv(tmp, index=False)
        files.append(path)
    accuracy = float(np.mean(np.asarray(probabilities).argmax(1) == np.asarray(y_test)))
    manifest = {
        **info,
        "test_accuracy": accuracy,
        "test_labels_sha256": labels_sha256(y_test),
        "history_steps": sorted(int(s) for s in histories),
        "files": {p.name: _sha256(p) for p in files},
    }
    return write_json(folder / MANIFEST, manifest)


def load(dataset: str, y_test: np.ndarray, folder: str | os.PathLike | None = None) -> Published:
    """The verified artifacts of ``dataset`` for the test labels ``y_test`` (module docstring)."""
    folder = Path(folder) if folder is not None else default_dir()
    path = folder / dataset / MANIFEST
    if not path.is_file():
        raise PublishedArtifactError(f"No published artifacts for {dataset}: {path} is missing.")
    manifest = json.loads(path.read_text())
    for name, expected in manifest["files"].items():
        file = path.parent / name
        if not file.is_file():
            raise PublishedArtifactError(f"{file} is missing (listed in {path}).")
        if _sha256(file) != expected:
            raise PublishedArtifactError(f"{file} does not match its SHA-256 in {path}: it was altered.")
    if labels_sha256(y_test) != manifest["test_labels_sha256"]:
        raise PublishedArtifactError(
            f"The test labels given are not those of the published {dataset} predictions (other images or "
            "another order): load the full, verified test set (data_source='auto'), not the sample."
        )
    return Published(
        manifest=manifest,
        probabilities=np.load(path.parent / "test_probabilities.npy").astype(np.float32),
        features=np.load(path.parent / "features.npy").astype(np.float32),
        feature_indices=np.load(path.parent / "feature_indices.npy").astype(np.int64),
        histories={s: pd.read_csv(path.parent / f"history_step{s}.csv") for s in manifest["history_steps"]},
    )
