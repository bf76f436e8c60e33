"""Training speed read back from the committed benchmark results, as tables (notebook 06 and the README).

``results/benchmark/throughput.json`` holds ``python -m fmnist_utils.lab.benchmark`` (the seed model's images/s
by precision, input pipeline and batch size); ``results/benchmark/recipes/<name>.json`` hold
``--time-to-accuracy --seeds ...`` runs of fixed recipes (``benchmark/autotuned/`` the same recipes run
earlier with ``tf.data`` autotuning on); ``results/seed/fashion_mnist-seed<N>.json`` the seed protocol's runs.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Any

import pandas as pd

from fmnist_utils.lab.networks import layer_forward_flops
from fmnist_utils.params import project_root
from fmnist_utils.protocol import SPEED_TARGETS, THROUGHPUT_TARGET

SEED_PROTOCOL = "seed protocol"  # the name of the seed's own runs in the tables

#: Each network's name in tables, by its key (:func:`network_key`).
NETWORK_NAMES = {
    "seed": "seed network",
    "vgg": "VGG-style",
    "vgg_lite": "VGG-lite",
    "vgg_lite_pool_first": "VGG-lite, pool first",
}

#: Readers' labels for the tables' snake_case columns where spelling them out is not enough
#: (:func:`label` spells out the rest: ``test_accuracy_mean`` -> "test accuracy mean").
LABELS = {
    "median_images_per_second": "images/s (median pass)",
    "mean_images_per_second": "images/s (mean)",
    "fastest_images_per_second": "images/s (fastest pass)",
    "images_per_second": "images/s",
    "median_gflops_per_second": "GFLOP/s (median pass)",
    "gflops_per_second": "GFLOP/s",
    "median_step_ms": "ms per step (median)",
    "achieved_gflops_per_second": "GFLOP/s achieved",
    "train_gflop_per_image": "training GFLOP per image",
    "share_of_ceiling": "share of ceiling",
    "speedup_of_medians": "speed-up (ratio of medians)",
    "cores_busy": "cores busy (median)",
    "val_accuracy": "validation accuracy",
    "val_accuracy_mean": "validation accuracy mean",
    "screening_test_accuracy": "test accuracy (measured, not used)",
    "test_accuracy_std": "test accuracy std (seeds)",
    "steps_seconds": "seconds to the last step",
    "fit_seconds": "seconds until fit returned",
    "next_wakeup_seconds": "next autotuner wake-up (s)",
    "flips_gain_pp": "gain from flips (pp)",
    "ms_per_batch": "ms per batch",
    "layers_alone_ms": "layers alone, summed (ms per batch)",
    "training_step_ms": "training step (ms, median epoch)",
    "layers_share_of_step": "share of the step",
    **{f"{key}_ms_per_batch": f"{name}: ms per batch" for key, name in NETWORK_NAMES.items()},
    **{f"{key}_share": f"{name}: share" for key, name in NETWORK_NAMES.items()},
}


def label(key: str) -> str:
    """The label a table shows for a snake_case column."""
    return LABELS.get(key, key.replace("_", " "))


def styled(table: pd.DataFrame, formats: dict[str, str] | None = None):
    """``table`` for reading: columns labelled (:func:`label`), ``formats`` (by snake_case column) applied,
    missing values as a dash, no index."""
    formats = {label(key): fmt for key, fmt in (formats or {}).items()}
    return table.rename(columns=label).style.format(formats, na_rep="—").hide(axis="index")


def results_dir(path: str | os.PathLike | None = None) -> Path:
    """``path``, or the project's ``results/`` folder."""
    if path is not None:
        return Path(path)
    root = project_root()
    if root is None:
        raise FileNotFoundError("Give the results folder: no project checkout was found around fmnist_utils.")
    return root / "results"


def load_throughput(results: str | os.PathLike | None = None) -> dict[str, Any]:
    """The committed throughput benchmark (``benchmark/throughput.json``)."""
    return json.loads((results_dir(results) / "benchmark" / "throughput.json").read_text())


def load_recipes(
    results: str | os.PathLike | None = None, folder: str = "recipes"
) -> dict[str, dict[str, Any]]:
    """Every committed recipe run (``benchmark/<folder>/*.json``) by name, the quickest (median minutes) first;
    ``folder="autotuned"``: the runs of the same recipes with ``tf.data`` autotuning on."""
    folder = results_dir(results) / "benchmark" / folder
    recipes = [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
    if not recipes:
        raise FileNotFoundError(
            f"No recipe results in {folder}: run `python -m fmnist_utils.lab.benchmark --time-to-accuracy "
            "--seeds 0 1 2 --name NAME --output` into it."
        )
    return {r["name"]: r for r in sorted(recipes, key=lambda r: r["training_minutes_median"])}


def seed_protocol(results: str | os.PathLike | None = None) -> dict[str, Any]:
    """The seed protocol's Fashion-MNIST runs (``seed/fashion_mnist-seed*.json``) in a recipe's shape."""
    paths = sorted((results_dir(results) / "seed").glob("fashion_mnist-seed*.json"))
    metrics = [json.loads(p.read_text()) for p in paths]
    runs = [
        {
            "seed": m["seed"],
            "test_accuracy": m["test_accuracy"],
            "final_val_accuracy": m["final_val_accuracy"],
            # A run that shared the cores with other jobs has no usable time (its metrics say so).
            "training_minutes": None if m.get("timing_shared_cores") else m["total_seconds"] / 60,
            "images_per_second": None if m.get("timing_shared_cores") else m["train_images_per_second"],
        }
        for m in metrics
    ]
    timed = [r for r in runs if r["training_minutes"] is not None]
    accuracies = [r["test_accuracy"] for r in runs]
    return {
        "name": SEED_PROTOCOL,
        "network": "seed network",
        "model": "seed model (2 conv + 3 dense), 0-255 pixels",
        "epochs": metrics[0]["epochs"],
        "batch_size": metrics[0]["batch_size"],
        "precision": metrics[0]["precision"],
        "test_time_flips": False,
        "autotune": True,  # notebook 03 trained before the project's pipeline turned tf.data's autotuner off
        "schedule": "Adam, learning rate 1e-3 / (1 + 1e-3 t)",
        "train_gflops_per_image": None,
        "seeds": [r["seed"] for r in runs],
        "test_accuracy_mean": statistics.mean(accuracies),
        "test_accuracy_std": statistics.stdev(accuracies),
        "final_val_accuracy_mean": statistics.mean(r["final_val_accuracy"] for r in runs),
        "training_minutes_median": statistics.median(r["training_minutes"] for r in timed),
        "timed_seeds": [r["seed"] for r in timed],
        "runs": runs,
    }


def recipes_table(recipes: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per recipe: its budget, speed and accuracy over its seeds (snake_case columns)."""
    rows = []
    for name, r in recipes.items():
        rows.append(
            {
                "recipe": name,
                "network": network_name(r),
                "model": r["model"],
                "epochs": r["epochs"],
                "batch_size": r["batch_size"],
                "precision": r["precision"],
                "test_time_flips": r["test_time_flips"],
                "autotune": r.get("autotune"),
                "train_gflop_per_image": r["train_gflops_per_image"],
                "images_per_second": statistics.median(
                    run["images_per_second"] for run in r["runs"] if run["images_per_second"] is not None
                ),
                "training_minutes": r["training_minutes_median"],
                "seeds": len(r["runs"]),
                "val_accuracy_mean": r["final_val_accuracy_mean"],
                "test_accuracy_mean": r["test_accuracy_mean"],
                "test_accuracy_std": r["test_accuracy_std"],
            }
        )
    return pd.DataFrame(rows)


def network_key(recipe: dict[str, Any]) -> str:
    """The network a recipe trains: its ``arch=`` setting (the seed's by default), with ``_pool_first`` when
    its pooling comes before BatchNormalization (the keys of ``tools.layer_probe``'s networks)."""
    items = [item.strip() for item in recipe["recipe"].split(",")]
    settings = dict(item.split("=", 1) for item in items if "=" in item)
    return settings.get("arch", "seed") + ("_pool_first" if "pool_first" in items else "")


def network_name(recipe: dict[str, Any]) -> str:
    """A recipe's network in a word or two, e.g. "seed network", "VGG-style" or "VGG-lite"."""
    return recipe.get("network") or NETWORK_NAMES[network_key(recipe)]


def recipe_runs(recipes: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per (recipe, seed): training minutes (a run without a usable time, at its recipe's median, and
    ``timed`` false), final validation and test accuracy."""
    return pd.DataFrame(
        [
            {
                "recipe": name,
                "seed": run["seed"],
                "training_minutes": run["training_minutes"] or r["training_minutes_median"],
                "timed": run["training_minutes"] is not None,
                "val_accuracy": run["final_val_accuracy"],
                "test_accuracy": run["test_accuracy"],
            }
            for name, r in recipes.items()
            for run in r["runs"]
        ]
    )


def validation_curves(recipes: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Every epoch of every timed recipe run: minutes so far, validation accuracy with and without flips."""
    rows = [
        {
            "recipe": name,
            "seed": run["seed"],
            "epoch": h["epoch"],
            "training_minutes": h["training_seconds"] / 60,
            "val_accuracy_plain": h["val_accuracy_plain"],
            "val_accuracy_flips": h["val_accuracy_flips"],
        }
        for name, r in recipes.items()
        for run in r["runs"]
        for h in run.get("history", [])
        if "val_accuracy_plain" in h
    ]
    return pd.DataFrame(rows)


def _ceiling_key(precision: str) -> str:
    """The ``matmul_ceiling`` entry a precision policy computes in: bfloat16 for mixed_bfloat16, else float32."""
    return f"{'bfloat16' if 'bfloat16' in precision else 'float32'}_gflops_per_second"


def throughput_table(benchmark: dict[str, Any], key: str = "throughput") -> pd.DataFrame:
    """The benchmark's configurations (``key="throughput"``) or batch sizes (``"batch_sizes"``): median and
    fastest-epoch images/s, speed-up over the first row as a ratio of medians, and the median epoch's
    GFLOP/s as a share of this machine's matrix-product ceiling in the same precision."""
    ceiling = benchmark["machine"].get("matmul_ceiling", {})
    rows = benchmark[key]
    base = benchmark["throughput"][0]["median_images_per_second"]
    table = []
    for row in rows:
        peak = ceiling.get(_ceiling_key(row["precision"]))
        gflops = row.get("median_gflops_per_second")
        table.append(
            {
                "configuration": row["name"],
                "precision": row["precision"],
                "pipeline": row["pipeline"],
                "batch_size": row.get("batch_size", benchmark["batch_size"]),
                "median_images_per_second": row["median_images_per_second"],
                "speedup_of_medians": row["median_images_per_second"] / base,
                "mean_images_per_second": len(row["epoch_seconds"])
                * benchmark["images"]
                / sum(row["epoch_seconds"]),
                "fastest_images_per_second": row["images_per_second"],
                "median_gflops_per_second": gflops,
                "share_of_ceiling": gflops / peak if gflops and peak else None,
                "cores_busy": _cores_busy(row),
            }
        )
    return pd.DataFrame(table)


#: The issue's throughput target: the fastest configuration's median pass over the plain port's.


def throughput_targets(benchmark: dict[str, Any], target: float = THROUGHPUT_TARGET) -> pd.DataFrame:
    """The fastest configuration's speed-up over the plain port (ratio of median passes) against ``target``,
    once from the interleaved comparison and once from the batch-size sweep at the same batch size: the same
    configuration measured twice (rows of :func:`throughput_table`)."""
    configs = throughput_table(benchmark)
    measured = configs[configs["configuration"] == benchmark["fastest"]].assign(
        measurement="interleaved with the other configurations"
    )
    if benchmark.get("batch_sizes"):
        sweep = throughput_table(benchmark, "batch_sizes")
        again = sweep[sweep["batch_size"] == benchmark["batch_size"]]
        measured = pd.concat(
            [measured, again.assign(measurement="the same configuration, in the batch-size sweep")]
        )
    columns = ["measurement", "cores_busy", "median_images_per_second", "speedup_of_medians"]
    table = measured[columns].reset_index(drop=True).assign(target=target)
    return table.assign(met=table["speedup_of_medians"] >= target)


def _cores_busy(row: dict[str, Any]) -> float | None:
    """The median over a configuration's timed epochs of CPU seconds / seconds (None if not recorded)."""
    if "epoch_cpu_seconds" not in row:
        return None
    return statistics.median(c / s for c, s in zip(row["epoch_cpu_seconds"], row["epoch_seconds"]))


def layer_flops(model) -> pd.DataFrame:
    """Forward MFLOP per image of each convolution and dense layer, and its share of the model's."""
    table = pd.DataFrame(
        [
            {"layer": layer.name, "forward_mflop": layer_forward_flops(layer) / 1e6}
            for layer in model.layers
            if layer_forward_flops(layer)
        ]
    )
    table["share"] = table["forward_mflop"] / table["forward_mflop"].sum()
    return table


def gpu_table(results: str | os.PathLike | None = None) -> pd.DataFrame:
    """The committed GPU runs of Fashion-MNIST: the seed protocol (``seed/numerics_fashion_mnist_h200.json``,
    Keras 3 numerics, median over its seeds) and notebook 05's shipped winner (``beyond/published/``)."""
    folder = results_dir(results)
    numerics = json.loads((folder / "seed" / "numerics_fashion_mnist_h200.json").read_text())
    seed_runs = [r for r in numerics["runs"] if r["numerics"] == "keras3"]
    winner = folder / "beyond" / "published" / "fashion_mnist"
    manifest = json.loads((winner / "manifest.json").read_text())
    history = pd.read_csv(winner / f"history_step{manifest['winner_step']}.csv")
    return pd.DataFrame(
        [
            {
                "run": SEED_PROTOCOL,
                "device": numerics["machine"]["device"],
                "backend": numerics["machine"]["backend"],
                "epochs": numerics["epochs"],
                "seeds": len(seed_runs),
                "training_seconds": statistics.median(r["training_seconds"] for r in seed_runs),
                "first_epoch_seconds": None,  # not recorded by that run
                "test_accuracy": statistics.mean(r["test_accuracy"] for r in seed_runs),
            },
            {
                "run": f"notebook 05's winner (step {manifest['winner_step']})",
                "device": ", ".join(manifest["machine"]["gpus"]),
                "backend": manifest["machine"]["backend"],
                "epochs": len(history),
                "seeds": 1,
                "training_seconds": float(history["epoch_seconds"].sum()),
                "first_epoch_seconds": float(history["epoch_seconds"].iloc[0]),  # with compilation
                "test_accuracy": manifest["test_accuracy"],
            },
        ]
    )


def targets_table(recipes: dict[str, dict[str, Any]], targets=SPEED_TARGETS) -> pd.DataFrame:
    """Each targeted recipe against its targets: mean test accuracy and median minutes, and whether each is met."""
    rows = []
    for name, (accuracy, minutes) in targets.items():
        if name not in recipes:
            continue
        r = recipes[name]
        rows.append(
            {
                "recipe": name,
                "target_accuracy": accuracy,
                "test_accuracy_mean": r["test_accuracy_mean"],
                "test_accuracy_std": r["test_accuracy_std"],
                "accuracy_met": r["test_accuracy_mean"] >= accuracy,
                "target_minutes": minutes,
                "training_minutes": r["training_minutes_median"],
                "time_met": r["training_minutes_median"] <= minutes,
            }
        )
    return pd.DataFrame(rows)


def network_table(throughput: dict[str, Any], recipes: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Training GFLOP per image against images/s of a median pass, for the seed network (the throughput
    benchmark's fastest configuration) and each recipe's network (the median of its runs' epochs), with the
    share of the ceiling each reaches."""
    ceiling = throughput["machine"]["matmul_ceiling"]
    fastest = next(r for r in throughput["throughput"] if r["name"] == throughput["fastest"])
    rows = [
        {
            "network": f"seed network ({fastest['name']})",
            "precision": fastest["precision"],
            "train_gflop_per_image": 3 * throughput["model_forward_mflops_per_image"] / 1e3,
            "median_images_per_second": fastest["median_images_per_second"],
        }
    ]
    networks: dict[str, list[str]] = {}  # each network once, with the recipes that trained it
    for name, r in recipes.items():
        if r.get("train_gflops_per_image") is not None:
            networks.setdefault(r["model"], []).append(name)
    for names in networks.values():
        first = recipes[names[0]]
        rows.append(
            {
                "network": f"{network_name(first)} (recipe {', '.join(names)})",
                "precision": first["precision"],
                "train_gflop_per_image": first["train_gflops_per_image"],
                "median_images_per_second": _median_epoch_images_per_second([recipes[n] for n in names]),
            }
        )
    table = pd.DataFrame(rows)
    table["achieved_gflops_per_second"] = table["train_gflop_per_image"] * table["median_images_per_second"]
    peak = table["precision"].map(lambda precision: ceiling[_ceiling_key(precision)])
    table["share_of_ceiling"] = table["achieved_gflops_per_second"] / peak
    return table


def _median_epoch_images_per_second(recipes: list[dict[str, Any]]) -> float:
    """Training images per second of the median epoch over all runs of recipes that train the same network
    on the same data."""
    run = recipes[0]["runs"][0]
    images = run["images_per_second"] * run["seconds_per_epoch"]  # one epoch's
    return images / float(pd.concat([epoch_seconds(r)["seconds"] for r in recipes]).median())


def screening_table(results: str | os.PathLike | None = None) -> pd.DataFrame:
    """Budgets tried on one seed before a recipe was fixed (``benchmark/screening/*.json``), in the order they
    ran: what was tried, its validation accuracy and minutes, and what was decided on them. Each run also
    measured its test accuracy once at the end, as every benchmark run does; no decision used it."""
    screened = [
        json.loads(path.read_text())
        for path in (results_dir(results) / "benchmark" / "screening").glob("*.json")
    ]
    rows = [
        {
            "screened": r["name"],
            "epochs": r["epochs"],
            "seed": run["seed"],
            "val_accuracy": run["final_val_accuracy"],
            "screening_test_accuracy": run["test_accuracy"],
            "training_minutes": run["training_minutes"],
            "note": r.get("screening_note", ""),
        }
        for r in sorted(screened, key=lambda r: r["runs"][0]["finished_at"])
        for run in r["runs"]
    ]
    return pd.DataFrame(rows)


def conv_matmul_table(results: str | os.PathLike | None = None) -> pd.DataFrame:
    """The seed network's second convolution trained two ways (``benchmark/conv_matmul_probe.json``, from
    ``tools.conv_matmul_probe``): median step time, GFLOP/s against the bfloat16 ceiling, cores busy, and each
    form's largest relative error against a float32 convolution."""
    probe = json.loads((results_dir(results) / "benchmark" / "conv_matmul_probe.json").read_text())
    batch, size, _, channels = probe["shape"]
    out = size - probe["kernel"] + 1
    step_gflop = 3 * 2 * batch * out * out * probe["filters"] * probe["kernel"] ** 2 * channels / 1e9
    ceiling = probe["machine"]["matmul_ceiling"]["bfloat16_gflops_per_second"]
    rows = []
    for name, form in probe["forms"].items():
        gflops = step_gflop / (form["median_step_ms"] / 1e3)
        rows.append(
            {
                "form": name,
                "median_step_ms": form["median_step_ms"],
                "gflops_per_second": gflops,
                "share_of_ceiling": gflops / ceiling,
                "cores_busy": statistics.median(form["cores_busy"]),
                **{key: value for key, value in form.items() if key.startswith("relative_error")},
            }
        )
    return pd.DataFrame(rows)


#: What each kind of layer is, in layer_groups' rows.
LAYER_GROUPS = {
    "Conv2D": "convolutions",
    "Dense": "dense layers",
    "BatchNormalization": "BatchNormalization",
    "Activation": "relu",
    "MaxPooling2D": "pooling",
    "Dropout": "dropout",
    "RandomFlip": "random flips",
    "Flatten": "flatten",
}


def layer_times_table(results: str | os.PathLike | None = None) -> pd.DataFrame:
    """Every layer of the recipes' networks timed alone (``benchmark/layer_times.json``, from
    ``tools.layer_probe``): milliseconds per training batch (forward and backward), training GFLOP/s for the
    convolutions and dense layers, and each layer's share of its network's sum."""
    probe = json.loads((results_dir(results) / "benchmark" / "layer_times.json").read_text())
    batch = probe["batch_size"]
    rows = []
    for network, entry in probe["networks"].items():
        total = sum(layer["seconds"] for layer in entry["layers"])
        for layer in entry["layers"]:
            passes = 3 if layer["input_gradient"] else 2  # forward, weight gradient, input gradient
            train_gflop = passes * layer["forward_mflop_per_image"] * batch / 1e3
            rows.append(
                {
                    "network": network,
                    "layer": layer["layer"],
                    "group": LAYER_GROUPS.get(layer["kind"], layer["kind"]),
                    "output_shape": "×".join(map(str, layer["output_shape"])),
                    "ms_per_batch": 1e3 * layer["seconds"],
                    "gflops_per_second": train_gflop / layer["seconds"] if train_gflop else None,
                    "share_of_network": layer["seconds"] / total,
                }
            )
    return pd.DataFrame(rows)


def layer_groups(layers: pd.DataFrame) -> pd.DataFrame:
    """:func:`layer_times_table` summed by kind of layer: milliseconds per batch and share, one column pair
    per network, kinds in order of the first network's time."""
    sums = layers.groupby(["group", "network"], sort=False)["ms_per_batch"].sum().unstack("network")
    shares = sums / sums.sum()
    table = pd.concat({"ms_per_batch": sums, "share": shares}, axis=1).swaplevel(axis=1)
    table = table[[(net, col) for net in sums.columns for col in ("ms_per_batch", "share")]]
    table.columns = [f"{net}_{col}" for net, col in table.columns]
    return table.sort_values(table.columns[0], ascending=False).fillna(0.0).reset_index()


def layers_against_steps(layers: pd.DataFrame, recipes: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Per network of :func:`layer_times_table`: its layers' milliseconds summed, against a real training
    step of the recipes that train it (their median epoch over its batches, optimizer update included)."""
    rows = []
    for network, group in layers.groupby("network", sort=False):
        trained = [
            r for r in recipes.values() if r.get("train_gflops_per_image") and network_key(r) == network
        ]
        rows.append(
            {
                "network": network,
                "layers_alone_ms": group["ms_per_batch"].sum(),
                "training_step_ms": 1e3 * trained[0]["batch_size"] / _median_epoch_images_per_second(trained),
            }
        )
    table = pd.DataFrame(rows)
    table["layers_share_of_step"] = table["layers_alone_ms"] / table["training_step_ms"]
    return table


def epoch_seconds(recipe: dict[str, Any]) -> pd.DataFrame:
    """Every timed epoch of a recipe's runs: its seconds, and its CPU seconds and cores busy where the run
    recorded CPU time."""
    rows = []
    for run in recipe["runs"]:
        before = 0.0
        for h in run["history"]:
            seconds = h["training_seconds"] - before
            before = h["training_seconds"]
            cpu = h.get("cpu_seconds")
            cores = cpu / seconds if cpu is not None else None
            rows.append(
                {
                    "seed": run["seed"],
                    "epoch": h["epoch"],
                    "seconds": seconds,
                    "cpu_seconds": cpu,
                    "cores_busy": cores,
                }
            )
    return pd.DataFrame(rows)


def epoch_rows(recipes: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every timed epoch of each recipe (by label) in the benchmark's row shape (``name``, ``epoch_seconds``,
    ``epoch_cpu_seconds``), for :func:`fmnist_utils.plots.epoch_seconds_strip`."""
    rows = []
    for name, recipe in recipes.items():
        epochs = epoch_seconds(recipe)
        rows.append(
            {
                "name": name,
                "epoch_seconds": list(epochs["seconds"]),
                "epoch_cpu_seconds": list(epochs["cpu_seconds"]),
            }
        )
    return rows


#: When tf.data's autotuner wakes (TensorFlow 2.21, ``Model::OptimizeLoop``): 10 ms after a pipeline's iterator
#: starts, then after intervals that double, up to 60 s: at 10 ms x (2^k - 1) until 81.91 s, then every 60 s.
AUTOTUNER_FIRST_PERIOD_SECONDS = 0.01
AUTOTUNER_LONGEST_PERIOD_SECONDS = 60.0


def autotuner_wakeups(up_to: float, from_seconds: float = 0.0) -> list[float]:
    """The autotuner's wake-up times (seconds after an iterator starts) from ``from_seconds`` to ``up_to``."""
    times, at, period = [], 0.0, AUTOTUNER_FIRST_PERIOD_SECONDS
    while at + period <= up_to:
        at += period
        period = min(2 * period, AUTOTUNER_LONGEST_PERIOD_SECONDS)
        if at >= from_seconds:
            times.append(round(at, 6))
    return times


def next_wakeup(seconds: float) -> float:
    """The first autotuner wake-up at or after ``seconds``."""
    return autotuner_wakeups(seconds + AUTOTUNER_LONGEST_PERIOD_SECONDS, from_seconds=seconds - 1e-9)[0]


def autotune_probe_table(results: str | os.PathLike | None = None) -> pd.DataFrame:
    """Every pass of ``benchmark/autotune_probe.json`` (``tools.autotune_probe``): when its last step ended,
    when ``fit`` returned, the autotuner's next wake-up after the steps (autotune on only), and the cores busy
    over the call."""
    probe = json.loads((results_dir(results) / "benchmark" / "autotune_probe.json").read_text())
    return pd.DataFrame(
        [
            {
                "autotune": setting,
                "pass": number,
                "steps_seconds": p["steps_seconds"],
                "fit_seconds": p["fit_seconds"],
                "next_wakeup_seconds": next_wakeup(p["steps_seconds"]) if setting == "on" else None,
                "cores_busy": p["cpu_seconds"] / p["fit_seconds"],
            }
            for setting, passes in probe["passes"].items()
            for number, p in enumerate(passes, start=1)
        ]
    )


def autotune_table(recipes: dict[str, dict[str, Any]], autotuned: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Each recipe run both ways, autotune on (earlier) and off: median epoch seconds, training minutes, and the
    mean validation and test accuracy."""
    return pd.DataFrame(
        [
            {
                "recipe": name,
                "median_epoch_seconds_autotune_on": float(epoch_seconds(autotuned[name])["seconds"].median()),
                "median_epoch_seconds_autotune_off": float(epoch_seconds(recipe)["seconds"].median()),
                "training_minutes_autotune_on": autotuned[name]["training_minutes_median"],
                "training_minutes_autotune_off": recipe["training_minutes_median"],
                "val_accuracy_autotune_on": autotuned[name]["final_val_accuracy_mean"],
                "val_accuracy_autotune_off": recipe["final_val_accuracy_mean"],
                "test_accuracy_autotune_on": autotuned[name]["test_accuracy_mean"],
                "test_accuracy_autotune_off": recipe["test_accuracy_mean"],
            }
            for name, recipe in recipes.items()
            if name in autotuned
        ]
    )


#: The bfloat16 matrix-product ceiling measured on this project's 2-core machine when the targets were set
#: (2026-11-26, GFLOP/s): the lower end of the 800-880 measured then; this session's machine measures its own.
TARGET_MACHINE_BF16_CEILING = 800.0


def minutes_on_targets_machine(
    recipes: dict[str, dict[str, Any]], bf16_ceiling: float, targets=SPEED_TARGETS
) -> pd.DataFrame:
    """Each targeted recipe's training minutes (median over seeds) as measured here, an optimistic estimate
    of them on the machine the targets were set on (if time shrank with the ratio of bfloat16 ceilings),
    and its target minutes."""
    scale = bf16_ceiling / TARGET_MACHINE_BF16_CEILING
    return pd.DataFrame(
        [
            {
                "recipe": name,
                "minutes_here": recipes[name]["training_minutes_median"],
                "minutes_on_targets_machine": recipes[name]["training_minutes_median"] * scale,
                "target_minutes": minutes,
            }
            for name, (_, minutes) in targets.items()
            if name in recipes
        ]
    )
