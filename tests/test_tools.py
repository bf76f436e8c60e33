"""tools.seed_protocol_any_backend: the seed protocol per seed and numerics, written after every run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fmnist_utils.models import Keras2Crossentropy
from tools import seed_protocol_any_backend as tool


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
