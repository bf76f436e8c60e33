"""Keras 2 (2017) against Keras 3 numerics: the seed-spread experiments behind "why not 0.9323?"."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from fmnist_utils.params import project_root

#: The Keras 2 (2017) against Keras 3 numerics experiments (``tools.seed_protocol_any_backend`` on an H200,
#: Keras on JAX): file -> what the two arms' losses start from.
NUMERICS_RUNS = {
    "numerics_from_logits_fashion_mnist_h200.json": "the scores (clipped in Keras 2 only)",
    "numerics_fashion_mnist_h200.json": "the probabilities (clipped in both: Adam's ε differs)",
}


def numerics_spread(folder: str | os.PathLike | None = None) -> Any:
    """Keras 3 against Keras 2 (2017) numerics, several seeds each: per experiment and numerics the seeds,
    the test accuracy's mean, standard deviation, min and max (a DataFrame)."""

    folder = Path(folder) if folder else (project_root() or Path(".")) / "results" / "seed"
    runs = pd.concat(
        [
            pd.DataFrame(json.loads((folder / name).read_text())["runs"]).assign(loss_from=loss_from)
            for name, loss_from in NUMERICS_RUNS.items()
        ]
    )
    runs["numerics"] = runs["numerics"].map({"keras3": "Keras 3", "keras2": "Keras 2 (2017)"})
    table = runs.groupby(["loss_from", "numerics"], sort=False)["test_accuracy"].agg(
        seeds="count", mean="mean", std="std", min="min", max="max"
    )
    return table.rename_axis(["loss computed from", "numerics"])
