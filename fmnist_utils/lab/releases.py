"""Fashion-MNIST's release history: the first release's labels against today's.

Fashion-MNIST was first published on 2017-08-26 (commit ``9490065`` of ``zalandoresearch/fashion-mnist``)
and replaced on 2017-08-31 (commit ``658ec8c``, "fixes #44", duplicates removed) by the release everyone
uses today. Only the first release's two *label* files survive here, committed under
``results/seed/fashion-mnist-2017-08-26-labels/`` with their provenance; its images are not available.
The seed notebook (2017) read a CSV copy of Fashion-MNIST, and CSV copies of that time are reported to
follow the first release's row order: comparing the two releases' labels shows how different its data was.

This module also reads the seed notebook's own per-epoch training logs (``results/seed/seed_2017_log_*.csv``,
copied from the notebook's printed output), so a reproduction can be drawn against them epoch by epoch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fmnist_utils.data import canonical_name, class_names, read_idx
from fmnist_utils.params import project_root

#: Where the committed copy lives, relative to the repository root.
FIRST_RELEASE_DIR = Path("results") / "seed" / "fashion-mnist-2017-08-26-labels"

#: SHA-256 of the *decompressed* label payloads of the first release (2017-08-26), by file name.
FIRST_RELEASE_SHA256 = {
    "train-labels-idx1-ubyte.gz": "c7673bb30764062aa9ddeaf6184d7043075ded6a31aee7d16f38402434ad395d",
    "t10k-labels-idx1-ubyte.gz": "0106d6dfb86a77b9299271c292262daad9001d5a44d251a3880227436b8ce3b1",
}

#: Folder (relative to the repository root) and file pattern of the seed's per-epoch logs.
SEED_LOG_DIR = Path("results") / "seed"
SEED_LOG_NAME = "seed_2017_log_{dataset}.csv"

_HEAD = 5  # how many labels at each end a comparison reports


def _in_repository(relative: Path, what: str) -> Path:
    """``relative`` resolved against the repository root (raises when the package is not run from a checkout)."""
    root = project_root()
    if root is None:
        raise FileNotFoundError(
            f"{what} is kept in the project's repository ({relative}), and this fmnist_utils is not running "
            "from a checkout; pass the folder explicitly."
        )
    return root / relative


def first_release_folder() -> Path:
    """The committed folder holding the first release's two label files."""
    return _in_repository(FIRST_RELEASE_DIR, "The first release's label folder")


def first_release_labels(folder: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The first release's ``(train_labels, test_labels)`` (60,000 and 10,000), each SHA-256 verified."""
    folder = Path(folder) if folder is not None else first_release_folder()
    train = read_idx(
        folder / "train-labels-idx1-ubyte.gz", FIRST_RELEASE_SHA256["train-labels-idx1-ubyte.gz"]
    )
    test = read_idx(folder / "t10k-labels-idx1-ubyte.gz", FIRST_RELEASE_SHA256["t10k-labels-idx1-ubyte.gz"])
    return train, test


def compare_test_labels(first: np.ndarray, current: np.ndarray, n_classes: int = 10) -> dict[str, Any]:
    """Compare two releases' label arrays position by position (works for train labels too)."""
    first, current = np.asarray(first).ravel(), np.asarray(current).ravel()
    if len(first) != len(current):
        raise ValueError(
            f"the two label arrays differ in length ({len(first)} vs {len(current)}); "
            "position-by-position agreement needs equal lengths."
        )
    n_classes = max(n_classes, int(max(first.max(initial=0), current.max(initial=0))) + 1)
    first_counts = np.bincount(first, minlength=n_classes)
    current_counts = np.bincount(current, minlength=n_classes)
    agree = int((first == current).sum())
    n = len(first)
    # Agreement two unrelated orderings of these class mixes would reach: sum over classes of p_first * p_current.
    chance = float((first_counts / max(n, 1)) @ (current_counts / max(n, 1)))
    return {
        "n_labels": n,
        "first_head": first[:_HEAD].tolist(),
        "first_tail": first[-_HEAD:].tolist(),
        "current_head": current[:_HEAD].tolist(),
        "current_tail": current[-_HEAD:].tolist(),
        "first_counts": first_counts.tolist(),
        "current_counts": current_counts.tolist(),
        "counts_match": bool(np.array_equal(first_counts, current_counts)),
        "first_balanced": bool(len(set(first_counts.tolist())) == 1),
        "current_balanced": bool(len(set(current_counts.tolist())) == 1),
        "n_agree": agree,
        "agree_fraction": agree / n if n else float("nan"),
        "chance_agree_fraction": chance,
    }


def _counts_text(counts: list[int]) -> str:
    """Per-class counts in a few characters: '10 × 1,000' when balanced, else the list."""
    if len(set(counts)) == 1:
        return f"{len(counts)} × {counts[0]:,}"
    return ", ".join(f"{c:,}" for c in counts)


def _labels_text(labels: list[int], names: list[str] | None) -> str:
    """Labels as numbers, with class names when given."""
    if names is None:
        return ", ".join(map(str, labels))
    return ", ".join(f"{label} ({names[label]})" for label in labels)


def comparison_table(
    comparisons: Mapping[str, Mapping[str, Any]] | Mapping[str, Any], dataset: str | None = "fashion_mnist"
) -> pd.DataFrame:
    """A display table of one comparison or of several (``column title -> compare_test_labels result``)."""
    if "n_labels" in comparisons:  # a single comparison
        comparisons = {"labels": comparisons}
    names = class_names(dataset) if dataset is not None else None
    rows = {
        "labels compared": lambda c: f"{c['n_labels']:,}",
        "first release: first five": lambda c: _labels_text(c["first_head"], names),
        "today: first five": lambda c: _labels_text(c["current_head"], names),
        "first release: last five": lambda c: _labels_text(c["first_tail"], names),
        "today: last five": lambda c: _labels_text(c["current_tail"], names),
        "first release: images per class": lambda c: _counts_text(c["first_counts"]),
        "today: images per class": lambda c: _counts_text(c["current_counts"]),
        "same count per class": lambda c: "yes" if c["counts_match"] else "no",
        "positions with the same label": lambda c: f"{c['n_agree']:,}",
        "share with the same label": lambda c: f"{c['agree_fraction']:.2%}",
        "share expected by chance": lambda c: f"{c['chance_agree_fraction']:.2%}",
    }
    table = pd.DataFrame(
        {title: {row: fmt(c) for row, fmt in rows.items()} for title, c in comparisons.items()}
    )
    table.index.name = "first release (2017-08-26) vs today"
    return table


def seed_log(dataset: str, folder: str | os.PathLike | None = None) -> pd.DataFrame:
    """The seed notebook's per-epoch log (epoch 1..30, loss, accuracy, val_loss, val_accuracy, epoch_seconds)."""
    name = canonical_name(dataset)
    folder = Path(folder) if folder is not None else _in_repository(SEED_LOG_DIR, "The seed's training log")
    path = folder / SEED_LOG_NAME.format(dataset=name)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no seed log for {name} (expected {SEED_LOG_NAME.format(dataset=name)})."
        )
    return pd.read_csv(path)
