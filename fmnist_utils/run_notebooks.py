"""Execute the notebook series headlessly with papermill: ``python -m fmnist_utils.run_notebooks``.

Runs 01, 02, 03 once per dataset, 04 (and with ``--beyond`` 05), 06, 07 and the appendices into one
run folder: the executed notebooks beside ``fashion_mnist/`` and ``mnist/`` (metrics.json, history.csv,
model.keras, figures/) and each other notebook's figures. ``--quick`` is a smoke run: minutes a notebook
instead of hours. The console shows one line per notebook and each training epoch of 03 with the time left
(``--verbose``: every cell's output); the kernels' own log lines go to ``logs/`` in the run folder. A failing
notebook stops the series with exit status 1 and a message naming the notebook and cell. Works from any
current directory.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from fmnist_utils.data import DATASETS
from fmnist_utils.params import default_runs_dir, project_root
from fmnist_utils.protocol import SEED_EPOCHS

APPENDICES = (
    "appendix/A1_why_not_09323.ipynb",
    "appendix/A2_precision_and_hardware.ipynb",
    "appendix/A3_ablation_ladder.ipynb",
    "appendix/A4_speed_investigations.ipynb",
)
#: ``--quick``: a smoke run's epochs, training images (the whole bundled sample) and points in the 2-D maps.
QUICK = {"epochs": 1, "train_limit": 2000, "embedding_points": 300}
#: ``--quick``: what 05 and 06 do on the page shortened too (05's label-smoothing trial, 06's timed steps).
QUICK_PAGE = {"05_beyond_the_seed.ipynb": {"trial_epochs": 1}, "06_train_fast.ipynb": {"timed_steps": 1}}
#: The kernels' environment: TensorFlow's C++ start-up lines silenced (they are not the notebook's output).
KERNEL_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3"}
#: C-level writes of a kernel (TensorFlow, XLA) go to the kernel's stderr, a log file, not into cell outputs.
KERNEL_ARGUMENTS = ["--IPKernelApp.capture_fd_output=False"]


@dataclass
class Step:
    """One notebook execution; ``history`` is the CSV a training notebook appends one row per epoch to."""

    notebook: str
    parameters: dict[str, Any] = field(default_factory=dict)
    output_name: str = ""
    history: Path | None = None
    epochs: int = SEED_EPOCHS

    def __post_init__(self):
        self.output_name = self.output_name or self.notebook

    def log_file(self, out: Path) -> Path:
        """Where the kernel that executes this step writes its stderr."""
        return out / "logs" / f"{Path(self.output_name).stem}.log"


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
    quick: bool = False,
) -> list[Step]:
    """The ordered steps of a series run into ``out``."""
    data = {"data_source": data_source, "seed": seed}
    trained = {**data, "progress": "epoch", "train_limit": train_limit}
    points = {"embedding_points": embedding_points} if embedding_points else {}
    given = {"epochs": epochs} if epochs else {}
    steps = [
        Step("01_data_exploration.ipynb", {**data, "output_dir": str(out / "exploration"), **points}),
        Step("02_model_build.ipynb", {**data, "output_dir": str(out / "model_build")}),
    ]
    for name in datasets:
        parameters = {"dataset": name, **trained, "output_dir": str(out / name), **given}
        history, total = out / name / "history.csv", epochs or SEED_EPOCHS
        steps.append(Step("03_training.ipynb", parameters, f"03_training_{name}.ipynb", history, total))
    if set(datasets) == set(DATASETS):
        steps.append(
            Step(
                "04_compare_mnist_fashion.ipynb",
                {"runs_dir": str(out), "output_dir": str(out / "comparison")},
            )
        )
    if beyond:
        stages = {"long_epochs": epochs, "longer_epochs": 2 * epochs} if epochs else {}
        parameters = {"source": "train", "datasets": list(datasets), **trained, **given, **stages, **points}
        steps.append(Step("05_beyond_the_seed.ipynb", {**parameters, "output_dir": str(out / "beyond")}))
    # 06 reads the committed speed measurements (timing a machine is `source="measure"`, by hand); 07 trains
    # on scikit-learn's digit scans, starting from the models 03 saved in `out`
    steps.append(Step("06_train_fast.ipynb", {"output_dir": str(out / "train_fast")}))
    own = {"models_dir": str(out), "seed": seed, "output_dir": str(out / "your_own_images"), **given}
    steps.append(Step("07_your_own_images.ipynb", own))
    # the appendices read committed results (A1 also your copy of Fashion-MNIST's test labels)
    steps += [
        Step(name, {"data_source": data_source} if name.startswith("appendix/A1") else {})
        for name in APPENDICES
    ]
    for step in steps if quick else ():
        step.parameters.update(QUICK_PAGE.get(step.notebook, {}))
    missing = sorted({s.notebook for s in steps if not (notebooks_dir / s.notebook).is_file()})
    if missing:
        raise FileNotFoundError(
            f"{notebooks_dir} lacks {', '.join(missing)}: pass --notebooks-dir with the series."
        )
    return steps


def execute(step: Step, notebooks_dir: Path, out: Path, log_output: bool) -> None:
    """Run one notebook with papermill, with its working directory set to the notebooks folder."""
    import papermill as pm

    (out / step.output_name).parent.mkdir(parents=True, exist_ok=True)
    pm.execute_notebook(
        str(notebooks_dir / step.notebook),
        str(out / step.output_name),
        parameters=step.parameters,
        cwd=str(notebooks_dir),
        log_output=log_output,
        progress_bar=False,
        kernel_name="python3",
        extra_arguments=KERNEL_ARGUMENTS,
    )


@contextlib.contextmanager
def quiet_kernels(log_file: Path) -> Iterator[None]:
    """Kernels started inside get ``KERNEL_ENV`` and write their stderr to ``log_file``; the caller's
    environment and stderr are restored on the way out."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(log_file, "ab") as log, mock.patch.dict(os.environ, KERNEL_ENV):
            os.dup2(log.fileno(), 2)  # the kernel process inherits file descriptor 2
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def format_duration(seconds: float) -> str:
    """``seconds`` as "41 s" or "12.5 min"."""
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def epoch_line(row: dict[str, str], epochs: int, seconds: list[float]) -> str:
    """One training epoch as the console shows it: accuracies, seconds, and the time left at this pace."""
    done = int(row["epoch"]) + 1
    left = (epochs - done) * sum(seconds) / len(seconds)
    return (
        f"      epoch {done:>2}/{epochs}  accuracy {float(row['accuracy']):.4f}  "
        f"val_accuracy {float(row['val_accuracy']):.4f}  {seconds[-1]:.0f} s  about {format_duration(left)} left"
    )


class EpochWatcher(threading.Thread):
    """Prints each row a training run adds to its history CSV while its notebook executes."""

    def __init__(self, history: Path, epochs: int, interval: float = 1.0):
        super().__init__(daemon=True)
        self.history, self.epochs, self.interval = history, epochs, interval
        self.seconds: list[float] = []
        self.printed = len(self._rows())  # a resumed or reused run: only new epochs are news
        self.done = threading.Event()

    def _rows(self) -> list[dict[str, str]]:
        if not self.history.is_file():
            return []
        with open(self.history, newline="") as f:
            return [r for r in csv.DictReader(f) if r.get("val_accuracy")]  # a half-written row waits

    def poll(self) -> None:
        """Print the rows written since the last poll."""
        rows = self._rows()
        for row in rows[self.printed :]:
            self.seconds.append(float(row.get("epoch_seconds") or "nan"))
            print(epoch_line(row, self.epochs, self.seconds), flush=True)
        self.printed = max(self.printed, len(rows))

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self.poll()
        self.poll()


def run_step(step: Step, notebooks_dir: Path, out: Path, verbose: bool, quiet: bool) -> None:
    """Execute ``step``, printing its epochs as they end unless ``quiet`` (or ``verbose``: every cell)."""
    watcher = EpochWatcher(step.history, step.epochs) if step.history and not (quiet or verbose) else None
    if watcher:
        watcher.start()
    try:
        with quiet_kernels(step.log_file(out)):
            execute(step, notebooks_dir, out, log_output=verbose)
    finally:
        if watcher:
            watcher.done.set()
            watcher.join()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m fmnist_utils.run_notebooks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = p.add_argument
    add(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK['epochs']} epoch, {QUICK['train_limit']:,} training images, small maps",
    )
    add(
        "--data-source",
        choices=("auto", "sample"),
        default="auto",
        help="auto: your copy of the full data; sample: the bundled sample",
    )
    add(
        "--epochs",
        type=int,
        help="override the epochs (default: 30, the seed's; 1 with --quick); in 05, of its first two ladder "
        "stages (the third: twice as many)",
    )
    add("--train-limit", type=int, help="train on a stratified subset of this many images")
    add("--seed", type=int, default=0, help="weight initialisation / shuffling seed (default 0)")
    add(
        "--datasets",
        nargs="+",
        choices=DATASETS,
        default=list(DATASETS),
        help="which datasets notebook 03 trains (04 needs both)",
    )
    add("--output-dir", type=Path, help="run folder (default: <project>/runs/series[-quick])")
    add("--notebooks-dir", type=Path, help="folder of the source notebooks (default: the repo's)")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--quiet", action="store_true", help="print only failures and the final summary")
    shown.add_argument("--verbose", action="store_true", help="stream every cell's output to the console")
    add(
        "--beyond",
        action="store_true",
        help="also run 05_beyond_the_seed (its ablation ladder: hours on a CPU, about half an hour with --quick)",
    )
    return p


def _failure(step: Step, out: Path, exc: Exception) -> str:
    """What failed where: papermill's PapermillExecutionError names the cell."""
    cell = getattr(exc, "exec_count", None)
    where = f"cell [{cell}]" if cell is not None else "before any cell ran"
    reason = f"{getattr(exc, 'ename', type(exc).__name__)}: {getattr(exc, 'evalue', exc)}"
    return (
        f"FAILED: {step.notebook} ({step.output_name}) at {where}: {reason}\nThe executed notebook with the "
        f"error is {out / step.output_name}; the kernel's log is {step.log_file(out)}"
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    root = project_root()
    notebooks_dir = (args.notebooks_dir or (root / "notebooks" if root else Path("notebooks"))).resolve()
    for flag, value in (("--epochs", args.epochs), ("--train-limit", args.train_limit)):
        if value is not None and value < 1:
            print(f"error: {flag} must be a positive integer, got {value}", file=sys.stderr)
            return 2
    epochs, train_limit, points = args.epochs, args.train_limit, None
    if args.quick:
        epochs, train_limit = epochs or QUICK["epochs"], train_limit or QUICK["train_limit"]
        points = QUICK["embedding_points"]
    out = (args.output_dir or default_runs_dir() / ("series-quick" if args.quick else "series")).resolve()
    try:
        steps = plan(
            out,
            data_source=args.data_source,
            epochs=epochs,
            train_limit=train_limit,
            seed=args.seed,
            embedding_points=points,
            datasets=tuple(args.datasets),
            notebooks_dir=notebooks_dir,
            beyond=args.beyond,
            quick=args.quick,
        )
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    say = (lambda *a, **k: None) if args.quiet else print
    say(f"Running {len(steps)} notebooks into {out}", flush=True)
    started = time.perf_counter()
    for i, step in enumerate(steps, 1):
        say(f"[{i}/{len(steps)}] {Path(step.output_name).stem}", flush=True)
        t0 = time.perf_counter()
        try:
            run_step(step, notebooks_dir, out, verbose=args.verbose, quiet=args.quiet)
        except Exception as exc:
            print(_failure(step, out, exc), file=sys.stderr, flush=True)
            return 1
        say(f"      done in {format_duration(time.perf_counter() - t0)}", flush=True)
    total = format_duration(time.perf_counter() - started)
    print(
        f"All {len(steps)} notebooks ran in {total}. Executed notebooks, models, figures: {out}", flush=True
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
