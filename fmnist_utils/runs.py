"""Run folders: what a run is (its fingerprint), and what happens when a folder already holds one.

A run's folder holds::

    history.csv      one row per epoch (loss, accuracy, val_*, learning_rate, epoch_seconds)
    history.json     the same, as {"metric": [values...]}
    metrics.json     what ran, on what data, for how long, on which machine, and the test result
    model.keras      the trained model
    backup/          only while training: the state after the last finished epoch (weights, optimizer,
                     random generators), the one before it, the SHA-256 of each epoch's weights, and
                     fingerprint.json, so that a run killed at any moment resumes exactly
    fitted/          only between the end of ``fit`` and the run's files being written: the backup, set aside
                     (``BackupAndRestore`` deletes ``backup/`` as ``fit`` returns), so that a kill in that
                     window loses no training

:func:`open_run` is the one place that decides what a folder's earlier contents mean: the same killed run
resumes, the same finished run is reused, and anything else is refused with what differs; nothing is
deleted unless ``overwrite=True`` asks for it, and even then never a run of the same settings. Every file is
written whole or not at all; ``model.keras`` is reused only if its SHA-256 is the one recorded with the run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from fmnist_utils.files import atomic_path, write_json
from fmnist_utils.models import compute_policy
from fmnist_utils.params import shown_path

#: The files a finished run leaves, which ``overwrite=True`` removes along with the backup.
RUN_FILES = ("metrics.json", "model.keras", "history.csv", "history.json")
#: The folders of a run in progress: its backup while training, the same set aside once ``fit`` returned.
BACKUP, FITTED = "backup", "fitted"
#: Keras' files in a backup (BackupAndRestore): the weights and optimizer state, and the epoch a resumed run
#: starts at; with ``double_checkpoint=True`` the previous epoch's pair too, under the same names + ".bkp".
BACKUP_WEIGHTS, TRAINING_METADATA = "latest.weights.h5", "training_metadata.json"
PREVIOUS = ".bkp"
#: Ours, in a backup: the SHA-256 of each backed-up epoch's weights file, by the epoch a resume starts at.
WEIGHTS_RECORD = "weights_sha256.json"
#: Keras' callbacks that record or back up a run without changing what ``fit`` computes: left out of
#: fingerprints (so is any callback whose class sets ``changes_training = False``).
RECORDING_CALLBACKS = {
    "BackupAndRestore",
    "CSVLogger",
    "History",
    "ModelCheckpoint",
    "ProgbarLogger",
    "TensorBoard",
}
#: What every Keras callback holds while ``fit`` runs (its model, fit's parameters): state, not settings.
KERAS_CALLBACK_STATE = frozenset(vars(keras.callbacks.Callback()))
#: ``fit``'s settings when a run records none (runs finished before fingerprints held them).
DEFAULT_FIT: dict[str, Any] = {"callbacks": []}


class RunConflictError(RuntimeError):
    """The folder holds a run (killed or finished) of another configuration."""


def data_sha256(*arrays: np.ndarray) -> str:
    """SHA-256 of the arrays' bytes, in order."""
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


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _described(value: Any) -> Any:
    """A ``fit`` setting as JSON-ready data: arrays by their SHA-256, a callback by its class and settings."""
    if isinstance(value, np.ndarray):
        return {"array_sha256": data_sha256(value), "shape": list(value.shape)}
    if isinstance(value, dict):
        return {str(k): _described(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_described(v) for v in value]
    if isinstance(value, keras.callbacks.Callback):  # its settings: plain values, not paths (where, not what)
        plain = {
            k: v for k, v in vars(value).items() if k not in KERAS_CALLBACK_STATE and not k.startswith("_")
        }
        settings = {k: v for k, v in plain.items() if isinstance(v, (bool, int, float, str, type(None)))}
        return {"callback": type(value).__name__} | {
            k: v for k, v in sorted(settings.items()) if not (isinstance(v, str) and ("/" in v or "\\" in v))
        }
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return {"type": type(value).__name__, "repr": repr(value)}


def fit_settings(**fit_arguments: Any) -> dict[str, Any]:
    """What else ``fit`` is given (callbacks that change training, ``class_weight``, ...) as fingerprint data."""
    callbacks = [
        c
        for c in fit_arguments.pop("callbacks", None) or []
        if type(c).__name__ not in RECORDING_CALLBACKS and getattr(c, "changes_training", True)
    ]
    given = {key: value for key, value in fit_arguments.items() if value is not None}  # None: fit's default
    return {"callbacks": _described(callbacks), **_described(given)}


def library_versions() -> dict[str, str]:
    """The versions that decide what training computes: Keras, its backend, NumPy."""
    backend = keras.backend.backend()
    module = __import__(backend) if backend in ("tensorflow", "jax", "torch") else None
    return {"keras": keras.__version__, backend: getattr(module, "__version__", "?"), "numpy": np.__version__}


def _serialized(obj: Any) -> Any:
    """A compiled model's loss or optimizer as plain JSON-ready data, layer names aside."""
    if obj is None or isinstance(obj, str):
        return obj
    return _without_names(json.loads(json.dumps(keras.saving.serialize_keras_object(obj), default=str)))


def fingerprint(
    model: keras.Model,
    train_data,
    val_data,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    fit: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything that decides what training a *compiled*, untrained model produces: architecture (layer names
    aside), its initial weights and random generators, dtype policy, loss, optimizer and schedule, epochs,
    batch, the shuffling seed, the exact training and validation images, what else ``fit`` is given
    (:func:`fit_settings`) and the library versions. Equal fingerprints: the same run."""
    architecture = json.dumps(_without_names(model.get_config()), sort_keys=True, default=str)
    initial = [keras.ops.convert_to_numpy(v) for v in model.variables]  # layer order: names never matter
    return {
        "architecture_sha256": hashlib.sha256(architecture.encode()).hexdigest(),
        "initial_weights_sha256": data_sha256(*initial),
        "params": int(model.count_params()),
        "dtype_policy": compute_policy(model),
        "loss": _serialized(model.loss),
        "optimizer": _serialized(getattr(model.optimizer, "inner_optimizer", model.optimizer)),
        "epochs": int(epochs),
        "batch_size": int(batch_size),
        "seed": int(seed),
        "train_images": int(len(train_data[0])),
        "val_images": int(len(val_data[0])),
        "train_data_sha256": data_sha256(*train_data),
        "val_data_sha256": data_sha256(*val_data),
        "fit": fit if fit is not None else DEFAULT_FIT,
        "versions": library_versions(),
    }


def comparable(old: dict[str, Any], new: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A recorded fingerprint and a new one, ``fit`` and ``versions`` as runs recorded before them would have."""
    old = {"fit": DEFAULT_FIT} | old
    return old, (new if "versions" in old else {k: v for k, v in new.items() if k != "versions"})


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
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
    """A run's folder and what :func:`open_run` decided for it."""

    path: Path
    fingerprint: dict[str, Any]
    #: "new"; "resume" (a killed run continues); "fitted" (fit returned, the files were not written: write them
    #: from the set-aside backup); "finished" (load it, do not train again)
    state: str
    initial_epoch: int = 0  # the first epoch this session trains

    @property
    def resuming(self) -> bool:
        return self.state == "resume"

    @property
    def finished(self) -> bool:
        """Nothing is left to fit: a finished run is reused, a fitted one recorded."""
        return self.state in ("fitted", "finished")

    @property
    def model_path(self) -> Path:
        return self.path / "model.keras"

    @property
    def backup_dir(self) -> str:
        return str(self.path / BACKUP)

    @property
    def fitted_dir(self) -> Path:
        return self.path / FITTED

    @property
    def history_csv(self) -> str:
        return str(self.path / "history.csv")


def _stamp(folder: Path) -> dict[str, Any]:
    stamp = folder / "fingerprint.json"
    return json.loads(stamp.read_text()) if stamp.is_file() else {}


def _holds_backup(folder: Path) -> bool:
    """Whether ``folder`` holds backed-up weights, the latest epoch's or the one before (a kill may leave one)."""
    return any((folder / name).is_file() for name in (BACKUP_WEIGHTS, BACKUP_WEIGHTS + PREVIOUS))


def _earlier_run(out: Path) -> tuple[str, dict[str, Any]] | None:
    """``(kind, its fingerprint)`` of a run left in ``out``: "finished", "model missing" (a finished run's
    metrics without its model), "fitted" or "killed"; None for no run."""
    metrics = out / "metrics.json"
    if metrics.is_file():
        kind = "finished" if (out / "model.keras").is_file() else "model missing"
        return kind, json.loads(metrics.read_text()).get("fingerprint") or {}
    for kind, folder in (("fitted", out / FITTED), ("killed", out / BACKUP)):
        if _holds_backup(folder):
            return kind, _stamp(folder)
    return None


def _remove_backups(out: Path) -> None:
    for name in (BACKUP, FITTED):
        shutil.rmtree(out / name, ignore_errors=True)


def _remove_run(out: Path) -> None:
    """Delete a run's files and backups from ``out`` (``overwrite=True``, for a run of other settings only)."""
    _remove_backups(out)
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)


def next_epoch(backup: str | os.PathLike) -> int:
    """The epoch a killed run resumes at: the one after its last backed-up epoch (Keras' own record)."""
    meta = Path(backup) / TRAINING_METADATA
    return int(json.loads(meta.read_text())["epoch"]) if meta.is_file() else 0


def random_state_file(backup: str | os.PathLike, epoch: int) -> Path:
    """Where the random generators a resume at ``epoch`` restores are kept."""
    return Path(backup) / f"random_state_{epoch}.npz"


def _weights_record(backup: Path) -> dict[str, str] | None:
    """The SHA-256 of each backed-up epoch's weights; None for a backup that keeps none (or a damaged one)."""
    try:
        return json.loads((backup / WEIGHTS_RECORD).read_text())
    except (OSError, ValueError):
        return None


def record_weights(backup: str | os.PathLike) -> None:
    """Record the backup's weights' SHA-256 for its epoch (only once Keras has written both files whole)."""
    backup = Path(backup)
    if (backup / BACKUP_WEIGHTS).is_file() and (backup / TRAINING_METADATA).is_file():
        record = (_weights_record(backup) or {}) | {
            str(next_epoch(backup)): file_sha256(backup / BACKUP_WEIGHTS)
        }
        write_json(backup / WEIGHTS_RECORD, record)


def _whole_state(backup: Path, suffix: str, record: dict[str, str] | None) -> int | None:
    """The epoch of the backup's files ending in ``suffix`` if they are whole and belong together; else None."""
    weights = backup / (BACKUP_WEIGHTS + suffix)
    try:
        epoch = int(json.loads((backup / (TRAINING_METADATA + suffix)).read_text())["epoch"])
        np.load(random_state_file(backup, epoch)).close()
        whole = record is None or record.get(str(epoch)) == file_sha256(weights)  # None: an older backup
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return epoch if whole and weights.is_file() else None


def repair_backup(backup: str | os.PathLike) -> int:
    """Leave Keras' backup whole after a kill at any point of its write (the recorded SHA-256 tells), and return
    the epoch a resume starts at: the latest epoch's if it is whole, else the one before's, else 0."""
    backup = Path(backup)
    record = _weights_record(backup)
    if _whole_state(backup, "", record) is not None:
        return next_epoch(backup)
    previous = _whole_state(backup, PREVIOUS, record)
    for name in (BACKUP_WEIGHTS, TRAINING_METADATA):
        if previous is None:
            (backup / name).unlink(missing_ok=True)
        else:
            with atomic_path(backup / name) as tmp:
                shutil.copyfile(backup / (name + PREVIOUS), tmp)
    return previous or 0


def _model_missing(out: Path) -> RunConflictError:
    return RunConflictError(
        f"{shown_path(out)} holds a finished run whose model.keras is missing (its metrics.json and history "
        "are there); it is kept. Restore the model.keras this run saved (metrics.json records its model_sha256) "
        "to reuse the run; to keep it, give this run another folder; to train it again here, pass "
        "overwrite=True (in notebook 03 the parameter overwrite = True)."
    )


def open_run(
    output_dir: str | os.PathLike, run_fingerprint: dict[str, Any], overwrite: bool = False
) -> RunFolder:
    """Decide what a run does in ``output_dir``: the same run resumes or is reused (``overwrite`` or not);
    another is refused with what differs, deleting nothing, or with ``overwrite=True`` replaced."""
    out = Path(output_dir)
    earlier = _earlier_run(out)
    if earlier is not None:
        kind, old = earlier
        changed = kind == "model missing" or differences(*comparable(old, run_fingerprint))
        if not changed:
            return _continued(out, kind, run_fingerprint)
        if not overwrite:
            raise _model_missing(out) if kind == "model missing" else _conflict(out, kind, changed)
        _remove_run(out)
    _remove_backups(out)  # a new run restores nothing an earlier one left
    write_json(out / BACKUP / "fingerprint.json", run_fingerprint)
    return RunFolder(out, run_fingerprint, "new")


def _continued(out: Path, kind: str, run_fingerprint: dict[str, Any]) -> RunFolder:
    """The same run found in ``out``: reused (finished), recorded (fitted) or resumed (killed)."""
    if kind in ("finished", "fitted"):
        return RunFolder(out, run_fingerprint, kind)
    return RunFolder(out, run_fingerprint, "resume", repair_backup(out / BACKUP))


def _conflict(out: Path, kind: str, changed: list[str]) -> RunConflictError:
    return RunConflictError(
        f"{shown_path(out)} holds a {kind} run of another configuration; it is kept:\n  "
        + "\n  ".join(changed)
        + "\nTo keep both, give this run another folder; to replace the earlier run, pass "
        "overwrite=True (in notebook 03 the parameter overwrite = True)."
    )


def read_history(run: RunFolder | str | os.PathLike) -> pd.DataFrame:
    """The run's ``history.csv`` with each epoch once, rewritten so on disk too: a run killed between writing
    an epoch's row and its backup repeats that epoch on resume, and the repeat's row is the one that counts."""
    path = Path(run.history_csv if isinstance(run, RunFolder) else Path(run) / "history.csv")
    raw = pd.read_csv(path)
    history = raw.drop_duplicates("epoch", keep="last").reset_index(drop=True)
    if len(history) < len(raw):
        with atomic_path(path) as tmp:
            history.to_csv(tmp, index=False)
    return history


def save_model(model: keras.Model, path: str | os.PathLike) -> Path:
    """``model.save`` to ``path`` (a ``.keras`` file) atomically."""
    with atomic_path(path) as tmp:
        model.save(tmp)
    return Path(path)


def update_metrics(
    output_dir: str | os.PathLike, updates: dict[str, Any], test_data: tuple | None = None
) -> dict[str, Any]:
    """Merge ``updates`` into a finished run's ``metrics.json``; a test result (a key naming ``test`` or
    ``evaluation``) only with its ``test_data``, recorded by SHA-256, and never over another test set's."""
    path = Path(output_dir) / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"No metrics.json in {output_dir}: train first.")
    metrics = json.loads(path.read_text())
    if any("test" in key or "evaluation" in key for key in updates):
        updates = updates | check_test_set(path, metrics, test_data)
    metrics |= updates
    write_json(path, metrics)
    return metrics


def check_test_set(path: Path, metrics: dict[str, Any], test_data: tuple | None) -> dict[str, Any]:
    """``test_size`` and ``test_data_sha256`` of ``test_data``, if the run (its ``metrics.json`` at ``path``)
    holds no result of another test set."""
    if test_data is None:
        raise ValueError(
            f"A test result for {shown_path(path)} needs test_data=(x_test, y_test), the test set."
        )
    tested = {"test_size": int(len(test_data[0])), "test_data_sha256": data_sha256(*test_data)}
    earlier = {key: metrics[key] for key in tested if key in metrics}
    if any(tested[key] != value for key, value in earlier.items()):
        raise RunConflictError(
            f"The run in {shown_path(path.parent)} was tested on another test set ({metrics.get('test_size')} "
            "images); its recorded test result is kept. Evaluate its model.keras yourself, or train in another "
            "folder."
        )
    return tested


def load_run(output_dir: str | os.PathLike) -> tuple[dict[str, Any], pd.DataFrame]:
    """Read a finished run's ``metrics.json`` and ``history.csv`` (as a DataFrame, each epoch once)."""
    out = Path(output_dir)
    metrics_path, history_path = out / "metrics.json", out / "history.csv"
    missing = [str(p) for p in (metrics_path, history_path) if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"No finished training run in {out}: missing {', '.join(missing)}.")
    return json.loads(metrics_path.read_text()), read_history(out)
