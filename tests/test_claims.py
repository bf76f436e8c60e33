"""Numbers the prose of the notebooks and README states, each equal to the committed result it comes from."""

import csv
import json
import statistics
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


def load(path: str):
    """A committed results file (under results/): JSON as it is, CSV as a list of rows."""
    file = ROOT / "results" / path
    return list(csv.DictReader(file.open())) if file.suffix == ".csv" else json.loads(file.read_text())


def prose(path: str) -> str:
    """README's text, or a notebook's markdown cells, with every run of whitespace made one space."""
    file = ROOT / path
    if file.suffix == ".ipynb":
        text = " ".join(
            c.source for c in nbformat.read(file, as_version=4).cells if c.cell_type == "markdown"
        )
    else:
        text = file.read_text()
    return " ".join(text.split())


def minutes(run):
    return run["total_seconds"] / 60


def images_per_second(throughput, name):
    return next(r["median_images_per_second"] for r in throughput["throughput"] if r["name"] == name)


def bfloat16_speedup(throughput):
    """Like for like: bfloat16 against float32, both fed by the project's tf.data pipeline (06, section 3)."""
    bfloat16 = images_per_second(throughput, "mixed_bfloat16 + tf.data")
    return bfloat16 / images_per_second(throughput, "float32 + tf.data")


def ceiling_ratio(throughput):
    ceiling = throughput["machine"]["matmul_ceiling"]
    return ceiling["bfloat16_gflops_per_second"] / ceiling["float32_gflops_per_second"]


def errors_vs_mnist_seed3(fashion):
    return (1 - fashion["test_accuracy"]) / (1 - load("seed/mnist-seed3.json")["test_accuracy"])


def errors_vs_mnist_tested(summary):
    tested = {name: d["test_accuracy_best_recipe"] for name, d in summary["datasets"].items()}
    return (1 - tested["fashion_mnist"]) / (1 - tested["mnist"])


def gpu_seed_speedup(numerics):
    """Seed 0 alone on the CPU against the median of the GPU's seeds (06, section 9)."""
    gpu = statistics.median(r["training_seconds"] for r in numerics["runs"] if r["numerics"] == "keras3")
    return load("seed/fashion_mnist-seed0.json")["total_seconds"] / gpu


def winner_minutes(ablation):
    step = load("beyond/published/fashion_mnist/manifest.json")["winner_step"]
    return next(float(r["minutes"]) for r in ablation if int(r["step"]) == step)


def gpu_winner_speedup(ablation):
    step = load("beyond/published/fashion_mnist/manifest.json")["winner_step"]
    history = load(f"beyond/published/fashion_mnist/history_step{step}.csv")
    return winner_minutes(ablation) * 60 / sum(float(r["epoch_seconds"]) for r in history)


def fast_margin(fast):
    return fast["test_accuracy_mean"] - fast["target"]


def spread_over_margin(fast):
    return fast["test_accuracy_std"] / fast_margin(fast)


NB03, NB04, NB05, NB06 = (
    f"notebooks/{n}.ipynb"
    for n in ("03_training", "04_compare_mnist_fashion", "05_beyond_the_seed", "06_train_fast")
)
A2, A4 = (
    "notebooks/appendix/A2_precision_and_hardware.ipynb",
    "notebooks/appendix/A4_speed_investigations.ipynb",
)
FASHION0, MNIST0 = "seed/fashion_mnist-seed0.json", "seed/mnist-seed0.json"  # seed 0 ran alone on the cores
FASHION3 = "seed/fashion_mnist-seed3.json"  # notebooks 03 and 04 show seed 3's runs
THROUGHPUT, FAST = "benchmark/throughput.json", "benchmark/recipes/fast.json"
GPU, LADDER = "seed/numerics_fashion_mnist_h200.json", "beyond/fashion_mnist-ablation.csv"

CLAIMS = [
    # (where, the phrase with {} for the number, results file, key or function of it, how the prose rounds)
    ("README.md", "30 epochs: {} min–4 h per dataset", FASHION0, minutes, "{:.0f}"),
    ("README.md", "seed 0, alone: {} and 67 s per epoch", FASHION0, "mean_epoch_seconds", "{:.0f}"),
    ("README.md", "seed 0, alone: 76 and {} s per epoch", MNIST0, "mean_epoch_seconds", "{:.0f}"),
    ("README.md", "the seed recipe for {} epochs in bfloat16", "beyond/summary.json", "epochs", "{}"),
    (NB03, "one epoch takes about {} s (Fashion-MNIST)", FASHION0, "mean_epoch_seconds", "{:.0f}"),
    (NB03, "or {} s (MNIST)", MNIST0, "mean_epoch_seconds", "{:.0f}"),
    (NB03, "{} or 33.3 minutes in all", FASHION0, minutes, "{:.1f}"),
    (NB03, "37.9 or {} minutes in all", MNIST0, minutes, "{:.1f}"),
    (NB06, "that takes {} minutes for Fashion-MNIST", FASHION0, minutes, "{:.1f}"),
    (A2, "the seed network trains {}× as many images per second", THROUGHPUT, bfloat16_speedup, "{:.2f}"),
    (NB06, "bfloat16 beats float32 by {}×", THROUGHPUT, bfloat16_speedup, "{:.2f}"),
    (NB06, "the ratio of the ceilings, {} (section 1)", THROUGHPUT, ceiling_ratio, "{:.2f}"),
    (NB04, "it makes {} times as many mistakes", FASHION3, errors_vs_mnist_seed3, "{:.1f}"),
    (NB05, "leave {} times as many test errors", "beyond/summary.json", errors_vs_mnist_tested, "{:.1f}"),
    (NB06, "spread ({}) is", FAST, "test_accuracy_std", "{:.4f}"),
    (NB06, "the margin ({})", FAST, fast_margin, "{:.4f}"),
    (NB06, "is {} times the margin", FAST, spread_over_margin, "{:.0f}"),
    (A4, "the seed protocol trained {} times as fast", GPU, gpu_seed_speedup, "{:.0f}"),
    (A4, "winner {} times as fast as in its ladder", LADDER, gpu_winner_speedup, "{:.0f}"),
    (A4, "in its ladder ({} minutes, bfloat16)", LADDER, winner_minutes, "{:.1f}"),
]


@pytest.mark.parametrize(
    ("where", "phrase", "results", "key", "rounding"),
    CLAIMS,
    ids=[f"{Path(c[0]).stem[:6]}: {c[1]}" for c in CLAIMS],
)
def test_the_prose_states_the_committed_number(where, phrase, results, key, rounding):
    data = load(results)
    value = key(data) if callable(key) else data[key]
    expected = phrase.format(rounding.format(value))
    assert expected in prose(where), f"{where} should say {expected!r} (from results/{results})"
