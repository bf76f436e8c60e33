"""fmnist_utils.run_notebooks without executing notebooks: the plan, argument errors, the caller's environment."""

from __future__ import annotations

import os
import shutil

import pytest

from fmnist_utils import run_notebooks
from fmnist_utils.data import DATASETS
from fmnist_utils.params import project_root


def test_plan_fails_loudly_when_a_notebook_is_missing(tmp_path):
    shutil.copy(project_root() / "notebooks" / "03_training.ipynb", tmp_path)
    with pytest.raises(FileNotFoundError, match="01_data_exploration.ipynb, 02_model_build.ipynb"):
        run_notebooks.plan(
            tmp_path / "out",
            data_source="sample",
            epochs=1,
            train_limit=None,
            seed=0,
            embedding_points=None,
            notebooks_dir=tmp_path,
        )


def test_plan_of_the_repository_series_has_every_notebook(tmp_path):
    steps = run_notebooks.plan(
        tmp_path,
        data_source="sample",
        epochs=1,
        train_limit=None,
        seed=0,
        embedding_points=None,
        notebooks_dir=project_root() / "notebooks",
        beyond=True,
    )
    assert [s.output_name for s in steps][:4] == [
        "01_data_exploration.ipynb",
        "02_model_build.ipynb",
        "03_training_fashion_mnist.ipynb",
        "03_training_mnist.ipynb",
    ]
    assert all(s.parameters.get("progress", "epoch") == "epoch" for s in steps), (
        "one line per epoch, by parameter"
    )
    appendices, steps = steps[-len(run_notebooks.APPENDICES) :], steps[: -len(run_notebooks.APPENDICES)]
    assert (
        steps[-3].output_name == "05_beyond_the_seed.ipynb" and steps[-3].parameters["source"] == "train"
    ), "--beyond trains the ladder (the notebook's default only reads the committed one)"
    assert steps[-2].output_name == "06_train_fast.ipynb" and "source" not in steps[-2].parameters, (
        "06 times a few steps and draws the committed benchmark: the whole benchmark is a deliberate, long run"
    )
    assert "timed_steps" not in steps[-2].parameters and "trial_epochs" not in steps[-3].parameters
    assert steps[-1].output_name == "07_your_own_images.ipynb"
    assert steps[-1].parameters["models_dir"] == str(tmp_path), "07 starts from the models 03 saves here"
    assert [s.output_name for s in appendices] == list(run_notebooks.APPENDICES), "the appendices come last"
    assert appendices[0].parameters == {"data_source": "sample"}, "A1 compares the releases' labels, if any"
    assert [s.history for s in steps if s.history] == [tmp_path / name / "history.csv" for name in DATASETS]


def test_quick_shortens_what_05_and_06_train_and_time_on_the_page(tmp_path):
    steps = run_notebooks.plan(
        tmp_path,
        data_source="sample",
        epochs=1,
        train_limit=2000,
        seed=0,
        embedding_points=300,
        notebooks_dir=project_root() / "notebooks",
        beyond=True,
        quick=True,
    )
    by_name = {s.output_name: s.parameters for s in steps}
    assert by_name["06_train_fast.ipynb"]["timed_steps"] == 1
    assert by_name["05_beyond_the_seed.ipynb"]["trial_epochs"] == 1
    assert "timed_steps" not in by_name["01_data_exploration.ipynb"]


def test_epoch_lines_show_accuracy_seconds_and_time_left():
    row = {"epoch": "2", "accuracy": "0.91234", "val_accuracy": "0.90011"}
    assert run_notebooks.epoch_line(row, 30, [100.0, 110.0, 120.0]) == (  # 27 epochs left x 110 s
        "      epoch  3/30  accuracy 0.9123  val_accuracy 0.9001  120 s  about 49.5 min left"
    )
    assert run_notebooks.format_duration(89) == "89 s" and run_notebooks.format_duration(90) == "1.5 min"


def test_the_epoch_watcher_prints_each_new_row_once(tmp_path, capsys):
    history = tmp_path / "history.csv"
    header = "epoch,accuracy,epoch_seconds,val_accuracy\n"
    history.write_text(header + "0,0.5,10.0,0.6\n")  # a resumed run: its first epoch ended earlier
    watcher = run_notebooks.EpochWatcher(history, epochs=3)
    watcher.poll()
    history.write_text(header + "0,0.5,10.0,0.6\n1,0.7,20.0,0.8\n2,0.9,")  # the last row half written
    watcher.poll()
    watcher.poll()
    assert capsys.readouterr().out.splitlines() == [
        "      epoch  2/3  accuracy 0.7000  val_accuracy 0.8000  20 s  about 20 s left"
    ]


def test_quiet_kernels_restores_the_environment_and_stderr(tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    log = tmp_path / "logs" / "k.log"
    with run_notebooks.quiet_kernels(log):
        assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"
        os.write(2, b"a kernel's C++ log line\n")
    assert "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    assert log.read_text() == "a kernel's C++ log line\n"


def test_runner_leaves_the_callers_environment_alone(tmp_path, monkeypatch, capsys):
    shutil.copy(project_root() / "notebooks" / "03_training.ipynb", tmp_path)
    monkeypatch.setenv("JPY_SESSION_NAME", "mine.ipynb")
    monkeypatch.delenv("FMNIST_PROGRESS", raising=False)
    before = dict(os.environ)
    assert (
        run_notebooks.main(["--quick", "--notebooks-dir", str(tmp_path), "--output-dir", str(tmp_path / "o")])
        == 2
    )
    assert "lacks 01_data_exploration.ipynb" in capsys.readouterr().err
    assert dict(os.environ) == before
