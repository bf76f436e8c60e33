"""fmnist_utils.training: a short real run on the sample and its artefacts; progress styles."""

from __future__ import annotations

import ast
import json

import keras
import nbformat
import numpy as np
import pytest

from fmnist_utils.models import build_seed_model, compile_seed_model
from fmnist_utils.params import project_root
from fmnist_utils.runs import RunFolder, load_run
from fmnist_utils.training import (
    SPEED_FLAGS,
    machine_info,
    resolve_progress,
    run_callbacks,
    set_seed,
    step_seconds,
    train,
)


def test_short_real_training_on_the_sample(fashion_sample, tmp_path, capsys):
    train_data, val_data, test_data, info = fashion_sample
    set_seed(0)
    result = train(
        compile_seed_model(build_seed_model()),
        train_data,
        val_data,
        test_data,
        output_dir=tmp_path,
        epochs=5,
        data_info=info,
        progress="epoch",
    )
    m = result.metrics
    assert m["test_accuracy"] > 0.55, "well above chance (0.10) after 5 epochs on 1,700 images"
    assert m["is_sample"] is True and m["data_source"] == "sample" and "SAMPLE DATA" in m["note"]
    assert "SAMPLE DATA" in capsys.readouterr().out
    assert (m["train_size"], m["val_size"], m["test_size"]) == (1700, 300, 500)
    assert m["epochs_completed"] == 5 and len(m["epoch_seconds"]) == 5 and m["total_seconds"] > 0
    assert m["params"] == 1_879_098 and m["machine"]["tensorflow"].startswith("2.21")
    steps = 5 * int(np.ceil(1700 / 256))
    assert m["final_learning_rate"] == pytest.approx(1e-3 / (1 + 1e-3 * steps), rel=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "history.csv",
        "history.json",
        "metrics.json",
        "model.keras",
    ]
    metrics, history = load_run(tmp_path)
    assert metrics == json.loads(json.dumps(m)) and list(history["epoch"]) == [0, 1, 2, 3, 4]
    assert {"loss", "val_loss", "accuracy", "val_accuracy", "epoch_seconds", "learning_rate"} <= set(history)
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    x_test, y_test = test_data
    acc = float(np.mean(reloaded.predict(x_test[..., None].astype("float32"), verbose=0).argmax(1) == y_test))
    assert acc == pytest.approx(m["test_accuracy"], abs=1e-6)


def test_progress_styles(monkeypatch):
    assert resolve_progress("bar") == 1 and resolve_progress("epoch") == 2 and resolve_progress("none") == 0
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.setenv("FMNIST_PROGRESS", "epoch")
    assert resolve_progress("auto") == 2
    monkeypatch.delenv("FMNIST_PROGRESS")
    monkeypatch.setenv("JPY_SESSION_NAME", "notebook.ipynb")  # a JupyterLab kernel: keep the live bar
    assert resolve_progress("auto") == 1
    with pytest.raises(
        ValueError, match="'progress' must be one of 'auto', 'bar', 'epoch', 'none'; got 'loud'"
    ):
        resolve_progress("loud")
    monkeypatch.setenv("FMNIST_PROGRESS", "verbose")
    with pytest.raises(ValueError, match="FMNIST_PROGRESS='verbose' is not one of"):
        resolve_progress("auto")


def test_load_run_names_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.json"):
        load_run(tmp_path)


def _notebook_03_callbacks() -> list[ast.Call]:
    """The calls that build the callbacks notebook 03 gives ``model.fit``, in order."""
    nb = nbformat.read(project_root() / "notebooks" / "03_training.ipynb", as_version=4)
    for cell in nb.cells:
        for node in ast.walk(ast.parse(cell.source)) if "model.fit(" in cell.source else ():
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "model.fit":
                [listed] = [k.value for k in node.keywords if k.arg == "callbacks"]
                return [e for e in listed.elts if isinstance(e, ast.Call)]
    raise AssertionError("notebook 03 has no model.fit(..., callbacks=[...])")


def test_notebook_03_backs_up_its_run_as_the_package_does(tmp_path):
    written = _notebook_03_callbacks()
    package = run_callbacks(RunFolder(tmp_path, {}, "new"))
    assert [ast.unparse(c.func).split(".")[-1] for c in written] == [type(c).__name__ for c in package]
    [backup] = [c for c in written if ast.unparse(c.func).endswith("BackupAndRestore")]
    settings = {k.arg: ast.literal_eval(k.value) for k in backup.keywords}
    assert settings == {"double_checkpoint": True} == {"double_checkpoint": package[-1].double_checkpoint}


def test_timing_a_step_trains_a_copy_and_leaves_the_model_as_built(small_split):
    (x_train, y_train), _ = small_split
    model = compile_seed_model(build_seed_model())
    before = [w.copy() for w in model.get_weights()]
    seconds = step_seconds(model, x_train, y_train, batch_size=64, steps=2)
    assert seconds > 0
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert int(model.optimizer.iterations.numpy()) == 0


def test_the_machine_record_names_the_cpu_features_that_decide_speed():
    flags = machine_info()["cpu_flags"]
    assert set(flags) <= set(SPEED_FLAGS)
    assert flags == [f for f in SPEED_FLAGS if f in flags]  # in one order on every machine
