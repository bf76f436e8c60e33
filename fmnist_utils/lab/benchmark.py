"""Training-speed benchmark of the seed model: ``python -m fmnist_utils.lab.benchmark``.

In one process, on the same data and batch size, it measures the plain port (float32, NumPy arrays
into ``fit``) and the candidate configurations (tf.data input pipeline, mixed bfloat16), each after a
warm-up, over several rounds of one timed epoch per configuration (interleaved, so a machine whose speed
drifts slows all alike), and reports images/s, the speed-up over the baseline as a ratio of median epochs
(what a user's typical epoch gains; the fastest epochs are kept too), and the achieved GFLOP/s against
the model's FLOP count. A parity check then trains the baseline precision and
the fastest configuration for a few epochs with the same seed on real data and compares test accuracy,
so a speed-up never silently costs accuracy. The last line printed is the speed-up.

``--time-to-accuracy`` instead trains the fastest configuration, with a one-cycle style learning-rate
schedule, for a number of epochs fixed in advance, then measures the Fashion-MNIST test accuracy once
against the seed's 0.9323 (validation accuracy is recorded every epoch; the test set never picks the stop).
``--seeds`` trains it once per seed. Results are written as JSON to a new ``--output`` file (an existing one
is refused), except a ``--seeds`` series: its file is written after every seed and keeps the seeds it already
holds of the same recipe and data, so a series resumes or grows. Timings are never asserted by tests.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import ops

from fmnist_utils.data import load_dataset, steps_per_epoch, train_val_split
from fmnist_utils.files import write_json
from fmnist_utils.lab.ablation import SEED_RECIPE, Recipe, build_recipe_model, predict_with_flips
from fmnist_utils.lab.networks import ARCH_NAMES, forward_flops, one_cycle_schedule, recipe_loss
from fmnist_utils.lab.pipelines import make_tf_dataset
from fmnist_utils.models import build_seed_model, compile_seed_model, resolve_precision
from fmnist_utils.protocol import ONE_CYCLE_PEAK_LR, SEED_BATCH_SIZE, SEED_RESULTS
from fmnist_utils.runs import differences, fingerprint
from fmnist_utils.training import machine_info, set_seed, train

#: The seed's Fashion-MNIST test accuracy: what a time-to-accuracy recipe aims at unless told.
TARGET_ACCURACY = SEED_RESULTS["fashion_mnist"]


@dataclass(frozen=True)
class Config:
    """One way of running the same training step."""

    name: str
    precision: str
    pipeline: str  # "numpy" (arrays into fit), "tf.data" (cache/shuffle/batch/prefetch) or "tf.data+autotune"
    batch_size: int = SEED_BATCH_SIZE


BASELINE = Config("plain port: float32 + NumPy arrays", "float32", "numpy")
CANDIDATES = (
    Config("float32 + tf.data", "float32", "tf.data"),
    Config("mixed_bfloat16 + NumPy arrays", "mixed_bfloat16", "numpy"),
    Config("mixed_bfloat16 + tf.data, autotuned", "mixed_bfloat16", "tf.data+autotune"),
    Config("mixed_bfloat16 + tf.data", "mixed_bfloat16", "tf.data"),
)


def _prepare(config: Config, x: np.ndarray, y: np.ndarray, seed: int):
    """A compiled model of ``config`` and its ``fit`` inputs, warmed up by one untimed epoch (graph tracing,
    oneDNN kernel selection, filling the tf.data cache)."""
    set_seed(seed)
    batch_size = config.batch_size
    model = compile_seed_model(build_seed_model(precision=config.precision))
    if config.pipeline == "numpy":
        inputs = {"x": x[..., None].astype("float32"), "y": y, "batch_size": batch_size, "shuffle": True}
    else:
        autotune = config.pipeline == "tf.data+autotune"
        ds = make_tf_dataset(x, y, batch_size, shuffle=True, seed=seed, autotune=autotune)
        inputs = {"x": ds, "shuffle": False}
    model.fit(epochs=1, verbose=0, **inputs)
    return model, inputs


def measure_throughput(
    configs, x: np.ndarray, y: np.ndarray, repeats: int, seed: int = 0
) -> list[dict[str, Any]]:
    """Images/s of each config training on ``(x, y)``: after a warm-up each, ``repeats`` rounds in which every
    config trains one timed epoch in turn, so that a machine whose speed drifts (other processes, a shared
    host) slows every config alike. Each row keeps every epoch, the median images/s (what counts) and the
    fastest epoch's (an upper bound: on a shared machine a slow epoch partly measures the neighbours)."""
    prepared = [_prepare(config, x, y, seed) for config in configs]
    seconds: list[list[float]] = [[] for _ in configs]
    cpu_seconds: list[list[float]] = [[] for _ in configs]
    for _ in range(repeats):
        for times, cpu, (model, inputs) in zip(seconds, cpu_seconds, prepared):
            start, start_cpu = time.perf_counter(), time.process_time()
            model.fit(epochs=1, verbose=0, **inputs)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    train_flops = 3 * forward_flops(prepared[0][0])
    rows = []
    for config, times, cpu in zip(configs, seconds, cpu_seconds):
        best, median = min(times), statistics.median(times)
        rows.append(
            {
                **asdict(config),
                "epoch_seconds": times,
                "epoch_cpu_seconds": cpu,  # CPU time of all the process's threads: / seconds = cores busy
                "images_per_second": len(x) / best,
                "median_images_per_second": len(x) / median,
                "gflops_per_second": len(x) * train_flops / best / 1e9,
                "median_gflops_per_second": len(x) * train_flops / median / 1e9,
            }
        )
    return rows


def parity(config: Config, data, epochs: int, batch_size: int, seed: int) -> dict[str, Any]:
    """Test accuracy after ``epochs`` epochs of the seed protocol with ``config``'s precision."""
    train_data, val_data, test_data, info = data
    set_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        result = train(
            compile_seed_model(build_seed_model(precision=config.precision)),
            train_data,
            val_data,
            test_data,
            output_dir=tmp,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            progress="epoch",
            data_info=info,
        )
    return {
        "config": config.name,
        "precision": config.precision,
        "epochs": epochs,
        "test_accuracy": result.metrics["test_accuracy"],
        "test_loss": result.metrics["test_loss"],
        "final_train_loss": float(result.history["loss"].iloc[-1]),
        "seconds": result.metrics["total_seconds"],
    }


def _data(dataset: str, data_source: str):
    ((x, y), test), info = load_dataset(dataset, source=data_source, return_info=True)
    train_data, val_data = train_val_split(x, y, dataset=dataset)
    return train_data, val_data, test, info


def _print_rows(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        print(
            f"  {row['name']:<42} {row['median_images_per_second']:8.0f} images/s (median epoch; "
            f"{row['median_gflops_per_second']:.0f} GFLOP/s)  epochs: "
            + ", ".join(f"{s:.1f}s" for s in row["epoch_seconds"]),
            flush=True,
        )


def run_benchmark(
    dataset: str = "fashion_mnist",
    data_source: str = "auto",
    images: int = 10240,
    repeats: int = 3,
    batch_size: int = SEED_BATCH_SIZE,
    parity_epochs: int = 3,
    seed: int = 0,
    batch_sizes: tuple[int, ...] = (),
) -> dict:
    """Throughput of the baseline and every candidate, then the fastest configuration at each of
    ``batch_sizes`` (if any), then an accuracy parity check."""
    data = _data(dataset, data_source)
    (x_train, y_train), info = data[0], data[3]
    x, y = x_train[:images], y_train[:images]
    print(
        f"Throughput on {len(x):,} {dataset} images, batch {batch_size}: a warm-up epoch each, then {repeats} "
        "rounds of one timed epoch per configuration" + (" [SAMPLE DATA]" if info.is_sample else "")
    )
    configs = [replace(c, batch_size=batch_size) for c in (BASELINE, *CANDIDATES)]
    rows = measure_throughput(configs, x, y, repeats, seed)
    _print_rows(rows)
    baseline = rows[0]
    fastest = max(rows[1:], key=lambda r: r["median_images_per_second"])
    fastest_config = next(c for c in configs if c.name == fastest["name"])
    batch_rows = []
    if batch_sizes:
        print(f"{fastest_config.name} at batch sizes {', '.join(map(str, batch_sizes))}")
        sweep = [replace(fastest_config, name=f"batch {b}", batch_size=b) for b in batch_sizes]
        batch_rows = measure_throughput(sweep, x, y, repeats, seed)
        _print_rows(batch_rows)
    checks = []
    if parity_epochs:
        print(f"Accuracy parity: {parity_epochs} epochs of the seed protocol, seed {seed}, full test set")
        checks = [parity(c, data, parity_epochs, batch_size, seed) for c in (configs[0], fastest_config)]
        for check in checks:
            print(
                f"  {check['config']:<34} test accuracy {check['test_accuracy']:.4f}, test loss "
                f"{check['test_loss']:.4f} ({check['seconds']:.0f}s of training)"
            )
    speedup = fastest["median_images_per_second"] / baseline["median_images_per_second"]
    return {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "dataset": dataset,
        "data_source": info.source,
        "is_sample": info.is_sample,
        "images": len(x),
        "batch_size": batch_size,
        "repeats": repeats,
        "model_forward_mflops_per_image": forward_flops(build_seed_model()) / 1e6,
        "throughput": rows,
        "baseline": baseline["name"],
        "fastest": fastest["name"],
        "speedup": speedup,
        "speedup_of_fastest_epochs": fastest["images_per_second"] / baseline["images_per_second"],
        "batch_sizes": batch_rows,
        "parity": checks,
        "parity_difference_pp": (
            100 * (checks[1]["test_accuracy"] - checks[0]["test_accuracy"]) if checks else None
        ),
        "auto_precision_here": resolve_precision("auto"),
        "machine": measured_machine(),
    }


def matmul_ceiling(size: int = 2048, chain: int = 10, repeats: int = 3) -> dict[str, float]:
    """This machine's GFLOP/s on a chain of ``chain`` products of ``size`` x ``size`` matrices, in float32 and
    bfloat16 (best of ``repeats``): the ceiling a model's GFLOP/s is read against, and what makes timings
    taken on two machines comparable. Measured once per process (bfloat16 takes minutes where the CPU lacks
    it); each call returns its own copy."""
    return dict(_measured_ceiling(size, chain, repeats))


@functools.cache
def _measured_ceiling(size: int, chain: int, repeats: int) -> dict[str, float]:
    ceiling = {}
    for dtype in ("float32", "bfloat16"):
        a = ops.cast(keras.random.normal((size, size), seed=0) / size**0.5, dtype)
        seconds = []
        for _ in range(repeats + 1):  # the first product is a warm-up
            start = time.perf_counter()
            x = a
            for _ in range(chain):
                x = ops.matmul(x, a)
            ops.convert_to_numpy(ops.cast(x[0, 0], "float32"))
            seconds.append(time.perf_counter() - start)
        ceiling[f"{dtype}_gflops_per_second"] = chain * 2 * size**3 / min(seconds[1:]) / 1e9
    return ceiling


def measured_machine() -> dict[str, Any]:
    """This machine (:func:`fmnist_utils.training.machine_info`) with its matrix-product ceiling measured now:
    what every timing result records."""
    return {**machine_info(), "matmul_ceiling": matmul_ceiling()}


def _accuracy(probabilities: list[np.ndarray], y: np.ndarray) -> float:
    """The accuracy of the mean of ``probabilities`` (one model's, or an ensemble's)."""
    return float(np.mean(np.mean(probabilities, axis=0).argmax(1) == y))


def time_to_accuracy(
    target: float = TARGET_ACCURACY,
    epochs: int = 20,
    peak_lr: float = ONE_CYCLE_PEAK_LR,
    precision: str = "auto",
    batch_size: int = SEED_BATCH_SIZE,
    data_source: str = "auto",
    seed: int = 0,
    recipe: Recipe = SEED_RECIPE,
    test_time_flips: bool = False,
    members: int = 1,
    autotune: bool = False,
) -> dict:
    """Train on Fashion-MNIST for a budget fixed in advance (``epochs`` per member, a warm-up + cosine
    schedule over them), timing the training and recording the *validation* accuracy after every epoch
    (not timed; with and without test-time flips), then measure the test accuracy once, after all training.
    The model is the seed's unless ``recipe`` (notebook 05's :class:`~fmnist_utils.lab.ablation.Recipe`) changes
    it; its ``schedule`` is replaced by this one. With ``test_time_flips`` the counted predictions average
    each image with its mirror. With ``members`` > 1, that many models train one after the other (seeds
    ``seed``, ``seed + 1``, ...; the clock runs on) and their predictions are averaged (an ensemble). Nothing
    here looks at the test set before the budget is spent, so the result can be compared with the target
    without selecting on it. ``autotune`` lets ``tf.data`` tune the input pipeline (on TensorFlow 2.21 each
    epoch then waits for the autotuner's next wake-up: see :func:`~fmnist_utils.lab.pipelines.make_tf_dataset`)."""
    settings = dict(
        epochs=epochs,
        batch_size=batch_size,
        target=target,
        test_time_flips=test_time_flips,
        members=members,
        autotune=autotune,
    )
    (x_tr, y_tr), (x_val, y_val), (x_test, y_test), info = _data("fashion_mnist", data_source)
    elapsed, history = 0.0, []
    val = {"plain": [], "flips": []}  # each finished member's validation probabilities
    test = {"plain": [], "flips": []}
    counted = "flips" if test_time_flips else "plain"
    for member in range(1, members + 1):
        member_seed = seed + member - 1
        model = member_model(recipe, precision, member_seed, len(x_tr), batch_size, epochs, peak_lr)
        if member == 1:
            run_fingerprint = recipe_fingerprint(model, ((x_tr, y_tr), (x_val, y_val)), settings, seed)
        train_ds = make_tf_dataset(x_tr, y_tr, batch_size, shuffle=True, seed=member_seed, autotune=autotune)
        for epoch in range(1, epochs + 1):
            start, start_cpu = time.perf_counter(), time.process_time()
            model.fit(train_ds, epochs=1, verbose=0, shuffle=False)  # the pipeline reshuffles
            elapsed += time.perf_counter() - start
            cpu_seconds = time.process_time() - start_cpu
            now = dict(zip(("plain", "flips"), predict_with_flips(model, x_val)))
            row = {"member": member, "epoch": epoch, "training_seconds": elapsed, "cpu_seconds": cpu_seconds}
            for kind in ("plain", "flips"):
                row[f"val_accuracy_{kind}"] = _accuracy([*val[kind], now[kind]], y_val)
            row["val_accuracy"] = row[f"val_accuracy_{counted}"]
            history.append(row)
            print(
                f"  {f'member {member}, ' if members > 1 else ''}epoch {epoch:2d}: {elapsed / 60:5.1f} min of "
                f"training, validation accuracy {row['val_accuracy']:.4f}",
                flush=True,
            )
        for kind in ("plain", "flips"):
            val[kind].append(now[kind])
        for kind, probs in zip(("plain", "flips"), predict_with_flips(model, x_test)):
            test[kind].append(probs)
    trained_epochs = epochs * members
    test_accuracy = _accuracy(test[counted], y_test)
    return {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "target": target,
        "seed": seed,
        "test_accuracy": test_accuracy,
        "test_accuracy_plain": _accuracy(test["plain"], y_test),
        "test_accuracy_flips": _accuracy(test["flips"], y_test),
        "final_val_accuracy": history[-1]["val_accuracy"],
        "reached": test_accuracy >= target,
        "training_minutes": elapsed / 60,
        "seconds_per_epoch": elapsed / trained_epochs,
        "images_per_second": len(x_tr) * trained_epochs / elapsed,
        "train_gflops_per_image": 3 * forward_flops(model) / 1e9,
        "epochs": epochs,
        "history": history,
        "schedule": f"Adam, linear warm-up 1 epoch to {peak_lr}, cosine decay to 0 over {epochs} epochs",
        "peak_lr": peak_lr,
        "recipe": recipe.describe(),
        "model": ARCH_NAMES[recipe.arch] + ("" if recipe == SEED_RECIPE else f", {recipe.describe()}"),
        "parameters": model.count_params(),
        "test_time_flips": test_time_flips,
        "members": members,
        "autotune": autotune,
        "precision": resolve_precision(precision),
        "batch_size": batch_size,
        "data_source": info.source,
        "is_sample": info.is_sample,
        "fingerprint": run_fingerprint,
        "machine": measured_machine(),
    }


def member_model(
    recipe: Recipe, precision: str, seed: int, images: int, batch_size: int, epochs: int, peak_lr
):
    """One model of a time-to-accuracy run, seeded and compiled: the recipe's network, Adam on a one-cycle
    schedule over ``epochs`` of ``images`` training images, the recipe's loss."""
    set_seed(seed)
    schedule = one_cycle_schedule(steps_per_epoch(images, batch_size), epochs, peak_lr)
    return compile_seed_model(
        build_recipe_model(recipe, "fashion_mnist", precision=precision, seed=seed),
        keras.optimizers.Adam(schedule),
        recipe_loss(recipe.label_smoothing),
    )


#: What a time-to-accuracy run's fingerprint adds to that of its first, untrained model (architecture,
#: initial weights, precision, loss, optimizer and schedule, epochs, batch, seed and data): how it is scored.
RUN_SETTINGS = ("target", "test_time_flips", "members", "autotune")


def recipe_fingerprint(model: keras.Model, data, settings: dict[str, Any], seed: int) -> dict[str, Any]:
    """:func:`fmnist_utils.runs.fingerprint` of a time-to-accuracy run's first model and data (``settings``
    give its epochs and batch size), with its :data:`RUN_SETTINGS`: equal fingerprints, the same run."""
    train_data, val_data = data
    fp = fingerprint(
        model, train_data, val_data, epochs=settings["epochs"], batch_size=settings["batch_size"], seed=seed
    )
    return fp | {key: settings[key] for key in RUN_SETTINGS}


#: What the runs of one recipe over seeds share, repeated in its summary (:func:`over_seeds`).
RECIPE_KEYS = (
    "target",
    "epochs",
    "peak_lr",
    "recipe",
    "test_time_flips",
    "members",
    "autotune",
    "precision",
    "batch_size",
    "is_sample",
)


def over_seeds(runs: list[dict], name: str | None = None) -> dict:
    """Several seeds of one fixed recipe (:func:`time_to_accuracy` results): every run, by seed, and the test
    accuracy's mean and sample standard deviation, the median training minutes, and whether the *mean* reaches
    the target."""
    runs = sorted(runs, key=lambda run: run["seed"])
    accuracies = [run["test_accuracy"] for run in runs]
    mean = statistics.mean(accuracies)
    keep = ("data_source", "schedule", "model", "parameters", "train_gflops_per_image", "machine")
    return {
        "name": name,
        **{key: runs[0][key] for key in (*RECIPE_KEYS, *keep)},
        "seeds": [run["seed"] for run in runs],
        "test_accuracy_mean": mean,
        "test_accuracy_std": statistics.stdev(accuracies) if len(runs) > 1 else None,
        "final_val_accuracy_mean": statistics.mean(run["final_val_accuracy"] for run in runs),
        "training_minutes_median": statistics.median(run["training_minutes"] for run in runs),
        "reached_by_mean": mean >= runs[0]["target"],
        "runs": runs,
    }


class OutputRefused(ValueError):
    """An ``--output`` file this run must leave as it is; the message says why and what to do."""


def _refuse_existing(output: Path | None) -> None:
    """Refuse an ``output`` that exists: a single run or the speed benchmark writes a new file, never over one."""
    if output is not None and output.exists():
        raise OutputRefused(
            f"{output} already exists, and only a --time-to-accuracy --seeds series adds to its file; "
            "choose another --output or delete it."
        )


def _earlier_runs(output: Path) -> list[dict]:
    """The runs of the ``--seeds`` result ``output``; any other file is refused."""
    try:
        done = json.loads(output.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        done = None
    runs = done.get("runs") if isinstance(done, dict) else None
    if not isinstance(runs, list) or not all(isinstance(run, dict) and "fingerprint" in run for run in runs):
        raise OutputRefused(
            f"{output} is not a --time-to-accuracy --seeds result with fingerprints; it is kept: "
            "choose another --output."
        )
    return runs


def finished_runs(output: Path | None, settings: dict[str, Any]) -> dict[int, dict]:
    """The runs, by seed, that ``output`` already holds of the same run (``settings``: the arguments of
    :func:`time_to_accuracy`), so that a ``--seeds`` series resumes or grows. Each earlier run's fingerprint
    must equal the one this run makes for its seed, on the data loaded now (the rule of run folders,
    :func:`fmnist_utils.runs.open_run`); otherwise ``output`` is refused, with what differs, and kept."""
    if output is None or not output.exists():
        return {}
    runs = _earlier_runs(output)
    train_data, val_data, _, _ = _data("fashion_mnist", settings["data_source"])
    for run in runs:
        model = member_model(
            settings["recipe"],
            settings["precision"],
            run["seed"],
            len(train_data[0]),
            settings["batch_size"],
            settings["epochs"],
            settings["peak_lr"],
        )
        changed = differences(
            run["fingerprint"], recipe_fingerprint(model, (train_data, val_data), settings, run["seed"])
        )
        if changed:
            raise OutputRefused(
                f"{output} holds runs of another recipe or data; it is kept. Choose another --output, or run "
                "that file's recipe on its data. What differs:\n  " + "\n  ".join(changed)
            )
    return {run["seed"]: run for run in runs}


def run_seeds(seeds: list[int], output: Path | None, name: str | None, **settings) -> dict:
    """:func:`time_to_accuracy` once per seed, merged with the runs ``output`` already holds of the same run
    (kept, not retrained), by seed; ``output`` is written after every seed (a long series can be split across
    sessions) and keeps its name unless ``name`` gives another."""
    bound = inspect.signature(time_to_accuracy).bind(**settings)
    bound.apply_defaults()
    runs = finished_runs(output, bound.arguments)
    if name is None and runs:
        name = json.loads(output.read_text()).get("name")
    for seed in dict.fromkeys(seeds):
        if seed in runs:
            print(f"Seed {seed}: already in {output}, kept", flush=True)
            continue
        runs[seed] = time_to_accuracy(seed=seed, **settings)
        if output is not None:
            write_json(output, over_seeds(list(runs.values()), name))
            print(f"Seed {seed}: written to {output} (seeds {sorted(runs)})", flush=True)
    return over_seeds(list(runs.values()), name)


def _parser() -> argparse.ArgumentParser:
    """The command line's options: those of both paths, of the speed benchmark, of ``--time-to-accuracy``."""
    p = argparse.ArgumentParser(
        prog="python -m fmnist_utils.lab.benchmark",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data-source", choices=("auto", "sample"), default="auto")
    p.add_argument("--batch-size", type=int, default=SEED_BATCH_SIZE)
    p.add_argument("--seed", type=int, default=0, help="the random seed (with --seeds, those seeds instead)")
    p.add_argument(
        "--output",
        type=Path,
        help="write the results as JSON to this new file (an existing one is refused); with --seeds, the "
        "series' file: written after every seed, keeping the seeds it holds of the same recipe and data",
    )
    _benchmark_options(p.add_argument_group("speed benchmark (without --time-to-accuracy)"))
    _time_to_accuracy_options(p.add_argument_group("time to accuracy (with --time-to-accuracy)"))
    return p


def _benchmark_options(group) -> None:
    """The speed benchmark's options."""
    group.add_argument("--dataset", choices=("fashion_mnist", "mnist"), default="fashion_mnist")
    group.add_argument("--images", type=int, default=10240, help="images per timed epoch (default 10240)")
    group.add_argument(
        "--repeats", type=int, default=3, help="rounds of one timed epoch per configuration (default 3)"
    )
    group.add_argument("--parity-epochs", type=int, default=3, help="epochs of the accuracy check (0 = skip)")
    group.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        default=[],
        help="also measure the fastest configuration's images/s at these batch sizes (e.g. 64 128 256 512 1024)",
    )


def _time_to_accuracy_options(group) -> None:
    """The options of ``--time-to-accuracy``."""
    group.add_argument(
        "--time-to-accuracy",
        action="store_true",
        help="train a fixed budget on Fashion-MNIST, then measure the test accuracy once against "
        f"{TARGET_ACCURACY}",
    )
    group.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        help="train the fixed recipe once per seed (e.g. 0 1 2) and report the mean over these seeds and "
        "those --output already holds",
    )
    group.add_argument(
        "--name", help="with --seeds: the recipe's name in tables (e.g. 'fast'; default: --output's)"
    )
    group.add_argument("--epochs", type=int, default=20, help="epochs per member (fixed in advance)")
    group.add_argument(
        "--target",
        type=float,
        default=TARGET_ACCURACY,
        help=f"test accuracy the recipe aims at (default {TARGET_ACCURACY}, the seed's)",
    )
    group.add_argument("--peak-lr", type=float, default=ONE_CYCLE_PEAK_LR, help="peak learning rate")
    group.add_argument(
        "--recipe",
        default="seed",
        help="changes to the seed model in notebook 05's notation, e.g. 'input_norm=bn_channel, conv_bn' or "
        "'arch=vgg, conv_bn, flip' (default: the seed model)",
    )
    group.add_argument(
        "--test-time-flips",
        action="store_true",
        help="count the accuracy of predictions averaged with the mirrored image's",
    )
    group.add_argument(
        "--members",
        type=int,
        default=1,
        help="train this many models one after the other (seeds seed, seed+1, ...) and count the accuracy of "
        "their averaged predictions (default 1)",
    )
    group.add_argument(
        "--autotune",
        action="store_true",
        help="let tf.data autotune the input pipeline (on TensorFlow 2.21 each epoch then lasts until the "
        "autotuner's next wake-up; off by default)",
    )


def _parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``argv`` parsed by ``parser`` and checked (``--recipe`` parsed); a usage error exits with what is wrong."""
    args = parser.parse_args(argv)
    for name in ("images", "repeats", "batch_size", "epochs", "members"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive integer")
    if not 0 < args.target <= 1:
        parser.error(f"--target is an accuracy between 0 and 1; got {args.target}")
    if any(size < 1 for size in args.batch_sizes):
        parser.error("--batch-sizes must be positive integers")
    if args.seeds and not args.time_to_accuracy:
        parser.error("--seeds is for --time-to-accuracy: add --time-to-accuracy, or drop --seeds")
    if args.time_to_accuracy:
        try:
            args.recipe = Recipe.parse(args.recipe)
        except (TypeError, ValueError) as exc:
            parser.error(f"--recipe: {exc}")
    return args


def _write_results(output: Path | None, result: dict) -> None:
    """Write ``result`` to ``output`` (if any) as JSON, and say so."""
    if output is not None:
        write_json(output, result)
        print(f"Results written to {output}")


#: The options passed on to :func:`time_to_accuracy` as they are (its seed aside): its parameters' names.
TIME_TO_ACCURACY_OPTIONS = (
    "target",
    "epochs",
    "peak_lr",
    "batch_size",
    "data_source",
    "recipe",
    "test_time_flips",
    "members",
    "autotune",
)


def _time_to_accuracy_main(args: argparse.Namespace) -> tuple[dict, str]:
    """``--time-to-accuracy``: one run into a new ``--output``, or ``--seeds`` merged into theirs (see
    :func:`run_seeds`); the result and its summary line."""
    settings = {key: getattr(args, key) for key in TIME_TO_ACCURACY_OPTIONS}
    if args.seeds:
        result = run_seeds(args.seeds, args.output, args.name, **settings)
        return result, _series_line(result)
    _refuse_existing(args.output)
    result = time_to_accuracy(seed=args.seed, **settings)
    _write_results(args.output, result)
    return result, _run_line(result)


def _run_line(result: dict) -> str:
    """The summary line of one :func:`time_to_accuracy` run."""
    return (
        f"Test accuracy {result['test_accuracy']:.4f} after {result['training_minutes']:.1f} min of "
        f"training ({result['members']} x {result['epochs']} epochs): target {result['target']} "
        + ("reached" if result["reached"] else "not reached")
    )


def _series_line(result: dict) -> str:
    """The summary line of a series of seeds (:func:`over_seeds`)."""
    spread = f" ± {result['test_accuracy_std']:.4f}" if result["test_accuracy_std"] is not None else ""
    return (
        f"Test accuracy {result['test_accuracy_mean']:.4f}{spread} over seeds {result['seeds']}, "
        f"{result['training_minutes_median']:.1f} min of training each (median): target {result['target']} "
        + ("reached by the mean" if result["reached_by_mean"] else "not reached")
    )


def _benchmark_main(args: argparse.Namespace) -> tuple[dict, str]:
    """The speed benchmark (:func:`run_benchmark`) into a new ``--output``; the result and its summary line."""
    _refuse_existing(args.output)
    result = run_benchmark(
        args.dataset,
        args.data_source,
        args.images,
        args.repeats,
        args.batch_size,
        args.parity_epochs,
        args.seed,
        tuple(args.batch_sizes),
    )
    _write_results(args.output, result)
    parity_pp = result["parity_difference_pp"]
    return result, (
        f"Speed-up (ratio of median epochs): {result['speedup']:.2f}x ({result['fastest']} vs {result['baseline']}"
        + (f"; test accuracy difference {parity_pp:+.2f} pp)" if parity_pp is not None else ")")
    )


def main(argv: list[str] | None = None) -> int:
    """The command line: the time-to-accuracy run(s) or the speed benchmark; the last line printed sums it up."""
    parser = _parser()
    args = _parse_args(parser, argv)
    try:
        result, last = (_time_to_accuracy_main if args.time_to_accuracy else _benchmark_main)(args)
    except OutputRefused as exc:
        parser.error(f"--output: {exc}")
    if result.get("is_sample"):
        last += " [SAMPLE DATA: not representative]"
    print(last)
    return 0


if __name__ == "__main__":
    sys.exit(main())
