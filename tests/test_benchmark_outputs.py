"""``--output`` files of fmnist_utils.lab.benchmark and tools.seed_protocol_any_backend: a series of seeds grows
into its file, keeping every earlier run; a file of other settings, or any existing file a single run would
write, is refused and left as it is. Training is faked (each test takes seconds): what is tested is the files."""

from __future__ import annotations

import functools
import inspect
import json

import pytest

from fmnist_utils.lab import benchmark
from tools import seed_protocol_any_backend as tool

TTA = ["--time-to-accuracy", "--data-source", "sample", "--epochs", "1"]


def _fake_fingerprint(model, data, settings, seed) -> dict:
    """A run's fingerprint from its settings alone (no model is built)."""
    return {"seed": seed, "recipe": settings["recipe"].describe(), "epochs": settings["epochs"]} | {
        key: settings[key] for key in benchmark.RUN_SETTINGS
    }


@pytest.fixture
def trained(monkeypatch) -> list[int]:
    """Replace training by a fake :func:`~fmnist_utils.lab.benchmark.time_to_accuracy` (its signature kept), and
    fingerprinting by one of the settings alone; the seeds trained, in order."""
    seeds = []
    real = benchmark.time_to_accuracy

    @functools.wraps(real)
    def time_to_accuracy(**kwargs):
        bound = inspect.signature(real).bind(**kwargs)
        bound.apply_defaults()
        s = bound.arguments
        seeds.append(s["seed"])
        shared = {key: s[key] for key in benchmark.RECIPE_KEYS if key in s}
        return shared | {
            "seed": s["seed"],
            "recipe": s["recipe"].describe(),
            "is_sample": True,
            "test_accuracy": 0.9 + s["seed"] / 100,
            "final_val_accuracy": 0.9,
            "training_minutes": 1.0,
            "reached": False,
            "fingerprint": _fake_fingerprint(None, None, s, s["seed"]),
            **dict.fromkeys(("data_source", "schedule", "model", "parameters", "train_gflops_per_image")),
            "machine": {},
        }

    monkeypatch.setattr(benchmark, "time_to_accuracy", time_to_accuracy)
    monkeypatch.setattr(benchmark, "member_model", lambda *args: None)
    monkeypatch.setattr(benchmark, "recipe_fingerprint", _fake_fingerprint)
    return seeds


def test_a_series_of_seeds_grows_into_its_file_keeping_the_earlier_seeds(tmp_path, trained, capsys):
    out = tmp_path / "fast.json"
    argv = [*TTA, "--output", str(out)]
    assert benchmark.main([*argv, "--seeds", "0", "1", "2", "--name", "fast"]) == 0
    earlier = json.loads(out.read_text())["runs"]
    assert benchmark.main([*argv, "--seeds", "3"]) == 0
    result = json.loads(out.read_text())
    assert trained == [0, 1, 2, 3] and result["seeds"] == [0, 1, 2, 3] and result["runs"][:3] == earlier
    assert result["name"] == "fast", "without --name the series keeps its name"
    assert "over seeds [0, 1, 2, 3]" in capsys.readouterr().out.splitlines()[-1]
    assert benchmark.main([*argv, "--seeds", "5", "2", "4", "5"]) == 0  # asked out of order, twice, or again
    assert trained == [0, 1, 2, 3, 5, 4], "each new seed trained once, seed 2 kept"
    assert json.loads(out.read_text())["seeds"] == [0, 1, 2, 3, 4, 5]
    assert "Seed 2: already in" in capsys.readouterr().out


def test_the_summary_of_a_series_covers_every_seed_of_its_file(tmp_path, trained):
    out = tmp_path / "fast.json"
    assert benchmark.main([*TTA, "--seeds", "2", "0", "--output", str(out)]) == 0
    summary = benchmark.run_seeds([0, 1], out, "fast", data_source="sample", epochs=1)
    assert trained == [2, 0, 1] and summary["seeds"] == [0, 1, 2]
    assert summary == json.loads(out.read_text()), "what is returned is what the file holds"


@pytest.mark.parametrize(
    "changed,difference",
    [(["--target", "0.94"], "target: 0.9323 -> 0.94"), (["--recipe", "flip"], "recipe: ")],
)
def test_a_series_refuses_a_file_of_another_recipe_and_keeps_it(
    tmp_path, trained, capsys, changed, difference
):
    out = tmp_path / "fast.json"
    assert benchmark.main([*TTA, "--seeds", "0", "--output", str(out)]) == 0
    before = out.read_text()
    with pytest.raises(SystemExit):
        benchmark.main([*TTA, "--seeds", "1", *changed, "--output", str(out)])
    err = capsys.readouterr().err
    assert f"{out} holds runs of another recipe or data; it is kept" in err and difference in err, err
    assert "Choose another --output" in err
    assert out.read_text() == before and trained == [0]


@pytest.mark.parametrize("text", ['{"speedup": 2.0}\n', "notes, not JSON\n"])
def test_a_series_refuses_a_file_that_is_not_a_series(tmp_path, trained, capsys, text):
    out = tmp_path / "notes.json"
    out.write_text(text)
    with pytest.raises(SystemExit):
        benchmark.main([*TTA, "--seeds", "0", "--output", str(out)])
    err = capsys.readouterr().err
    assert f"{out} is not a --time-to-accuracy --seeds result" in err and "choose another --output" in err
    assert out.read_text() == text and trained == []


def _never(*args, **kwargs):
    raise AssertionError("nothing may run: the output is refused first")


@pytest.mark.parametrize("argv", [["--time-to-accuracy"], ["--time-to-accuracy", "--members", "2"], []])
def test_a_single_run_or_the_benchmark_never_overwrites_its_output(tmp_path, monkeypatch, capsys, argv):
    out = tmp_path / "result.json"
    out.write_text("earlier results\n")
    monkeypatch.setattr(benchmark, "time_to_accuracy", _never)
    monkeypatch.setattr(benchmark, "run_benchmark", _never)
    with pytest.raises(SystemExit):
        benchmark.main([*argv, "--output", str(out)])
    err = capsys.readouterr().err
    assert f"{out} already exists" in err and "choose another --output or delete it" in err, err
    assert out.read_text() == "earlier results\n"


def test_a_single_run_writes_a_new_output(tmp_path, trained, capsys):
    out = tmp_path / "new" / "tta.json"
    assert benchmark.main([*TTA, "--seed", "7", "--output", str(out)]) == 0
    assert json.loads(out.read_text())["seed"] == 7 and trained == [7]
    lines = capsys.readouterr().out.splitlines()
    assert f"Results written to {out}" in lines and lines[-1].startswith("Test accuracy 0.9700 after")


def test_the_benchmark_writes_a_new_output(tmp_path, monkeypatch, capsys):
    result = {"speedup": 1.5, "fastest": "fast", "baseline": "plain", "parity_difference_pp": None}
    monkeypatch.setattr(benchmark, "run_benchmark", lambda *args: result | {"is_sample": True})
    out = tmp_path / "bench.json"
    assert benchmark.main(["--data-source", "sample", "--output", str(out)]) == 0
    assert json.loads(out.read_text())["speedup"] == 1.5
    lines = capsys.readouterr().out.splitlines()
    assert f"Results written to {out}" in lines
    assert (
        lines[-1]
        == "Speed-up (ratio of median epochs): 1.50x (fast vs plain) [SAMPLE DATA: not representative]"
    )


@pytest.fixture
def tool_runs(monkeypatch) -> list[tuple[int, str]]:
    """Replace the tool's training by a fake run; the (seed, numerics) trained, in order."""
    done = []

    def run_once(seed, numerics, data, epochs, batch_size, from_logits):
        done.append((seed, numerics))
        return {"seed": seed, "numerics": numerics, "test_accuracy": 0.9, "training_seconds": 1.0}

    monkeypatch.setattr(tool, "run_once", run_once)
    return done


TOOL = ["--data-source", "sample", "--epochs", "1"]


def test_the_seed_protocol_tool_adds_runs_to_its_file(tmp_path, tool_runs, capsys):
    out = tmp_path / "numerics.json"
    assert tool.main([*TOOL, "--seeds", "0", "1", "--output", str(out)]) == 0
    earlier = json.loads(out.read_text())
    earlier["command"] = "the command that made it, noted by hand"
    out.write_text(json.dumps(earlier))
    assert tool.main([*TOOL, "--seeds", "2", "1", "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    pairs = [(seed, numerics) for seed in (0, 1, 2) for numerics in ("keras3", "keras2")]
    assert [(r["seed"], r["numerics"]) for r in result["runs"]] == pairs
    assert result["runs"][:4] == earlier["runs"] and result["command"] == earlier["command"]
    assert tool_runs == pairs, "seed 1 was kept, not run again"
    assert "seed 1, numerics keras2: already in" in capsys.readouterr().out


@pytest.mark.parametrize(
    "changed,difference", [(["--epochs", "2"], "epochs: 1 -> 2"), (["--from-logits"], "from_logits")]
)
def test_the_seed_protocol_tool_refuses_a_file_of_other_settings(
    tmp_path, tool_runs, capsys, changed, difference
):
    out = tmp_path / "numerics.json"
    assert tool.main([*TOOL, "--seeds", "0", "--output", str(out)]) == 0
    before = out.read_text()
    with pytest.raises(SystemExit):
        tool.main([*TOOL, "--seeds", "1", *changed, "--output", str(out)])
    err = capsys.readouterr().err
    assert f"{out} holds runs of other settings; it is kept" in err and difference in err, err
    assert "Choose another --output" in err
    assert out.read_text() == before and len(tool_runs) == 2
