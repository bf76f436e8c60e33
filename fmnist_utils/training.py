"""Train a model with the seed's protocol, timing every epoch and writing every artefact of the run.

An output folder of a run holds::

    history.csv      one row per epoch (loss, accuracy, val_*, learning_rate, epoch_seconds)
    history.json     the same, as {"metric": [values...]}
    metrics.json     what ran, on what data, for how long, on which machine, and the test result
    model.keras      the trained model
    backup/          only while training: Keras' BackupAndRestore state, so a killed run resumes, and
                     fingerprint.json, the run's configuration: only the same configuration resumes

Every file is written to a temporary name and renamed into place, so nothing is ever half written.
"""

from __future__ import annotations

import hashlib
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

from fmnist_utils.data import DataInfo, make_dataset
from fmnist_utils.files import atomic_path, write_json
from fmnist_utils.models import compile_seed_model, compute_policy

PROGRESS = ("auto", "bar", "epoch", "none")
ENV_PROGRESS = "FMNIST_PROGRESS"
SEED_EPOCHS = 30
SEED_BATCH_SIZE = 256


# ----------------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------------


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
    if progress not in PROGRESS:
        raise ValueError(f"Unknown progress {progress!r}. Valid values: {', '.join(map(repr, PROGRESS))}.")
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


def machine_info() -> dict[str, Any]:
    """The hardware and software a run used (for metrics files and benchmark tables), on any Keras backend."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
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
        "cpu_count": os.cpu_count(),
        "gpus": gpus,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "backend": backend,
        **versions,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


# ----------------------------------------------------------------------------------------------------
# Callbacks
# ----------------------------------------------------------------------------------------------------


class EpochTimer(keras.callbacks.Callback):
    """Adds ``epoch_seconds`` (wall time, validation included) and the ``learning_rate`` reached to each
    epoch's logs, so that CSVLogger writes them beside the loss and accuracy."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._start
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


# ----------------------------------------------------------------------------------------------------
# Run folders: what a run is (its fingerprint), starting or resuming it, and its bookkeeping after fit
# ----------------------------------------------------------------------------------------------------


class ResumeMismatchError(RuntimeError):
    """A backup in the run folder was left by a run with another configuration."""


def _sha256(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _without_names(config: Any) -> Any:
    """A Keras config with every ``name`` removed: names (``dense_3``...) never change what a model computes."""
    if isinstance(config, dict):
        return {k: _without_names(v) for k, v in config.items() if k != "name"}
    if isinstance(config, list):
        return [_without_names(v) for v in config]
    return config


def _serialized(obj: Any) -> Any:
    """A compiled model's loss or optimizer as plain JSON-ready data."""
    if obj is None or isinstance(obj, str):
        return obj
    return json.loads(json.dumps(keras.saving.serialize_keras_object(obj), default=str, sort_keys=True))


def fingerprint(
    model: keras.Model, train_data, val_data, *, epochs: int, batch_size: int, seed: int
) -> dict[str, Any]:
    """Everything that decides what a *compiled* model's training produces: architecture (layer names
    aside), dtype policy, loss, optimizer and its schedule, epochs, batch, seed and the exact training and
    validation images. Two runs with equal fingerprints are the same experiment."""
    architecture = json.dumps(_without_names(model.get_config()), sort_keys=True, default=str)
    optimizer = _without_names(_serialized(getattr(model.optimizer, "inner_optimizer", model.optimizer)))
    return {
        "architecture_sha256": hashlib.sha256(architecture.encode()).hexdigest(),
        "params": int(model.count_params()),
        "dtype_policy": compute_policy(model),
        "loss": _without_names(_serialized(model.loss)),
        "optimizer": optimizer,
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "seed": int(seed),
        "train_images": int(len(train_data[0])),
        "val_images": int(len(val_data[0])),
        "train_data_sha256": _sha256(*train_data),
        "val_data_sha256": _sha256(*val_data),
    }


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for every key whose value differs (long values shortened)."""

    def short(value: Any) -> str:
        text = json.dumps(value, sort_keys=True, default=str)
        return text if len(text) <= 60 else text[:57] + "..."

    return [
        f"{key}: {short(old.get(key))} -> {short(new.get(key))}"
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    ]


@dataclass
class RunFolder:
    """A run's folder and files; :func:`start_run` makes one."""

    path: Path
    fingerprint: dict[str, Any]
    resuming: bool  # a killed run with the same fingerprint left a backup: fit continues from it
    finished: bool = False  # this very run completed before: load its model (model_path), do not fit again

    @property
    def model_path(self) -> Path:
        """The trained model, saved by :func:`finish_run`."""
        return self.path / "model.keras"

    @property
    def backup_dir(self) -> str:
        """BackupAndRestore's folder: exists only while the run trains."""
        return str(self.path / "backup")

    @property
    def history_csv(self) -> str:
        """CSVLogger's file: one row per epoch."""
        return str(self.path / "history.csv")


def start_run(
    output_dir: str | os.PathLike, run_fingerprint: dict[str, Any], resume: bool = True
) -> RunFolder:
    """Prepare ``output_dir`` for a run with ``run_fingerprint``. A backup left by a killed run is resumed only
    if its fingerprint is the same; otherwise ResumeMismatchError says what differs (nothing is deleted).
    ``resume=False`` discards any backup and starts fresh. A run that already finished in ``output_dir`` with
    this fingerprint is marked ``finished``: load its model rather than training it again."""
    out = Path(output_dir)
    backup = out / "backup"
    stamp = backup / "fingerprint.json"
    if not resume and backup.exists():
        shutil.rmtree(backup)
    resuming = (backup / "latest.weights.h5").is_file()
    if resuming:
        old = json.loads(stamp.read_text()) if stamp.is_file() else {}
        differences = _differences(old, run_fingerprint)
        if differences:
            raise ResumeMismatchError(
                f"{backup} holds a killed run with another configuration, so it cannot be resumed:\n  "
                + "\n  ".join(differences or ["(no fingerprint recorded)"])
                + f"\nTo start this run fresh, delete {backup} (or pass resume=False); to resume the old one, "
                "run it with its own settings."
            )
    elif _finished_fingerprint(out) == run_fingerprint and resume:
        return RunFolder(out, run_fingerprint, resuming=False, finished=True)
    else:
        write_json(stamp, run_fingerprint)
    return RunFolder(out, run_fingerprint, resuming)


def _finished_fingerprint(out: Path) -> dict[str, Any] | None:
    """The fingerprint of a run that completed in ``out`` (metrics and model saved), else None."""
    metrics = out / "metrics.json"
    if not (metrics.is_file() and (out / "model.keras").is_file()):
        return None
    return json.loads(metrics.read_text()).get("fingerprint")


def run_callbacks(run: RunFolder) -> list[keras.callbacks.Callback]:
    """The callbacks every run uses (notebook 03 writes the same list out): the epoch timer, one CSV row per
    epoch, and a backup after every epoch so that a killed run resumes."""
    return [
        EpochTimer(),
        keras.callbacks.CSVLogger(run.history_csv, append=run.resuming),
        keras.callbacks.BackupAndRestore(run.backup_dir),
    ]


def read_history(run: RunFolder | str | os.PathLike):
    """The run's ``history.csv`` with each epoch once, rewritten so on disk too: a run killed between writing
    an epoch's row and its backup repeats that epoch on resume, and the repeat's row is the one that counts."""
    import pandas as pd

    path = Path(run.history_csv if isinstance(run, RunFolder) else Path(run) / "history.csv")
    raw = pd.read_csv(path)
    history = raw.drop_duplicates("epoch", keep="last").reset_index(drop=True)
    if len(history) < len(raw):
        with atomic_path(path) as tmp:
            history.to_csv(tmp, index=False)
    return history


def finish_run(
    run: RunFolder,
    model: keras.Model,
    test_data=None,
    *,
    data_info: DataInfo | None = None,
    train_seconds: float | None = None,
    extra: dict[str, Any] | None = None,
) -> TrainResult:
    """After ``fit``: the de-duplicated history, the test evaluation (if ``test_data``), ``metrics.json``,
    ``history.json`` and ``model.keras``, each written atomically. For a ``finished`` run, what it wrote then."""
    history = read_history(run)
    if run.finished:
        metrics = json.loads((run.path / "metrics.json").read_text())
        print(
            f"This run finished earlier ({metrics['finished_at']}, {len(history)} epochs): its model and history "
            f"were loaded from {run.path}, not trained again."
        )
        return TrainResult(model, history, metrics, run.path, {})
    fp, epoch_seconds = run.fingerprint, [float(s) for s in history["epoch_seconds"]]
    is_sample = bool(data_info and data_info.is_sample)
    metrics: dict[str, Any] = {
        "status": "complete",
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": model.name,
        "params": fp["params"],
        "dataset": data_info.name if data_info else None,
        "data_source": data_info.source if data_info else None,
        "data_location": data_info.location if data_info else None,
        "data_verified": data_info.verified if data_info else None,
        "is_sample": is_sample,
        "train_size": fp["train_images"],
        "val_size": fp["val_images"],
        "test_size": int(len(test_data[0])) if test_data is not None else None,
        "epochs": fp["epochs"],
        "epochs_completed": int(len(history)),
        "batch_size": fp["batch_size"],
        "seed": fp["seed"],
        "optimizer": type(getattr(model.optimizer, "inner_optimizer", model.optimizer)).__name__,
        "final_learning_rate": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
        "dtype_policy": fp["dtype_policy"],
        "final_train_accuracy": float(history["accuracy"].iloc[-1]),
        "final_val_accuracy": float(history["val_accuracy"].iloc[-1]),
        "best_val_accuracy": float(history["val_accuracy"].max()),
        "total_seconds": float(sum(epoch_seconds)),
        "seconds_this_session": train_seconds,
        "epoch_seconds": epoch_seconds,
        "mean_epoch_seconds": float(np.mean(epoch_seconds)),
        "train_images_per_second": float(fp["train_images"] * len(history) / sum(epoch_seconds)),
        "resumed": run.resuming,
        "fingerprint": fp,
        "machine": machine_info(),
    }
    if is_sample:
        metrics["note"] = "SAMPLE DATA: trained and tested on the small bundled sample, not the full dataset"
    metrics.update(extra or {})
    if test_data is not None:
        test_ds = make_dataset(*test_data, batch_size=fp["batch_size"], shuffle=False)
        test_loss, test_acc = model.evaluate(test_ds, verbose=0)
        metrics["test_loss"], metrics["test_accuracy"] = float(test_loss), float(test_acc)
    files = {
        "history_csv": Path(run.history_csv),
        "history_json": write_json(run.path / "history.json", history.to_dict(orient="list")),
        "model": save_model(model, run.path / "model.keras"),
        "metrics": write_json(run.path / "metrics.json", metrics),
    }
    return TrainResult(model, history, metrics, run.path, files)


def save_model(model: keras.Model, path: str | os.PathLike) -> Path:
    """``model.save`` to ``path`` (a ``.keras`` file) atomically."""
    with atomic_path(path) as tmp:
        model.save(tmp)
    return Path(path)


# ----------------------------------------------------------------------------------------------------
# Training, for scripts and notebook 05 (notebook 03 writes the same steps out)
# ----------------------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    """What :func:`train` produced."""

    model: Any
    history: Any  # pandas DataFrame, one row per epoch (all epochs, also across a resume)
    metrics: dict[str, Any]
    output_dir: Path
    files: dict[str, Path] = field(default_factory=dict)


def train(
    model,
    train_data,
    val_data,
    test_data=None,
    *,
    output_dir: str | os.PathLike,
    epochs: int = SEED_EPOCHS,
    batch_size: int = SEED_BATCH_SIZE,
    seed: int = 0,
    optimizer=None,
    progress: str = "auto",
    resume: bool = True,
    data_info: DataInfo | None = None,
    extra: dict[str, Any] | None = None,
    callbacks: list | None = None,
    label_smoothing: float = 0.0,
    numerics: str = "keras3",
) -> TrainResult:
    """Compile (seed loss and metric; the seed optimizer unless given), start or resume the run folder, fit,
    then :func:`finish_run`. ``train_data``/``val_data``/``test_data`` are ``(x, y)`` uint8 image / int label
    arrays, fed through :func:`fmnist_utils.data.make_dataset`. ``extra`` is merged into ``metrics.json``."""
    compile_seed_model(model, optimizer, label_smoothing, numerics)
    run = start_run(
        output_dir,
        fingerprint(model, train_data, val_data, epochs=epochs, batch_size=batch_size, seed=seed),
        resume,
    )
    (x_tr, y_tr), (x_val, y_val) = train_data, val_data
    banner = "*** SAMPLE DATA: results are NOT comparable with the full dataset ***"
    if data_info and data_info.is_sample:
        print(banner)
    print(
        f"Training {model.name} ({model.count_params():,} params) on {len(x_tr):,} images, "
        f"validating on {len(x_val):,}; {epochs} epochs, batch {batch_size}, seed {seed}"
        + (f"; resuming from {run.backup_dir}" if run.resuming else "")
    )
    start = time.perf_counter()
    if run.finished:
        model = keras.saving.load_model(run.model_path)
    else:
        model.fit(
            make_dataset(x_tr, y_tr, batch_size, shuffle=True, seed=seed),
            validation_data=make_dataset(x_val, y_val, batch_size, shuffle=False),
            epochs=epochs,
            verbose=resolve_progress(progress),
            callbacks=[*run_callbacks(run), *(callbacks or [])],
            shuffle=False,
        )  # the input pipeline already reshuffles every epoch
    result = finish_run(
        run,
        model,
        test_data,
        data_info=data_info,
        train_seconds=time.perf_counter() - start,
        extra={"numerics": numerics, **(extra or {})},
    )
    summary = (
        f"Done: {len(result.history)} epochs in {result.metrics['total_seconds']:.1f}s "
        f"({result.metrics['mean_epoch_seconds']:.1f}s/epoch)"
    )
    if "test_accuracy" in result.metrics:
        summary += f"; test accuracy {result.metrics['test_accuracy']:.4f}"
    print(summary + (f"  [{banner}]" if data_info and data_info.is_sample else ""))
    return result


def update_metrics(output_dir: str | os.PathLike, updates: dict[str, Any]) -> dict[str, Any]:
    """Merge ``updates`` (e.g. an evaluation) into a finished run's ``metrics.json``, atomically."""
    path = Path(output_dir) / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"No metrics.json in {output_dir}: train first.")
    metrics = json.loads(path.read_text())
    metrics.update(updates)
    write_json(path, metrics)
    return metrics


def load_run(output_dir: str | os.PathLike) -> tuple[dict[str, Any], Any]:
    """Read a finished run's ``metrics.json`` and ``history.csv`` (as a DataFrame, each epoch once)."""
    out = Path(output_dir)
    metrics_path, history_path = out / "metrics.json", out / "history.csv"
    missing = [str(p) for p in (metrics_path, history_path) if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"No finished training run in {out}: missing {', '.join(missing)}.")
    return json.loads(metrics_path.read_text()), read_history(out)
