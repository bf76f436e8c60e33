"""fmnist_utils.lab.benchmark runs end to end (structure and sanity only: timings are never asserted; the tests
that train or time models are marked slow: README's second command); its arguments are checked before anything
runs. How ``--output`` files are merged or refused: ``test_benchmark_outputs.py``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fmnist_utils import data
from fmnist_utils.lab import benchmark
from fmnist_utils.lab.ablation import Recipe, build_recipe_model
from fmnist_utils.models import build_seed_model


@pytest.mark.slow
def test_benchmark_compares_baseline_and_candidates(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = benchmark.main(
        [
            "--data-source",
            "sample",
            "--images",
            "512",
            "--repeats",
            "1",
            "--parity-epochs",
            "1",
            "--batch-sizes",
            "64",
            "128",
            "--output",
            str(out),
        ]
    )
    assert rc == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("Speed-up (ratio of median epochs): ") and "SAMPLE DATA" in last
    result = json.loads(out.read_text())
    names = [row["name"] for row in result["throughput"]]
    assert names[0] == benchmark.BASELINE.name and set(names[1:]) == {c.name for c in benchmark.CANDIDATES}
    pipelines = {row["pipeline"] for row in result["throughput"]}
    assert pipelines == {"numpy", "tf.data", "tf.data+autotune"}, "our pipeline, autotuned and not"
    assert all(
        row["images_per_second"] > 0 and len(row["epoch_seconds"]) == len(row["epoch_cpu_seconds"]) == 1
        for row in result["throughput"]
    )
    fastest = max(result["throughput"][1:], key=lambda r: r["median_images_per_second"])
    assert result["fastest"] == fastest["name"]
    assert (
        result["speedup"]
        == fastest["median_images_per_second"] / result["throughput"][0]["median_images_per_second"]
    )
    assert [p["precision"] for p in result["parity"]] == ["float32", fastest["precision"]]
    assert all(0.0 <= p["test_accuracy"] <= 1.0 for p in result["parity"])
    assert round(result["model_forward_mflops_per_image"], 3) == 108.816  # 2 convolutions + 3 dense layers
    sweep = result["batch_sizes"]
    assert [(row["name"], row["batch_size"]) for row in sweep] == [("batch 64", 64), ("batch 128", 128)]
    assert {row["precision"] for row in sweep} == {fastest["precision"]}, "the sweep runs the fastest config"
    ceiling = result["machine"]["matmul_ceiling"]
    assert ceiling["float32_gflops_per_second"] > 0 and ceiling["bfloat16_gflops_per_second"] > 0


def _recorded_predictions(monkeypatch) -> list[tuple[str, np.ndarray]]:
    """Patch the benchmark's predictor to record (which split it saw, (plain, flipped) probabilities) of each
    call: a split is named only when the images are exactly that split's."""
    (x, y), (x_test, _) = data.load_dataset("fashion_mnist", source="sample")
    _, (x_val, _) = data.train_val_split(x, y, dataset="fashion_mnist")
    calls = []

    def recording(real):
        def predict(model, images, *args, **kwargs):
            out = real(model, images, *args, **kwargs)
            split = next(
                (name for name, xs in (("test", x_test), ("val", x_val)) if np.array_equal(images, xs)), "?"
            )
            calls.append((split, out))
            return out

        return predict

    monkeypatch.setattr(benchmark, "predict_with_flips", recording(benchmark.predict_with_flips))
    return calls


@pytest.mark.slow
def test_time_to_accuracy_trains_the_whole_budget_then_tests_once(tmp_path, capsys, monkeypatch):
    calls = _recorded_predictions(monkeypatch)
    out = tmp_path / "tta.json"
    argv = ["--time-to-accuracy", "--data-source", "sample", "--epochs", "2", "--output", str(out)]
    assert benchmark.main([*argv, "--target", "0.001"]) == 0  # reached at once: the budget is still spent
    result = json.loads(out.read_text())
    assert result["target"] == 0.001 and result["reached"]
    assert [h["epoch"] for h in result["history"]] == [1, 2] and result["epochs"] == 2
    assert result["training_minutes"] * 60 == pytest.approx(result["history"][-1]["training_seconds"])
    assert [split for split, _ in calls] == ["val", "val", "test"], (
        "validation every epoch, the test set once, last"
    )
    _, (_, y_test) = data.load_dataset("fashion_mnist", source="sample")
    plain, flipped = calls[-1][1]
    assert (
        result["test_accuracy"]
        == result["test_accuracy_plain"]
        == pytest.approx(np.mean(plain.argmax(1) == y_test))
    ), "without --test-time-flips the plain predictions count"
    assert result["test_accuracy_flips"] == pytest.approx(np.mean(flipped.argmax(1) == y_test))
    first = result["history"][0]
    assert first["val_accuracy"] == first["val_accuracy_plain"] and "val_accuracy_flips" in first
    assert not any(key.startswith("test") for key in first)
    assert f"Test accuracy {result['test_accuracy']:.4f} after" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize(
    "recipe,model",
    [
        ("input_norm=bn_channel, conv_bn", "seed model, input_norm=bn_channel, conv_bn"),
        ("arch=vgg, conv_bn", "VGG-style model (notebook 05), conv_bn, arch=vgg"),
    ],
)
def test_time_to_accuracy_with_a_recipe(tmp_path, recipe, model):
    out = tmp_path / "tta.json"
    assert (
        benchmark.main(
            [
                "--time-to-accuracy",
                "--data-source",
                "sample",
                "--epochs",
                "1",
                "--recipe",
                recipe,
                "--output",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert result["model"] == model and len(result["history"]) == 1
    assert result["parameters"] == build_recipe_model(Recipe.parse(recipe), "fashion_mnist").count_params()
    assert result["test_time_flips"] is False


@pytest.mark.slow
def test_time_to_accuracy_of_an_ensemble_with_test_time_flips(tmp_path, capsys, monkeypatch):
    calls = _recorded_predictions(monkeypatch)
    out = tmp_path / "tta.json"
    assert (
        benchmark.main(
            [
                "--time-to-accuracy",
                "--data-source",
                "sample",
                "--epochs",
                "1",
                "--members",
                "3",
                "--recipe",
                "flip",
                "--test-time-flips",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    history = result["history"]
    assert result["members"] == 3 and [(h["member"], h["epoch"]) for h in history] == [(1, 1), (2, 1), (3, 1)]
    assert history[0]["training_seconds"] < history[1]["training_seconds"] < history[2]["training_seconds"]
    assert [split for split, _ in calls] == ["val", "test"] * 3
    flipped = {split: [pair[1] for s, pair in calls if s == split] for split in ("val", "test")}
    (_, _), (_, y_val) = data.train_val_split(
        *data.load_dataset("fashion_mnist", source="sample")[0], dataset="fashion_mnist"
    )
    for k in (1, 2, 3):  # validation: the mean of the members' flip-averaged probabilities so far
        assert history[k - 1]["val_accuracy"] == pytest.approx(
            np.mean(np.mean(flipped["val"][:k], 0).argmax(1) == y_val)
        )
    _, (_, y_test) = data.load_dataset("fashion_mnist", source="sample")
    assert result["test_accuracy"] == pytest.approx(np.mean(np.mean(flipped["test"], 0).argmax(1) == y_test))
    assert not np.allclose(flipped["test"][0], flipped["test"][1]), "each member has its own seed"
    assert "member 3, epoch  1" in capsys.readouterr().out


def test_bad_arguments_are_rejected(capsys):
    with pytest.raises(SystemExit):
        benchmark.main(["--repeats", "0"])
    assert "--repeats must be a positive integer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        benchmark.main(["--time-to-accuracy", "--recipe", "dropout=0.5"])
    assert "--recipe: Unknown recipe field 'dropout'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        benchmark.main(["--time-to-accuracy", "--target", "94"])
    assert "--target is an accuracy between 0 and 1; got 94.0" in capsys.readouterr().err


def test_seeds_without_time_to_accuracy_are_rejected(capsys, monkeypatch):
    """``--seeds`` belongs to ``--time-to-accuracy``: without it the speed benchmark would run and ignore them."""

    def benchmark_run(*args, **kwargs):
        raise AssertionError("the benchmark ran")

    monkeypatch.setattr(benchmark, "run_benchmark", benchmark_run)
    with pytest.raises(SystemExit):
        benchmark.main(["--seeds", "0", "1"])
    assert (
        "--seeds is for --time-to-accuracy: add --time-to-accuracy, or drop --seeds"
        in capsys.readouterr().err
    )


@pytest.mark.slow
def test_time_to_accuracy_over_seeds_reports_every_run_and_the_mean(tmp_path, capsys):
    """A fixed recipe trained once per seed: each run recorded (seed, accuracy, time, images/s, FLOPs), and the
    mean and standard deviation of the test accuracy decide whether the target is reached."""
    out = tmp_path / "tta.json"
    argv = ["--time-to-accuracy", "--data-source", "sample", "--epochs", "1", "--seeds", "0", "1"]
    assert benchmark.main([*argv, "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    accuracies = [run["test_accuracy"] for run in result["runs"]]
    assert result["seeds"] == [run["seed"] for run in result["runs"]] == [0, 1]
    assert result["test_accuracy_mean"] == pytest.approx(np.mean(accuracies))
    assert result["test_accuracy_std"] == pytest.approx(np.std(accuracies, ddof=1))
    assert result["reached_by_mean"] == (result["test_accuracy_mean"] >= 0.9323)
    assert result["autotune"] is False, "the pipeline's autotuner is off unless --autotune asks for it"
    for run in result["runs"]:
        assert run["images_per_second"] == pytest.approx(1700 / (60 * run["training_minutes"]))
        assert run["seconds_per_epoch"] == pytest.approx(60 * run["training_minutes"])
        assert run["train_gflops_per_image"] == pytest.approx(3 * 108.815616e6 / 1e9)
    assert "over seeds [0, 1]" in capsys.readouterr().out.splitlines()[-1]


@pytest.mark.slow
def test_an_interrupted_series_of_seeds_resumes_and_another_recipe_is_refused(tmp_path, capsys):
    """``--output`` is written after every seed; seeds it already holds for the same recipe are kept, not
    retrained, and a file holding another recipe is never overwritten."""
    out = tmp_path / "fast.json"
    argv = ["--time-to-accuracy", "--data-source", "sample", "--epochs", "1", "--output", str(out)]
    assert benchmark.main([*argv, "--seeds", "0", "--name", "fast"]) == 0
    first = json.loads(out.read_text())["runs"][0]
    assert benchmark.main([*argv, "--seeds", "0", "1", "--name", "fast"]) == 0
    result = json.loads(out.read_text())
    assert result["name"] == "fast" and result["seeds"] == [0, 1]
    assert result["runs"][0] == first, "seed 0 was kept, not retrained"
    assert "Seed 0: already in" in capsys.readouterr().out
    before = out.read_text()
    for changed, difference in (
        (["--recipe", "flip"], "architecture_sha256"),
        (["--target", "0.94"], "target: 0.9323 -> 0.94"),
        (["--autotune"], "autotune: false -> true"),
    ):
        with pytest.raises(SystemExit):
            benchmark.main([*argv, "--seeds", "2", *changed])
        err = capsys.readouterr().err
        assert "holds runs of another recipe or data; it is kept" in err and difference in err, err
    assert out.read_text() == before


@pytest.mark.slow
def test_a_series_of_seeds_refuses_runs_of_another_network_under_the_same_recipe(
    tmp_path, capsys, monkeypatch
):
    """What decides is the run's fingerprint (network, initial weights, optimizer, data), as for run folders:
    a network changed in the code since the earlier seeds ran is refused, though the recipe's name is the same."""
    out = tmp_path / "fast.json"
    argv = ["--time-to-accuracy", "--data-source", "sample", "--epochs", "1", "--output", str(out)]
    assert benchmark.main([*argv, "--seeds", "0"]) == 0
    before = out.read_text()
    monkeypatch.setattr(  # the seed recipe's network, its input normalised per channel instead of per column
        benchmark,
        "build_recipe_model",
        lambda recipe, dataset, precision, seed: build_seed_model("channel_bn"),
    )
    with pytest.raises(SystemExit):
        benchmark.main([*argv, "--seeds", "0", "1"])
    assert "architecture_sha256" in capsys.readouterr().err and out.read_text() == before
