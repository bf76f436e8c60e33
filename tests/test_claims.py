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


def pipeline_speedup(throughput):
    """float32 with the project's pipeline against the plain port: the pipeline's own gain (06, section 4)."""
    return images_per_second(throughput, "float32 + tf.data") / images_per_second(
        throughput, throughput["baseline"]
    )


def plain_port_speedup(throughput):
    """What a user gets: bfloat16 with the project's pipeline against the plain port (another baseline)."""
    return images_per_second(throughput, throughput["fastest"]) / images_per_second(
        throughput, throughput["baseline"]
    )


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


NB05, NB06 = (f"notebooks/{n}.ipynb" for n in ("05_beyond_the_seed", "06_train_fast"))
A2, A4 = (
    "notebooks/appendix/A2_precision_and_hardware.ipynb",
    "notebooks/appendix/A4_speed_investigations.ipynb",
)
FASHION0, MNIST0 = "seed/fashion_mnist-seed0.json", "seed/mnist-seed0.json"  # seed 0 ran alone on the cores
THROUGHPUT, FAST = "benchmark/throughput.json", "benchmark/recipes/fast.json"
POOL_FIRST, SUMMARY = "benchmark/recipes/fast_pool_first.json", "beyond/summary.json"
GPU, LADDER = "seed/numerics_fashion_mnist_h200.json", "beyond/fashion_mnist-ablation.csv"


def seed_protocol_mean(name):
    """The mean test accuracy of the published seeds of the seed protocol on ``name``, and their std."""
    accuracies = [
        load(f"seed/{p.name}")["test_accuracy"]
        for p in (ROOT / "results" / "seed").glob(f"{name}-seed*.json")
    ]
    return statistics.mean(accuracies), statistics.stdev(accuracies)


def seed_mean(name):
    return lambda _: seed_protocol_mean(name)[0]


def seed_std(name):
    return lambda _: seed_protocol_mean(name)[1]


def errors_vs_mnist_seed_means(_):
    """Fashion-MNIST's test errors over MNIST's, each the mean over the published seeds (README)."""
    return (1 - seed_protocol_mean("fashion_mnist")[0]) / (1 - seed_protocol_mean("mnist")[0])


def ensemble_test(name):
    return lambda summary: summary["datasets"][name]["test_accuracy_best_recipe"]


def fast_epoch_seconds(fast):
    return statistics.median(run["seconds_per_epoch"] for run in fast["runs"])


def seed_bfloat16_epoch_seconds(throughput):
    """An epoch of 51,000 images of the seed network, mixed_bfloat16 + the project's pipeline (06, section 4)."""
    return 51_000 / images_per_second(throughput, throughput["fastest"])


def reported(name):
    return lambda summary: summary["datasets"][name]["seed_2017_test_accuracy"]


def recipe(name, key):
    return lambda _: load(f"benchmark/recipes/{name}.json")[key]


CLAIMS = [
    # (where, the phrase with {} for the number, results file, key or function of it, how the prose rounds)
    ("README.md", "of {} ± 0.0009 on MNIST", MNIST0, seed_mean("mnist"), "{:.4f}"),
    ("README.md", "0.9943 ± {} on MNIST", MNIST0, seed_std("mnist"), "{:.4f}"),
    ("README.md", "and {} ± 0.0013 on Fashion-MNIST", FASHION0, seed_mean("fashion_mnist"), "{:.4f}"),
    ("README.md", "0.9247 ± {} on Fashion-MNIST", FASHION0, seed_std("fashion_mnist"), "{:.4f}"),
    ("README.md", "makes {} times as many test errors", FASHION0, errors_vs_mnist_seed_means, "{:.1f}"),
    (
        "README.md",
        "reach a test accuracy of {} (measured once)",
        SUMMARY,
        ensemble_test("fashion_mnist"),
        "{:.4f}",
    ),
    ("README.md", "On MNIST an ensemble reaches {}.", SUMMARY, ensemble_test("mnist"), "{:.4f}"),
    ("README.md", "reaches {} ± 0.0012 on Fashion-MNIST (three", POOL_FIRST, "test_accuracy_mean", "{:.4f}"),
    ("README.md", "0.9345 ± {} on", POOL_FIRST, "test_accuracy_std", "{:.4f}"),
    ("README.md", "seeds) in {} minutes of training", POOL_FIRST, "training_minutes_median", "{:.1f}"),
    ("README.md", "runs {} and 37.9 minutes with the cores", MNIST0, minutes, "{:.1f}"),
    ("README.md", "runs 33.3 and {} minutes with the cores", FASHION0, minutes, "{:.1f}"),
    ("README.md", "made the seed network {}× as fast", THROUGHPUT, bfloat16_speedup, "{:.2f}"),
    (NB05, "| reported in 2017 | {} | 0.9942 |", SUMMARY, reported("fashion_mnist"), "{:.4f}"),
    (NB05, "| reported in 2017 | 0.9323 | {} |", SUMMARY, reported("mnist"), "{:.4f}"),
    (NB06, "an epoch of VGG-style takes {} s", FAST, fast_epoch_seconds, "{:.0f}"),
    (NB06, "the seed network's {} s.", THROUGHPUT, seed_bfloat16_epoch_seconds, "{:.0f}"),
    (NB06, "*fast_pool_first* (VGG-lite, pool first, {})", POOL_FIRST, "epochs", "{}"),
    (NB06, "*fast* (VGG-style, {} epochs)", FAST, "epochs", "{}"),
    (NB06, "*fast_lite* (VGG-lite, {})", "benchmark/recipes/fast_lite.json", "epochs", "{}"),
    (NB06, "*accurate* (VGG-style, {})", "benchmark/recipes/accurate.json", "epochs", "{}"),
    (A2, "the seed network trains {}× as many images per second", THROUGHPUT, bfloat16_speedup, "{:.2f}"),
    (A4, "bfloat16 beats float32 by {}×", THROUGHPUT, bfloat16_speedup, "{:.2f}"),
    (A4, "another number: {}× (section 8)", THROUGHPUT, plain_port_speedup, "{:.2f}"),
    (NB06, "it trained {}× as fast (1.11 × 1.75)", THROUGHPUT, plain_port_speedup, "{:.2f}"),
    (NB06, "1.94× as fast ({} × 1.75)", THROUGHPUT, pipeline_speedup, "{:.2f}"),
    (NB06, "machine trains the seed network {}× as fast", THROUGHPUT, bfloat16_speedup, "{:.2f}"),
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


def test_the_seed_schedule_halves_where_05_says():
    """05 states when the seed's learning rate has halved; 02's exercise prints the same step and its epoch."""
    from fmnist_utils.data import steps_per_epoch
    from fmnist_utils.models import seed_learning_rate

    schedule, first = seed_learning_rate(), float(seed_learning_rate()(0))
    step = next(t for t in range(100_000) if float(schedule(t)) <= first / 2)
    epoch = step // steps_per_epoch(51_000, 256) + 1
    assert f"halves after {step:,} steps" in prose(NB05)
    outputs = " ".join(
        "".join(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        for c in nbformat.read(ROOT / "notebooks" / "02_model_build.ipynb", as_version=4).cells
        for o in c.get("outputs", [])
    )
    assert f"step {step}: epoch {epoch} of 30" in outputs, "02's exercise answers the same epoch"
