"""Figures of the series (matplotlib + seaborn). Each function returns its figure; ``save_to`` writes a PNG.

Every figure has a title and labelled axes. Saving is atomic (temporary file, then rename).
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import seaborn as sns

from fmnist_utils.evaluation import Evaluation, misclassified_indices
from fmnist_utils.files import atomic_path
from fmnist_utils.speed import SEED_PROTOCOL


def save_figure(fig: plt.Figure, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Save ``fig`` as PNG at ``path`` (folders created; written to a temporary name first)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    return path


def _finish(fig: plt.Figure, save_to: str | os.PathLike | None) -> plt.Figure:
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
    return _finish(fig, save_to)


def class_balance(
    y: np.ndarray, class_names: list[str], title: str = "Examples per class", save_to=None
) -> plt.Figure:
    """Bar chart of how many examples each class has."""
    counts = np.bincount(y, minlength=len(class_names))
    fig, ax = plt.subplots(figsize=(7, 3.2))
    sns.barplot(x=list(class_names), y=counts, ax=ax, color="tab:blue")
    ax.set(title=title, xlabel="class", ylabel="number of images")
    ax.tick_params(axis="x", rotation=45)
    return _finish(fig, save_to)


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
    return _finish(fig, save_to)


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
    return _finish(fig, save_to)


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
    return _finish(fig, save_to) if own else fig


def embedding_panels(
    panels: Mapping[str, tuple[np.ndarray, np.ndarray, list[str]]],
    ncols: int = 4,
    title: str = "2-D embeddings",
    save_to=None,
) -> plt.Figure:
    """Several :func:`embedding_scatter` side by side: ``panel title -> (points, labels, class names)``."""
    nrows = int(np.ceil(len(panels) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 4.3 * nrows), squeeze=False)
    for ax in axes.ravel()[len(panels) :]:
        ax.axis("off")
    for i, (panel_title, (points, y, names)) in enumerate(panels.items()):
        ax = axes.ravel()[i]
        embedding_scatter(points, y, names, title=panel_title, ax=ax)
        ax.get_legend().set_visible(i % ncols == 0)  # one legend per row (a row is one dataset)
    fig.suptitle(title)
    return _finish(fig, save_to)


# ----------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------


def training_curves(histories, title: str = "Training curves", save_to=None) -> plt.Figure:
    """Loss and accuracy per epoch, training (solid) vs validation (dashed).

    ``histories`` is one history (DataFrame or dict of lists) or a mapping ``label -> history`` to
    overlay several runs (e.g. MNIST and Fashion-MNIST) in the same two panels.
    """
    import pandas as pd

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
    return _finish(fig, save_to)


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
    return _finish(fig, save_to)


def ablation_chart(
    tables: Mapping[str, object], title: str = "One change at a time: validation accuracy", save_to=None
) -> plt.Figure:
    """One panel per dataset (``label -> run_ladder table``): a bar per step, blue where the change was kept,
    grey where it was dropped, light blue for the chosen recipe trained with other seeds, the ``chosen`` winner
    outlined, a dashed line at the seed recipe's validation accuracy, and a dotted line where the ladder's next
    stage (a longer training budget, then the other seeds) begins."""
    rows = [len(table) for table in tables.values()]  # one panel per dataset, stacked, as tall as its steps
    fig, axes = plt.subplots(
        len(tables),
        1,
        figsize=(11, 1.2 + 0.32 * sum(rows)),
        squeeze=False,
        gridspec_kw={"height_ratios": rows},
    )
    for ax, (label, table) in zip(axes[:, 0], tables.items()):
        acc = table["val_accuracy"].to_numpy()
        seeds = (table["stage"] == "seeds").to_numpy()
        colors = [
            "lightskyblue" if other_seed else "tab:blue" if kept else "tab:gray"
            for kept, other_seed in zip(table["kept"], seeds)
        ]
        positions = np.arange(len(table))
        bars = ax.barh(positions, acc, color=colors)
        chosen = table["chosen"].to_numpy()
        for bar, is_chosen in zip(bars, chosen):
            if is_chosen:
                bar.set(edgecolor="black", linewidth=2)
        ax.axvline(acc[0], color="black", linestyle="--", linewidth=1, label="seed recipe")
        ax.set_yticks(
            positions,
            [
                textwrap.shorten(f"{i}: {c}", 70, placeholder=" …") + f" ({e} ep)"
                for i, c, e in zip(table.index, table["change"], table["epochs"])
            ],
            fontsize=7,
        )
        stages = table["stage"].to_numpy()
        for boundary in np.flatnonzero(stages[1:] != stages[:-1]):
            ax.axhline(boundary + 0.5, color="black", linestyle=":", linewidth=1)
        ax.invert_yaxis()
        spread = max(float(acc.max() - acc.min()), 0.005)
        key = "blue: kept, grey: dropped" + (
            ", light blue: the chosen recipe, other seeds" if seeds.any() else ""
        )
        ax.set(
            title=f"{label} ({key}, outlined: chosen)",
            xlabel="validation accuracy (last epoch)",
            ylabel="step",
            xlim=(max(0.0, float(acc.min()) - spread), min(1.0, float(acc.max()) + spread / 2)),
        )
        for pos, value, is_chosen in zip(positions, acc, chosen):
            ax.text(
                value,
                pos,
                f" {value:.4f}" + (" chosen" if is_chosen else ""),
                va="center",
                fontsize=7,
                fontweight="bold" if is_chosen else "normal",
            )
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    return _finish(fig, save_to)


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
    return _finish(ax.figure, save_to) if own else ax.figure


def per_class_accuracy(
    accuracies: Mapping[str, object], title: str = "Test accuracy per class", save_to=None
) -> plt.Figure:
    """Grouped bars of per-class accuracy (``label -> pandas Series indexed by class``)."""
    import pandas as pd

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
    ax.set(
        title=title,
        xlabel="class",
        ylabel="accuracy",
        ylim=(max(0.0, float(long["accuracy"].min()) - 0.05), 1.0),
    )
    return _finish(fig, save_to)


def per_class_sorted(
    accuracies: Mapping[str, object], title: str = "Test accuracy per class, sorted", save_to=None
) -> plt.Figure:
    """One panel per dataset: its classes by name, sorted from the hardest, on a shared accuracy axis
    (``label -> pandas Series indexed by class name``): like compared with like."""
    import pandas as pd

    fig, axes = plt.subplots(
        1, len(accuracies), figsize=(5.5 * len(accuracies), 3.8), sharex=True, squeeze=False
    )
    lowest = min(float(pd.Series(s).min()) for s in accuracies.values())
    for ax, (label, series) in zip(axes[0], accuracies.items()):
        ordered = pd.Series(series).sort_values()
        ax.barh([str(name) for name in ordered.index], ordered.to_numpy(), color="tab:blue")
        for y, value in enumerate(ordered.to_numpy()):
            ax.text(value, y, f" {value:.1%}", va="center", fontsize=8)
        ax.set(title=label, xlabel="test accuracy (recall)", xlim=(max(0.0, lowest - 0.05), 1.04))
    fig.suptitle(title)
    return _finish(fig, save_to)


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
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 1.9), squeeze=False)
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
    return _finish(fig, save_to)


def prediction_bars(
    x: np.ndarray, evaluation: Evaluation, indices, title: str = "Predicted probabilities", save_to=None
) -> plt.Figure:
    """For each index: the image and a bar chart of the 10 class probabilities (true class in green)."""
    indices = list(indices)
    fig, axes = plt.subplots(
        len(indices), 2, figsize=(9, 1.9 * len(indices)), squeeze=False, gridspec_kw={"width_ratios": [1, 4]}
    )
    names = evaluation.class_names
    for (ax_img, ax_bar), i in zip(axes, indices):
        ax_img.imshow(x[i], cmap="gray_r", vmin=0, vmax=255)
        _hide_ticks(ax_img)
        ax_img.set_xlabel(f"#{i}", fontsize=8)
        colors = ["tab:gray"] * len(names)
        colors[evaluation.y_pred[i]] = "tab:red"
        colors[evaluation.y_true[i]] = "tab:green"
        ax_bar.bar(range(len(names)), evaluation.probabilities[i], color=colors)
        ax_bar.set_xticks(range(len(names)), names, fontsize=7)
        ax_bar.set(ylim=(0, 1), ylabel="probability")
    axes[-1, 1].set_xlabel("class (green: true, red: predicted when wrong)")
    fig.suptitle(title)
    return _finish(fig, save_to)


def seed_log_comparison(
    seed_log, history, title: str = "The seed notebook (2017) against this reproduction", save_to=None
) -> plt.Figure:
    """Accuracy per epoch of the seed's printed log against one of our histories: validation solid, training dashed.

    ``seed_log`` is :func:`fmnist_utils.releases.seed_log` (``epoch`` 1-based); ``history`` a Keras CSVLogger
    history (``epoch`` 0-based, ``accuracy``, ``val_accuracy``). Both are drawn against epochs 1, 2, ...
    """
    import pandas as pd

    fig, ax = plt.subplots(figsize=(8, 4.2))
    sources = (
        ("seed (2017)", pd.DataFrame(seed_log), 0, "tab:gray"),
        ("ours", pd.DataFrame(history), 1, "tab:blue"),
    )
    for label, hist, offset, color in sources:
        epochs = hist["epoch"].to_numpy() + offset if "epoch" in hist else np.arange(1, len(hist) + 1)
        ax.plot(epochs, hist["val_accuracy"], color=color, label=f"{label} validation")
        ax.plot(epochs, hist["accuracy"], color=color, linestyle="--", label=f"{label} training")
    ax.set(title=title, xlabel="epoch", ylabel="accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _finish(fig, save_to)


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
    return _finish(fig, save_to)


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
    return _finish(fig, save_to)


def filter_grid(
    kernel: np.ndarray, title: str = "First-layer filters", cols: int = 16, save_to=None
) -> plt.Figure:
    """A convolution's kernels ``(h, w, 1, filters)`` as small images, each on its own scale (dark = positive)."""
    kernel = np.asarray(kernel, dtype="float32")[:, :, 0, :]
    rows = int(np.ceil(kernel.shape[-1] / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.8, rows * 0.85), squeeze=False)
    for i, ax in enumerate(axes.flat):
        _hide_ticks(ax)
        if i < kernel.shape[-1]:
            ax.imshow(
                kernel[..., i],
                cmap="RdBu_r",
                vmin=-np.abs(kernel[..., i]).max(),
                vmax=np.abs(kernel[..., i]).max(),
            )
        else:
            ax.axis("off")
    fig.suptitle(title)
    return _finish(fig, save_to)


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
    return _finish(fig, save_to)


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
    return _finish(fig, save_to)


# ----------------------------------------------------------------------------------------------------
# Training speed (notebook 06)
# ----------------------------------------------------------------------------------------------------


def layer_flops_bars(table, title: str = "Where the arithmetic is: forward MFLOP per image", save_to=None):
    """Horizontal bars of each layer's forward MFLOP (``speed.layer_flops``), its share printed beside it."""
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(table) + 1.2))
    ax.barh(table["layer"], table["forward_mflop"], color="tab:blue")
    for y, (mflop, share) in enumerate(zip(table["forward_mflop"], table["share"])):
        ax.text(mflop, y, f"  {share:.0%}", va="center")
    ax.invert_yaxis()
    ax.set(title=title, xlabel="MFLOP per image, forward pass", ylabel="layer")
    ax.set_xlim(0, table["forward_mflop"].max() * 1.2)
    return _finish(fig, save_to)


def epoch_seconds_strip(
    rows,
    title: str = "Every timed pass, by configuration",
    wakeups=(),
    xlabel: str = "seconds per timed pass (dots: passes; bar: median)",
    save_to=None,
):
    """One dot per timed pass of each benchmark configuration (``throughput.json`` rows), the median as a
    bar, each dot coloured by the cores the process kept busy (CPU seconds / seconds) when recorded: two
    speeds of one configuration show up as two clusters, and an idle core as a paler dot. ``wakeups``:
    times (seconds) drawn as dashed lines, such as the ``tf.data`` autotuner's wake-ups."""
    fig, ax = plt.subplots(figsize=(8.5, 0.7 * len(rows) + 1.4))
    busy = None
    for y, row in enumerate(rows):
        seconds = np.asarray(row["epoch_seconds"])
        cores = np.asarray(row.get("epoch_cpu_seconds", [np.nan] * len(seconds))) / seconds
        busy = ax.scatter(
            seconds,
            np.full(len(seconds), y),
            c=cores,
            cmap="viridis",
            vmin=0,
            vmax=2,
            edgecolor="black",
            zorder=3,
        )
        ax.plot([np.median(seconds)] * 2, [y - 0.3, y + 0.3], color="black", linewidth=2)
    fig.colorbar(busy, ax=ax, label="cores busy")
    ax.set_yticks(range(len(rows)), [row["name"] for row in rows])
    ax.invert_yaxis()
    ax.set(title=title, xlabel=xlabel)
    _wakeup_lines(ax, wakeups)
    ax.set_xlim(left=0)
    ax.grid(axis="x", alpha=0.3)
    return _finish(fig, save_to)


def _wakeup_lines(ax: plt.Axes, wakeups) -> None:
    """Dashed vertical lines at ``wakeups`` (seconds), each with its time at the top, the first labelled for
    the legend."""
    for i, at in enumerate(wakeups):
        ax.axvline(
            at, color="grey", linestyle="--", linewidth=1, label="autotuner wake-up" if i == 0 else None
        )
        ax.text(
            at, 1.0, f"{at:.2f} s", transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=7
        )
    if len(wakeups):
        ax.legend(fontsize=8, loc="lower right")
        ax.set_title(ax.get_title(), pad=14)  # room for the times above the axes


def pass_timeline(passes, wakeups=(), title: str = "Where a pass's time goes", save_to=None):
    """One bar per ``fit`` pass (rows of ``speed.autotune_probe_table``), grouped by autotune setting: the
    training steps (solid) and the wait after the last step until ``fit`` returned (hatched), with
    ``wakeups`` as dashed lines."""
    fig, ax = plt.subplots(figsize=(8.5, 0.32 * len(passes) + 1.6))
    labels = []
    for y, (_, row) in enumerate(passes.iterrows()):
        colour = "tab:orange" if row["autotune"] == "on" else "tab:blue"
        ax.barh(y, row["steps_seconds"], color=colour, edgecolor="black")
        ax.barh(y, row["fit_seconds"] - row["steps_seconds"], left=row["steps_seconds"], color="white",
                edgecolor=colour, hatch="///")  # fmt: skip
        labels.append(f"autotune {row['autotune']}, pass {row['pass']}")
    ax.set_yticks(range(len(passes)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set(title=title, xlabel="seconds since fit was called (solid: training steps; hatched: waiting)")
    _wakeup_lines(ax, wakeups)
    ax.set_xlim(left=0)
    ax.grid(axis="x", alpha=0.3)
    return _finish(fig, save_to)


def throughput_by_batch(table, title: str = "Images per second against batch size", save_to=None):
    """Median and fastest-pass images/s at each batch size (``speed.throughput_table(..., "batch_sizes")``),
    the median dot coloured by the cores busy: a point on the slow speed stands out instead of bending a line."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    busy = ax.scatter(
        table["batch_size"],
        table["median_images_per_second"],
        c=table["cores_busy"].astype(float),
        cmap="viridis",
        vmin=0,
        vmax=2,
        s=70,
        edgecolor="black",
        zorder=3,
        label="median pass",
    )
    ax.scatter(
        table["batch_size"],
        table["fastest_images_per_second"],
        marker="_",
        s=300,
        color="black",
        label="fastest pass",
    )
    fig.colorbar(busy, ax=ax, label="cores busy (median pass)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(table["batch_size"], [str(b) for b in table["batch_size"]])
    ax.set(title=title, xlabel="batch size", ylabel="images / s (timed passes)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _finish(fig, save_to)


def recipe_palette(names) -> dict:
    """A colour per recipe name, the same in every figure that shows it: the seed protocol gray, the
    recipes tab10's other colours in name order."""
    colours = [c for i, c in enumerate(sns.color_palette("tab10")) if i != 7]  # 7: tab10's gray
    palette = dict(zip(sorted(set(names) - {SEED_PROTOCOL}), colours))
    return palette | {SEED_PROTOCOL: sns.color_palette("tab10")[7]}


def validation_against_minutes(curves, title: str = "Validation accuracy during training", save_to=None):
    """Each recipe's validation accuracy after every epoch against training minutes, one line per seed:
    solid with test-time flips, dashed without (``speed.validation_curves``)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    palette = recipe_palette(curves["recipe"])
    for (recipe, seed), run in curves.groupby(["recipe", "seed"], sort=False):
        first = seed == curves.loc[curves["recipe"] == recipe, "seed"].min()
        color = palette[recipe]
        ax.plot(
            run["training_minutes"],
            run["val_accuracy_flips"],
            color=color,
            alpha=0.8,
            label=f"{recipe}, with flips" if first else None,
        )
        ax.plot(
            run["training_minutes"],
            run["val_accuracy_plain"],
            color=color,
            alpha=0.8,
            linestyle="--",
            label=f"{recipe}, without" if first else None,
        )
    low = max(0.85, curves[["val_accuracy_plain", "val_accuracy_flips"]].min().min() - 0.005)
    ax.set_ylim(low, None)
    ax.set(title=title, xlabel="training minutes", ylabel="validation accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _finish(fig, save_to)


def accuracy_against_minutes(
    runs,
    targets: Mapping[str, float],
    minutes: Mapping[str, float] | None = None,
    title: str = "Test accuracy against training time",
    save_to=None,
):
    """The main figure of notebook 06: one dot per (recipe, seed) at its training minutes and test accuracy
    (``speed.recipe_runs``; hollow where the run has no time of its own and sits at its recipe's median), each
    recipe's mean as a cross, accuracy targets as horizontal lines and time targets (``minutes``) as vertical
    ones."""
    minutes = minutes or {}
    fig, ax = plt.subplots(figsize=(8.5, 4.8))
    palette = recipe_palette(runs["recipe"])
    for recipe, group in runs.groupby("recipe", sort=False):
        color = palette[recipe]
        timed = group["timed"].astype(bool)
        ax.scatter(  # above the cross, which can sit on a seed's dot
            group["training_minutes"][timed],
            group["test_accuracy"][timed],
            color=color,
            label=recipe,
            zorder=4,
        )
        if (~timed).any():
            ax.scatter(
                group["training_minutes"][~timed],
                group["test_accuracy"][~timed],
                facecolor="none",
                edgecolor=color,
                label=f"{recipe}: seed without its own time",
                zorder=4,
            )
        ax.scatter(
            group["training_minutes"].median(),
            group["test_accuracy"].mean(),
            color=color,
            marker="X",
            s=140,
            edgecolor="black",
            zorder=3,
        )
    ax.set_xscale("log")
    left = min([*minutes.values(), runs["training_minutes"].min()]) / 1.5
    ax.set_xlim(left, runs["training_minutes"].max() * 1.5)
    for label, value in targets.items():  # labelled at the right, where the slowest runs sit lowest
        ax.axhline(value, color="gray", linestyle=":", linewidth=1)
        ax.text(
            ax.get_xlim()[1] / 1.03, value, f"{label} ", ha="right", va="bottom", fontsize=8, color="dimgray"
        )
    for label, value in minutes.items():
        ax.axvline(value, color="firebrick", linestyle=":", linewidth=1)
        ax.text(
            value * 1.03, ax.get_ylim()[0], label, rotation=90, va="bottom", fontsize=8, color="firebrick"
        )
    right = ax.get_xlim()[1]
    ax.set_xticks([t for t in (1, 2, 3, 5, 10, 15, 20, 30, 50, 100, 200, 500) if left <= t <= right])
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set(
        title=title,
        xlabel="training minutes (log scale; cross: median minutes, mean accuracy)",
        ylabel="test accuracy (measured once per run)",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    return _finish(fig, save_to)


def layer_times(layers, title: str = "Each layer timed alone: forward and backward, one batch", save_to=None):
    """Milliseconds per training batch of every layer (``speed.layer_times_table``), one bar per network,
    layers in the first network's order."""
    order = list(dict.fromkeys(layers["layer"]))
    fig, ax = plt.subplots(figsize=(8.5, 0.28 * len(order) + 1.2))
    sns.barplot(data=layers, y="layer", x="ms_per_batch", hue="network", order=order, ax=ax)
    ax.set(title=title, xlabel="milliseconds per batch (median over rounds)", ylabel="")
    ax.grid(axis="x", alpha=0.3)
    return _finish(fig, save_to)
