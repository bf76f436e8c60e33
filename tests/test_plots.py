"""fmnist_utils.plots: every figure is titled, labelled, and saved atomically as a real PNG."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from fmnist_utils import plots
from fmnist_utils.data import class_names, load_sample
from fmnist_utils.evaluation import calibration_bins, evaluate_predictions
from fmnist_utils.lab import figures

(X, Y), _ = load_sample("fashion_mnist")
NAMES = class_names("fashion_mnist")
HISTORY = pd.DataFrame(
    {"loss": [1.0, 0.6], "val_loss": [0.9, 0.7], "accuracy": [0.6, 0.8], "val_accuracy": [0.65, 0.75]}
)


def _evaluation():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(10), size=len(Y[:100]))
    return evaluate_predictions(Y[:100], probs, NAMES)


CASES = {
    "sample_grid": lambda: plots.sample_grid(X, Y, NAMES, per_class=4),
    "class_balance": lambda: plots.class_balance(Y, NAMES),
    "mean_images": lambda: plots.mean_images(X, Y, NAMES),
    "pixel_histograms": lambda: plots.pixel_histograms({"fashion": X}),
    "embedding_scatter": lambda: plots.embedding_scatter(
        np.random.default_rng(0).normal(size=(len(Y), 2)), Y, NAMES, title="embedding"
    ),
    "training_curves": lambda: plots.training_curves(HISTORY),
    "training_curves_overlay": lambda: plots.training_curves({"MNIST": HISTORY, "Fashion": HISTORY}),
    "learning_rate_curve": lambda: plots.learning_rate_curve({"lr": np.ones(5)}, np.arange(5)),
    "confusion_heatmap": lambda: plots.confusion_heatmap(_evaluation().confusion, NAMES),
    "per_class_accuracy": lambda: plots.per_class_accuracy({"run": _evaluation().per_class_accuracy}),
    "misclassified_gallery": lambda: plots.misclassified_gallery(X[:100], _evaluation(), n=8),
    "prediction_bars": lambda: plots.prediction_bars(X[:100], _evaluation(), [0, 1, 2]),
    "misclassified_gallery_by_class": lambda: plots.misclassified_gallery(
        X[:100], _evaluation(), n=8, classes=[6]
    ),
    "embedding_panels": lambda: figures.embedding_panels(
        {f"panel {i}": (np.random.default_rng(i).normal(size=(len(Y), 2)), Y, NAMES) for i in range(3)},
        ncols=2,
    ),
    "ablation_chart": lambda: figures.ablation_chart({"Fashion": ABLATION, "MNIST": ABLATION}),
    "reliability_diagram": lambda: plots.reliability_diagram(calibration_bins(_evaluation())),
}
ABLATION = pd.DataFrame(
    {
        "stage": ["screening", "screening", "long"],
        "change": ["seed", "channel BN", "flips"],
        "val_accuracy": [0.91, 0.92, 0.915],
        "kept": [True, True, False],
        "epochs": [12, 12, 30],
        "chosen": [False, True, False],
    }
)


@pytest.mark.parametrize("case", CASES)
def test_figure_is_titled_and_labelled(case):
    fig = CASES[case]()
    titles = [fig._suptitle.get_text() if fig._suptitle else ""] + [ax.get_title() for ax in fig.axes]
    assert any(t.strip() for t in titles), "figure has no title"
    data_axes = [ax for ax in fig.axes if ax.lines or ax.patches or ax.collections]
    labelled = [ax for ax in data_axes if ax.get_xlabel() and ax.get_ylabel()]
    if case not in {
        "sample_grid",
        "mean_images",
        "misclassified_gallery",
        "misclassified_gallery_by_class",
    }:  # image grids
        assert labelled, "no axis labels"
    plt.close(fig)


def test_training_curves_labels_accuracy_as_accuracy():
    """The seed labelled its accuracy plot 'Loss'; ours says what it shows."""
    fig = plots.training_curves(HISTORY)
    loss_ax, acc_ax = fig.axes[:2]
    assert loss_ax.get_title() == "Loss" and "loss" in loss_ax.get_ylabel()
    assert acc_ax.get_title() == "Accuracy" and acc_ax.get_ylabel() == "accuracy"
    np.testing.assert_allclose(acc_ax.lines[0].get_ydata(), HISTORY["accuracy"])
    plt.close(fig)


def test_save_to_writes_a_png_and_no_temporary_file(tmp_path):
    target = tmp_path / "figs" / "curves.png"
    fig = plots.training_curves(HISTORY, save_to=target)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in target.parent.iterdir()] == ["curves.png"]
    plt.close(fig)


def test_ablation_chart_colours_kept_and_dropped_steps():
    fig = figures.ablation_chart({"Fashion": ABLATION})
    bars = fig.axes[0].patches
    assert [b.get_width() for b in bars] == list(ABLATION["val_accuracy"])
    assert bars[0].get_facecolor() == bars[1].get_facecolor() != bars[2].get_facecolor()
    dotted = [line.get_ydata()[0] for line in fig.axes[0].lines if line.get_linestyle() == ":"]
    assert dotted == [1.5], "one dotted line where the long stage begins"
    assert [b.get_linewidth() for b in bars] == [1.0, 2.0, 1.0] and "0.9200 chosen" in [
        t.get_text().strip() for t in fig.axes[0].texts
    ]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()][2] == "2: flips (30 ep)"
    assert "other seeds" not in fig.axes[0].get_title()
    plt.close(fig)
    with_seeds = pd.concat(
        [
            ABLATION,
            pd.DataFrame(
                {
                    "stage": ["seeds"],
                    "change": ["the chosen recipe again, seed 1"],
                    "val_accuracy": [0.918],
                    "kept": [False],
                    "epochs": [12],
                    "chosen": [False],
                }
            ),
        ],
        ignore_index=True,
    )
    fig = figures.ablation_chart({"Fashion": with_seeds})
    bars, ax = fig.axes[0].patches, fig.axes[0]
    assert len({bars[0].get_facecolor(), bars[2].get_facecolor(), bars[3].get_facecolor()}) == 3, (
        "kept, dropped, seeds"
    )
    assert [line.get_ydata()[0] for line in ax.lines if line.get_linestyle() == ":"] == [1.5, 2.5]
    assert "light blue: the chosen recipe, other seeds" in ax.get_title()
    plt.close(fig)


RUNS = pd.DataFrame(
    {
        "recipe": ["seed protocol", "seed protocol", "fast", "fast"],
        "seed": [0, 1, 0, 1],
        "training_minutes": [38.0, 38.0, 20.0, 21.0],
        "timed": [True, False, True, True],
        "test_accuracy": [0.925, 0.923, 0.933, 0.931],
    }
)


def test_accuracy_against_minutes_marks_untimed_seeds_and_both_kinds_of_target():
    fig = figures.accuracy_against_minutes(RUNS, {"0.9323": 0.9323}, {"5 min": 5.0})
    ax = fig.axes[0]
    hollow = [c for c in ax.collections if len(c.get_facecolor()) == 0]
    assert len(hollow) == 1 and hollow[0].get_offsets().tolist() == [[38.0, 0.923]], "seed 1 has no own time"
    assert [line.get_ydata()[0] for line in ax.lines if line.get_linestyle() == ":"][0] == 0.9323
    assert [line.get_xdata()[0] for line in ax.lines][1] == 5.0 and ax.get_xlim()[0] < 5.0
    assert {"0.9323 ", "5 min"} <= {t.get_text() for t in ax.texts}
    plt.close(fig)


def test_throughput_by_batch_colours_each_median_by_its_cores_busy():
    table = pd.DataFrame(
        {
            "batch_size": [64, 256],
            "median_images_per_second": [900.0, 500.0],
            "fastest_images_per_second": [950.0, 940.0],
            "cores_busy": [1.9, 1.0],
        }
    )
    fig = figures.throughput_by_batch(table)
    medians, fastest = fig.axes[0].collections
    assert list(medians.get_array()) == [1.9, 1.0] and fastest.get_offsets()[:, 1].tolist() == [950.0, 940.0]
    assert not fig.axes[0].lines, "no line through a slow point"
    plt.close(fig)


def test_epoch_seconds_strip_draws_every_pass_and_the_wakeups():
    rows = [{"name": "a", "epoch_seconds": [5.6, 10.23, 5.5], "epoch_cpu_seconds": [10.6, 10.7, 10.4]}]
    fig = figures.epoch_seconds_strip(rows, wakeups=[5.11, 10.23])
    ax = fig.axes[0]
    assert ax.collections[0].get_offsets()[:, 0].tolist() == [5.6, 10.23, 5.5]
    assert [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == "--"] == [5.11, 10.23]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["autotuner wake-up"]
    assert [t.get_text() for t in ax.texts] == ["5.11 s", "10.23 s"]
    plt.close(fig)


def test_pass_timeline_splits_each_pass_into_steps_and_waiting():
    passes = pd.DataFrame(
        {"autotune": ["on", "off"], "pass": [1, 1], "steps_seconds": [5.7, 5.6], "fit_seconds": [10.23, 5.62]}
    )
    fig = figures.pass_timeline(passes, wakeups=[10.23])
    ax = fig.axes[0]
    widths = [round(bar.get_width(), 2) for bar in ax.patches]
    assert widths == [5.7, 4.53, 5.6, 0.02], "steps, then the wait, for each pass"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["autotune on, pass 1", "autotune off, pass 1"]
    plt.close(fig)


def test_layer_times_draws_a_bar_per_layer_and_network_in_the_first_networks_order():
    layers = pd.DataFrame(
        {
            "network": ["vgg", "vgg", "vgg", "vgg_lite", "vgg_lite"],
            "layer": ["conv1_1", "conv1_2", "fc1", "conv1_1", "fc1"],
            "ms_per_batch": [10.0, 30.0, 2.0, 11.0, 2.5],
        }
    )
    fig = figures.layer_times(layers)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["conv1_1", "conv1_2", "fc1"]
    widths = sorted(round(bar.get_width(), 1) for bar in ax.patches if bar.get_width() > 0)
    assert widths == [2.0, 2.5, 10.0, 11.0, 30.0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["vgg", "vgg_lite"]
    plt.close(fig)


def test_a_recipe_keeps_its_colour_across_notebook_06s_figures():
    curves = pd.DataFrame(
        {
            "recipe": ["fast", "accurate"],
            "seed": [0, 0],
            "epoch": [1, 1],
            "training_minutes": [1.0, 2.0],
            "val_accuracy_plain": [0.90, 0.91],
            "val_accuracy_flips": [0.91, 0.92],
        }
    )
    runs = RUNS.assign(recipe=["seed protocol", "seed protocol", "accurate", "fast"])
    lines = figures.validation_against_minutes(curves).axes[0].lines
    dots = figures.accuracy_against_minutes(runs, {}).axes[0].collections
    for recipe in ("fast", "accurate"):
        [line] = [line for line in lines if line.get_label() == f"{recipe}, with flips"]
        [dot] = [dot for dot in dots if dot.get_label() == recipe]
        assert matplotlib.colors.to_rgb(line.get_color()) == pytest.approx(tuple(dot.get_facecolor()[0][:3]))
    assert (
        figures.recipe_palette(["fast", "seed protocol"])["seed protocol"]
        == figures.recipe_palette(["x"])["seed protocol"]
    )
    plt.close("all")


def test_filter_grid_draws_the_strongest_filter_first_each_centred_on_zero():
    kernel = np.zeros((5, 5, 1, 3), dtype="float32")
    kernel[..., 0, 0], kernel[..., 0, 1], kernel[..., 0, 2] = 0.1, -2.0, 0.5  # filter 1 is the strongest
    fig = plots.filter_grid(kernel, cols=3)
    shown = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in shown] == ["#1", "#2", "#0"]
    for ax in shown:
        low, high = ax.images[0].get_clim()
        assert low == -high and ax.images[0].get_cmap().name == "RdBu_r"
    plt.close(fig)


def test_heatmap_overlays_and_image_rows_draw_one_panel_per_entry():
    image = X[0]
    fig = plots.heatmap_overlays(image, {"a": np.zeros((28, 28)), "b": np.ones((28, 28))}, title="overlays")
    assert [ax.get_title() for ax in fig.axes if ax.images] == ["image", "a", "b"]
    plt.close(fig)
    fig = plots.image_rows({"original": X[:4], "flipped": X[:4, :, ::-1]}, title="rows")
    assert len([ax for ax in fig.axes if ax.images]) == 8
    assert [fig.axes[0].get_ylabel(), fig.axes[4].get_ylabel()] == ["original", "flipped"]
    plt.close(fig)


def test_per_class_bars_start_at_zero_with_the_legend_beside_them():
    fig = plots.per_class_accuracy({"run": pd.Series([0.7, 0.99], index=["Shirt", "Trouser"])})
    ax = fig.axes[0]
    assert ax.get_ylim() == (0.0, 1.0)
    assert ax.get_legend().get_bbox_to_anchor().x0 >= ax.get_window_extent().x1 - 1  # outside the bars
    plt.close(fig)


def test_sorted_per_class_bars_put_the_hardest_class_on_top_from_zero():
    fig = plots.per_class_sorted({"clothes": pd.Series([0.99, 0.7, 0.9], index=["Trouser", "Shirt", "Coat"])})
    ax = fig.axes[0]
    top_first = sorted(ax.get_yticklabels(), key=lambda t: t.get_position()[1])
    assert [t.get_text() for t in top_first] == ["Shirt", "Coat", "Trouser"] and ax.yaxis_inverted()
    assert ax.get_xlim()[0] == 0.0
    plt.close(fig)


def test_prediction_bars_name_the_true_and_the_predicted_class_of_each_row():
    evaluation = _evaluation()
    wrong = int(np.flatnonzero(evaluation.y_pred != evaluation.y_true)[0])
    right = int(np.flatnonzero(evaluation.y_pred == evaluation.y_true)[0])
    fig = plots.prediction_bars(X[:100], evaluation, [right, wrong])
    titles = [fig.axes[k].get_title(loc="left") for k in (1, 3)]
    assert titles == [
        f"test image #{right}: true {NAMES[Y[right]]}, right",
        f"test image #{wrong}: true {NAMES[Y[wrong]]} → predicted {NAMES[evaluation.y_pred[wrong]]}",
    ]
    plt.close(fig)
