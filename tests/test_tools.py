"""tools.seed_protocol_any_backend: the seed protocol per seed and numerics, written after every run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fmnist_utils.models import Keras2Crossentropy
from tools import seed_protocol_any_backend as tool


@pytest.mark.slow  # trains the seed network under both numerics
def test_both_numerics_from_the_scores_on_the_sample(tmp_path, capsys):
    out = tmp_path / "numerics.json"
    assert (
        tool.main(
            [
                "--data-source",
                "sample",
                "--seeds",
                "0",
                "--epochs",
                "1",
                "--from-logits",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads(out.read_text())
    assert result["is_sample"] is True and result["from_logits"] is True and result["machine"]["backend"]
    assert [(r["seed"], r["numerics"]) for r in result["runs"]] == [(0, "keras3"), (0, "keras2")]
    assert all(0.0 <= r["test_accuracy"] <= 1.0 and len(r["history"]["loss"]) == 1 for r in result["runs"])
    assert result["runs"][0]["history"]["loss"] != result["runs"][1]["history"]["loss"]
    assert "seed 0, numerics keras2: test accuracy" in capsys.readouterr().out


def test_keras2_loss_from_scores_equals_it_from_probabilities():
    import keras

    scores = np.array([[2.0, -1.0, 0.5] + [0.0] * 7, [30.0, -30.0] + [0.0] * 8], "float32")
    labels = np.array([0, 1])
    from_scores = Keras2Crossentropy(from_logits=True).call(labels, keras.ops.convert_to_tensor(scores))
    probabilities = keras.ops.softmax(keras.ops.convert_to_tensor(scores))
    from_probabilities = Keras2Crossentropy().call(labels, probabilities)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(from_scores), keras.ops.convert_to_numpy(from_probabilities), rtol=1e-6
    )
    assert keras.ops.convert_to_numpy(from_scores)[1] == pytest.approx(-np.log(1e-7), rel=1e-5)  # clipped


def test_refresh_executes_a_notebook_in_place_and_leaves_series_notebooks_to_publish(tmp_path):
    import shutil

    import nbformat

    from fmnist_utils.params import project_root
    from tools.publish import PublishError, output_problems
    from tools.refresh import refresh

    notebooks = tmp_path / "notebooks"
    (notebooks / "appendix").mkdir(parents=True)
    source = project_root() / "notebooks" / "appendix" / "A2_precision_and_hardware.ipynb"
    shutil.copy(source, notebooks / "appendix")
    refresh(notebooks / "appendix" / source.name, tmp_path / "work", notebooks)
    executed = nbformat.read(notebooks / "appendix" / source.name, as_version=4)
    assert output_problems(executed) == [] and "LossScaleOptimizer" in str(executed.cells)
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)
    shutil.copy(project_root() / "notebooks" / "03_training.ipynb", notebooks)
    with pytest.raises(PublishError, match="03_training.ipynb shows a series run's models"):
        refresh(notebooks / "03_training.ipynb", tmp_path / "work", notebooks)
