"""The lab's figures: the ablation ladder, the seed's 2017 log, and notebook 06's timing figures."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd
import seaborn as sns

from fmnist_utils.lab.speed import SEED_PROTOCOL
from fmnist_utils.plots import embedding_scatter, finish


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
    return finish(fig, save_to)


def seed_log_comparison(
    seed_log, history, title: str = "The seed notebook (2017) against this reproduction", save_to=None
) -> plt.Figure:
    """Accuracy per epoch of the seed's printed log against one of our histories: validation solid, training dashed.

    ``seed_log`` is :func:`fmnist_utils.lab.releases.seed_log` (``epoch`` 1-based); ``history`` a Keras CSVLogger
    history (``epoch`` 0-based, ``accuracy``, ``val_accuracy``). Both are drawn against epochs 1, 2, ...
    """
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
    return finish(fig, save_to)


def layer_flops_bars(table, title: str = "Where the arithmetic is: forward MFLOP per image", save_to=None):
    """Horizontal bars of each layer's forward MFLOP (``speed.layer_flops``), its share printed beside it."""
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(table) + 1.2))
    ax.barh(table["layer"], table["forward_mflop"], color="tab:blue")
    for y, (mflop, share) in enumerate(zip(table["forward_mflop"], table["share"])):
        ax.text(mflop, y, f"  {share:.0%}", va="center")
    ax.invert_yaxis()
    ax.set(title=title, xlabel="MFLOP per image, forward pass", ylabel="layer")
    ax.set_xlim(0, table["forward_mflop"].max() * 1.2)
    return finish(fig, save_to)


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
    return finish(fig, save_to)


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
    return finish(fig, save_to)


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
    return finish(fig, save_to)


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
    return finish(fig, save_to)


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
    return finish(fig, save_to)


def layer_times(layers, title: str = "Each layer timed alone: forward and backward, one batch", save_to=None):
    """Milliseconds per training batch of every layer (``speed.layer_times_table``), one bar per network,
    layers in the first network's order."""
    order = list(dict.fromkeys(layers["layer"]))
    fig, ax = plt.subplots(figsize=(8.5, 0.28 * len(order) + 1.2))
    sns.barplot(data=layers, y="layer", x="ms_per_batch", hue="network", order=order, ax=ax)
    ax.set(title=title, xlabel="milliseconds per batch (median over rounds)", ylabel="")
    ax.grid(axis="x", alpha=0.3)
    return finish(fig, save_to)


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
    return finish(fig, save_to)
