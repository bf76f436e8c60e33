"""Execute the notebook series headlessly with papermill: ``python -m fmnist_utils.run_notebooks``.

Runs 01, 02, 03 once per dataset, 04 (and with ``--beyond`` 05), then 06 into one run folder: the executed
notebooks beside ``fashion_mnist/`` and ``mnist/`` (metrics.json, history.csv, model.keras, figures/) and
each other notebook's figures. ``--quick`` is a few-minute smoke run. A failing notebook stops the series
with exit status 1 and a message naming the notebook and cell. Works from any current directory.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fmnist_utils.params import default_runs_dir, project_root

DATASETS = ("fashion_mnist", "mnist")


@dataclass
class Step:
    """One notebook execution."""

    notebook: str
    output_name: str
    parameters: dict[str, Any] = field(default_factory=dict)


def plan(
    out: Path,
    *,
    data_source: str,
    epochs: int | None,
    train_limit: int | None,
    seed: int,
    embedding_points: int | None,
    datasets=DATASETS,
    notebooks_dir: Path,
    beyond: bool = False,
) -> list[Step]:
    """The ordered steps of a series run into ``out``."""

    def optional(**kwargs):
        return {k: v for k, v in kwargs.items() if v is not None}

    steps = [
        Step(
            "01_data_exploration.ipynb",
            "01_data_exploration.ipynb",
            {
                "data_source": data_source,
                "seed": seed,
                "output_dir": str(out / "exploration"),
                **optional(embedding_points=embedding_points),
            },
        ),
        Step(
            "02_model_build.ipynb",
            "02_model_build.ipynb",
            {"data_source": data_source, "seed": seed, "output_dir": str(out / "model_build")},
        ),
    ]
    for name in datasets:
        steps.append(
            Step(
                "03_training.ipynb",
                f"03_training_{name}.ipynb",
                {
                    "dataset": name,
                    "data_source": data_source,
                    "seed": seed,
                    "progress": "epoch",
                    "train_limit": train_limit,
                    "output_dir": str(out / name),
                    **optional(epochs=epochs),
                },
            )
        )
    if set(datasets) == set(DATASETS):
        steps.append(
            Step(
                "04_compare_mnist_fashion.ipynb",
                "04_compare_mnist_fashion.ipynb",
                {"runs_dir": str(out), "output_dir": str(out / "comparison")},
            )
        )
    if beyond:
        steps.append(
            Step(
                "05_beyond_the_seed.ipynb",
                "05_beyond_the_seed.ipynb",
                {
                    "source": "train",
                    "datasets": list(datasets),
                    "data_source": data_source,
                    "seed": seed,
                    "progress": "epoch",
                    "train_limit": train_limit,
                    "output_dir": str(out / "beyond"),
                    **optional(
                        epochs=epochs,
                        long_epochs=epochs,
                        longer_epochs=epochs and 2 * epochs,
                        embedding_points=embedding_points,
                    ),
                },
            )
        )
    steps.append(
        Step("06_train_fast.ipynb", "06_train_fast.ipynb", {"output_dir": str(out / "train_fast")})
    )  # reads the committed speed measurements: timing a machine is `source="measure"`, by hand
    missing = sorted({s.notebook for s in steps if not (notebooks_dir / s.notebook).is_file()})
    if missing:
        raise FileNotFoundError(
            f"{notebooks_dir} lacks {', '.join(missing)}: pass --notebooks-dir with the series."
        )
    return steps


def execute(step: Step, notebooks_dir: Path, out: Path, log_output: bool) -> None:
    """Run one notebook with papermill, with its working directory set to the notebooks folder."""
    import papermill as pm

    pm.execute_notebook(
        str(notebooks_dir / step.notebook),
        str(out / step.output_name),
        parameters=step.parameters,
        cwd=str(notebooks_dir),
        log_output=log_output,
        progress_bar=False,
        kernel_name="python3",
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fmnist_utils.run_notebooks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--quick", action="store_true", help="smoke run: 1 epoch, 2,000 training images, small maps"
    )
    p.add_argument(
        "--data-source",
        choices=("auto", "sample"),
        default="auto",
        help="auto: your copy of the full data (FMNIST_DATA_DIR, cache, ...); sample: bundled sample",
    )
    p.add_argument(
        "--epochs",
        type=int,
        help="override the epochs (default: 30, the seed's; 1 with --quick); "
        "in 05, of its first two ladder stages (the third: twice as many)",
    )
    p.add_argument("--train-limit", type=int, help="train on a stratified subset of this many images")
    p.add_argument("--seed", type=int, default=0, help="weight initialisation / shuffling seed (default 0)")
    p.add_argument(
        "--datasets",
        nargs="+",
        choices=DATASETS,
        default=list(DATASETS),
        help="which datasets notebook 03 trains (04 needs both)",
    )
    p.add_argument("--output-dir", type=Path, help="run folder (default: <project>/runs/series[-quick])")
    p.add_argument("--notebooks-dir", type=Path, help="folder of the source notebooks (default: the repo's)")
    p.add_argument("--quiet", action="store_true", help="do not stream cell outputs to the console")
    p.add_argument(
        "--beyond",
        action="store_true",
        help="also run 05_beyond_the_seed (the ablation ladder: 12-16 trainings per dataset; hours on a CPU "
        "with the defaults, minutes with --quick)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    root = project_root()
    notebooks_dir = (args.notebooks_dir or (root / "notebooks" if root else Path("notebooks"))).resolve()
    if not (notebooks_dir / "03_training.ipynb").is_file():
        print(f"error: no notebooks in {notebooks_dir}; pass --notebooks-dir", file=sys.stderr)
        return 2
    for flag, value in (("--epochs", args.epochs), ("--train-limit", args.train_limit)):
        if value is not None and value < 1:
            print(f"error: {flag} must be a positive integer, got {value}", file=sys.stderr)
            return 2
    epochs, train_limit, embedding_points = args.epochs, args.train_limit, None
    if args.quick:
        epochs, train_limit, embedding_points = epochs or 1, train_limit or 2000, 300
    out = (args.output_dir or default_runs_dir() / ("series-quick" if args.quick else "series")).resolve()
    out.mkdir(parents=True, exist_ok=True)

    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)

    try:
        steps = plan(
            out,
            data_source=args.data_source,
            epochs=epochs,
            train_limit=train_limit,
            seed=args.seed,
            embedding_points=embedding_points,
            datasets=tuple(args.datasets),
            notebooks_dir=notebooks_dir,
            beyond=args.beyond,
        )
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Running {len(steps)} notebooks from {notebooks_dir} into {out}", flush=True)
    started = time.perf_counter()
    for i, step in enumerate(steps, 1):
        label = f"[{i}/{len(steps)}] {step.output_name}"
        print(f"{label}: {step.parameters}", flush=True)
        t0 = time.perf_counter()
        try:
            execute(step, notebooks_dir, out, log_output=not args.quiet)
        except Exception as exc:  # papermill's PapermillExecutionError names the cell
            cell = getattr(exc, "exec_count", None)
            where = f"cell [{cell}]" if cell is not None else "before any cell ran"
            reason = f"{getattr(exc, 'ename', type(exc).__name__)}: {getattr(exc, 'evalue', exc)}"
            print(
                f"FAILED: {step.notebook} ({step.output_name}) at {where}: {reason}\n"
                f"The executed notebook with the error is {out / step.output_name}",
                file=sys.stderr,
                flush=True,
            )
            return 1
        print(f"{label}: done in {time.perf_counter() - t0:.0f}s", flush=True)
    print(f"All {len(steps)} notebooks ran in {(time.perf_counter() - started) / 60:.1f} min. Results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
