"""Does a reported result hold for another seed? ``python -m tools.replicate RUN_DIR --seeds 1 2``

Notebook 05 reports one test accuracy per dataset, from one seed. This reads its ``summary.json`` in
``RUN_DIR`` (the notebook's ``output_dir``) and, for each dataset, retrains the trials that make up the
tested predictor (the winner, or every member of the ensemble) with each new seed: same recipes, epochs,
data, split, batch size and precision. It then tests the same predictor (members and test-time flips as
chosen) once per seed; a member that was the winner's recipe with another seed (the "seeds" stage) keeps
its offset from the run's seed. Nothing is chosen here: it measures how much of the reported number is the seed's
luck. Trials go to ``RUN_DIR/replicate/seed<N>/<dataset>/step<K>/`` (a killed run resumes, finished trials are
reused) and the results to ``RUN_DIR/replicate/replicate.json`` (a dataset replicated earlier for the same
reported predictor stays in it). ``--work-dir`` puts both elsewhere (for a RUN_DIR such as the committed
``results/beyond``).

``--export DIR`` (one seed) also writes, per dataset, what notebook 05 needs to explore the predictor
without training (:mod:`fmnist_utils.lab.published`): its test probabilities, the winner's penultimate features
for ``--feature-points`` test images, each member's history, and a manifest with checksums.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from fmnist_utils import data
from fmnist_utils.files import write_json
from fmnist_utils.lab import ablation, published
from fmnist_utils.runs import read_history
from fmnist_utils.training import machine_info


class ReplicateError(ValueError):
    """The run folder holds no finished notebook 05 run to replicate."""


def load_summary(run_dir: Path) -> dict[str, Any]:
    """Notebook 05's ``summary.json`` in ``run_dir``, checked for what replication needs."""
    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        raise ReplicateError(
            f"No summary.json in {run_dir}: give the output_dir of a finished notebook 05 run."
        )
    summary = json.loads(path.read_text())
    for name, row in summary.get("datasets", {}).items():
        if "ensemble" not in row:
            raise ReplicateError(f"{path} ({name}) predates ensemble selection: rerun notebook 05 first.")
    return summary


def replicate(
    run_dir: str | Path,
    seeds: list[int],
    datasets: list[str] | None = None,
    progress: str = "epoch",
    work_dir: str | Path | None = None,
    export_dir: str | Path | None = None,
    feature_points: int = 2000,
    winner_only: bool = False,
) -> dict[str, Any]:
    """Retrain and test the reported predictor of each dataset once per seed in ``seeds`` (module docstring)."""
    run_dir = Path(run_dir)
    work_dir = Path(work_dir) if work_dir is not None else run_dir
    if export_dir is not None and len(seeds) != 1:
        raise ReplicateError(f"--export publishes one predictor: give one seed, not {len(seeds)}.")
    summary = load_summary(run_dir)
    names = datasets or list(summary["datasets"])
    unknown = [n for n in names if n not in summary["datasets"]]
    if unknown:
        raise ReplicateError(
            f"Dataset(s) {', '.join(unknown)} not in {run_dir / 'summary.json'}; "
            f"it has: {', '.join(summary['datasets'])}."
        )
    results: dict[str, Any] = {}
    for name in names:
        row = summary["datasets"][name]
        ((x, y), (x_test, y_test)), info = data.load_dataset(
            name, source="sample" if row["is_sample"] else "auto", return_info=True
        )
        x, y = data.limit_examples(x, y, summary["train_limit"], seed=summary["seed"])
        train_split, val_split = data.train_val_split(x, y, dataset=name)
        steps = {step["step"]: step for step in row["ablation"]}
        predictor = _predictor(row, winner_only)
        members, flips = predictor["members"], predictor["test_time_flips"]
        per_seed = {}
        for seed in seeds:
            folder = work_dir / "replicate" / f"seed{seed}" / name
            for member in members:
                # a member of the "seeds" stage keeps its offset: seed + 1 of the run becomes seed + 1 here
                member_seed = seed + int(steps[member].get("seed", summary["seed"])) - summary["seed"]
                print(
                    f"=== {name}, seed {seed}: step {member} [{steps[member]['recipe']}], "
                    f"{steps[member]['epochs']} epochs, trained with seed {member_seed}"
                )
                ablation.run_trial(
                    ablation.Recipe.parse(steps[member]["recipe"]),
                    name,
                    train_split,
                    val_split,
                    output_dir=folder / f"step{member}",
                    epochs=int(steps[member]["epochs"]),
                    batch_size=summary["batch_size"],
                    seed=member_seed,
                    precision=summary["precision"],
                    progress=progress,
                    data_info=info,
                )
            ladder = ablation.ladder_from_summary(row, folder)
            probabilities = ablation.ensemble_proba(ladder, members, name, x_test, flips)
            per_seed[seed] = float(np.mean(probabilities.argmax(1) == np.asarray(y_test)))
            if export_dir is not None:
                _export(
                    Path(export_dir) / name,
                    ladder,
                    row,
                    predictor,
                    probabilities,
                    (x_test, y_test),
                    seed,
                    feature_points,
                )
            print(
                f"    {name}, seed {seed}: test accuracy {per_seed[seed]:.4f} "
                f"(reported, seed {summary['seed']}: {predictor['reported_test_accuracy']:.4f})"
            )
        reported = predictor["reported_test_accuracy"]
        every = [reported, *per_seed.values()]
        results[name] = {
            "predictor": predictor["text"],
            "members": members,
            "reported_seed": summary["seed"],
            "reported_test_accuracy": reported,
            "test_accuracy_by_seed": {str(s): a for s, a in per_seed.items()},
            "mean_over_all_seeds": float(np.mean(every)),
            "min_over_all_seeds": float(min(every)),
            "target": row["target"],
            "is_sample": row["is_sample"],
        }
    path = work_dir / "replicate" / "replicate.json"
    out = {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_dir": str(run_dir),
        "precision": summary["precision"],
        "datasets": {**_still_current(path, summary), **results},
    }
    write_json(path, out)
    return out


def _predictor(row: dict[str, Any], winner_only: bool) -> dict[str, Any]:
    """What is replicated: the tested predictor (its members and test-time flips) or, ``winner_only``, the
    ladder's winner alone without flips, as in the ablation table's for-the-record test column."""
    if not winner_only:
        return {
            "text": row["best_recipe_text"],
            "members": row["ensemble"]["members"],
            "test_time_flips": row["test_time_flips"]["used"],
            "reported_test_accuracy": row["test_accuracy_best_recipe"],
        }
    [winner] = [step for step in row["ablation"] if step["chosen"]]
    return {
        "text": f"step {winner['step']}: {winner['recipe']} (the ladder's winner alone, no test-time flips)",
        "members": [winner["step"]],
        "test_time_flips": False,
        "reported_test_accuracy": winner["test_accuracy"],
    }


def _export(
    folder: Path,
    ladder: ablation.LadderResult,
    row: dict[str, Any],
    predictor: dict[str, Any],
    probabilities: np.ndarray,
    test_data: tuple[np.ndarray, np.ndarray],
    seed: int,
    feature_points: int,
) -> Path:
    """Write the replicated predictor's artifacts for notebook 05 (:func:`fmnist_utils.lab.published.export`)."""
    import keras

    (x_test, y_test), members = test_data, predictor["members"]
    picks = np.sort(
        np.random.default_rng(0).choice(len(x_test), min(feature_points, len(x_test)), replace=False)
    )
    winner = keras.saving.load_model(ladder.best_dir / "model.keras")
    steps = {step["step"]: step for step in row["ablation"]}
    info = {
        "what": "notebook 05's predictor, retrained by tools.replicate --export",
        "dataset": row["dataset"],
        "predictor": predictor["text"],
        "members": members,
        "member_recipes": {str(m): steps[m]["recipe"] for m in members},
        "member_epochs": {str(m): int(steps[m]["epochs"]) for m in members},
        "test_time_flips": predictor["test_time_flips"],
        "winner_step": ladder.chosen_step,
        "seed": seed,
        "ladder_test_accuracy": predictor["reported_test_accuracy"],
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
    }
    return published.export(
        folder,
        probabilities=probabilities,
        features=ablation.penultimate_features(winner, x_test[picks]),
        feature_indices=picks,
        histories={m: read_history(ladder.trial_dirs[list(ladder.table.index).index(m)]) for m in members},
        y_test=y_test,
        info=info,
    )


def _still_current(path: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """The datasets of an earlier ``replicate.json`` whose reported predictor is still the one in ``summary``
    (same members and test accuracy): a run for one dataset keeps them; a stale one is dropped."""
    if not path.is_file():
        return {}
    earlier = json.loads(path.read_text()).get("datasets", {})
    return {
        name: row
        for name, row in earlier.items()
        if name in summary["datasets"]
        and row.get("members") == summary["datasets"][name]["ensemble"]["members"]
        and row.get("reported_test_accuracy") == summary["datasets"][name]["test_accuracy_best_recipe"]
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tools.replicate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dir", type=Path, help="notebook 05's output_dir (holds summary.json)")
    p.add_argument("--seeds", type=int, nargs="+", required=True, help="seeds to retrain with, e.g. 1 2")
    p.add_argument(
        "--datasets", nargs="+", choices=("fashion_mnist", "mnist"), help="default: all in the run"
    )
    p.add_argument("--work-dir", type=Path, help="where the trials and replicate.json go (default: RUN_DIR)")
    p.add_argument("--export", type=Path, help="write notebook 05's published artifacts here (one seed)")
    p.add_argument("--feature-points", type=int, default=2000, help="test images with exported features")
    p.add_argument(
        "--winner-only", action="store_true", help="the ladder's winner alone (no flips), not the ensemble"
    )
    args = p.parse_args(argv)
    if any(seed < 0 for seed in args.seeds):
        p.error("--seeds must be integers >= 0")
    if args.feature_points < 10:
        p.error("--feature-points must be at least 10")
    try:
        result = replicate(
            args.run_dir,
            args.seeds,
            args.datasets,
            work_dir=args.work_dir,
            export_dir=args.export,
            feature_points=args.feature_points,
            winner_only=args.winner_only,
        )
    except ReplicateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, row in result["datasets"].items():
        seeds = ", ".join(f"seed {s}: {a:.4f}" for s, a in row["test_accuracy_by_seed"].items())
        print(
            f"{name}: reported {row['reported_test_accuracy']:.4f} (seed {row['reported_seed']}); {seeds}; "
            f"mean {row['mean_over_all_seeds']:.4f}, min {row['min_over_all_seeds']:.4f}, target {row['target']}"
            + (" [SAMPLE DATA: not comparable with the targets]" if row["is_sample"] else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
