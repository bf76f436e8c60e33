"""fmnist_utils.run_notebooks without executing notebooks: the plan, argument errors, the caller's environment."""

from __future__ import annotations

import os
import shutil

import pytest

from fmnist_utils import run_notebooks
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
    assert (
        steps[-2].output_name == "05_beyond_the_seed.ipynb" and steps[-2].parameters["source"] == "train"
    ), "--beyond trains the ladder (the notebook's default only reads the committed one)"
    assert steps[-1].output_name == "06_train_fast.ipynb" and "source" not in steps[-1].parameters, (
        "06 draws the committed measurements: timing a machine is a deliberate, long run"
    )


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
