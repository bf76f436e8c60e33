"""fmnist_utils.lab.speed reads the benchmark results back as tables, and notebook 06's plain-Keras recipe is the
benchmark's recipe."""

from __future__ import annotations

import json
import re
import shutil
import statistics

import nbformat
import numpy as np
import pytest

from fmnist_utils.lab import benchmark, speed
from fmnist_utils.lab.ablation import Recipe, build_recipe_model
from fmnist_utils.lab.networks import (
    SparseCrossentropyWithSmoothing,
    forward_flops,
    layer_forward_flops,
    one_cycle_schedule,
)
from fmnist_utils.models import build_seed_model, layer_spec
from fmnist_utils.params import project_root
from fmnist_utils.protocol import SPEED_TARGETS

FAST = "arch=vgg, conv_bn, flip, label_smoothing=0.1"
FAST_LITE = "arch=vgg_lite, conv_bn, flip, label_smoothing=0.1"
FAST_POOL_FIRST = "arch=vgg_lite, conv_bn, flip, label_smoothing=0.1, pool_first"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A results folder laid out like the project's: the committed seed runs, a quick throughput benchmark
    and a two-seed recipe run, both on the bundled sample."""
    root = tmp_path_factory.mktemp("results")
    shutil.copytree(project_root() / "results" / "seed", root / "seed")
    bench = root / "benchmark"
    sample = ["--data-source", "sample"]
    throughput = ["--images", "512", "--repeats", "2", "--parity-epochs", "0", "--batch-sizes", "64", "128"]
    assert benchmark.main([*sample, *throughput, "--output", str(bench / "throughput.json")]) == 0
    recipe = ["--time-to-accuracy", "--epochs", "2", "--recipe", FAST, "--test-time-flips"]
    seeds = ["--seeds", "0", "1", "--name", "fast", "--output", str(bench / "recipes" / "fast.json")]
    assert benchmark.main([*sample, *recipe, *seeds]) == 0
    return root


@pytest.mark.slow  # the results fixture runs the benchmark and two seeds of a recipe
def test_recipes_are_read_back_with_their_seeds_and_spread(results):
    recipes = speed.load_recipes(results)
    stored = json.loads((results / "benchmark" / "recipes" / "fast.json").read_text())
    assert list(recipes) == ["fast"]
    [row] = speed.recipes_table(recipes).to_dict("records")
    [protocol] = speed.recipes_table({"seed protocol": speed.seed_protocol()}).to_dict("records")
    committed = len(list((results / "seed").glob("fashion_mnist-seed*.json")))
    assert (
        protocol["seeds"] == committed and protocol["train_gflop_per_image"] is None and protocol["autotune"]
    )
    assert row["autotune"] is False
    accuracies = [run["test_accuracy"] for run in stored["runs"]]
    assert row["seeds"] == 2 and row["test_accuracy_mean"] == pytest.approx(statistics.mean(accuracies))
    assert row["test_accuracy_std"] == pytest.approx(statistics.stdev(accuracies))
    assert row["training_minutes"] == pytest.approx(
        statistics.median(run["training_minutes"] for run in stored["runs"])
    )
    runs = speed.recipe_runs(recipes)
    assert list(runs["seed"]) == [0, 1] and list(runs["test_accuracy"]) == accuracies
    curves = speed.validation_curves(recipes)
    assert len(curves) == 4 and list(curves["epoch"]) == [1, 2, 1, 2]
    assert curves["training_minutes"].is_monotonic_increasing is False  # two seeds, each from zero
    assert set(curves.columns) >= {"val_accuracy_plain", "val_accuracy_flips"}


@pytest.mark.slow  # the results fixture runs the benchmark and two seeds of a recipe
def test_targets_are_judged_on_the_mean_and_the_median_minutes(results):
    recipes = speed.load_recipes(results)
    fast = recipes["fast"]
    [row] = speed.targets_table(recipes, {"fast": (0.0, 1e6), "accurate": (0.94, 15)}).to_dict("records")
    assert row["recipe"] == "fast" and row["accuracy_met"] and row["time_met"], "absent recipes are skipped"
    [row] = speed.targets_table(recipes, {"fast": (fast["test_accuracy_mean"] + 1e-6, 0.0)}).to_dict(
        "records"
    )
    assert not row["accuracy_met"] and not row["time_met"]


@pytest.mark.slow  # the results fixture runs the benchmark and two seeds of a recipe
def test_throughput_and_network_tables_read_against_the_ceiling(results):
    throughput = speed.load_throughput(results)
    table = speed.throughput_table(throughput)
    assert list(table["configuration"]) == [r["name"] for r in throughput["throughput"]]
    assert table["speedup_of_medians"].iloc[0] == 1.0
    assert all(0 < busy <= throughput["machine"]["cpu_count"] + 0.5 for busy in table["cores_busy"])
    sweep = speed.throughput_table(throughput, "batch_sizes")
    assert list(sweep["batch_size"]) == [64, 128]
    swept = sweep.iloc[0]  # the sweep runs the fastest configuration, in its own precision
    precision = "bfloat16" if "bfloat16" in swept["precision"] else "float32"
    ceiling = throughput["machine"]["matmul_ceiling"][f"{precision}_gflops_per_second"]
    assert swept["share_of_ceiling"] == pytest.approx(swept["median_gflops_per_second"] / ceiling)
    networks = speed.network_table(throughput, speed.load_recipes(results))
    seed_row, vgg_row = networks.to_dict("records")
    assert seed_row["train_gflop_per_image"] == pytest.approx(3 * forward_flops(build_seed_model()) / 1e9)
    vgg = build_recipe_model(Recipe.parse(FAST), "fashion_mnist")
    assert vgg_row["train_gflop_per_image"] == pytest.approx(3 * forward_flops(vgg) / 1e9)
    epochs = speed.epoch_seconds(speed.load_recipes(results)["fast"])
    assert len(epochs) == 4 and vgg_row["median_images_per_second"] == pytest.approx(
        1700 / epochs["seconds"].median()
    ), "the median epoch of every run, like the seed network's median pass"
    assert vgg_row["achieved_gflops_per_second"] == pytest.approx(
        vgg_row["train_gflop_per_image"] * vgg_row["median_images_per_second"]
    )
    fast = speed.load_recipes(results)["fast"]
    same_network = {"fast": fast, "accurate": fast}
    [_, shared] = speed.network_table(throughput, same_network).to_dict("records")
    assert shared["network"].endswith("(recipe fast, accurate)"), "a network trained by two recipes, once"
    assert shared["median_images_per_second"] == pytest.approx(vgg_row["median_images_per_second"])


def test_the_throughput_target_reads_both_measurements_of_the_fastest_configuration():
    def row(name, images_per_second, batch_size=256):
        seconds = 10240 / images_per_second
        return {"name": name, "median_images_per_second": images_per_second, "batch_size": batch_size,
                "images_per_second": images_per_second, "precision": "mixed_bfloat16", "pipeline": "tf.data",
                "epoch_seconds": [seconds], "epoch_cpu_seconds": [1.9 * seconds]}  # fmt: skip

    bench = {
        "images": 10240,
        "machine": {},
        "batch_size": 256,
        "fastest": "bf16",
        "throughput": [row("plain", 500.0), row("bf16", 950.0)],
        "batch_sizes": [row("batch 64", 900.0, 64), row("batch 256", 500.0)],
    }
    table = speed.throughput_targets(bench)
    assert list(table["speedup_of_medians"]) == pytest.approx([1.9, 1.0])
    assert list(table["met"]) == [True, False]
    assert list(table["cores_busy"]) == pytest.approx([1.9, 1.9])
    assert len(speed.throughput_targets({**bench, "batch_sizes": []})) == 1, "no sweep: one measurement"


def test_the_convolution_probe_is_read_against_the_ceiling(tmp_path):
    form = {"median_step_ms": 250.0, "cores_busy": [1.8, 1.9, 2.0], "relative_error_output": 0.004}
    probe = {
        "shape": [256, 12, 12, 64],
        "kernel": 5,
        "filters": 512,
        "forms": {"conv2d": form, "patches_matmul": {**form, "median_step_ms": 500.0}},
        "machine": {"matmul_ceiling": {"bfloat16_gflops_per_second": 400.0}},
    }
    (tmp_path / "benchmark").mkdir()
    (tmp_path / "benchmark" / "conv_matmul_probe.json").write_text(json.dumps(probe))
    conv, matmul = speed.conv_matmul_table(tmp_path).to_dict("records")
    step_gflop = 3 * 256 * layer_forward_flops(build_seed_model().get_layer("conv2")) / 1e9
    assert conv["gflops_per_second"] == pytest.approx(step_gflop / 0.25) == 2 * matmul["gflops_per_second"]
    assert conv["share_of_ceiling"] == pytest.approx(conv["gflops_per_second"] / 400.0)
    assert conv["cores_busy"] == 1.9 and conv["relative_error_output"] == 0.004


def test_an_empty_results_folder_names_the_command(tmp_path):
    (tmp_path / "benchmark" / "recipes").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="--time-to-accuracy"):
        speed.load_recipes(tmp_path)


def test_layer_flops_add_up_to_the_model_and_the_second_convolution_dominates():
    model = build_seed_model()
    table = speed.layer_flops(model)
    assert list(table["layer"]) == ["conv1", "conv2", "fc1", "fc2", "probabilities"]
    assert table["forward_mflop"].sum() * 1e6 == pytest.approx(forward_flops(model))
    assert table.set_index("layer").loc["conv2", "share"] > 0.9


def test_the_committed_seed_protocol_and_gpu_runs_are_read_from_their_files():
    protocol = speed.seed_protocol()
    stored = [
        json.loads((project_root() / "results" / "seed" / f"fashion_mnist-seed{s}.json").read_text())
        for s in protocol["seeds"]
    ]
    committed = sorted((project_root() / "results" / "seed").glob("fashion_mnist-seed*.json"))
    assert protocol["seeds"] == sorted(int(re.search(r"seed(\d+)", p.name)[1]) for p in committed)
    assert protocol["test_accuracy_mean"] == pytest.approx(
        statistics.mean(m["test_accuracy"] for m in stored)
    )
    gpu = speed.gpu_table().set_index("run")
    manifest = json.loads(
        (project_root() / "results" / "beyond" / "published" / "fashion_mnist" / "manifest.json").read_text()
    )
    assert gpu.iloc[1]["test_accuracy"] == manifest["test_accuracy"]
    assert gpu.loc[speed.SEED_PROTOCOL, "epochs"] == 30 and (gpu["training_seconds"] > 0).all()


def test_each_committed_recipe_aimed_at_its_issue_target():
    recipes = speed.load_recipes()
    assert "fast" in recipes
    for name, recipe in recipes.items():
        assert recipe["target"] == SPEED_TARGETS[name][0], f"{name}.json was run against another target"
        assert len(recipe["seeds"]) == 3 and not recipe["is_sample"], f"{name}: three full-data seeds"


# Notebook 06's recipe, written in plain Keras, against the package's (what the benchmark trains)


@pytest.fixture(scope="module")
def notebook_recipe() -> dict:
    """The names notebook 06's reusable cell defines."""
    nb = nbformat.read(project_root() / "notebooks" / "06_train_fast.ipynb", as_version=4)
    [cell] = [
        c for c in nb.cells if "reusable" in c.metadata.get("tags", []) and "def build_fast_model" in c.source
    ]
    namespace: dict = {}
    exec(compile(cell.source, "06_train_fast.ipynb", "exec"), namespace)
    return namespace


@pytest.mark.parametrize(
    "name, recipe, lite, pool_first",
    [
        ("fast", FAST, False, False),
        ("fast_lite", FAST_LITE, True, False),
        ("fast_pool_first", FAST_POOL_FIRST, True, True),
    ],
)
def test_notebook_06_network_is_the_benchmarks_fast_recipe(notebook_recipe, name, recipe, lite, pool_first):
    package = build_recipe_model(Recipe.parse(recipe), "fashion_mnist", precision="mixed_bfloat16", seed=3)
    mine = notebook_recipe["build_fast_model"](
        seed=3, precision="mixed_bfloat16", lite=lite, pool_first=pool_first
    )
    assert layer_spec(mine).equals(layer_spec(package))
    assert [layer.name for layer in mine.layers] == [layer.name for layer in package.layers]
    assert [layer.dtype_policy.name for layer in mine.layers] == [
        layer.dtype_policy.name for layer in package.layers
    ]
    assert mine.dtype_policy.name == package.dtype_policy.name == "mixed_bfloat16"
    committed = json.loads(
        (project_root() / "results" / "benchmark" / "recipes" / f"{name}.json").read_text()
    )
    assert committed["recipe"] == Recipe.parse(recipe).describe(), "the committed runs trained this network"


def test_notebook_06_schedule_loss_and_flips_are_the_benchmarks(notebook_recipe):
    from fmnist_utils.lab.ablation import predict_with_flips

    for epochs in (1, 12):
        mine, package = notebook_recipe["one_cycle"](200, epochs), one_cycle_schedule(200, epochs)
        for step in (0, 100, 199, 200, 1000, 200 * epochs - 1):
            assert float(mine(step)) == pytest.approx(float(package(step)), rel=1e-6)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=64)
    probabilities = rng.dirichlet(np.ones(10), size=64).astype("float32")
    one_hot = np.eye(10, dtype="float32")[labels]
    assert float(notebook_recipe["loss"](one_hot, probabilities)) == pytest.approx(
        float(SparseCrossentropyWithSmoothing(0.1)(labels, probabilities)), rel=1e-5
    )
    model = build_seed_model()
    images = rng.integers(0, 256, size=(32, 28, 28)).astype("uint8")
    assert notebook_recipe["batches"](images, labels[:32]).options().autotune.enabled is False
    np.testing.assert_allclose(
        notebook_recipe["predict_with_flips"](model, images), predict_with_flips(model, images)[1], rtol=1e-5
    )


def test_a_recipes_epochs_give_seconds_and_cores_busy():
    run = {"seed": 4, "history": [
        {"epoch": 1, "training_seconds": 10.0, "cpu_seconds": 19.0},
        {"epoch": 2, "training_seconds": 30.0, "cpu_seconds": 20.0},
    ]}  # fmt: skip
    older = {"seed": 5, "history": [{"epoch": 1, "training_seconds": 12.0}]}  # recorded no CPU time
    table = speed.epoch_seconds({"runs": [run, older]})
    assert list(table["seconds"]) == [10.0, 20.0, 12.0] and list(table["cores_busy"])[:2] == [1.9, 1.0]
    [row] = speed.epoch_rows({"fast": {"runs": [run]}})
    assert row["name"] == "fast" and row["epoch_seconds"] == [10.0, 20.0]
    assert row["epoch_cpu_seconds"] == pytest.approx([19.0, 20.0])


def test_the_autotuner_wakes_at_ten_milliseconds_times_powers_of_two_minus_one():
    assert speed.autotuner_wakeups(0.1) == pytest.approx([0.01, 0.03, 0.07])
    assert speed.autotuner_wakeups(30, from_seconds=5) == pytest.approx([5.11, 10.23, 20.47])
    assert speed.next_wakeup(5.7) == pytest.approx(10.23) and speed.next_wakeup(10.23) == pytest.approx(10.23)
    assert speed.next_wakeup(41.0) == pytest.approx(81.91)
    assert speed.autotuner_wakeups(210, from_seconds=80) == pytest.approx([81.91, 141.91, 201.91]), (
        "60 s at most"
    )
    assert speed.next_wakeup(92.0) == pytest.approx(141.91)


def test_the_autotune_probe_and_the_recipes_run_both_ways_are_read_back(tmp_path):
    (tmp_path / "benchmark" / "autotuned").mkdir(parents=True)
    (tmp_path / "benchmark" / "recipes").mkdir()
    probe = {"passes": {
        "on": [{"steps_seconds": 5.7, "fit_seconds": 10.23, "cpu_seconds": 10.9}],
        "off": [{"steps_seconds": 5.6, "fit_seconds": 5.62, "cpu_seconds": 10.7}],
    }}  # fmt: skip
    (tmp_path / "benchmark" / "autotune_probe.json").write_text(json.dumps(probe))
    on, off = speed.autotune_probe_table(tmp_path).to_dict("records")
    assert on["autotune"] == "on" and on["pass"] == 1 and on["next_wakeup_seconds"] == pytest.approx(10.23)
    assert off["cores_busy"] == pytest.approx(10.7 / 5.62) and np.isnan(off["next_wakeup_seconds"])

    def recipe(seconds: list[float], minutes: float) -> dict:
        history = [{"epoch": i + 1, "training_seconds": sum(seconds[: i + 1])} for i in range(len(seconds))]
        runs = [{"seed": 0, "history": history}]
        accuracy = {"final_val_accuracy_mean": 0.935, "test_accuracy_mean": 0.932}
        return {"name": "fast", "training_minutes_median": minutes, "runs": runs, **accuracy}

    (tmp_path / "benchmark" / "autotuned" / "fast.json").write_text(
        json.dumps(recipe([40.95, 81.91, 40.95], 2.7))
    )
    (tmp_path / "benchmark" / "recipes" / "fast.json").write_text(json.dumps(recipe([30.0, 31.0, 29.0], 1.5)))
    [row] = speed.autotune_table(
        speed.load_recipes(tmp_path), speed.load_recipes(tmp_path, "autotuned")
    ).to_dict("records")
    assert row["median_epoch_seconds_autotune_on"] == pytest.approx(40.95)
    assert row["median_epoch_seconds_autotune_off"] == 30.0
    assert row["training_minutes_autotune_on"] == 2.7 and row["training_minutes_autotune_off"] == 1.5
    assert row["test_accuracy_autotune_on"] == row["test_accuracy_autotune_off"] == 0.932
    assert row["val_accuracy_autotune_off"] == 0.935


def test_the_committed_runs_of_the_same_recipes_differ_only_in_autotuning():
    recipes, autotuned = speed.load_recipes(), speed.load_recipes(folder="autotuned")
    for name, earlier in autotuned.items():
        differing = [key for key in benchmark.RECIPE_KEYS if earlier.get(key) != recipes[name].get(key)]
        assert differing == ["autotune"], f"{name}: {differing}"


def test_the_minutes_on_the_targets_machine_scale_with_the_ceilings():
    recipes = {"fast": {"training_minutes_median": 12.0}, "untargeted": {"training_minutes_median": 1.0}}
    [row] = speed.minutes_on_targets_machine(recipes, bf16_ceiling=400.0).to_dict("records")
    assert row["recipe"] == "fast" and row["minutes_here"] == 12.0 and row["target_minutes"] == 5.0
    assert row["minutes_on_targets_machine"] == pytest.approx(
        12.0 * 400.0 / speed.TARGET_MACHINE_BF16_CEILING
    )


def test_layer_times_are_read_per_layer_and_summed_by_kind(tmp_path):
    def layer(name, kind, mflop, seconds, input_gradient=True):
        return {"layer": name, "kind": kind, "output_shape": [28, 28, 32], "forward_mflop_per_image": mflop,
                "input_gradient": input_gradient, "seconds": seconds}  # fmt: skip

    conv1 = layer("conv1_1", "Conv2D", 1.0, 0.002, False)
    vgg = [
        conv1,
        layer("conv1_1_bn", "BatchNormalization", 0, 0.006),
        layer("conv1_2", "Conv2D", 10.0, 0.010),
    ]
    vgg.append(layer("conv1_2_bn", "BatchNormalization", 0, 0.002))
    lite = [conv1, layer("conv1_1_bn", "BatchNormalization", 0, 0.008)]
    probe = {"batch_size": 100, "networks": {"vgg": {"layers": vgg}, "vgg_lite": {"layers": lite}}}
    (tmp_path / "benchmark").mkdir()
    (tmp_path / "benchmark" / "layer_times.json").write_text(json.dumps(probe))
    layers = speed.layer_times_table(tmp_path)
    first, bn, second = layers.iloc[:3].to_dict("records")
    assert first["gflops_per_second"] == pytest.approx(2 * 1.0 * 100 / 1e3 / 0.002), (
        "no input gradient: 2 passes"
    )
    assert second["gflops_per_second"] == pytest.approx(3 * 10.0 * 100 / 1e3 / 0.010)
    assert (
        np.isnan(bn["gflops_per_second"])
        and bn["group"] == "BatchNormalization"
        and bn["ms_per_batch"] == 6.0
    )
    assert first["share_of_network"] == pytest.approx(0.1) and first["output_shape"] == "28×28×32"
    groups = speed.layer_groups(layers).set_index("group")
    assert list(groups.index) == ["convolutions", "BatchNormalization"], (
        "in order of the first network's time"
    )
    assert groups.loc["convolutions", "vgg_ms_per_batch"] == pytest.approx(12.0)
    assert groups.loc["BatchNormalization", "vgg_lite_share"] == pytest.approx(0.8)
    assert speed.label("vgg_lite_share") == "VGG-lite: share"
    run = {"seed": 0, "images_per_second": 1000.0, "seconds_per_epoch": 5.0}
    run["history"] = [{"epoch": 1, "training_seconds": 5.0}]
    fast = {"recipe": FAST, "train_gflops_per_image": 0.1, "batch_size": 100, "runs": [run]}
    [row] = speed.layers_against_steps(layers[layers["network"] == "vgg"], {"fast": fast}).to_dict("records")
    assert row["layers_alone_ms"] == pytest.approx(20.0) and row["training_step_ms"] == pytest.approx(100.0)
    assert row["layers_share_of_step"] == pytest.approx(0.2)


def test_the_layer_probe_times_every_layer_forward_and_backward():
    from tools.layer_probe import time_layers

    model = build_recipe_model(Recipe.parse(FAST_LITE), "fashion_mnist", precision="mixed_bfloat16")
    timed = time_layers(model, batch_size=8, rounds=2, calls=1)
    assert [t["layer"] for t in timed] == [layer.name for layer in model.layers]
    assert all(t["seconds"] > 0 for t in timed)
    flags = {t["layer"]: t["input_gradient"] for t in timed}
    assert not flags["random_flip"] and not flags["input_bn"] and flags["conv1_1"], "no gradient for the data"
    assert sum(t["forward_mflop_per_image"] for t in timed) == pytest.approx(forward_flops(model) / 1e6)


def test_a_recipes_network_is_its_arch_and_whether_it_pools_first():
    assert [speed.network_key({"recipe": r}) for r in ("seed", FAST, FAST_POOL_FIRST)] == [
        "seed",
        "vgg",
        "vgg_lite_pool_first",
    ]
    assert speed.network_name({"recipe": FAST_POOL_FIRST}) == "VGG-lite, pool first"
    assert speed.label("vgg_lite_pool_first_share") == "VGG-lite, pool first: share"


def test_screening_runs_are_listed_in_the_order_they_ran_with_their_notes(tmp_path):
    folder = tmp_path / "benchmark" / "screening"
    folder.mkdir(parents=True)
    for file, finished, epochs in (
        ("a_later.json", "2026-11-27T10:00:00", 16),
        ("b_first.json", "2026-11-27T09:00:00", 20),
    ):
        run = {
            "seed": 0,
            "final_val_accuracy": 0.93,
            "test_accuracy": 0.92,
            "training_minutes": 0.25 * epochs,
            "finished_at": finished,
        }
        screened = {
            "name": f"{epochs} epochs",
            "epochs": epochs,
            "runs": [run],
            "screening_note": f"note {epochs}",
        }
        (folder / file).write_text(json.dumps(screened))
    table = speed.screening_table(tmp_path)
    assert list(table["epochs"]) == [20, 16] and list(table["note"]) == ["note 20", "note 16"]
    assert list(table["training_minutes"]) == [5.0, 4.0]
    assert list(table["screening_test_accuracy"]) == [0.92, 0.92], "shown, labelled as not used"
    assert speed.label("screening_test_accuracy") == "test accuracy (measured, not used)"


def test_the_matmul_ceiling_is_measured_once_per_process():
    first = benchmark.matmul_ceiling(64, 2, 1)
    first["float32_gflops_per_second"] = -1.0  # a caller's change stays its own
    again = benchmark.matmul_ceiling(64, 2, 1)
    assert again["float32_gflops_per_second"] > 0 and again == benchmark.matmul_ceiling(64, 2, 1)


def test_notebook_06_times_each_model_after_one_untimed_step_in_interleaved_rounds():
    """06's step timer (its first reusable cell): every model trains once untimed, then once a round."""
    import keras
    import numpy as np

    nb = nbformat.read(project_root() / "notebooks" / "06_train_fast.ipynb", as_version=4)
    [cell] = [c for c in nb.cells if "def time_training_steps" in c.source]
    namespace: dict = {}
    exec(compile(cell.source, "06_train_fast.ipynb", "exec"), namespace)
    models = {}
    for name in ("small", "wide"):
        models[name] = keras.Sequential(
            [
                keras.Input((28, 28, 1)),
                keras.layers.Flatten(),
                keras.layers.Dense(8 if name == "small" else 64),
            ]
        )
        models[name].compile(
            optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        )
    x, y = np.zeros((40, 28, 28), "uint8"), np.zeros(40, "int64")
    speeds = namespace["time_training_steps"](models, x, y, steps=3, batch_size=16)
    assert list(speeds.index) == ["small", "wide"] and (speeds > 0).all()
    assert [int(m.optimizer.iterations) for m in models.values()] == [4, 4], "one untimed step, then 3 timed"
