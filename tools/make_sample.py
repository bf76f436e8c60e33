"""Derive the bundled sample from the full datasets: ``python -m tools.make_sample``.

For each dataset it draws a class-balanced subset (default 200 train + 50 test images per class, so
2,000 / 500) with a fixed seed, and writes ``fmnist_utils/sample/<name>.npz`` plus ``MANIFEST.json``
recording the indices' seed, the counts and the SHA-256 that :func:`fmnist_utils.data.load_sample`
checks. The full data comes from the usual search order (set ``FMNIST_DATA_DIR``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from fmnist_utils.data import CLASS_NAMES, load_dataset, sample_path
from fmnist_utils.files import atomic_path


def balanced_indices(y: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted indices of ``per_class`` random examples of every class."""
    rng = np.random.default_rng(seed)
    picks = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        if len(members) < per_class:
            raise ValueError(f"class {label} has only {len(members)} examples, {per_class} requested.")
        picks.append(rng.choice(members, size=per_class, replace=False))
    return np.sort(np.concatenate(picks))


def make_sample(
    name: str, out_dir: Path, train_per_class: int = 200, test_per_class: int = 50, seed: int = 2017
) -> dict:
    """Write ``out_dir/<name>.npz`` and return its manifest entry."""
    (x_train, y_train), (x_test, y_test) = load_dataset(name, source="auto")
    tr = balanced_indices(y_train, train_per_class, seed)
    te = balanced_indices(y_test, test_per_class, seed + 1)
    target = out_dir / f"{name}.npz"
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as file:  # a file object: savez would append ".npz" to a temporary name
            np.savez_compressed(
                file,
                x_train=x_train[tr],
                y_train=y_train[tr],
                x_test=x_test[te],
                y_test=y_test[te],
                train_indices=tr.astype(np.int32),
                test_indices=te.astype(np.int32),
            )
    return {
        "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
        "n_train": int(len(tr)),
        "n_test": int(len(te)),
        "train_per_class": train_per_class,
        "test_per_class": test_per_class,
        "seed": seed,
        "derived_from": "the full dataset's official train and t10k IDX files (SHA-256 verified)",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train-per-class", type=int, default=200)
    parser.add_argument("--test-per-class", type=int, default=50)
    parser.add_argument("--seed", type=int, default=2017)
    parser.add_argument("--out-dir", type=Path, default=sample_path("mnist").parent)
    args = parser.parse_args(argv)
    manifest = {
        name: make_sample(name, args.out_dir, args.train_per_class, args.test_per_class, args.seed)
        for name in CLASS_NAMES
    }
    (args.out_dir / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
