"""The faithful seed protocol on any Keras backend, for several seeds and both numerics (maintainer tool).

``KERAS_BACKEND=jax python -m tools.seed_protocol_any_backend --output numerics.json`` trains the seed
model with the seed's protocol (85/15 split, 30 epochs, batch 256, raw pixels, float32 with full-precision
matrix products) once per seed and per ``numerics`` (``keras3``: today's loss and Adam; ``keras2``: the
2017 clipped loss and Adam epsilon 1e-8), seeds and numerics interleaved, and writes every run's history
and test accuracy to JSON after each run. An existing ``--output`` of the same settings and machine keeps
its runs (those asked again are not rerun), so a series resumes or grows; a file of other settings is refused
and kept. It uses NumPy arrays and Keras alone (no TensorFlow), so it runs where TensorFlow is not
installed, such as a GPU machine with JAX: a quick way to measure whether the 2017 numerics move the result
beyond the seed-to-seed spread.

Keras 3 computes its cross-entropy from the logits, unclipped, only on TensorFlow (from the tensor under the
softmax); on JAX and PyTorch it clips the probabilities as Keras 2 did. ``--from-logits`` makes the comparison
hold on any backend: the network's last layer outputs its scores and both losses start from them (Keras 3:
log-softmax, unclipped; Keras 2: softmax, renormalise, clip, log).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fmnist_utils.data import load_dataset, train_val_split
from fmnist_utils.files import write_json
from fmnist_utils.models import (
    NUMERICS,
    Keras2Crossentropy,
    build_seed_model,
    compile_seed_model,
    seed_optimizer,
)
from fmnist_utils.runs import differences

#: What the runs in one output file share, besides the machine (the keys :func:`backend_info` records).
SETTINGS = ("dataset", "from_logits", "is_sample", "epochs", "batch_size")


def backend_info() -> dict[str, Any]:
    """The Keras backend and the device it computes on."""
    import keras

    info = {
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "python": platform.python_version(),
    }
    if info["backend"] == "jax":
        import jax

        jax.config.update("jax_default_matmul_precision", "highest")  # true float32, no TF32 on recent GPUs
        info |= {
            "jax": jax.__version__,
            "device": jax.devices()[0].device_kind,
            "matmul_precision": "highest",
        }
    return info


def logits_model(numerics: str):
    """The seed network with its last layer's scores as output, compiled with ``numerics``' loss from them."""
    import keras

    body = build_seed_model().layers[:-1]
    model = keras.Sequential([keras.Input((28, 28, 1)), *body, keras.layers.Dense(10, name="logits")])
    loss = (
        Keras2Crossentropy(from_logits=True)
        if numerics == "keras2"
        else keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    model.compile(optimizer=seed_optimizer(numerics=numerics), loss=loss, metrics=["accuracy"])
    return model


def run_once(
    seed: int, numerics: str, data, epochs: int, batch_size: int, from_logits: bool
) -> dict[str, Any]:
    """One seed-protocol training and its test accuracy."""
    import keras

    (x_tr, y_tr), (x_val, y_val), (x_test, y_test) = data
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = (
        logits_model(numerics) if from_logits else compile_seed_model(build_seed_model(), numerics=numerics)
    )
    start = time.perf_counter()
    history = model.fit(
        x_tr,
        y_tr,
        validation_data=(x_val, y_val),
        epochs=epochs,
        batch_size=batch_size,
        shuffle=True,
        verbose=2,
    )
    seconds = time.perf_counter() - start
    test_loss, test_accuracy = model.evaluate(x_test, y_test, batch_size=1024, verbose=0)
    return {
        "seed": seed,
        "numerics": numerics,
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "final_val_accuracy": float(history.history["val_accuracy"][-1]),
        "training_seconds": seconds,
        "history": {k: [float(v) for v in values] for k, values in history.history.items()},
    }


def load_data(dataset: str, data_source: str) -> tuple[list, bool]:
    """The training, validation and test arrays (images with a channel axis), and whether they are the sample."""
    ((x, y), (x_test, y_test)), source = load_dataset(dataset, source=data_source, return_info=True)
    (x_tr, y_tr), (x_val, y_val) = train_val_split(x, y, dataset=dataset)
    data = [(a[..., None].astype("float32"), b) for a, b in ((x_tr, y_tr), (x_val, y_val), (x_test, y_test))]
    return data, source.is_sample


def _shared(result: dict[str, Any], machine_keys: Iterable[str]) -> dict[str, Any]:
    """What ``result``'s runs share: its :data:`SETTINGS` and its machine's ``machine_keys``."""
    machine = result.get("machine", {})
    return {key: result.get(key) for key in SETTINGS} | {
        f"machine.{key}": machine.get(key) for key in machine_keys
    }


def opened_output(output: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """The result new runs join: ``output``'s, if it holds runs of the same ``settings`` (machine included), else a
    new one. A file of other settings, or not of this tool, is refused (``ValueError``) and kept."""
    if not output.exists():
        return {**settings, "runs": []}
    try:
        earlier = json.loads(output.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        earlier = None
    if not isinstance(earlier, dict) or not isinstance(earlier.get("runs"), list):
        raise ValueError(f"{output} is not a result of this tool; it is kept: choose another --output.")
    changed = differences(_shared(earlier, settings["machine"]), _shared(settings, settings["machine"]))
    if changed:
        raise ValueError(
            f"{output} holds runs of other settings; it is kept. Choose another --output, or rerun with its "
            "settings on its backend. What differs:\n  " + "\n  ".join(changed)
        )
    return earlier


def run_all(args: argparse.Namespace, data: list, result: dict[str, Any]) -> None:
    """Every seed and numerics not yet in ``result``, interleaved; ``args.output`` rewritten after each run."""
    runs = {(run["seed"], run["numerics"]): run for run in result["runs"]}
    for seed in args.seeds:
        for numerics in args.numerics:
            if (seed, numerics) in runs:
                print(f"seed {seed}, numerics {numerics}: already in {args.output}, kept", flush=True)
                continue
            run = run_once(seed, numerics, data, args.epochs, args.batch_size, args.from_logits)
            print(
                f"seed {seed}, numerics {numerics}: test accuracy {run['test_accuracy']:.4f} "
                f"({run['training_seconds']:.0f} s)",
                flush=True,
            )
            runs[seed, numerics] = run
            result["runs"] = sorted(runs.values(), key=lambda r: (r["seed"], NUMERICS.index(r["numerics"])))
            result["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
            write_json(args.output, result)


def _parser() -> argparse.ArgumentParser:
    """The command line's options."""
    p = argparse.ArgumentParser(
        prog="python -m tools.seed_protocol_any_backend",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", choices=("fashion_mnist", "mnist"), default="fashion_mnist")
    p.add_argument("--data-source", choices=("auto", "sample"), default="auto")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--numerics", nargs="+", choices=NUMERICS, default=list(NUMERICS))
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument(
        "--from-logits",
        action="store_true",
        help="both losses from the network's scores (needed off TensorFlow: see the module docstring)",
    )
    p.add_argument(
        "--output",
        type=Path,
        required=True,
        help="JSON file, rewritten after every run; the runs it holds of the same settings are kept, not rerun",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """The command line: every seed and numerics not yet in ``--output``, which is written after each run."""
    parser = _parser()
    args = parser.parse_args(argv)
    info = backend_info()
    data, is_sample = load_data(args.dataset, args.data_source)
    settings = {
        "dataset": args.dataset,
        "from_logits": args.from_logits,
        "is_sample": is_sample,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "machine": info,
    }
    try:
        result = opened_output(args.output, settings)
    except ValueError as exc:
        parser.error(f"--output: {exc}")
    run_all(args, data, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
