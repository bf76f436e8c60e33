"""Metrics of a trained classifier: accuracy, per-class accuracy, confusion matrix, report, confusions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, silhouette_score
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from fmnist_utils.params import check_choice


@dataclass
class Evaluation:
    """Everything :func:`evaluate_predictions` derives from labels and predicted probabilities."""

    accuracy: float
    per_class_accuracy: Any  # pandas Series indexed by class name
    confusion: np.ndarray  # rows: true class, columns: predicted class
    report: dict[str, Any]  # scikit-learn classification_report(output_dict=True)
    report_text: str
    y_true: np.ndarray
    y_pred: np.ndarray
    probabilities: np.ndarray
    class_names: list[str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (for metrics files)."""
        return {
            "accuracy": self.accuracy,
            "per_class_accuracy": {k: float(v) for k, v in self.per_class_accuracy.items()},
            "confusion_matrix": self.confusion.tolist(),
            "class_names": self.class_names,
        }


def as_images(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return (x[..., np.newaxis] if x.ndim == 3 else x).astype("float32")


def predict_proba(model, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities for uint8 images (N, 28, 28) as float32 (N, 10)."""
    return np.asarray(model.predict(as_images(x), batch_size=batch_size, verbose=0), dtype="float32")


def evaluate_predictions(y_true: np.ndarray, probabilities: np.ndarray, class_names: list[str]) -> Evaluation:
    """Accuracy, per-class accuracy (= recall), confusion matrix and classification report."""

    y_true = np.asarray(y_true)
    probabilities = np.asarray(probabilities)
    if probabilities.shape != (len(y_true), len(class_names)):
        raise ValueError(
            f"probabilities must have shape ({len(y_true)}, {len(class_names)}), got {probabilities.shape}."
        )
    y_pred = probabilities.argmax(axis=1)
    labels = list(range(len(class_names)))
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    support = cm.sum(axis=1)
    per_class = pd.Series(
        np.divide(np.diag(cm), support, out=np.zeros(len(labels)), where=support > 0),
        index=class_names,
        name="accuracy",
    )
    kwargs = dict(labels=labels, target_names=class_names, digits=4, zero_division=0)
    return Evaluation(
        accuracy=float(accuracy_score(y_true, y_pred)),
        per_class_accuracy=per_class,
        confusion=cm,
        report=classification_report(y_true, y_pred, output_dict=True, **kwargs),
        report_text=classification_report(y_true, y_pred, **kwargs),
        y_true=y_true,
        y_pred=y_pred,
        probabilities=probabilities,
        class_names=list(class_names),
    )


def most_confused_pairs(confusion: np.ndarray, class_names: list[str], top: int = 5):
    """The ``top`` off-diagonal cells: true class, predicted class, count, share of the true class."""
    cm = np.asarray(confusion)
    rows = [
        {
            "true": class_names[i],
            "predicted": class_names[j],
            "count": int(cm[i, j]),
            "share_of_true_class": float(cm[i, j] / cm[i].sum()) if cm[i].sum() else 0.0,
        }
        for i in range(len(cm))
        for j in range(len(cm))
        if i != j and cm[i, j] > 0
    ]
    table = pd.DataFrame(rows, columns=["true", "predicted", "count", "share_of_true_class"])
    return table.sort_values("count", ascending=False, kind="stable").head(top).reset_index(drop=True)


def misclassified_indices(evaluation: Evaluation, limit: int | None = None, classes=None) -> np.ndarray:
    """Indices of wrong predictions, most confident mistakes first; ``classes`` (indices) keeps only
    mistakes whose true class is one of them."""
    wrong = evaluation.y_pred != evaluation.y_true
    if classes is not None:
        wrong &= np.isin(evaluation.y_true, list(classes))
    wrong = np.flatnonzero(wrong)
    confidence = evaluation.probabilities[wrong, evaluation.y_pred[wrong]]
    ordered = wrong[np.argsort(-confidence, kind="stable")]
    return ordered if limit is None else ordered[:limit]


def calibration_bins(
    evaluation: Evaluation, edges=(0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
) -> pd.DataFrame:
    """Predictions grouped by their top probability (``edges``): per bin, how many, the mean top probability
    and the share that was right (a calibrated model has the two equal); empty bins are left out."""
    confidence = evaluation.probabilities.max(axis=1)
    right = evaluation.y_pred == evaluation.y_true
    bins = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, len(edges) - 2)
    rows = [
        {
            "top probability": f"{edges[b]:.2f}–{edges[b + 1]:.2f}",
            "predictions": int((bins == b).sum()),
            "mean top probability": float(confidence[bins == b].mean()),
            "share right": float(right[bins == b].mean()),
        }
        for b in range(len(edges) - 1)
        if (bins == b).any()
    ]
    return pd.DataFrame(rows)


def embed_2d(features: np.ndarray, method: str = "pca", seed: int = 0) -> np.ndarray:
    """Project features (N, ...) to 2-D with scikit-learn's PCA or t-SNE (t-SNE after a 50-D PCA)."""
    check_choice("method", method, ("pca", "tsne"))
    flat = np.asarray(features, dtype="float32").reshape(len(features), -1)
    if method == "pca":
        return PCA(n_components=2, random_state=seed).fit_transform(flat)
    reduced = PCA(n_components=min(50, flat.shape[1], len(flat)), random_state=seed).fit_transform(flat)
    return TSNE(
        n_components=2, init="pca", perplexity=min(30.0, (len(flat) - 1) / 3), random_state=seed
    ).fit_transform(reduced)


def separability(
    features: np.ndarray, y: np.ndarray, map_2d: np.ndarray | None = None, neighbours: int = 5, folds: int = 5
) -> dict[str, float]:
    """How well classes separate in a feature space: the accuracy of a k-nearest-neighbour classifier
    (k-fold cross-validated), and, given a 2-D map of the same points, the silhouette score of the classes
    in it (-1 to 1; higher means tighter, better separated classes)."""

    flat = np.asarray(features, dtype="float32").reshape(len(features), -1)
    scores = {
        f"{neighbours}-NN accuracy": float(
            cross_val_score(KNeighborsClassifier(neighbours), flat, y, cv=folds).mean()
        )
    }
    if map_2d is not None:
        scores["silhouette in 2-D map"] = float(silhouette_score(map_2d, y))
    return scores
