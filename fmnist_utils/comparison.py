"""Reading two training runs (one per dataset) and putting them beside the seed's published results."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from fmnist_utils.data import DISPLAY_NAMES
from fmnist_utils.params import project_root
from fmnist_utils.protocol import SEED_BATCH_SIZE, SEED_EPOCHS, SEED_RESULTS
from fmnist_utils.runs import load_run

DATASET_LABELS = DISPLAY_NAMES


def load_runs(
    runs_dir: str | os.PathLike, datasets=("mnist", "fashion_mnist")
) -> dict[str, tuple[dict, Any]]:
    """``dataset -> (metrics, history)`` from ``runs_dir/<dataset>``; a missing run names the command."""
    runs_dir = Path(runs_dir)
    runs, missing = {}, []
    for name in datasets:
        try:
            runs[name] = load_run(runs_dir / name)
        except FileNotFoundError:
            missing.append(name)
    if missing:
        commands = "\n".join(
            f"  papermill notebooks/03_training.ipynb {runs_dir}/03_training_{name}.ipynb "
            f"-p dataset {name} -p output_dir {runs_dir / name}"
            for name in missing
        )
        raise FileNotFoundError(
            f"No finished training run for {', '.join(missing)} in {runs_dir}. Produce it with:\n{commands}\n"
            f"or run the whole series: python -m fmnist_utils.run_notebooks --output-dir {runs_dir}"
        )
    return runs


def protocol_notes(metrics: dict[str, Any]) -> list[str]:
    """How a run departs from the seed protocol (sample data, fewer epochs, a train limit...)."""
    notes = []
    if metrics.get("is_sample"):
        notes.append("SAMPLE DATA")
    if metrics.get("epochs") != SEED_EPOCHS:
        notes.append(f"{metrics.get('epochs')} epochs (seed: {SEED_EPOCHS})")
    if metrics.get("batch_size") != SEED_BATCH_SIZE:
        notes.append(f"batch {metrics.get('batch_size')} (seed: {SEED_BATCH_SIZE})")
    if metrics.get("train_limit"):
        notes.append(f"train_limit={metrics['train_limit']}")
    if metrics.get("variant", "seed") != "seed":
        notes.append(f"variant={metrics['variant']}")
    if metrics.get("dtype_policy") != "float32":
        notes.append(f"precision {metrics.get('dtype_policy')} (seed: float32)")
    if metrics.get("numerics", "keras3") != "keras3":
        notes.append(f"numerics={metrics['numerics']} (recorded apart from the seed table)")
    return notes


def published_seed_runs(results_dir: str | os.PathLike | None = None, also: list[dict[str, Any]] = ()):
    """Every published seed-protocol run (``results/seed/<dataset>-seed<N>.json``), one row each, plus the
    full-protocol runs among ``also`` (metrics dicts, e.g. the run a notebook just made) not yet published
    (a DataFrame)."""
    folder = Path(results_dir) if results_dir else (project_root() or Path(".")) / "results" / "seed"
    published = [json.loads(path.read_text()) for path in sorted(folder.glob("*-seed*.json"))]
    seen = {(m["dataset"], m["seed"]) for m in published}
    rows = []
    for m in published + [m for m in also if not protocol_notes(m) and (m["dataset"], m["seed"]) not in seen]:
        rows.append(
            {
                "dataset": m["dataset"],
                "seed": m["seed"],
                "test_accuracy": m["test_accuracy"],
                "final_val_accuracy": m["final_val_accuracy"],
                "mean_epoch_seconds": m["mean_epoch_seconds"],
                "total_seconds": m.get("total_seconds", np.nan),
                "cores_shared": bool(m.get("timing_shared_cores")),
                "cpu": m["machine"]["cpu"],
                "cpu_count": m["machine"]["cpu_count"],
                "gpus": m["machine"]["gpus"],
            }
        )
    return pd.DataFrame(rows)


def seed_spread(runs, test_images: int = 10_000) -> Any:
    """Per dataset: how many runs (one per random seed), the test accuracy's mean, sample standard deviation,
    min and max, the test set's own sampling error (the standard error of an accuracy measured on
    ``test_images`` images: how much another draw of test images would move it) and the seed notebook's
    number beside them
    (``runs`` from :func:`published_seed_runs`; a DataFrame)."""
    table = runs.groupby("dataset")["test_accuracy"].agg(
        **{"runs (random seeds)": "count"}, mean="mean", std="std", min="min", max="max"
    )
    table["test-set standard error"] = np.sqrt(table["mean"] * (1 - table["mean"]) / test_images)
    table["2017 notebook"] = [SEED_RESULTS[name] for name in table.index]
    table["mean minus 2017 (points)"] = 100 * (table["mean"] - table["2017 notebook"])
    return table.rename(index=DATASET_LABELS)


def gap_to_2017(row: pd.Series) -> dict[str, Any]:
    """Where the 2017 notebook's accuracy lies against a row of :func:`seed_spread`, read two ways. Tested on our
    test images: in standard deviations of one more run of ours, s·√(1 + 1/n), and against that run's 95 %
    prediction interval (Student's t, n − 1 degrees of freedom). Tested on other images: in standard deviations
    of the difference, which adds both test sets' sampling error, √(s²(1 + 1/n) + 2·se²)."""
    n, std, se = row["runs (random seeds)"], row["std"], row["test-set standard error"]
    one_more = std * np.sqrt(1 + 1 / n)
    half_width = stats.t.ppf(0.975, n - 1) * one_more
    gap = row["2017 notebook"] - row["mean"]
    return {
        "gap": gap,
        "same_images": gap / one_more,
        "interval": (row["mean"] - half_width, row["mean"] + half_width),
        "other_images": gap / np.sqrt(one_more**2 + 2 * se**2),
    }


def gap_sentence(label: str, row: pd.Series) -> str:
    """:func:`gap_to_2017` as the sentence 03, 04 and appendix A1 print."""
    gap = gap_to_2017(row)
    low, high = gap["interval"]
    side = "above" if gap["gap"] > 0 else "below"
    inside = "inside" if low <= row["2017 notebook"] <= high else "outside"
    return (
        f"{label}: the 2017 notebook's {row['2017 notebook']:.4f} against our mean {row['mean']:.4f} "
        f"({int(row['runs (random seeds)'])} runs). Tested on our test images, it lies {abs(gap['same_images']):.1f} "
        f"standard deviations of one more of our runs {side} our mean, {inside} the 95 % range where one more "
        f"run would land ({low:.4f} to {high:.4f}). Tested on other images, {abs(gap['other_images']):.1f} "
        "standard deviations of the difference (our runs' spread and both test sets' sampling error)."
    )


def error_ratio(runs, of: str = "fashion_mnist", to: str = "mnist") -> dict[str, float]:
    """How many times as many test errors ``of`` has as ``to`` over the seeds run on both (``runs`` from
    :func:`published_seed_runs`): the number of seeds, the ratio of the mean error rates, the lowest and
    highest ratio of two runs that share a seed, and (``lowest_any``, ``highest_any``) of any run of ``of``
    with any run of ``to`` (pairing by seed number is only a convention)."""
    accuracy = runs.pivot_table(index="seed", columns="dataset", values="test_accuracy")
    errors = 1 - accuracy.reindex(columns=[of, to]).dropna()
    per_seed = errors[of] / errors[to]
    any_pair = pd.Series(np.divide.outer(errors[of].to_numpy(), errors[to].to_numpy()).ravel())
    return {
        "seeds": len(errors),
        "ratio_of_means": float(errors[of].mean() / errors[to].mean()),
        "lowest": float(per_seed.min()),
        "highest": float(per_seed.max()),
        "lowest_any": float(any_pair.min()),
        "highest_any": float(any_pair.max()),
    }
