"""Run folders: what a run is (its fingerprint), and what happens when a folder already holds one.

A run's folder holds::

    history.csv      one row per epoch (loss, accuracy, val_*, learning_rate, epoch_seconds)
    history.json     the same, as {"metric": [values...]}
    metrics.json     what ran, on what data, for how long, on which machine, and the test result
    model.keras      the trained model
    backup/          only while training: the state after the last finished epoch (weights, optimizer,
                     random generators) and fingerprint.json, so that a killed run resumes exactly
    fitted/          only between the end of ``fit`` and the run's files being written: the backup, set aside
                     (``BackupAndRestore`` deletes ``backup/`` as ``fit`` returns), so that a kill in that
                     window loses no training

:func:`open_run` is the one place that decides what a folder's earlier contents mean: the same killed run
resumes, the same finished run is reused, and anything else is refused with what differs; nothing is
deleted unless ``overwrite=True`` asks for it. Every file is written whole or not at all.
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
#: starts at.
BACKUP_WEIGHTS, TRAINING_METADATA = "latest.weights.h5", "training_metadata.json"


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


def _serialized(obj: Any) -> Any:
    """A compiled model's loss or optimizer as plain JSON-ready data, layer names aside."""
    if obj is None or isinstance(obj, str):
        return obj
    return _without_names(json.loads(json.dumps(keras.saving.serialize_keras_object(obj), default=str)))


def fingerprint(
    model: keras.Model, train_data, val_data, *, epochs: int, batch_size: int, seed: int
) -> dict[str, Any]:
    """Everything that decides what training a *compiled*, untrained model produces: architecture (layer names
    aside), its initial weights and random generators, dtype policy, loss, optimizer and schedule, epochs,
    batch, the shuffling seed and the exact training and validation images. Equal fingerprints: the same run."""
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
    }


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


def _earlier_run(out: Path) -> tuple[str, dict[str, Any]] | None:
    """``(kind, its fingerprint)`` of a run left in ``out``: "finished", "model missing" (a finished run's
    metrics without its model), "fitted" or "killed"; None for no run."""
    metrics = out / "metrics.json"
    if metrics.is_file():
        kind = "finished" if (out / "model.keras").is_file() else "model missing"
        return kind, json.loads(metrics.read_text()).get("fingerprint") or {}
    for kind, folder in (("fitted", out / FITTED), ("killed", out / BACKUP)):
        if (folder / BACKUP_WEIGHTS).is_file():
            return kind, _stamp(folder)
    return None


def _remove_backups(out: Path) -> None:
    for name in (BACKUP, FITTED):
        shutil.rmtree(out / name, ignore_errors=True)


def _remove_run(out: Path) -> None:
    """Delete a run's files and backups from ``out`` (only for ``overwrite=True``)."""
    _remove_backups(out)
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)


def next_epoch(backup: str | os.PathLike) -> int:
    """The epoch a killed run resumes at: the one after its last backed-up epoch (Keras' own record)."""
    meta = Path(backup) / TRAINING_METADATA
    return int(json.loads(meta.read_text())["epoch"]) if meta.is_file() else 0


def _model_missing(out: Path) -> RunConflictError:
    return RunConflictError(
        f"{shown_path(out)} holds a finished run whose model.keras is missing (its metrics.json and history "
        "are there); it is kept. Put model.keras back to reuse the run; to keep it, give this run another "
        "folder; to train it again here, pass overwrite=True (in notebook 03 the parameter overwrite = True)."
    )


def open_run(
    output_dir: str | os.PathLike, run_fingerprint: dict[str, Any], overwrite: bool = False
) -> RunFolder:
    """Decide what a run with ``run_fingerprint`` does in ``output_dir``.

    The folder's earlier run, if any, with the same fingerprint: a killed one resumes, a fitted one is
    recorded, a finished one is reused. With another fingerprint, or a finished run's model missing:
    :class:`RunConflictError` says what is wrong and deletes nothing, unless ``overwrite=True``, which removes
    the earlier run and starts afresh. A new run starts with no backup left by an earlier one.
    """
    out = Path(output_dir)
    earlier = _earlier_run(out)
    if earlier is not None and overwrite:
        _remove_run(out)
    elif earlier is not None:
        kind, old = earlier
        if kind == "model missing":
            raise _model_missing(out)
        changed = differences(old, run_fingerprint)
        if changed:
            raise RunConflictError(
                f"{shown_path(out)} holds a {kind} run of another configuration; it is kept:\n  "
                + "\n  ".join(changed)
                + "\nTo keep both, give this run another folder; to replace the earlier run, pass "
                "overwrite=True (in notebook 03 the parameter overwrite = True)."
            )
        if kind in ("finished", "fitted"):
            return RunFolder(out, run_fingerprint, kind)
        return RunFolder(out, run_fingerprint, "resume", next_epoch(out / BACKUP))
    _remove_backups(out)  # a new run restores nothing an earlier one left
    write_json(out / BACKUP / "fingerprint.json", run_fingerprint)
    return RunFolder(out, run_fingerprint, "new")


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


def update_metrics(output_dir: str | os.PathLike, updates: dict[str, Any]) -> dict[str, Any]:
    """Merge ``updates`` (e.g. an evaluation) into a finished run's ``metrics.json``, atomically."""
    path = Path(output_dir) / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"No metrics.json in {output_dir}: train first.")
    metrics = json.loads(path.read_text()) | updates
    write_json(path, metrics)
    return metrics


def load_run(output_dir: str | os.PathLike) -> tuple[dict[str, Any], pd.DataFrame]:
    """Read a finished run's ``metrics.json`` and ``history.csv`` (as a DataFrame, each epoch once)."""
    out = Path(output_dir)
    metrics_path, history_path = out / "metrics.json", out / "history.csv"
    missing = [str(p) for p in (metrics_path, history_path) if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"No finished training run in {out}: missing {', '.join(missing)}.")
    return json.loads(metrics_path.read_text()), read_history(out)
