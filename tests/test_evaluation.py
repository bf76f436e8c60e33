"""fmnist_utils.evaluation on predictions whose right answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from fmnist_utils.evaluation import (
    calibration_bins,
    embed_2d,
    evaluate_predictions,
    misclassified_indices,
    most_confused_pairs,
)

NAMES = ["a", "b", "c"]


def _onehot(pred, confidence):
    probs = np.full((len(pred), 3), (1 - np.asarray(confidence))[:, None] / 2)
    probs[np.arange(len(pred)), pred] = confidence
    return probs


def test_metrics_on_known_predictions():
    y_true = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 1, 2, 1, 1, 2, 0])
    ev = evaluate_predictions(y_true, _onehot(y_pred, [0.9] * 8), NAMES)
    assert ev.accuracy == pytest.approx(5 / 8)
    assert ev.per_class_accuracy.to_dict() == {"a": 0.5, "b": 1.0, "c": 0.5}
    assert ev.confusion.tolist() == [[2, 1, 1], [0, 2, 0], [1, 0, 1]]
    assert ev.report["b"]["precision"] == pytest.approx(2 / 3)
    assert "precision" in ev.report_text and "c" in ev.report_text
    assert ev.to_dict()["confusion_matrix"] == ev.confusion.tolist()


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        evaluate_predictions(np.array([0, 1]), np.zeros((2, 4)), NAMES)


def test_most_confused_pairs_are_sorted():
    cm = np.array([[50, 9, 1], [2, 40, 0], [0, 7, 30]])
    table = most_confused_pairs(cm, NAMES, top=2)
    assert table[["true", "predicted", "count"]].values.tolist() == [["a", "b", 9], ["c", "b", 7]]
    assert table["share_of_true_class"][0] == pytest.approx(9 / 60)


def test_misclassified_most_confident_first():
    y_true = np.array([0, 1, 2, 0])
    ev = evaluate_predictions(y_true, _onehot(np.array([1, 1, 0, 2]), [0.6, 0.9, 0.95, 0.7]), NAMES)
    assert misclassified_indices(ev).tolist() == [2, 3, 0]
    assert misclassified_indices(ev, limit=1).tolist() == [2]


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_embed_2d_separates_two_clusters(method):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (40, 20)), rng.normal(8, 1, (40, 20))])
    points = embed_2d(x, method)
    assert points.shape == (80, 2)
    a, b = points[:40].mean(0), points[40:].mean(0)
    assert np.linalg.norm(a - b) > 2 * points[:40].std(0).max()


def test_embed_2d_bad_method():
    with pytest.raises(ValueError, match="'method' must be one of 'pca', 'tsne'; got 'umap'"):
        embed_2d(np.zeros((5, 3)), "umap")


def test_calibration_bins_count_each_prediction_once_and_measure_its_share_right():
    probabilities = np.array(
        [[0.95, 0.05], [0.92, 0.08], [0.6, 0.4], [0.4, 0.6], [0.55, 0.45], [0.999, 0.001]]
    )
    y_true = np.array([0, 1, 0, 1, 1, 0])  # right, wrong, right, right, wrong, right
    bins = calibration_bins(evaluate_predictions(y_true, probabilities, ["a", "b"]))
    assert bins["top probability"].tolist() == ["0.50–0.70", "0.90–0.95", "0.99–1.00"]
    assert bins["predictions"].tolist() == [3, 2, 1]
    assert bins["share right"].tolist() == pytest.approx([2 / 3, 0.5, 1.0])
    assert bins["mean top probability"].tolist() == pytest.approx([(0.6 + 0.6 + 0.55) / 3, 0.935, 0.999])
