"""Train a model with the seed's protocol, timing every epoch and writing every artefact of the run.

An output folder of a run holds::

    history.csv      one row per epoch (loss, accuracy, val_*, learning_rate, epoch_seconds)
    history.json     the same, as {"metric": [values...]}
    metrics.json     what ran, on what data, for how long, on which machine, and the test result
    model.keras      the trained model
    backup/          only while training: Keras' BackupAndRestore state, so a killed run resumes

Every file is written to a temporary name and renamed into place, so nothing is ever half written.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from fmnist_utils.data import DataInfo, make_tf_dataset

PROGRESS = ("auto", "bar", "epoch", "none")
ENV_PROGRESS = "FMNIST_PROGRESS"
SEED_EPOCHS = 30
SEED_BATCH_SIZE = 256


# ----------------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------------

def set_seed(seed: int) -> None:
    """Start a new model from a clean, deterministic state: clear Keras' session, seed Python/NumPy/TF."""
    import keras

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
            raise ValueError(f"Environment variable {ENV_PROGRESS}={progress!r} is not one of "
                             f"{', '.join(map(repr, PROGRESS))}.")
    if progress == "auto":
        interactive = sys.stdout.isatty() or "JPY_SESSION_NAME" in os.environ
        progress = "bar" if interactive else "epoch"
    return {"bar": 1, "epoch": 2, "none": 0}[progress]


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write JSON atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")
    os.replace(tmp, path)
    return path


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def machine_info() -> dict[str, Any]:
    """The hardware and software a run used (for metrics files and benchmark tables)."""
    import keras
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "gpus": gpus,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


# ----------------------------------------------------------------------------------------------------
# Callbacks
# ----------------------------------------------------------------------------------------------------

def _epoch_stats():
    import keras

    class EpochStats(keras.callbacks.Callback):
        """Adds ``epoch_seconds`` (wall time, validation included) and the ``learning_rate`` reached."""

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs["epoch_seconds"] = time.perf_counter() - self._start
                logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    return EpochStats()


# ----------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------

@dataclass
class TrainResult:
    """What :func:`train` produced."""

    model: Any
    history: Any  # pandas DataFrame, one row per epoch (all epochs, also across a resume)
    metrics: dict[str, Any]
    output_dir: Path
    files: dict[str, Path] = field(default_factory=dict)


def train(model, train_data, val_data, test_data=None, *, output_dir: str | os.PathLike,
          epochs: int = SEED_EPOCHS, batch_size: int = SEED_BATCH_SIZE, seed: int = 0, optimizer=None,
          progress: str = "auto", resume: bool = True, data_info: DataInfo | None = None,
          extra: dict[str, Any] | None = None, callbacks: list | None = None,
          label_smoothing: float = 0.0) -> TrainResult:
    """Compile (seed loss/metric, seed optimizer unless given) and fit, then evaluate and save everything.

    ``train_data``/``val_data``/``test_data`` are ``(x, y)`` uint8 image / int label arrays; they are fed
    through :func:`fmnist_utils.data.make_tf_dataset`. With ``resume=True`` a run that was killed
    continues from its last finished epoch (the ``backup/`` folder in ``output_dir``).
    ``extra`` is merged into ``metrics.json`` (e.g. the split seed, a train limit).
    """
    import keras
    import pandas as pd

    from fmnist_utils.models import compile_seed_model

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    verbose = resolve_progress(progress)
    backup_dir = out / "backup"
    resuming = resume and backup_dir.is_dir() and any(backup_dir.iterdir())
    if not resume and backup_dir.exists():
        shutil.rmtree(backup_dir)
    is_sample = bool(data_info and data_info.is_sample)
    banner = "*** SAMPLE DATA: results are NOT comparable with the full dataset ***" if is_sample else ""

    compile_seed_model(model, optimizer, label_smoothing)
    history_csv = out / "history.csv"
    run_callbacks = [
        _epoch_stats(),
        keras.callbacks.CSVLogger(str(history_csv), append=resuming),
        keras.callbacks.BackupAndRestore(str(backup_dir)),
        *(callbacks or []),
    ]
    (x_tr, y_tr), (x_val, y_val) = train_data, val_data
    train_ds = make_tf_dataset(x_tr, y_tr, batch_size, shuffle=True, seed=seed)
    val_ds = make_tf_dataset(x_val, y_val, batch_size, shuffle=False)

    if banner:
        print(banner)
    print(f"Training {model.name} ({model.count_params():,} params) on {len(x_tr):,} images, "
          f"validating on {len(x_val):,}; {epochs} epochs, batch {batch_size}, seed {seed}"
          + (f"; resuming from {backup_dir}" if resuming else ""))
    start = time.perf_counter()
    model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=verbose, callbacks=run_callbacks,
              shuffle=False)  # the tf.data pipeline already reshuffles every epoch
    session_seconds = time.perf_counter() - start

    # A run killed between writing the CSV row and the backup repeats that epoch: keep its last row.
    history = pd.read_csv(history_csv).drop_duplicates("epoch", keep="last").reset_index(drop=True)
    epoch_seconds = [float(s) for s in history["epoch_seconds"]]
    metrics: dict[str, Any] = {
        "status": "complete",
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": model.name,
        "params": int(model.count_params()),
        "dataset": data_info.name if data_info else None,
        "data_source": data_info.source if data_info else None,
        "data_location": data_info.location if data_info else None,
        "data_verified": data_info.verified if data_info else None,
        "is_sample": is_sample,
        "train_size": int(len(x_tr)),
        "val_size": int(len(x_val)),
        "test_size": int(len(test_data[0])) if test_data is not None else None,
        "epochs": int(epochs),
        "epochs_completed": int(len(history)),
        "batch_size": int(batch_size),
        "seed": int(seed),
        "optimizer": type(model.optimizer).__name__,
        "final_learning_rate": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
        "dtype_policy": model.layers[0].dtype_policy.name,
        "final_train_accuracy": float(history["accuracy"].iloc[-1]),
        "final_val_accuracy": float(history["val_accuracy"].iloc[-1]),
        "best_val_accuracy": float(history["val_accuracy"].max()),
        "total_seconds": float(sum(epoch_seconds)),
        "seconds_this_session": float(session_seconds),
        "epoch_seconds": epoch_seconds,
        "mean_epoch_seconds": float(np.mean(epoch_seconds)),
        "train_images_per_second": float(len(x_tr) * len(history) / sum(epoch_seconds)),
        "resumed": bool(resuming),
        "machine": machine_info(),
    }
    if is_sample:
        metrics["note"] = "SAMPLE DATA: trained and tested on the small bundled sample, not the full dataset"
    metrics.update(extra or {})
    if test_data is not None:
        test_ds = make_tf_dataset(*test_data, batch_size=batch_size, shuffle=False, cache=False)
        test_loss, test_acc = model.evaluate(test_ds, verbose=0)
        metrics["test_loss"], metrics["test_accuracy"] = float(test_loss), float(test_acc)

    files = {
        "history_csv": history_csv,
        "history_json": write_json(out / "history.json", history.to_dict(orient="list")),
        "model": _save_model(model, out / "model.keras"),
        "metrics": write_json(out / "metrics.json", metrics),
    }
    summary = f"Done: {len(history)} epochs in {sum(epoch_seconds):.1f}s ({np.mean(epoch_seconds):.1f}s/epoch)"
    if "test_accuracy" in metrics:
        summary += f"; test accuracy {metrics['test_accuracy']:.4f}"
    print(summary + (f"  [{banner}]" if banner else ""))
    return TrainResult(model, history, metrics, out, files)


def _save_model(model, path: Path) -> Path:
    tmp = path.with_name(f".tmp-{path.name}")
    model.save(tmp)
    os.replace(tmp, path)
    return path


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
    """Read a finished run's ``metrics.json`` and ``history.csv`` (as a DataFrame)."""
    import pandas as pd

    out = Path(output_dir)
    metrics_path, history_path = out / "metrics.json", out / "history.csv"
    missing = [str(p) for p in (metrics_path, history_path) if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"No finished training run in {out}: missing {', '.join(missing)}.")
    return json.loads(metrics_path.read_text()), pd.read_csv(history_path)
