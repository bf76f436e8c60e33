"""fmnist_utils.benchmark runs end to end (structure and sanity only: timings are never asserted)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fmnist_utils import benchmark, data
from fmnist_utils.ablation import Recipe, build_recipe_model


def test_benchmark_compares_baseline_and_candidates(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = benchmark.main(["--data-source", "sample", "--images", "512", "--repeats", "1", "--parity-epochs", "1",
                         "--output", str(out)])
    assert rc == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("Speed-up: ") and "SAMPLE DATA" in last
    result = json.loads(out.read_text())
    names = [row["name"] for row in result["throughput"]]
    assert names[0] == benchmark.BASELINE.name and set(names[1:]) == {c.name for c in benchmark.CANDIDATES}
    assert all(row["images_per_second"] > 0 and len(row["epoch_seconds"]) == 1 for row in result["throughput"])
    fastest = max(result["throughput"][1:], key=lambda r: r["images_per_second"])
    assert result["fastest"] == fastest["name"]
    assert result["speedup"] == fastest["images_per_second"] / result["throughput"][0]["images_per_second"]
    assert [p["precision"] for p in result["parity"]] == ["float32", fastest["precision"]]
    assert all(0.0 <= p["test_accuracy"] <= 1.0 for p in result["parity"])
    assert round(result["model_forward_mflops_per_image"], 3) == 108.816  # 2 convolutions + 3 dense layers


def test_time_to_accuracy_reports_each_epoch(tmp_path, capsys):
    out = tmp_path / "tta.json"
    assert benchmark.main(["--time-to-accuracy", "--data-source", "sample", "--max-epochs", "2",
                           "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [h["epoch"] for h in result["history"]] == [1, 2] and result["reached"] is False
    assert result["history"][1]["training_seconds"] > result["history"][0]["training_seconds"] > 0
    assert "Did not reach 0.9323 within 2 epochs" in capsys.readouterr().out


@pytest.mark.parametrize("recipe,model", [
    ("input_norm=bn_channel, conv_bn", "seed model, input_norm=bn_channel, conv_bn"),
    ("arch=vgg, conv_bn", "VGG-style model (notebook 05), conv_bn, arch=vgg"),
])
def test_time_to_accuracy_with_a_recipe(tmp_path, recipe, model):
    out = tmp_path / "tta.json"
    assert benchmark.main(["--time-to-accuracy", "--data-source", "sample", "--max-epochs", "1",
                           "--recipe", recipe, "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["model"] == model and len(result["history"]) == 1
    assert result["parameters"] == build_recipe_model(Recipe.parse(recipe), "fashion_mnist").count_params()
    assert result["test_time_flips"] is False and "test_accuracy_with_flips" not in result["history"][0]


def test_time_to_accuracy_with_test_time_flips(tmp_path, capsys):
    out = tmp_path / "tta.json"
    assert benchmark.main(["--time-to-accuracy", "--data-source", "sample", "--max-epochs", "1", "--recipe", "flip",
                           "--test-time-flips", "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    epoch = result["history"][0]
    assert result["test_time_flips"] is True and 0.0 <= epoch["test_accuracy_with_flips"] <= 1.0
    assert f"with test-time flips {epoch['test_accuracy_with_flips']:.4f}" in capsys.readouterr().out


def test_time_to_accuracy_of_an_ensemble_trained_member_after_member(tmp_path, capsys, monkeypatch):
    predictions = []  # what each evaluation predicted, to recompute the ensemble independently
    real = benchmark.predict_with_flips

    def recording(model, x, batch_size=1024):
        pair = real(model, x, batch_size)
        predictions.append(pair[1])
        return pair

    monkeypatch.setattr(benchmark, "predict_with_flips", recording)
    out = tmp_path / "tta.json"
    assert benchmark.main(["--time-to-accuracy", "--data-source", "sample", "--max-epochs", "1", "--members", "3",
                           "--recipe", "flip", "--test-time-flips", "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    history = result["history"]
    assert result["members"] == 3 and [(h["member"], h["epoch"]) for h in history] == [(1, 1), (2, 1), (3, 1)]
    assert "ensemble_test_accuracy" not in history[0]
    assert history[0]["training_seconds"] < history[1]["training_seconds"] < history[2]["training_seconds"]
    _, (_, y_test) = data.load_dataset("fashion_mnist", source="sample")
    for k in (2, 3):  # the mean of every member's flip-averaged probabilities so far
        expected = np.mean(np.mean(predictions[:k], axis=0).argmax(1) == y_test)
        assert history[k - 1]["ensemble_test_accuracy"] == pytest.approx(expected)
    assert predictions[0].shape == (len(y_test), 10) and not np.allclose(predictions[0], predictions[1]), \
        "each member has its own seed"
    printed = capsys.readouterr().out
    assert "member 3, epoch  1" in printed and "Did not reach 0.9323 within 3 epochs" in printed


def test_bad_arguments_are_rejected(capsys):
    with pytest.raises(SystemExit):
        benchmark.main(["--repeats", "0"])
    assert "--repeats must be a positive integer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        benchmark.main(["--time-to-accuracy", "--recipe", "dropout=0.5"])
    assert "--recipe: Unknown recipe field 'dropout'" in capsys.readouterr().err
