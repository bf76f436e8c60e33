"""Figures of the series (matplotlib + seaborn). Each function returns its figure; ``save_to`` writes a PNG.

Every figure has a title and labelled axes. Saving is atomic (temporary file, then rename).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from fmnist_utils.evaluation import Evaluation, misclassified_indices
from fmnist_utils.files import atomic_path


def save_figure(fig: plt.Figure, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save ``fig`` as PNG at ``path`` (folders created; written to a temporary name first)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    return path


def finish(fig: plt.Figure, save_to: str | os.PathLike | None) -> plt.Figure:
    """Tighten the layout and save to ``save_to`` if given."""
    fig.tight_layout()
    if save_to is not None:
        save_figure(fig, save_to)
    return fig


def _hide_ticks(ax: plt.Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


# ----------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------


def sample_grid(
    x: np.ndarray,
    y: np.ndarray,
    class_names: list[str],
    per_class: int = 8,
    title: str = "Samples per class",
    seed: int = 0,
    save_to=None,
) -> plt.Figure:
    """A grid with one row per class and ``per_class`` random examples of it."""
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(
        len(class_names), per_class, figsize=(per_class * 0.9 + 1.2, len(class_names) * 0.95)
    )
    for row, name in enumerate(class_names):
        members = np.flatnonzero(y == row)
        picks = rng.choice(members, size=min(per_class, len(members)), replace=False)
        for col in range(per_class):
            ax = axes[row, col]
            _hide_ticks(ax)
            if col < len(picks):
                ax.imshow(x[picks[col]], cmap="gray_r", vmin=0, vmax=255)
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title)
    return finish(fig, save_to)


def class_balance(
    y: np.ndarray, class_names: list[str], title: str = "Examples per class", save_to=None
) -> plt.Figure:
    """Bar chart of how many examples each class has."""
    counts = np.bincount(y, minlength=len(class_names))
    fig, ax = plt.subplots(figsize=(7, 3.2))
    sns.barplot(x=list(class_names), y=counts, ax=ax, color="tab:blue")
    ax.set(title=title, xlabel="class", ylabel="number of images")
    ax.tick_params(axis="x", rotation=45)
    return finish(fig, save_to)


def mean_images(
    x: np.ndarray, y: np.ndarray, class_names: list[str], title: str = "Mean image per class", save_to=None
) -> plt.Figure:
    """The average image of each class: what a pixel-wise template classifier would see."""
    fig, axes = plt.subplots(1, len(class_names), figsize=(1.3 * len(class_names), 1.9))
    for label, (ax, name) in enumerate(zip(axes, class_names)):
        ax.imshow(x[y == label].mean(axis=0), cmap="magma", vmin=0, vmax=255)
        ax.set_title(name, fontsize=8)
        _hide_ticks(ax)
    fig.suptitle(title)
    return finish(fig, save_to)


def pixel_histograms(
    images: Mapping[str, np.ndarray], title: str = "Pixel-intensity distribution", save_to=None
) -> plt.Figure:
    """Overlaid histograms of pixel values (0-255), one per named image set (log count axis)."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    bins = np.arange(0, 257, 4)
    for label, x in images.items():
        ax.hist(np.asarray(x).ravel(), bins=bins, histtype="step", linewidth=1.6, label=label, density=True)
    ax.set(
        title=title,
        xlabel="pixel value (0 = background, 255 = full ink)",
        ylabel="density (log scale)",
        yscale="log",
    )
    ax.legend()
    return finish(fig, save_to)


def embedding_scatter(
    points: np.ndarray,
    y: np.ndarray,
    class_names: list[str],
    title: str,
    xlabel: str = "component 1",
    ylabel: str = "component 2",
    ax: plt.Axes | None = None,
    save_to=None,
) -> plt.Figure:
    """2-D scatter of an embedding coloured by class (``ax`` lets callers put several side by side)."""
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(6.5, 5.5))
    fig = ax.figure
    palette = sns.color_palette("tab10", len(class_names))
    for label, name in enumerate(class_names):
        sel = y == label
        ax.scatter(points[sel, 0], points[sel, 1], s=4, alpha=0.6, color=palette[label], label=name)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.legend(markerscale=3, fontsize=7, loc="best", frameon=True)
    return finish(fig, save_to) if own else fig


# ----------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------


def training_curves(histories, title: str = "Training curves", save_to=None) -> plt.Figure:
    """Loss and accuracy per epoch, training (solid) vs validation (dashed).

    ``histories`` is one history (DataFrame or dict of lists) or a mapping ``label -> history`` to
    overlay several runs (e.g. MNIST and Fashion-MNIST) in the same two panels.
    """
    if isinstance(histories, (pd.DataFrame, dict)) and "loss" in histories:
        histories = {"": histories}
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4.2))
    palette = sns.color_palette("tab10", len(histories))
    for color, (label, hist) in zip(palette, histories.items()):
        hist = pd.DataFrame(hist)
        epochs = np.arange(1, len(hist) + 1)
        prefix = f"{label} " if label else ""
        for ax, metric in ((ax_loss, "loss"), (ax_acc, "accuracy")):
            ax.plot(epochs, hist[metric], color=color, label=f"{prefix}train")
            ax.plot(epochs, hist[f"val_{metric}"], color=color, linestyle="--", label=f"{prefix}validation")
    ax_loss.set(title="Loss", xlabel="epoch", ylabel="cross-entropy loss")
    ax_acc.set(title="Accuracy", xlabel="epoch", ylabel="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    return finish(fig, save_to)


def learning_rate_curve(
    schedules: Mapping[str, np.ndarray],
    steps: np.ndarray,
    title: str = "Learning rate per optimizer step",
    save_to=None,
) -> plt.Figure:
    """Learning-rate curves (``label -> values at steps``)."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for label, values in schedules.items():
        ax.plot(steps, values, label=label)
    ax.set(title=title, xlabel="optimizer step t", ylabel="learning rate")
    ax.grid(alpha=0.3)
    ax.legend()
    return finish(fig, save_to)


# ----------------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------------


def confusion_heatmap(
    confusion: np.ndarray,
    class_names: list[str],
    normalize: bool = True,
    title: str = "Confusion matrix",
    ax: plt.Axes | None = None,
    save_to=None,
) -> plt.Figure:
    """Confusion matrix heatmap; ``normalize`` shows each row as shares of its true class."""
    cm = np.asarray(confusion, dtype=float)
    values = cm / cm.sum(axis=1, keepdims=True).clip(min=1) if normalize else cm
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(7.5, 6.2))
    sns.heatmap(
        values,
        annot=True,
        fmt=".2f" if normalize else ".0f",
        cmap="Blues",
        square=True,
        ax=ax,
        xticklabels=class_names,
        yticklabels=class_names,
        cbar=own,
        annot_kws={"fontsize": 7},
        vmin=0,
        vmax=1 if normalize else None,
    )
    ax.set(title=title, xlabel="predicted class", ylabel="true class")
    ax.tick_params(axis="x", rotation=45)
    ax.tick_params(axis="y", rotation=0)
    return finish(ax.figure, save_to) if own else ax.figure


def per_class_accuracy(
    accuracies: Mapping[str, object], title: str = "Test accuracy per class", save_to=None
) -> plt.Figure:
    """Grouped bars of per-class accuracy (``label -> pandas Series indexed by class``)."""
    table = pd.DataFrame({label: pd.Series(s).reset_index(drop=True) for label, s in accuracies.items()})
    table["class index"] = range(len(table))
    long = table.melt(id_vars="class index", var_name="run", value_name="accuracy")
    fig, ax = plt.subplots(figsize=(9, 3.8))
    sns.barplot(data=long, x="class index", y="accuracy", hue="run", ax=ax)
    names_per_index = zip(*(list(pd.Series(s).index) for s in accuracies.values()))
    ax.set_xticks(
        range(len(table)),
        [" · ".join(dict.fromkeys(map(str, names))) for names in names_per_index],
        rotation=45,
        ha="right",
    )
    ax.set(title=title, xlabel="class", ylabel="accuracy", ylim=(0.0, 1.0))  # from 0: bar lengths compare
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)  # beside the bars, not on one
    return finish(fig, save_to)


def per_class_sorted(
    accuracies: Mapping[str, object], title: str = "Test accuracy per class, sorted", save_to=None
) -> plt.Figure:
    """One panel per dataset: its classes by name, sorted from the hardest, on a shared accuracy axis
    (``label -> pandas Series indexed by class name``): like compared with like."""
    fig, axes = plt.subplots(
        1, len(accuracies), figsize=(5.5 * len(accuracies), 3.8), sharex=True, squeeze=False
    )
    for ax, (label, series) in zip(axes[0], accuracies.items()):
        ordered = pd.Series(series).sort_values()
        ax.barh([str(name) for name in ordered.index], ordered.to_numpy(), color="tab:blue")
        for y, value in enumerate(ordered.to_numpy()):
            ax.text(value, y, f" {value:.1%}", va="center", fontsize=8)
        ax.set(title=label, xlabel="test accuracy (recall)", xlim=(0.0, 1.15))  # from 0: lengths compare
        ax.invert_yaxis()  # the hardest class on top
    fig.suptitle(title)
    return finish(fig, save_to)


def misclassified_gallery(
    x: np.ndarray,
    evaluation: Evaluation,
    n: int = 24,
    cols: int = 8,
    title: str = "Most confident mistakes",
    classes=None,
    save_to=None,
) -> plt.Figure:
    """The ``n`` most confident wrong predictions, captioned 'true -> predicted (confidence)';
    ``classes`` (indices) shows only mistakes on those true classes."""
    idx = misclassified_indices(evaluation, limit=n, classes=classes)
    rows = max(1, int(np.ceil(len(idx) / cols)))
    # each row's height leaves room for its 2-line titles
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 2.3), squeeze=False)
    names = evaluation.class_names
    for ax in axes.ravel():
        _hide_ticks(ax)
        ax.axis("off")
    for ax, i in zip(axes.ravel(), idx):
        pred = evaluation.y_pred[i]
        ax.imshow(x[i], cmap="gray_r", vmin=0, vmax=255)
        ax.set_title(
            f"{names[evaluation.y_true[i]]}\n→ {names[pred]} ({evaluation.probabilities[i, pred]:.2f})",
            fontsize=7,
            color="tab:red",
        )
    if len(idx) == 0:
        axes[0, 0].set_title("no mistakes")
    fig.suptitle(f"{title} (true → predicted, confidence)")
    return finish(fig, save_to)


def prediction_bars(
    x: np.ndarray,
    evaluation: Evaluation,
    indices,
    title: str = "Predicted probabilities",
    save_to=None,
    images: str = "test image",
) -> plt.Figure:
    """For each index: the image and a bar chart of the 10 class probabilities (true class in green), each row
    titled by ``images`` and its index."""
    indices = list(indices)
    fig, axes = plt.subplots(
        len(indices), 2, figsize=(9, 2.1 * len(indices)), squeeze=False, gridspec_kw={"width_ratios": [1, 4]}
    )
    names = evaluation.class_names
    for (ax_img, ax_bar), i in zip(axes, indices):
        ax_img.imshow(x[i], cmap="gray_r", vmin=0, vmax=255)
        _hide_ticks(ax_img)
        true, predicted = names[evaluation.y_true[i]], names[evaluation.y_pred[i]]
        verdict = f"true {true}, right" if true == predicted else f"true {true} → predicted {predicted}"
        ax_bar.set_title(f"{images} #{i}: {verdict}", fontsize=8, loc="left")
        colors = ["tab:gray"] * len(names)
        colors[evaluation.y_pred[i]] = "tab:red"
        colors[evaluation.y_true[i]] = "tab:green"
        ax_bar.bar(range(len(names)), evaluation.probabilities[i], color=colors)
        ax_bar.set_xticks(range(len(names)), names, fontsize=7)
        ax_bar.set(ylim=(0, 1), ylabel="probability")
    axes[-1, 1].set_xlabel("class (green: true, red: predicted when wrong)")
    fig.suptitle(title)
    return finish(fig, save_to)


# ----------------------------------------------------------------------------------------------------
# Inside the network: layers at work, filters, feature maps, saliency, the architecture
# ----------------------------------------------------------------------------------------------------


def image_panels(
    panels: Mapping[str, np.ndarray],
    title: str,
    cmap: str | Mapping[str, str] = "gray_r",
    colorbar: bool = True,
    save_to=None,
) -> plt.Figure:
    """One row of 2-D arrays (an image, a kernel, a feature map...), each titled, on its own colour scale;
    ``cmap`` is one colour map or one per panel title; a diverging map ("RdBu_r") is centred on 0."""
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), squeeze=False)
    for ax, (label, array) in zip(axes[0], panels.items()):
        array = np.asarray(array, dtype="float32")
        colours = cmap if isinstance(cmap, str) else cmap.get(label, "gray_r")
        limit = float(np.abs(array).max()) or 1.0
        scale = {"vmin": -limit, "vmax": limit} if colours == "RdBu_r" else {}
        shown = ax.imshow(array, cmap=colours, **scale)
        ax.set_title(f"{label}\n{array.shape[0]}×{array.shape[1]}", fontsize=10)
        _hide_ticks(ax)
        if colorbar:
            fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(title)
    return finish(fig, save_to)


def image_rows(rows: Mapping[str, np.ndarray], title: str, save_to=None) -> plt.Figure:
    """One labelled row per entry (``label -> (N, H, W)`` images of raw 0-255 pixels), column by column the
    same images: originals and their transformed copies side by side."""
    n = max(len(images) for images in rows.values())
    fig, axes = plt.subplots(len(rows), n, figsize=(1.5 * n, 1.6 * len(rows)), squeeze=False)
    for row, (label, images) in zip(axes, rows.items()):
        for ax, image in zip(row, images):
            ax.imshow(np.clip(image, 0, 255), cmap="gray_r", vmin=0, vmax=255)
        for ax in row:
            _hide_ticks(ax)
        row[0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center")
    fig.suptitle(title)
    return finish(fig, save_to)


def value_bars(
    panels: Mapping[str, np.ndarray], title: str, xlabel: str = "unit", save_to=None
) -> plt.Figure:
    """One bar chart per vector (activations before/after a layer, logits and probabilities...)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 3.2), squeeze=False)
    for ax, (label, values) in zip(axes[0], panels.items()):
        values = np.asarray(values, dtype="float32")
        ax.bar(np.arange(len(values)), values, color=np.where(values == 0, "lightgray", "tab:blue"))
        ax.set(title=label, xlabel=xlabel)
    fig.suptitle(title)
    return finish(fig, save_to)


def filter_grid(
    kernel: np.ndarray, title: str = "First-layer filters", cols: int = 16, save_to=None
) -> plt.Figure:
    """A convolution's kernels ``(h, w, 1, filters)``, strongest (largest weight norm) first, each on its own
    scale centred on 0 (red positive, blue negative, white zero), captioned with its index."""
    kernel = np.asarray(kernel, dtype="float32")[:, :, 0, :]
    order = np.argsort(-np.linalg.norm(kernel.reshape(-1, kernel.shape[-1]), axis=0), kind="stable")
    rows = int(np.ceil(kernel.shape[-1] / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.8, rows * 0.95), squeeze=False)
    for ax in axes.flat:
        _hide_ticks(ax)
        ax.axis("off")
    for ax, i in zip(axes.flat, order):
        limit = float(np.abs(kernel[..., i]).max()) or 1.0
        ax.imshow(kernel[..., i], cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(f"#{i}", fontsize=7)
    fig.suptitle(f"{title} (strongest first)")
    return finish(fig, save_to)


def heatmap_overlays(
    image: np.ndarray, heatmaps: Mapping[str, np.ndarray], title: str, save_to=None
) -> plt.Figure:
    """The image, then each heatmap (the image's shape, 0 to 1) drawn translucently over it."""
    fig, axes = plt.subplots(1, len(heatmaps) + 1, figsize=(3.2 * (len(heatmaps) + 1), 3.4), squeeze=False)
    axes[0, 0].imshow(image, cmap="gray_r", vmin=0, vmax=255)
    axes[0, 0].set_title("image", fontsize=10)
    for ax, (label, heat) in zip(axes[0, 1:], heatmaps.items()):
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=255)
        shown = ax.imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1)
        ax.set_title(label, fontsize=10)
    for ax in axes[0]:
        _hide_ticks(ax)
    fig.colorbar(shown, ax=axes[0, -1], fraction=0.046, pad=0.04)
    fig.suptitle(title)
    return finish(fig, save_to)


def reliability_diagram(bins: pd.DataFrame, title: str = "Reliability diagram", save_to=None) -> plt.Figure:
    """Share right against mean top probability per bin (:func:`~fmnist_utils.evaluation.calibration_bins`),
    the diagonal being a perfectly calibrated model, beside how many predictions each bin holds."""
    fig, (ax, ax_count) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [3, 2]})
    ax.plot([0, 1], [0, 1], ls="--", color="gray", label="calibrated: share right = probability")
    ax.plot(
        bins["mean top probability"], bins["share right"], marker="o", color="tab:blue", label="this model"
    )
    ax.set(xlim=(0, 1.02), ylim=(0, 1.02), xlabel="mean top probability in the bin", ylabel="share right")
    ax.legend(loc="upper left", fontsize=8)
    ax_count.barh(bins["top probability"], bins["predictions"], color="tab:blue")
    for y, count in enumerate(bins["predictions"]):
        ax_count.text(count, y, f" {count:,}", va="center", fontsize=8)
    ax_count.set(xscale="log", xlabel="predictions (log scale)", ylabel="top probability")
    fig.suptitle(title)
    return finish(fig, save_to)


def feature_maps(
    images: np.ndarray,
    maps: Mapping[str, np.ndarray],
    row_labels: list[str],
    channels: int = 8,
    title: str = "Feature maps",
    save_to=None,
) -> plt.Figure:
    """For each image, the input then the first ``channels`` maps of each layer in ``maps``
    (``layer -> (N, H, W, C)`` activations): rows are image × layer."""
    rows = [(i, layer) for i in range(len(images)) for layer in maps]
    fig, axes = plt.subplots(
        len(rows), channels + 1, figsize=(1.35 * (channels + 1), 1.45 * len(rows)), squeeze=False
    )
    for r, ((i, layer), row) in enumerate(zip(rows, axes)):
        activation = np.asarray(maps[layer][i], dtype="float32")
        row[0].imshow(images[i], cmap="gray_r")
        row[0].set_ylabel(f"{row_labels[i]}\n{layer} {activation.shape[0]}×{activation.shape[1]}", fontsize=8)
        for c, ax in enumerate(row[1:]):
            ax.imshow(activation[..., c], cmap="viridis")
            if r == 0:
                ax.set_title(f"map {c}", fontsize=8)
        for ax in row:
            _hide_ticks(ax)
    fig.suptitle(title)
    return finish(fig, save_to)


def architecture_diagram(model, title: str = "The network, layer by layer", save_to=None) -> plt.Figure:
    """Each layer as a box from input to output: its type, output shape and parameter count, drawn from
    the model itself (no graphviz needed). Box height grows with the number of values the layer outputs."""
    layers_ = [layer for layer in model.layers]
    sizes = [int(np.prod(layer.output.shape[1:])) for layer in layers_]
    fig, ax = plt.subplots(figsize=(1.35 * len(layers_) + 1, 4.2))
    heights = 0.6 + 2.4 * np.log10(np.array(sizes)) / np.log10(max(sizes))
    for i, (layer, height) in enumerate(zip(layers_, heights)):
        ax.add_patch(
            plt.Rectangle((i - 0.4, -height / 2), 0.8, height, color=plt.cm.tab10(i % 10), alpha=0.35)
        )
        shape = "×".join(str(d) for d in layer.output.shape[1:])
        ax.text(
            i,
            height / 2 + 0.12,
            type(layer).__name__.replace("Normalization", "Norm."),
            ha="center",
            va="bottom",
            fontsize=8,
            rotation=30,
        )
        ax.text(i, 0, f"{shape}\n{layer.count_params():,}", ha="center", va="center", fontsize=7.5)
    ax.set(xlim=(-0.6, len(layers_) - 0.4), ylim=(-2, 2.6), title=title)
    ax.axis("off")
    ax.text(
        len(layers_) / 2 - 0.5,
        -1.9,
        f"box: output shape and parameters; total {model.count_params():,} parameters",
        ha="center",
        fontsize=9,
    )
    return finish(fig, save_to)


# ----------------------------------------------------------------------------------------------------
# Training speed (notebook 06)
# ----------------------------------------------------------------------------------------------------
