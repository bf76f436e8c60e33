"""fmnist_utils.lab.ablation and the model pieces it adds: recipes, one-cycle schedule, smoothed loss, the ladder."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from fmnist_utils import data
from fmnist_utils.evaluation import evaluate_predictions, misclassified_indices, separability
from fmnist_utils.lab import ablation
from fmnist_utils.lab.networks import (
    SparseCrossentropyWithSmoothing,
    build_cnn,
    forward_flops,
    one_cycle_schedule,
    recipe_loss,
)
from fmnist_utils.models import build_seed_model, compile_seed_model
from fmnist_utils.protocol import SEED_TOTAL_PARAMS
from fmnist_utils.runs import RunConflictError


@pytest.fixture(scope="module")
def sample_split():
    ((x, y), (x_test, y_test)), info = data.load_dataset("fashion_mnist", source="sample", return_info=True)
    x, y = data.limit_examples(x, y, 600, seed=0)
    train, val = data.train_val_split(x, y, dataset="fashion_mnist")
    return train, val, (x_test, y_test), info


@pytest.fixture
def stand_in(monkeypatch):
    """A stand-in for ``ablation.run_trial``: ``install(accuracy)`` makes each trial score ``accuracy(recipe,
    epochs, seed)`` on validation, without training; it returns the trials asked for (recipe, epochs, seed,
    folder)."""

    def install(accuracy) -> list[tuple[str, int, int, str]]:
        trials = []

        def run_trial(recipe, dataset, train_data, val_data, *, output_dir, epochs, seed=0, **_):
            trials.append((recipe.describe(), epochs, seed, Path(output_dir).name))
            return {
                "final_val_accuracy": accuracy(recipe, epochs, seed),
                "epochs_completed": epochs,
                "total_seconds": 60.0 * epochs,
                "mean_epoch_seconds": 60.0,
            }, None

        monkeypatch.setattr(ablation, "run_trial", run_trial)
        return trials

    return install


def test_seed_recipe_is_the_seed_model():
    model = ablation.build_recipe_model(ablation.SEED_RECIPE, "fashion_mnist")
    seed = build_seed_model()
    assert model.count_params() == seed.count_params() == SEED_TOTAL_PARAMS
    assert [type(layer).__name__ for layer in model.layers] == [type(layer).__name__ for layer in seed.layers]
    assert ablation.SEED_RECIPE.describe() == "seed"


def test_recipe_changes_build_what_they_say():
    conv_bn = ablation.build_recipe_model(ablation.Recipe(input_norm="bn_channel", conv_bn=True), "mnist")
    names = [layer.name for layer in conv_bn.layers]
    assert "conv1_bn" in names and "conv2_bn" in names and conv_bn.get_layer("conv1").use_bias is False
    # seed - 112 (width BN) + 4 (channel BN) - 64 - 512 (conv biases) + 4 * (64 + 512) (BN after convolutions)
    assert conv_bn.count_params() == SEED_TOTAL_PARAMS - 112 + 4 - 576 + 4 * 576
    rescale = ablation.build_recipe_model(ablation.Recipe(input_norm="rescale"), "mnist")
    assert "input_bn" not in [layer.name for layer in rescale.layers]
    assert rescale.count_params() == SEED_TOTAL_PARAMS - 112
    fashion = ablation.build_recipe_model(ablation.Recipe(augment=True), "fashion_mnist")
    digits = ablation.build_recipe_model(ablation.Recipe(augment=True), "mnist")
    assert "random_flip" in [layer.name for layer in fashion.layers], "clothes survive a mirror"
    assert "random_flip" not in [layer.name for layer in digits.layers], "digits do not"
    assert {"random_shift", "random_rotation"} <= {layer.name for layer in digits.layers}
    assert ablation.Recipe(augment=True, label_smoothing=0.1).describe() == "augment, label_smoothing=0.1"
    flips = ablation.build_recipe_model(ablation.Recipe.parse("flip, label_smoothing=0.1"), "fashion_mnist")
    assert [layer.name for layer in flips.layers][:2] == ["random_flip", "input_bn"], (
        "flips only, then the seed"
    )
    with pytest.raises(ValueError, match="'flip' does not suit mnist: a mirrored digit is no digit"):
        ablation.build_recipe_model(ablation.Recipe(flip=True), "mnist")
    light = ablation.build_recipe_model(ablation.Recipe.parse("flip, shift, erase"), "fashion_mnist")
    assert [layer.name for layer in light.layers][:4] == [
        "random_small_shift",
        "random_flip",
        "random_erasing",
        "input_bn",
    ]
    assert light.get_layer("random_small_shift").height_factor == pytest.approx(2 / 28), "2 pixels at most"
    assert [layer.name for layer in ablation.build_recipe_model(ablation.Recipe(shift=True), "mnist").layers][
        :2
    ] == ["random_small_shift", "input_bn"]
    with pytest.raises(
        ValueError, match="'erase' does not suit mnist: a digit missing a stroke can become another"
    ):
        ablation.build_recipe_model(ablation.Recipe(erase=True), "mnist")
    assert ablation.suits({"shift": True}, "mnist") and not ablation.suits({"erase": True}, "mnist")
    assert ablation.suits({"flip": True, "erase": True}, "fashion_mnist") and not ablation.suits(
        {"flip": True}, "mnist"
    )


def test_augmentation_is_off_at_inference():
    model = ablation.build_recipe_model(ablation.Recipe(augment=True), "fashion_mnist")
    x = np.random.default_rng(0).integers(0, 256, size=(8, 28, 28, 1)).astype("float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))
    trained_view = [model(x, training=True).numpy() for _ in range(2)]
    assert not np.allclose(trained_view[0], trained_view[1]), "training mode augments (and drops out)"


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (
            {"input_norm": "layer_norm"},
            r"Parameter 'input_norm' must be one of 'bn_width', 'bn_channel', 'rescale'; got 'layer_norm'",
        ),
        ({"schedule": "step"}, r"Parameter 'schedule' must be one of 'seed', 'one_cycle'; got 'step'"),
        ({"label_smoothing": 1.0}, r"label_smoothing must be in \[0, 1\); got 1.0"),
        ({"arch": "resnet"}, r"Parameter 'arch' must be one of 'seed', 'vgg', 'vgg_lite'; got 'resnet'"),
    ],
)
def test_bad_recipes_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ablation.Recipe(**kwargs)


def test_recipe_text_round_trips():
    recipe = ablation.Recipe(input_norm="bn_channel", conv_bn=True, label_smoothing=0.1, schedule="one_cycle")
    assert ablation.Recipe.parse(recipe.describe()) == recipe
    assert ablation.Recipe.parse("seed") == ablation.Recipe.parse("") == ablation.SEED_RECIPE
    assert ablation.Recipe.parse("augment=false, conv_bn=true") == ablation.Recipe(conv_bn=True)
    with pytest.raises(ValueError, match="Unknown recipe field 'dropout'"):
        ablation.Recipe.parse("dropout=0.5")
    with pytest.raises(ValueError, match="'input_norm' must be one of"):
        ablation.Recipe.parse("input_norm=none")


def test_build_cnn_rejects_unknown_input_norm_and_arch():
    with pytest.raises(
        ValueError, match=r"'input_norm' must be one of 'bn_width', 'bn_channel', 'rescale'; got 'none'"
    ):
        build_cnn(input_norm="none")
    with pytest.raises(ValueError, match=r"'arch' must be one of 'seed', 'vgg', 'vgg_lite'; got 'resnet'"):
        build_cnn(arch="resnet")


def test_vgg_body_shapes_parameters_and_flops():
    """Two blocks of two 3x3 'same' convolutions halve 28 -> 14 -> 7; far fewer FLOPs than the seed's body."""
    model = ablation.build_recipe_model(
        ablation.Recipe(arch="vgg", conv_bn=True, input_norm="rescale"), "mnist"
    )
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert shapes["conv1_2_relu"] == (28, 28, 32) and shapes["pool1"] == (14, 14, 32)
    assert shapes["conv2_2_relu"] == (14, 14, 64) and shapes["flatten"] == (7 * 7 * 64,)
    convs = [(1, 32), (32, 32), (32, 64), (64, 64)]
    expected = (
        sum(9 * i * o + 4 * o for i, o in convs)  # kernels (no bias) + BatchNormalization
        + 7 * 7 * 64 * 256
        + 256
        + 256 * 10
        + 10
    )
    assert model.count_params() == expected
    seed = build_seed_model()
    assert 2.5 < forward_flops(seed) / forward_flops(model) < 3.5
    assert ablation.Recipe.parse(ablation.Recipe(arch="vgg", conv_bn=True).describe()).arch == "vgg"


def test_vgg_lite_body_drops_the_second_full_size_convolution():
    """One 3x3 convolution on the 28x28 maps, no dropout after the first pooling; the rest is the VGG body."""
    recipe = ablation.Recipe(arch="vgg_lite", conv_bn=True, input_norm="rescale")
    lite = ablation.build_recipe_model(recipe, "mnist")
    vgg = ablation.build_recipe_model(
        ablation.Recipe(arch="vgg", conv_bn=True, input_norm="rescale"), "mnist"
    )
    names = [layer.name for layer in lite.layers]
    assert names == [
        n for n in (layer.name for layer in vgg.layers) if not n.startswith(("conv1_2", "pool1_drop"))
    ]
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in lite.layers}
    assert shapes["conv1_1_relu"] == (28, 28, 32) and shapes["flatten"] == (7 * 7 * 64,)
    assert vgg.count_params() - lite.count_params() == 9 * 32 * 32 + 4 * 32  # conv1_2's kernel and its BN
    conv1_2 = 28 * 28 * 9 * 32 * 32 * 2  # multiply-adds x 2 on the 28x28 maps
    assert forward_flops(vgg) - forward_flops(lite) == pytest.approx(conv1_2, rel=0.02)
    assert ablation.Recipe.parse(recipe.describe()) == recipe


def test_pool_first_pools_before_batchnorm_and_matches_the_network_in_inference():
    """Same weights, pooling moved before each BatchNormalization and relu: at inference (BN an increasing
    function of each value while its scales are positive) the two networks compute the same outputs."""
    recipe = ablation.Recipe(arch="vgg_lite", conv_bn=True, input_norm="rescale")
    lite = ablation.build_recipe_model(recipe, "mnist")
    pooled = ablation.build_recipe_model(replace(recipe, pool_first=True), "mnist")
    names = [layer.name for layer in pooled.layers]
    assert names[:4] == ["input_scale", "conv1_1", "pool1", "conv1_1_bn"]
    assert names[names.index("conv2_2") + 1] == "pool2" and sorted(names) == sorted(
        x.name for x in lite.layers
    )
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in pooled.layers}
    assert shapes["conv1_1_bn"] == (14, 14, 32) and shapes["conv2_2_relu"] == (7, 7, 64)
    assert pooled.count_params() == lite.count_params() and forward_flops(pooled) == forward_flops(lite)
    rng = np.random.default_rng(0)
    for layer in lite.layers:
        if isinstance(layer, keras.layers.BatchNormalization):  # statistics as if trained, scales positive
            shape = layer.get_weights()[0].shape
            layer.set_weights(
                [
                    rng.uniform(0.5, 2, shape),
                    rng.normal(size=shape),
                    rng.normal(size=shape),
                    rng.uniform(0.5, 2, shape),
                ]
            )
        pooled.get_layer(layer.name).set_weights(layer.get_weights())
    images = rng.integers(0, 256, size=(8, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(
        pooled(images, training=False), lite(images, training=False), rtol=1e-5, atol=1e-6
    )
    assert ablation.Recipe.parse(replace(recipe, pool_first=True).describe()).pool_first


def test_pool_first_needs_batchnorm_after_the_convolutions():
    with pytest.raises(
        ValueError, match="pool_first moves pooling before each BatchNormalization: it needs conv_bn"
    ):
        ablation.build_recipe_model(ablation.Recipe(arch="vgg", pool_first=True), "mnist")


def test_one_cycle_schedule_warms_up_then_decays_to_zero():
    schedule = one_cycle_schedule(steps_per_epoch=10, epochs=5, peak_lr=2e-3)
    lr = np.array([float(schedule(step)) for step in range(51)])
    assert (
        lr[0] == pytest.approx(2e-4)
        and lr[10] == pytest.approx(2e-3)
        and lr[50] == pytest.approx(0.0, abs=1e-9)
    )
    assert np.all(np.diff(lr[:11]) > 0) and np.all(np.diff(lr[10:]) <= 1e-12)
    with pytest.raises(ValueError, match="steps_per_epoch=0"):
        one_cycle_schedule(0, 5)


def test_one_cycle_schedule_of_one_epoch_reaches_its_peak_then_decays():
    schedule = one_cycle_schedule(steps_per_epoch=8, epochs=1, peak_lr=2e-3)  # what --quick runs
    lr = np.array([float(schedule(step)) for step in range(9)])
    assert lr[0] == pytest.approx(2e-4) and lr.max() == pytest.approx(2e-3) and lr[8] == pytest.approx(0.0)
    assert int(lr.argmax()) == 4 and np.all(np.diff(lr[:5]) > 0) and np.all(np.diff(lr[4:]) < 0)
    single = one_cycle_schedule(steps_per_epoch=1, epochs=1, peak_lr=2e-3)  # one step: no cycle, no error
    assert float(single(0)) == pytest.approx(2e-4)


def test_smoothed_loss_matches_keras_categorical_smoothing():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=16)
    probs = rng.dirichlet(np.ones(10), size=16).astype("float32")
    one_hot = np.eye(10, dtype="float32")[labels]
    expected = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(one_hot, probs)
    assert float(SparseCrossentropyWithSmoothing(0.1)(labels, probs)) == pytest.approx(
        float(expected), rel=1e-5
    )
    plain = keras.losses.SparseCategoricalCrossentropy()(labels, probs)
    assert float(SparseCrossentropyWithSmoothing(0.0)(labels, probs)) == pytest.approx(float(plain), rel=1e-5)
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\)"):
        SparseCrossentropyWithSmoothing(-0.1)


def test_model_with_smoothed_loss_saves_and_loads(tmp_path):
    model = compile_seed_model(build_seed_model(), loss=recipe_loss(0.1))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.loss, SparseCrossentropyWithSmoothing) and loaded.loss.label_smoothing == 0.1


def test_ladder_keeps_only_what_raises_validation_accuracy(stand_in, tmp_path):
    """Each step changes the best recipe so far and is kept only if it beats it (a tie is dropped); in a
    single stage the last kept trial wins."""
    accuracy = {
        "seed": 0.90,
        "input_norm=bn_channel": 0.91,
        "input_norm=bn_channel, conv_bn": 0.905,
        "input_norm=rescale": 0.91,
        "input_norm=bn_channel, augment": 0.93,
        "input_norm=bn_channel, augment, label_smoothing=0.1": 0.929,
        "input_norm=bn_channel, augment, schedule=one_cycle": 0.933,
    }
    trials = stand_in(lambda recipe, epochs, seed: accuracy[recipe.describe()])
    result = ablation.run_ladder("fashion_mnist", None, None, output_dir=tmp_path, epochs=1)
    table = result.table
    assert list(table["change"]) == [label for label, _ in ablation.LADDER]
    assert list(table["recipe"]) == list(accuracy), "each step changes the best recipe so far"
    assert trials == [(recipe, 1, 0, f"step{step}") for step, recipe in enumerate(accuracy)]
    assert list(table["kept"]) == [True, True, False, False, True, False, True], "a tie (rescale) is dropped"
    np.testing.assert_allclose(table["gain_pp"], [np.nan, 1.0, -0.5, 0.0, 2.0, -0.1, 0.3])
    assert list(table["chosen"]) == [False] * 6 + [True] and result.chosen_step == 6
    assert result.best_recipe == ablation.Recipe(input_norm="bn_channel", augment=True, schedule="one_cycle")
    assert result.best_metrics["final_val_accuracy"] == 0.933 and result.best_dir == tmp_path / "step6"
    assert result.trial_dirs == [tmp_path / f"step{step}" for step in range(7)]
    assert pd.read_csv(tmp_path / "ablation.csv", index_col="step")["recipe"].tolist() == list(accuracy)


@pytest.mark.parametrize(
    "shift_gain,flips_recipe", [(0.01, "flip, shift"), (-0.01, "flip")], ids=["shifts kept", "shifts dropped"]
)
def test_ladder_skips_a_step_whose_recipe_the_stage_already_trained(
    stand_in, tmp_path, capsys, shift_gain, flips_recipe
):
    """Shifts asked for twice are trained once: kept, "shifts again" is the best recipe itself; dropped, it is
    step 1's recipe once more. The step numbers stay consecutive."""
    trials = stand_in(lambda recipe, epochs, seed: 0.9 + shift_gain * recipe.shift + 0.001 * recipe.flip)
    ladder = (
        ("seed", {}),
        ("shifts", {"shift": True}),
        ("shifts again", {"shift": True}),
        ("flips", {"flip": True}),
    )
    result = ablation.run_ladder("fashion_mnist", None, None, output_dir=tmp_path, epochs=1, ladder=ladder)
    assert "--- skipped (screening): shifts again -> [shift] is step 1's recipe" in capsys.readouterr().out
    assert list(result.table["change"]) == ["seed", "shifts", "flips"]
    assert trials == [("seed", 1, 0, "step0"), ("shift", 1, 0, "step1"), (flips_recipe, 1, 0, "step2")]
    assert list(result.table.index) == [0, 1, 2]
    assert result.trial_dirs == [tmp_path / f"step{i}" for i in range(3)]


def test_long_stage_retrains_the_winner_then_tries_only_the_augmentations_that_suit(
    stand_in, tmp_path, capsys
):
    """Clothes: the screening winner retrained longer (the new reference), each light augmentation, the VGG
    network (shifts kept already: its shifted twin is skipped), erasing on it; the long winner wins. Digits:
    no flips, no erasing. No ``long_epochs``: one stage."""
    stand_in(
        lambda r, epochs, seed: (
            0.9
            + 0.01 * (r.input_norm == "bn_channel")
            + 0.002 * epochs
            + 0.003 * r.flip
            + 0.002 * r.shift
            - 0.001 * r.erase
            + 0.004 * (r.arch == "vgg")
        )
    )
    result = ablation.run_ladder(
        "fashion_mnist", None, None, output_dir=tmp_path, epochs=1, long_epochs=2, ladder=ablation.LADDER[:2]
    )
    table = result.table
    vgg = "input_norm=bn_channel, conv_bn, flip, shift, schedule=one_cycle, arch=vgg"
    assert (
        "--- skipped (long): the VGG-style network with small shifts -> [" + vgg + "] is step 6's recipe"
        in capsys.readouterr().out
    )
    assert list(table["stage"]) == ["screening"] * 2 + ["long"] * 6
    assert list(table["epochs"]) == [1] * 2 + [2] * 6
    assert list(table["change"].iloc[2:]) == [ablation.LONG_LADDER[i][0] for i in (0, 1, 2, 3, 4, 6)]
    assert list(table["recipe"]) == [
        "seed",
        "input_norm=bn_channel",
        "input_norm=bn_channel",
        "input_norm=bn_channel, flip",
        "input_norm=bn_channel, flip, shift",
        "input_norm=bn_channel, flip, shift, erase",
        vgg,
        "input_norm=bn_channel, conv_bn, flip, shift, erase, schedule=one_cycle, arch=vgg",
    ]
    assert list(table["kept"]) == [True, True, True, True, True, False, True, False]
    np.testing.assert_allclose(table["gain_pp"], [np.nan, 1, np.nan, 0.3, 0.2, -0.1, 0.4, -0.1])
    assert result.chosen_step == 6 and result.best_metrics["epochs_completed"] == 2, "the long winner wins"
    digits = ablation.run_ladder(
        "mnist", None, None, output_dir=tmp_path, epochs=1, long_epochs=2, ladder=ablation.LADDER[:1]
    ).table
    assert list(digits["change"].iloc[1:]) == [ablation.LONG_LADDER[i][0] for i in (0, 2, 4)], (
        "no flips, no erasing for digits; the VGG network with shifts is the VGG step's recipe"
    )
    assert list(
        ablation.run_ladder(
            "mnist", None, None, output_dir=tmp_path, epochs=1, ladder=ablation.LADDER[:1]
        ).table["stage"]
    ) == ["screening"]


def test_longer_stage_runs_only_where_the_long_stage_won(stand_in, tmp_path, capsys):
    """The third stage retrains the best recipe at ``longer_epochs`` and then tries erasing (clothes only),
    but only where the long stage beat the screening stage on validation; its winner can win overall, and
    the other seeds then train for its epochs."""
    ladders = dict(
        epochs=1,
        long_epochs=2,
        longer_epochs=3,
        ladder=(("seed", {}),),
        long_ladder=(("the best recipe, longer", {}), ("flips", {"flip": True})),
    )
    stand_in(lambda r, e, _: 0.9 + e / 1000 + r.flip / 1e4 + r.erase / 1e4)
    result = ablation.run_ladder("fashion_mnist", None, None, output_dir=tmp_path, winner_seeds=1, **ladders)
    table = result.table
    assert list(table["stage"]) == ["screening", "long", "long", "longer", "longer", "seeds"]
    assert list(table["epochs"]) == [1, 2, 2, 3, 3, 3]
    assert table.loc[3, "recipe"] == "flip" and np.isnan(table.loc[3, "gain_pp"])
    assert table.loc[4, "recipe"] == "flip, erase" and table.loc[4, "kept"]
    assert result.chosen_step == 4 and result.best_recipe == ablation.Recipe(flip=True, erase=True)
    assert table.loc[5, "recipe"] == "flip, erase" and table.loc[5, "seed"] == 1
    digits = ablation.run_ladder("mnist", None, None, output_dir=tmp_path, **ladders).table
    assert list(digits["stage"]) == ["screening", "long", "longer"], "no flips, no erasing for digits"
    capsys.readouterr()
    stand_in(lambda r, e, _: 0.9 - e / 1000 + r.flip / 1e4)
    result = ablation.run_ladder("fashion_mnist", None, None, output_dir=tmp_path, **ladders)
    assert (
        "--- longer stage (3 epochs) skipped: on validation, 2 epochs did not beat 1"
        in capsys.readouterr().out
    )
    assert list(result.table["stage"]) == ["screening", "long", "long"] and result.chosen_step == 0
    for long_epochs, longer_epochs in ((2, 2), (0, 3), (2, -1)):
        with pytest.raises(ValueError, match="'longer_epochs' must be"):
            ablation.run_ladder(
                "fashion_mnist",
                None,
                None,
                output_dir=tmp_path,
                epochs=1,
                long_epochs=long_epochs,
                longer_epochs=longer_epochs,
            )


def test_winner_seeds_retrain_the_chosen_recipe_with_other_seeds_as_ensemble_candidates(stand_in, tmp_path):
    """The last stage trains the winner again with seed + 1, seed + 2, for its epochs: recorded with their
    seeds and gains over the winner, never kept or chosen (even when better), offered to the ensemble."""
    trials = stand_in(lambda r, epochs, seed: 0.9 + 0.01 * (r.input_norm == "bn_channel") + seed / 1000)
    result = ablation.run_ladder(
        "fashion_mnist",
        None,
        None,
        output_dir=tmp_path,
        epochs=1,
        ladder=ablation.LADDER[:2],
        seed=3,
        winner_seeds=2,
    )
    table = result.table
    assert list(table["stage"]) == ["screening"] * 2 + ["seeds"] * 2 and list(table["seed"]) == [3, 3, 4, 5]
    assert trials[2:] == [("input_norm=bn_channel", 1, 4, "step2"), ("input_norm=bn_channel", 1, 5, "step3")]
    assert list(table["change"].iloc[2:]) == [f"the chosen recipe again, seed {s}" for s in (4, 5)]
    np.testing.assert_allclose(table["gain_pp"].iloc[2:], [0.1, 0.2])
    assert list(table["kept"]) == [True, True, False, False] and result.chosen_step == 1
    assert set(ablation._ensemble_inputs(result, "fashion_mnist", False)) == {0, 1, 2, 3}
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="'winner_seeds' must be an integer >= 0"):
            ablation.run_ladder("fashion_mnist", None, None, output_dir=tmp_path, epochs=1, winner_seeds=bad)


def test_ladder_on_the_sample_trains_each_trial_once_in_its_folder_without_the_test_set(
    sample_split, tmp_path, capsys
):
    """The one real ladder (1 epoch on the sample): what holds whichever trial wins. Which one should win is
    tested on the stand-in above."""
    train, val, (x_test, y_test), info = sample_split
    run = dict(
        output_dir=tmp_path,
        epochs=1,
        progress="none",
        data_info=info,
        seed=3,
        winner_seeds=1,
        ladder=(ablation.LADDER[0], ("random erasing", {"erase": True})),
    )
    result = ablation.run_ladder("fashion_mnist", train, val, **run)
    table = result.table
    assert list(table["stage"]) == ["screening"] * 2 + ["seeds"] and list(table["seed"]) == [3, 3, 4]
    assert list(table["recipe"]) == ["seed", "erase", result.best_recipe.describe()]
    screening = table.loc[[0, 1], "val_accuracy"]
    assert result.chosen_step == screening.idxmax(), "the better of the two on validation"
    assert result.best_dir == result.trial_dirs[result.chosen_step]
    assert result.trial_dirs == [tmp_path / f"step{step}" for step in range(3)]
    assert list(pd.read_csv(tmp_path / "ablation.csv", index_col="step")["recipe"]) == list(table["recipe"])
    for step, folder in enumerate(result.trial_dirs):
        metrics = json.loads((folder / "metrics.json").read_text())
        assert "test_accuracy" not in metrics, "trials never look at the test set"
        assert metrics["is_sample"] is True and metrics["seed"] == table.loc[step, "seed"]
        assert ablation.Recipe(**metrics["recipe"]).describe() == table.loc[step, "recipe"]
        assert metrics["final_val_accuracy"] == table.loc[step, "val_accuracy"]
    erased = keras.saving.load_model(tmp_path / "step1" / "model.keras")  # what a resumed ladder reloads
    assert "random_erasing" in [layer.name for layer in erased.layers]
    winner, twin = (
        ablation._trial_probabilities(folder, val[0], flips=False)
        for folder in (result.best_dir, tmp_path / "step2")
    )
    assert not np.allclose(winner, twin), "the same recipe with another seed is another model"

    # after the choice, for the record: every trial on the test set, in table order, the winner's included
    scores = ablation.trial_test_accuracies(result, x_test, y_test)
    best_pred = result.best_model.predict(x_test[..., None].astype("float32"), verbose=0).argmax(1)
    assert list(scores.index) == [0, 1, 2]
    assert scores[result.chosen_step] == pytest.approx(np.mean(best_pred == y_test))

    # ensemble selection starts from the winner, only adds what raises the validation accuracy, and reports it
    choice = ablation.choose_ensemble(result, "fashion_mnist", *val)
    assert choice["members"][0] == result.chosen_step and set(choice["members"]) <= {0, 1, 2}
    assert choice["path"][0] == pytest.approx(result.best_metrics["final_val_accuracy"], abs=1e-6)
    assert all(b > a for a, b in zip(choice["path"], choice["path"][1:]))
    assert choice["used"] == (len(choice["path"]) > 1)
    averaged = ablation.ensemble_proba(result, choice["members"], "fashion_mnist", val[0])
    assert np.mean(averaged.argmax(1) == val[1]) == pytest.approx(choice["val_accuracy"])

    # a second call reuses every finished trial, untouched; another seed in a finished folder is refused
    stamps = [(folder / "metrics.json").stat().st_mtime_ns for folder in result.trial_dirs]
    capsys.readouterr()
    assert ablation.run_ladder("fashion_mnist", train, val, **run).table.equals(table)
    assert capsys.readouterr().out.count("Reusing the finished run") == 3
    assert stamps == [(folder / "metrics.json").stat().st_mtime_ns for folder in result.trial_dirs]
    with pytest.raises(RunConflictError, match="seed: 4 -> 9"):  # another seed into a finished trial's folder
        ablation.run_trial(
            result.best_recipe,
            "fashion_mnist",
            train,
            val,
            epochs=1,
            seed=9,
            output_dir=tmp_path / "step2",
            progress="none",
            data_info=info,
        )
    assert stamps[2] == (tmp_path / "step2" / "metrics.json").stat().st_mtime_ns, "the finished trial is kept"


def test_test_time_flips_average_the_mirror_and_are_chosen_on_validation(sample_split):
    _, (x_val, y_val), _, _ = sample_split
    model = build_seed_model()
    plain, mirrored = (
        model.predict(x[..., None].astype("float32"), verbose=0) for x in (x_val, x_val[:, :, ::-1])
    )
    np.testing.assert_allclose(
        ablation.predict_with_flips(model, x_val)[1], (plain + mirrored) / 2, rtol=1e-5, atol=1e-7
    )
    choice = ablation.choose_test_time_flips(model, "fashion_mnist", x_val, y_val)
    assert choice["val_accuracy"] == pytest.approx(np.mean(plain.argmax(1) == y_val))
    assert choice["val_accuracy_with_flips"] == pytest.approx(np.mean((plain + mirrored).argmax(1) == y_val))
    assert choice["used"] == (choice["val_accuracy_with_flips"] > choice["val_accuracy"])
    digits = ablation.choose_test_time_flips(model, "mnist", x_val, y_val)
    assert digits == {"used": False, "val_accuracy": choice["val_accuracy"], "val_accuracy_with_flips": None}


def _fake_ladder(recipes: list[str], chosen: int, folder) -> ablation.LadderResult:
    import pandas as pd

    table = pd.DataFrame({"recipe": recipes, "chosen": [i == chosen for i in range(len(recipes))]})
    return ablation.LadderResult(
        table,
        ablation.Recipe.parse(recipes[chosen]),
        None,
        {},
        folder / f"step{chosen}",
        [folder / f"step{i}" for i in range(len(recipes))],
    )


def test_ensemble_selection_adds_the_trial_that_helps_most_and_stops_when_none_helps(monkeypatch, tmp_path):
    y = np.array([0, 1, 2, 3])

    def probabilities(*rows):  # one {class: probability} per image, the rest spread evenly
        return np.array(
            [[row.get(c, (1 - sum(row.values())) / (4 - len(row))) for c in range(4)] for row in rows]
        )

    # the winner (step 0) is sure of images 0-1 and wrong, unsure, on 2-3; step 2 the other way round;
    # step 1 is confidently wrong everywhere; step 3 is right on 0-2 only
    votes = {
        "step0": probabilities({0: 0.7}, {1: 0.7}, {0: 0.4, 2: 0.3}, {0: 0.4, 3: 0.3}),
        "step1": probabilities({3: 0.97}, {3: 0.97}, {3: 0.97}, {0: 0.97}),
        "step2": probabilities({1: 0.4, 0: 0.3}, {0: 0.4, 1: 0.3}, {2: 0.9}, {3: 0.9}),
        "step3": probabilities({0: 0.5}, {1: 0.5}, {2: 0.5}, {0: 0.5}),
    }
    calls = []

    def fake(folder, x, flips):
        calls.append((folder.name, flips))
        return votes[folder.name]

    monkeypatch.setattr(ablation, "_trial_probabilities", fake)
    result = _fake_ladder(["seed", "flip", "label_smoothing=0.1", "flip, label_smoothing=0.1"], 0, tmp_path)
    choice = ablation.choose_ensemble(result, "fashion_mnist", np.zeros((4, 28, 28)), y, test_time_flips=True)

    def accuracy(steps):
        return np.mean(np.mean([votes[f"step{s}"] for s in steps], 0).argmax(1) == y)

    assert choice["members"][0] == 0 and choice["path"][0] == accuracy([0]) == 0.5
    assert choice["members"] == [0, 2] and choice["path"] == [0.5, 1.0] and choice["used"]
    assert choice["val_accuracy"] == accuracy([0, 2]) == 1.0
    # flips: the winner as chosen, another trial only if it trained on mirrored images (steps 1 and 3 here)
    assert dict(calls) == {"step0": True, "step1": True, "step2": False, "step3": True}
    assert choice["test_time_flips"] == [0]
    calls.clear()
    np.testing.assert_allclose(
        ablation.ensemble_proba(result, [0, 2], "fashion_mnist", np.zeros((4, 28, 28)), True),
        (votes["step0"] + votes["step2"]) / 2,
    )
    alone = ablation.choose_ensemble(
        _fake_ladder(["seed", "flip"], 0, tmp_path), "mnist", np.zeros((4, 28, 28)), y
    )
    assert alone == {"used": False, "members": [0], "val_accuracy": 0.5, "path": [0.5], "test_time_flips": []}


def test_penultimate_features(sample_split):
    _, _, (x_test, y_test), _ = sample_split
    model = build_seed_model()
    features = ablation.penultimate_features(model, x_test[:32])
    assert features.shape == (32, 64) and features.dtype == np.float32 and (features >= 0).all()  # relu
    vgg = ablation.build_recipe_model(ablation.Recipe(arch="vgg"), "fashion_mnist")
    assert ablation.penultimate_features(vgg, x_test[:8]).shape == (8, 256)
    # batch by batch, the same features as one pass: the activations that feed the classifier
    in_batches = ablation.penultimate_features(model, x_test[:50], batch_size=16)
    head = model.get_layer("probabilities")
    logits = in_batches @ head.kernel.numpy() + head.bias.numpy()
    np.testing.assert_allclose(
        in_batches, ablation.penultimate_features(model, x_test[:50]), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras.ops.softmax(logits)),
        model.predict(x_test[:50, ..., None].astype("float32"), verbose=0),
        rtol=1e-4,
        atol=1e-5,
    )


def test_data_keys_are_snake_case_and_only_the_display_renames_them(stand_in, tmp_path):
    """The ablation table (and ``ablation.csv``) keeps plain snake_case keys; :func:`ablation.for_display`
    returns a copy with the labels readers see."""
    stand_in(lambda recipe, epochs, seed: 0.9 + 0.01 * (recipe.input_norm == "bn_channel"))
    table = ablation.run_ladder(
        "fashion_mnist", None, None, output_dir=tmp_path, epochs=1, ladder=ablation.LADDER[:2]
    ).table
    columns = [table.index.name, *table.columns]
    assert all(c.isidentifier() and c == c.lower() for c in columns), columns
    assert list(pd.read_csv(tmp_path / "ablation.csv").columns) == columns
    assert table.loc[1, "gain_pp"] == pytest.approx(1.0) and table.loc[1, "seconds_per_epoch"] == 60.0
    shown = ablation.for_display(table)
    assert list(shown.columns) == [ablation.DISPLAY_LABELS.get(c, c) for c in table.columns]
    assert {"change tried", "gain over best so far (pp)", "s / epoch"} <= set(shown.columns)
    assert shown.loc[1, "change tried"] == table.loc[1, "change"] == ablation.LADDER[1][0]
    assert list(table.columns) == columns[1:], "a renamed copy: the table keeps its keys"
    assert len(set(ablation.DISPLAY_LABELS.values())) == len(ablation.DISPLAY_LABELS), "one label a key"
    assert all(k.isidentifier() and k == k.lower() for k in ablation.DISPLAY_LABELS)


def test_summarize_never_claims_a_target_on_sample_data(stand_in, tmp_path):
    stand_in(lambda recipe, epochs, seed: 0.9)
    result = ablation.run_ladder(
        "fashion_mnist", None, None, output_dir=tmp_path, epochs=1, ladder=ablation.LADDER[:1]
    )
    table, summary = ablation.summarize(
        {"fashion_mnist": result}, {"fashion_mnist": 0.99}, {"fashion_mnist": True}
    )
    row = summary["fashion_mnist"]
    assert row["target_met"] is False and row["is_sample"] is True and row["target"] == 0.940
    assert row["best_recipe"] == {
        "input_norm": "bn_width",
        "conv_bn": False,
        "augment": False,
        "flip": False,
        "shift": False,
        "erase": False,
        "label_smoothing": 0.0,
        "schedule": "seed",
        "arch": "seed",
        "pool_first": False,
    }
    assert table.loc["Fashion-MNIST", "test accuracy: best recipe (measured once)"] == 0.99
    assert row["test_accuracy_best_recipe"] == 0.99 and row["seed_2017_test_accuracy"] == 0.9323
    assert all(key.isidentifier() and key == key.lower() for key in row), "summary.json's keys are snake_case"
    labels = {label: key for key, label in ablation.DISPLAY_LABELS.items()}
    data_keys = [labels.get(label, label) for label in table.columns]
    shown = [key for key in list(row)[1:] if key not in ("target", "target_met")]  # kept in summary.json only
    assert data_keys == shown[: len(data_keys)], "the table shows the row under its display labels"
    assert "target" not in data_keys and "target_met" not in data_keys
    assert all(table.loc["Fashion-MNIST", label] == row[labels.get(label, label)] for label in table.columns)
    assert row["epochs_per_trial"] == "1" and row["test_time_flips"] == {"used": False}
    flips = {"used": True, "val_accuracy": 0.5, "val_accuracy_with_flips": 0.6}
    _, full = ablation.summarize(
        {"fashion_mnist": result},
        {"fashion_mnist": 0.941},
        {"fashion_mnist": False},
        {"fashion_mnist": flips},
    )
    row = full["fashion_mnist"]
    assert row["target_met"] is True and row["test_time_flips"] == flips
    assert row["best_recipe_text"] == "seed + test-time flips"
    assert row["val_accuracy_best_recipe"] == 0.6, "the validation accuracy of what is tested"
    ensemble = {
        "used": True,
        "members": [0, 3],
        "val_accuracy": 0.7,
        "path": [0.6, 0.7],
        "test_time_flips": [0],
    }
    _, full = ablation.summarize(
        {"fashion_mnist": result},
        {"fashion_mnist": 0.95},
        {"fashion_mnist": False},
        {"fashion_mnist": flips},
        {"fashion_mnist": ensemble},
    )
    row = full["fashion_mnist"]
    assert row["best_recipe_text"] == "seed + test-time flips + ensemble of steps 0, 3"
    assert (
        row["val_accuracy_best_recipe"] == 0.7 and row["ensemble"] == ensemble and row["target_met"] is True
    )


def test_misclassified_indices_by_class_and_separability():
    y_true = np.array([0, 1, 2, 2, 1, 0])
    probs = np.eye(3)[[1, 1, 0, 2, 2, 0]] * 0.9 + 0.1 / 3
    evaluation = evaluate_predictions(y_true, probs, ["a", "b", "c"])
    assert sorted(misclassified_indices(evaluation).tolist()) == [0, 2, 4]
    assert misclassified_indices(evaluation, classes=[2]).tolist() == [2]
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 50)
    separated = rng.normal(size=(100, 5)) + y[:, None] * 10
    mixed = rng.normal(size=(100, 5))
    good, bad = separability(separated, y, separated[:, :2]), separability(mixed, y, mixed[:, :2])
    assert good["5-NN accuracy"] == 1.0 and bad["5-NN accuracy"] < 0.8
    assert good["silhouette in 2-D map"] > 0.5 > bad["silhouette in 2-D map"]


@pytest.mark.parametrize("text", ["conv_bn=flase", "conv_bn=1", "flip=yes", "erase=0"])
def test_recipe_booleans_are_true_or_false_only(text):
    with pytest.raises(ValueError, match=r"is true or false; got"):
        ablation.Recipe.parse(text)
    assert ablation.Recipe.parse("conv_bn=false") == ablation.SEED_RECIPE
    assert ablation.Recipe.parse("conv_bn, flip=True").flip is True


def test_a_ladder_is_rebuilt_from_its_summary_and_its_gains_set_against_the_seed_spread(tmp_path):
    """``ladder_from_summary`` reads what summary.json recorded; ``gains_against_spread`` puts every kept gain
    beside the range of the chosen recipe's seeds."""
    rows = [
        {
            "step": 0,
            "stage": "screening",
            "change": "seed",
            "recipe": "seed",
            "val_accuracy": 0.90,
            "gain_pp": None,
            "kept": True,
            "epochs": 2,
            "chosen": False,
        },
        {
            "step": 1,
            "stage": "screening",
            "change": "a",
            "recipe": "flip",
            "val_accuracy": 0.905,
            "gain_pp": 0.5,
            "kept": True,
            "epochs": 2,
            "chosen": False,
        },
        {
            "step": 2,
            "stage": "screening",
            "change": "b",
            "recipe": "flip, shift",
            "val_accuracy": 0.906,
            "gain_pp": 0.1,
            "kept": True,
            "epochs": 2,
            "chosen": True,
        },
        {
            "step": 3,
            "stage": "seeds",
            "change": "seed 1",
            "recipe": "flip, shift",
            "val_accuracy": 0.904,
            "gain_pp": -0.2,
            "kept": False,
            "epochs": 2,
            "chosen": False,
        },
    ]
    row = {"ablation": rows, "best_recipe": {"flip": True, "shift": True}}
    ladder = ablation.ladder_from_summary(row, tmp_path)
    assert ladder.chosen_step == 2 and ladder.best_recipe == ablation.Recipe(flip=True, shift=True)
    assert ladder.best_dir == tmp_path / "step2" and ladder.trial_dirs[3] == tmp_path / "step3"
    assert ablation.ladder_from_summary(row).trial_dirs == []
    assert ablation.seed_spread_pp(ladder.table) == pytest.approx(0.2)
    gains = ablation.gains_against_spread(ladder.table)
    assert gains.index.tolist() == [1, 2] and gains["larger_than_spread"].tolist() == [True, False]
    assert ablation.seed_spread_pp(ladder.table[ladder.table["stage"] != "seeds"]) is None


def test_ensemble_selection_adds_only_what_raises_validation_accuracy(monkeypatch, tmp_path):
    """Crafted predictions: step 1 fixes the winner's two mistakes, step 2 only adds new ones."""
    probabilities = {
        "step0": [[0.9, 0.1]] * 4 + [[0.6, 0.4]] * 2,  # the winner: right on the four 0s, wrong on the 1s
        "step1": [[0.4, 0.6]] * 2 + [[0.9, 0.1]] * 2 + [[0.1, 0.9]] * 2,  # sure of the 1s, unsure where wrong
        "step2": [[0.05, 0.95]] * 4 + [[0.9, 0.1]] * 2,  # wrong everywhere
    }
    y_val = np.array([0, 0, 0, 0, 1, 1])
    monkeypatch.setattr(
        ablation, "_trial_probabilities", lambda folder, x, flips: np.array(probabilities[folder.name])
    )
    table = pd.DataFrame({"recipe": ["seed"] * 3, "chosen": [True, False, False]})
    dirs = [tmp_path / f"step{i}" for i in range(3)]
    result = ablation.LadderResult(table, ablation.SEED_RECIPE, None, {}, dirs[0], dirs)
    choice = ablation.choose_ensemble(result, "fashion_mnist", np.zeros((6, 28, 28)), y_val)
    assert choice["members"] == [0, 1] and choice["used"] is True
    assert choice["path"] == pytest.approx([4 / 6, 1.0]) and choice["val_accuracy"] == 1.0


def test_a_ladder_run_one_dataset_at_a_time_keeps_the_others_rows_in_its_summary(tmp_path):
    path, settings = tmp_path / "summary.json", {"epochs": 12, "seed": 0, "precision": "float32"}
    ablation.write_summary(path, settings, {"mnist": {"dataset": "MNIST", "test": 0.99}})
    merged = ablation.write_summary(
        path, settings, {"fashion_mnist": {"dataset": "Fashion-MNIST", "test": 0.93}}
    )
    assert json.loads(path.read_text()) == merged
    assert (
        list(merged["datasets"]) == ["fashion_mnist", "mnist"] and merged["datasets"]["mnist"]["test"] == 0.99
    )
    before = path.read_bytes()
    with pytest.raises(ValueError, match="other settings; it is kept:\n  epochs: 12 -> 30"):
        ablation.write_summary(path, settings | {"epochs": 30}, {"mnist": {"dataset": "MNIST", "test": 0.98}})
    assert path.read_bytes() == before
