"""Training a compiled model in a run folder: start (or resume, or reuse) the run, fit, record it.

Notebook 03 writes these steps out around ``model.fit``; :func:`train` does all of them for scripts and
the lab. :mod:`fmnist_utils.runs` says what a run folder holds and when a run resumes or is reused.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from fmnist_utils.data import DataInfo, make_dataset, steps_per_epoch
from fmnist_utils.files import write_json
from fmnist_utils.params import check_choice
from fmnist_utils.protocol import SEED_BATCH_SIZE, SEED_EPOCHS
from fmnist_utils.runs import (
    BACKUP_WEIGHTS,
    FITTED,
    RunConflictError,
    RunFolder,
    check_test_set,
    data_sha256,
    file_sha256,
    fingerprint,
    fit_settings,
    next_epoch,
    open_run,
    random_state_file,
    read_history,
    record_weights,
    save_model,
)

PROGRESS = ("auto", "bar", "epoch", "none")
ENV_PROGRESS = "FMNIST_PROGRESS"
#: What every result trained on the bundled sample says about itself.
SAMPLE_NOTE = "SAMPLE DATA: trained and tested on the small bundled sample, not the full dataset"


def set_seed(seed: int) -> None:
    """Start a new model from a clean, deterministic state: clear Keras' session, seed Python/NumPy/TF."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(int(seed))


def resolve_progress(progress: str = "auto") -> int:
    """Keras ``verbose`` for a progress style: ``bar`` (1), ``epoch`` (2, one line per epoch), ``none`` (0).

    ``auto`` (or the ``FMNIST_PROGRESS`` environment variable) keeps the live bar where a person
    watches (a terminal, a JupyterLab/Notebook kernel) and prints one line per epoch elsewhere
    (papermill, nbconvert, logs), so executed notebooks do not fill up with thousands of bar updates.
    """
    check_choice("progress", progress, PROGRESS)
    if progress == "auto":
        progress = os.environ.get(ENV_PROGRESS, "auto")
        if progress not in PROGRESS:
            raise ValueError(
                f"Environment variable {ENV_PROGRESS}={progress!r} is not one of "
                f"{', '.join(map(repr, PROGRESS))}."
            )
    if progress == "auto":
        interactive = sys.stdout.isatty() or "JPY_SESSION_NAME" in os.environ
        progress = "bar" if interactive else "epoch"
    return {"bar": 1, "epoch": 2, "none": 0}[progress]


#: The CPU features that decide the seed network's speed (AVX-512 and AMX: several times AVX2's).
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile")


def _cpuinfo() -> tuple[str, list[str]]:
    """This CPU's model name and its :data:`SPEED_FLAGS` (Linux's /proc/cpuinfo; elsewhere the platform's name)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    fields: dict[str, str] = {}
    for line in lines:
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())  # the first processor's
    present = fields.get("flags", "").split()
    cpu = fields.get("model name") or platform.processor() or platform.machine()
    return cpu, [flag for flag in SPEED_FLAGS if flag in present]


def machine_info() -> dict[str, Any]:
    """The hardware and software a run used (for metrics files and benchmark tables), on any Keras backend."""
    cpu, cpu_flags = _cpuinfo()
    backend, gpus, versions = keras.backend.backend(), [], {}
    if backend == "tensorflow":
        import tensorflow as tf

        gpus, versions = (
            [d.name for d in tf.config.list_physical_devices("GPU")],
            {"tensorflow": tf.__version__},
        )
    elif backend == "jax":
        import jax

        gpus, versions = (
            [d.device_kind for d in jax.devices() if d.platform == "gpu"],
            {"jax": jax.__version__},
        )
    return {
        "cpu": cpu,
        "cpu_flags": cpu_flags,
        "cpu_count": os.cpu_count(),
        "gpus": gpus,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "backend": backend,
        **versions,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


def step_seconds(model: keras.Model, x: np.ndarray, y: np.ndarray, batch_size: int, steps: int = 3) -> float:
    """Median seconds of one training step on this machine, timed on a copy of the compiled ``model`` (its own
    weights and optimizer untouched) after one warm-up step."""
    copy = keras.models.clone_model(model)
    optimizer = type(model.optimizer).from_config(model.optimizer.get_config())
    copy.compile(optimizer=optimizer, loss=model.loss, jit_compile=model.jit_compile)
    batch = (x[:batch_size], y[:batch_size])
    copy.train_on_batch(*batch)  # builds the step: not timed
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        copy.train_on_batch(*batch)
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds))


class EpochTimer(keras.callbacks.Callback):
    """Adds ``epoch_seconds`` (wall time, validation included) and the ``learning_rate`` reached to each
    epoch's logs, so that CSVLogger writes them beside the loss and accuracy."""

    changes_training = False

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._start
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class RandomStateBackup(keras.callbacks.Callback):
    """The backup's other half, listed before ``BackupAndRestore``: the random generators (dropout,
    augmentation) of each epoch, restored with its weights; the SHA-256 of each epoch's weights once written
    whole (:func:`~fmnist_utils.runs.repair_backup`); the backup set aside (``fitted/``) as ``fit`` returns."""

    changes_training = False

    def __init__(self, backup_dir: str | os.PathLike):
        super().__init__()
        self.backup = Path(backup_dir)

    def _states(self) -> list:
        return [v for v in self.model.variables if "seed_generator" in v.path]  # in layer order

    def on_train_begin(self, logs=None):
        resume_at = next_epoch(self.backup)
        if not resume_at:
            return
        if not random_state_file(self.backup, resume_at).is_file():
            raise RuntimeError(
                f"{self.backup} holds epoch {resume_at}'s weights without its random state, so the run cannot "
                "resume exactly; train it anew (overwrite=True) or in another folder."
            )
        with np.load(random_state_file(self.backup, resume_at)) as saved:
            for i, variable in enumerate(self._states()):
                variable.assign(saved[str(i)])

    def on_epoch_begin(self, epoch, logs=None):
        record_weights(self.backup)  # the last epoch's weights, written whole by now

    def on_epoch_end(self, epoch, logs=None):
        tmp = self.backup / "random_state.tmp.npz"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, **{str(i): keras.ops.convert_to_numpy(v) for i, v in enumerate(self._states())})
        os.replace(tmp, random_state_file(self.backup, epoch + 1))
        random_state_file(self.backup, epoch - 1).unlink(missing_ok=True)  # keep this epoch's and the one
        # before (a kill may come before BackupAndRestore writes this epoch's weights)

    def on_train_end(self, logs=None):
        if self.backup.is_dir():
            record_weights(self.backup)
            fitted = self.backup.with_name(FITTED)
            shutil.rmtree(fitted, ignore_errors=True)
            os.replace(self.backup, fitted)


@dataclass
class Run(RunFolder):
    """A :class:`~fmnist_utils.runs.RunFolder` with the batches ``fit`` reads from the run's first epoch on."""

    train_batches: Any = None  # each epoch shuffled anew, seeded by (seed, epoch)
    val_batches: Any = None
    steps_per_epoch: int = 0


def start_run(
    output_dir: str | os.PathLike,
    model: keras.Model,
    train_data,
    val_data,
    *,
    epochs: int = SEED_EPOCHS,
    batch_size: int = SEED_BATCH_SIZE,
    seed: int = 0,
    fit_options: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Run:
    """Open the run folder (:func:`fmnist_utils.runs.open_run`: a new run, the same killed run resumed, or the
    same finished run reused) and make the batches ``fit`` reads, from the run's first epoch on.

    ``fit_options``: everything else ``fit`` will be given (callbacks, ``class_weight``, ...), so that the
    run's fingerprint sees it; pass the same dict to ``fit``."""
    fit = fit_settings(**(fit_options or {}))
    run = open_run(
        output_dir,
        fingerprint(model, train_data, val_data, epochs=epochs, batch_size=batch_size, seed=seed, fit=fit),
        overwrite,
    )
    if run.finished:  # reused or fitted: nothing to fit, so no batches to make
        return Run(**vars(run))
    first = run.initial_epoch
    return Run(
        **vars(run),
        train_batches=make_dataset(*train_data, batch_size, seed=seed, first_epoch=first, epochs=epochs),
        val_batches=make_dataset(*val_data, batch_size, shuffle=False),
        steps_per_epoch=steps_per_epoch(len(train_data[0]), batch_size),
    )


def run_callbacks(run: RunFolder) -> list[keras.callbacks.Callback]:
    """The callbacks every run uses (notebook 03 writes the same list out): the epoch timer, one CSV row per
    epoch, and a backup after every epoch, the one before kept too, so that a run killed at any moment
    resumes exactly."""
    return [
        EpochTimer(),
        keras.callbacks.CSVLogger(run.history_csv, append=run.resuming),
        RandomStateBackup(run.backup_dir),
        keras.callbacks.BackupAndRestore(run.backup_dir, double_checkpoint=True),
    ]


@dataclass
class TrainResult:
    """A finished run: the model, its history (one row per epoch), ``metrics.json`` and the files written."""

    model: Any
    history: pd.DataFrame
    metrics: dict[str, Any]
    output_dir: Path
    files: dict[str, Path] = field(default_factory=dict)


def _test_metrics(model: keras.Model, test_data, batch_size: int) -> dict[str, Any]:
    """Loss and accuracy on ``test_data``, with its size and SHA-256 (which test set was measured)."""
    loss, accuracy = model.evaluate(make_dataset(*test_data, batch_size, shuffle=False), verbose=0)
    return {
        "test_loss": float(loss),
        "test_accuracy": float(accuracy),
        "test_size": int(len(test_data[0])),
        "test_data_sha256": data_sha256(*test_data),
    }


def _reuse(run: RunFolder, test_data, extra: dict[str, Any] | None) -> TrainResult:
    """A finished run's results and recorded epoch log, a test evaluation added if asked and not recorded;
    refused for another test set, or a ``model.keras`` other than the one it saved (its recorded SHA-256)."""
    recorded = json.loads((run.path / "metrics.json").read_text())
    tested_on = recorded.get("test_data_sha256")
    if test_data is not None and tested_on is not None:
        check_test_set(run.path / "metrics.json", recorded, test_data)  # refuses another test set
    model_sha256 = file_sha256(run.model_path)
    if recorded.get("model_sha256", model_sha256) != model_sha256:
        raise RunConflictError(
            f"{run.path.name}/model.keras is not the model this run saved (its SHA-256 differs from the "
            "model_sha256 in metrics.json); nothing was loaded or changed. Put back the model this run saved, "
            "or train in another folder."
        )
    model = keras.saving.load_model(run.model_path)
    metrics = recorded | {"model_sha256": model_sha256} | (extra or {})
    if test_data is not None and tested_on is None:
        metrics |= _test_metrics(model, test_data, run.fingerprint["batch_size"])
    if metrics != recorded:
        write_json(run.path / "metrics.json", metrics)
    history = read_history(run)
    print(
        f"Reusing the finished run in {run.path.name}/ (same configuration, finished {metrics['finished_at']}): "
        "its model and history were loaded from disk. Its epochs, as recorded when it trained:"
    )
    print(recorded_log(history))
    return TrainResult(model, history, metrics, run.path)


def recorded_log(history: pd.DataFrame) -> str:
    """A run's ``history.csv`` as one line an epoch, in the words of Keras' own epoch log."""
    total = len(history)
    return "\n".join(
        f"Epoch {int(row.epoch) + 1}/{total} - {row.epoch_seconds:.0f}s - accuracy: {row.accuracy:.4f} - "
        f"loss: {row.loss:.4f} - val_accuracy: {row.val_accuracy:.4f} - val_loss: {row.val_loss:.4f} - "
        f"learning_rate: {row.learning_rate:.4e}"
        for row in history.itertuples()
    )


def _data_metrics(info: DataInfo | None) -> dict[str, Any]:
    """Where the data came from, for ``metrics.json``; sample data is flagged loudly."""
    if info is None:
        return {"dataset": None, "is_sample": False}
    found = {"dataset": info.name, "data_source": info.source, "data_verified": info.verified}
    return found | ({"is_sample": True, "note": SAMPLE_NOTE} if info.is_sample else {"is_sample": False})


def finish_run(
    run: RunFolder,
    model: keras.Model,
    test_data=None,
    *,
    data_info: DataInfo | None = None,
    extra: dict[str, Any] | None = None,
) -> TrainResult:
    """After ``fit``: the de-duplicated history, the test evaluation (if ``test_data``), ``metrics.json``,
    ``history.json`` and ``model.keras``, each written atomically. A reused run: what it recorded then."""
    if run.state == "finished":
        return _reuse(run, test_data, extra)
    if run.state == "fitted":  # killed after fit returned: the set-aside backup holds the trained state
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(run.fitted_dir / BACKUP_WEIGHTS)
    history = read_history(run)
    fp, epoch_seconds = run.fingerprint, [float(s) for s in history["epoch_seconds"]]
    metrics = {
        "status": "complete",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": model.name,
        **_data_metrics(data_info),
        "train_size": fp["train_images"],
        "val_size": fp["val_images"],
        "epochs": fp["epochs"],
        "epochs_completed": int(len(history)),
        "batch_size": fp["batch_size"],
        "seed": fp["seed"],
        "params": fp["params"],
        "optimizer": type(getattr(model.optimizer, "inner_optimizer", model.optimizer)).__name__,
        "final_learning_rate": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
        "dtype_policy": fp["dtype_policy"],
        "final_train_accuracy": float(history["accuracy"].iloc[-1]),
        "final_val_accuracy": float(history["val_accuracy"].iloc[-1]),
        "best_val_accuracy": float(history["val_accuracy"].max()),
        "total_seconds": float(sum(epoch_seconds)),
        "epoch_seconds": epoch_seconds,
        "mean_epoch_seconds": float(np.mean(epoch_seconds)),
        "train_images_per_second": float(fp["train_images"] * len(history) / sum(epoch_seconds)),
        "resumed": run.resuming,
        "fingerprint": fp,
        "machine": machine_info(),
        **(extra or {}),
    }
    if test_data is not None:
        metrics |= _test_metrics(model, test_data, fp["batch_size"])
    files = {
        "history_csv": Path(run.history_csv),
        "history_json": write_json(run.path / "history.json", history.to_dict(orient="list")),
        "model": save_model(model, run.model_path),
    }
    metrics["model_sha256"] = file_sha256(files["model"])
    files["metrics"] = write_json(run.path / "metrics.json", metrics)
    shutil.rmtree(run.fitted_dir, ignore_errors=True)  # the run's files are written: the backup can go
    return TrainResult(model, history, metrics, run.path, files)


def train(
    model: keras.Model,
    train_data,
    val_data,
    test_data=None,
    *,
    output_dir: str | os.PathLike,
    epochs: int = SEED_EPOCHS,
    batch_size: int = SEED_BATCH_SIZE,
    seed: int = 0,
    overwrite: bool = False,
    progress: str = "auto",
    data_info: DataInfo | None = None,
    extra: dict[str, Any] | None = None,
    callbacks: list | None = None,
) -> TrainResult:
    """Fit a compiled model in ``output_dir``: :func:`start_run`, ``fit``, :func:`finish_run`.

    ``train_data``/``val_data``/``test_data`` are ``(x, y)`` uint8 image / int label arrays; ``extra`` is
    merged into ``metrics.json``; ``callbacks`` run after :func:`run_callbacks` (and enter the fingerprint).
    """
    run = start_run(
        output_dir,
        model,
        train_data,
        val_data,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        fit_options={"callbacks": callbacks or []},
        overwrite=overwrite,
    )
    if data_info and data_info.is_sample:
        print(f"*** {SAMPLE_NOTE} ***")
    if not run.finished:
        print(
            f"Training {model.name} ({model.count_params():,} params) on {len(train_data[0]):,} images, "
            f"validating on {len(val_data[0]):,}; {epochs} epochs, batch {batch_size}, seed {seed}"
            + (f"; resuming at epoch {run.initial_epoch + 1}" if run.resuming else "")
        )
        model.fit(
            run.train_batches,
            steps_per_epoch=run.steps_per_epoch,
            validation_data=run.val_batches,
            epochs=epochs,
            verbose=resolve_progress(progress),
            callbacks=[*run_callbacks(run), *(callbacks or [])],
            shuffle=False,  # the batches are already shuffled, per epoch
        )
    result = finish_run(run, model, test_data, data_info=data_info, extra=extra)
    m = result.metrics
    tested = f"; test accuracy {m['test_accuracy']:.4f}" if "test_accuracy" in m else ""
    print(f"Done: {m['epochs_completed']} epochs, {m['mean_epoch_seconds']:.1f} s/epoch{tested}")
    return result
