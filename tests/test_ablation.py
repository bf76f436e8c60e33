"""fmnist_utils.ablation and the model pieces it adds: recipes, one-cycle schedule, smoothed loss, the ladder."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from fmnist_utils import ablation, data
from fmnist_utils.evaluation import evaluate_predictions, misclassified_indices, predict_proba, separability
from fmnist_utils.models import (SEED_TOTAL_PARAMS, SparseCrossentropyWithSmoothing, build_cnn, build_seed_model,
                                 compile_seed_model, forward_flops, one_cycle_schedule)


@pytest.fixture(scope="module")
def sample_split():
    ((x, y), (x_test, y_test)), info = data.load_dataset("fashion_mnist", source="sample", return_info=True)
    x, y = data.limit_examples(x, y, 600, seed=0)
    train, val = data.train_val_split(x, y, dataset="fashion_mnist")
    return train, val, (x_test, y_test), info


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
    assert [layer.name for layer in flips.layers][:2] == ["random_flip", "input_bn"], "flips only, then the seed"
    with pytest.raises(ValueError, match="'flip' does not suit mnist: a mirrored digit is no digit"):
        ablation.build_recipe_model(ablation.Recipe(flip=True), "mnist")
    light = ablation.build_recipe_model(ablation.Recipe.parse("flip, shift, erase"), "fashion_mnist")
    assert [layer.name for layer in light.layers][:4] == ["random_small_shift", "random_flip", "random_erasing",
                                                          "input_bn"]
    assert light.get_layer("random_small_shift").height_factor == pytest.approx(2 / 28), "2 pixels at most"
    assert [layer.name for layer in ablation.build_recipe_model(ablation.Recipe(shift=True), "mnist").layers][:2] \
        == ["random_small_shift", "input_bn"]
    with pytest.raises(ValueError, match="'erase' does not suit mnist: a digit missing a stroke can become another"):
        ablation.build_recipe_model(ablation.Recipe(erase=True), "mnist")
    assert ablation.suits({"shift": True}, "mnist") and not ablation.suits({"erase": True}, "mnist")
    assert ablation.suits({"flip": True, "erase": True}, "fashion_mnist") and not ablation.suits({"flip": True}, "mnist")


def test_augmentation_is_off_at_inference():
    model = ablation.build_recipe_model(ablation.Recipe(augment=True), "fashion_mnist")
    x = np.random.default_rng(0).integers(0, 256, size=(8, 28, 28, 1)).astype("float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))
    trained_view = [model(x, training=True).numpy() for _ in range(2)]
    assert not np.allclose(trained_view[0], trained_view[1]), "training mode augments (and drops out)"


@pytest.mark.parametrize("kwargs,match", [
    ({"input_norm": "layer_norm"}, r"input_norm must be one of 'bn_width', 'bn_channel', 'rescale'; got 'layer_norm'"),
    ({"schedule": "step"}, r"schedule must be one of 'seed', 'one_cycle'; got 'step'"),
    ({"label_smoothing": 1.0}, r"label_smoothing must be in \[0, 1\); got 1.0"),
    ({"arch": "resnet"}, r"arch must be one of 'seed', 'vgg'; got 'resnet'"),
])
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
    with pytest.raises(ValueError, match="input_norm must be one of"):
        ablation.Recipe.parse("input_norm=none")


def test_build_cnn_rejects_unknown_input_norm_and_arch():
    with pytest.raises(ValueError, match=r"Unknown input_norm 'none'.*'bn_width', 'bn_channel', 'rescale'"):
        build_cnn(input_norm="none")
    with pytest.raises(ValueError, match=r"Unknown arch 'resnet'. Valid values: 'seed', 'vgg'"):
        build_cnn(arch="resnet")


def test_vgg_body_shapes_parameters_and_flops():
    """Two blocks of two 3x3 'same' convolutions halve 28 -> 14 -> 7; far fewer FLOPs than the seed's body."""
    model = ablation.build_recipe_model(ablation.Recipe(arch="vgg", conv_bn=True, input_norm="rescale"), "mnist")
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}
    assert shapes["conv1_2_relu"] == (28, 28, 32) and shapes["pool1"] == (14, 14, 32)
    assert shapes["conv2_2_relu"] == (14, 14, 64) and shapes["flatten"] == (7 * 7 * 64,)
    convs = [(1, 32), (32, 32), (32, 64), (64, 64)]
    expected = (sum(9 * i * o + 4 * o for i, o in convs)  # kernels (no bias) + BatchNormalization
                + 7 * 7 * 64 * 256 + 256 + 256 * 10 + 10)
    assert model.count_params() == expected
    seed = build_seed_model()
    assert 2.5 < forward_flops(seed) / forward_flops(model) < 3.5
    assert ablation.Recipe.parse(ablation.Recipe(arch="vgg", conv_bn=True).describe()).arch == "vgg"


def test_one_cycle_schedule_warms_up_then_decays_to_zero():
    schedule = one_cycle_schedule(steps_per_epoch=10, epochs=5, peak_lr=2e-3)
    lr = np.array([float(schedule(step)) for step in range(51)])
    assert lr[0] == pytest.approx(2e-4) and lr[10] == pytest.approx(2e-3) and lr[50] == pytest.approx(0.0, abs=1e-9)
    assert np.all(np.diff(lr[:11]) > 0) and np.all(np.diff(lr[10:]) <= 1e-12)
    with pytest.raises(ValueError, match="must be >= 1"):
        one_cycle_schedule(0, 5)


def test_ladder_skips_a_step_whose_recipe_the_stage_already_trained(sample_split, tmp_path, capsys):
    """Shifts on the VGG network are tried once: a later step asking for the same recipe is skipped, and the
    step numbers stay consecutive."""
    train, val, _, info = sample_split
    ladder = (("seed", {}), ("shifts", {"shift": True}), ("shifts again", {"shift": True}),
              ("flips", {"flip": True}))
    result = ablation.run_ladder("fashion_mnist", train, val, output_dir=tmp_path, epochs=1, progress="none",
                                 data_info=info, ladder=ladder)
    table = result.table
    out = capsys.readouterr().out
    kept_shift = bool(table["kept"].iloc[1])
    # kept: "shifts again" asks for the best recipe itself (step 1's); dropped: step 1's recipe once more
    assert "--- skipped (screening): shifts again -> [shift] is step 1's recipe" in out
    assert list(table["change tried"]) == ["seed", "shifts", "flips"] and list(table.index) == [0, 1, 2]
    assert table["recipe"].iloc[2] == ("flip, shift" if kept_shift else "flip")
    assert result.trial_dirs == [tmp_path / f"step{i}" for i in range(3)] and not (tmp_path / "step3").exists()


def test_winner_seeds_retrain_the_chosen_recipe_with_other_seeds_as_ensemble_candidates(sample_split, tmp_path, capsys):
    """The last stage trains the winner again with seed + 1, seed + 2: never chosen, recorded with its seed,
    reused only by a run with the same seed, and offered to ensemble selection like any other trial."""
    train, val, _, info = sample_split
    ladder = ablation.LADDER[:2]
    result = ablation.run_ladder("fashion_mnist", train, val, output_dir=tmp_path, epochs=1, progress="none",
                                 data_info=info, ladder=ladder, seed=3, winner_seeds=2)
    table = result.table
    assert list(table["stage"]) == ["screening", "screening", "seeds", "seeds"] and list(table.index) == [0, 1, 2, 3]
    assert list(table["seed"]) == [3, 3, 4, 5] and not table["kept"].iloc[2:].any()
    winner = result.chosen_step
    assert winner in (0, 1) and list(table["recipe"].iloc[2:]) == [table["recipe"].loc[winner]] * 2
    assert list(table["change tried"].iloc[2:]) == ["the chosen recipe again, seed 4", "the chosen recipe again, seed 5"]
    for step, seed in ((2, 4), (3, 5)):
        metrics = json.loads((tmp_path / f"step{step}" / "metrics.json").read_text())
        assert metrics["seed"] == seed and ablation.Recipe(**metrics["recipe"]) == result.best_recipe
        assert table["gain over best so far (pp)"].loc[step] == pytest.approx(
            100 * (metrics["final_val_accuracy"] - result.best_metrics["final_val_accuracy"]))
    probs = [ablation._trial_probabilities(tmp_path / f"step{s}", val[0][:200], flips=False) for s in (winner, 2, 3)]
    assert not np.allclose(probs[0], probs[1]) and not np.allclose(probs[1], probs[2])
    # ensemble selection starts from the winner and may add any trial, the other seeds included
    assert set(ablation._ensemble_inputs(result, "fashion_mnist", False)) == {0, 1, 2, 3}
    assert ablation.choose_ensemble(result, "fashion_mnist", *val)["members"][0] == winner
    capsys.readouterr()
    again = ablation.run_ladder("fashion_mnist", train, val, output_dir=tmp_path, epochs=1, progress="none",
                                data_info=info, ladder=ladder, seed=3, winner_seeds=2)
    assert capsys.readouterr().out.count("Reusing the finished trial") == 4 and again.table.equals(table)
    # a trial is reused only for its own seed: seed 9 in step 2's folder retrains
    metrics, _ = ablation.run_trial(result.best_recipe, "fashion_mnist", train, val, output_dir=tmp_path / "step2",
                                    epochs=1, seed=9, data_info=info, progress="none")
    assert metrics["seed"] == 9 and "Reusing" not in capsys.readouterr().out
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="'winner_seeds' must be an integer >= 0"):
            ablation.run_ladder("fashion_mnist", train, val, output_dir=tmp_path / "bad", epochs=1, winner_seeds=bad)
    assert not (tmp_path / "bad").exists()


def test_smoothed_loss_matches_keras_categorical_smoothing():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=16)
    probs = rng.dirichlet(np.ones(10), size=16).astype("float32")
    one_hot = np.eye(10, dtype="float32")[labels]
    expected = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(one_hot, probs)
    assert float(SparseCrossentropyWithSmoothing(0.1)(labels, probs)) == pytest.approx(float(expected), rel=1e-5)
    plain = keras.losses.SparseCategoricalCrossentropy()(labels, probs)
    assert float(SparseCrossentropyWithSmoothing(0.0)(labels, probs)) == pytest.approx(float(plain), rel=1e-5)
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\)"):
        SparseCrossentropyWithSmoothing(-0.1)


def test_model_with_smoothed_loss_saves_and_loads(tmp_path):
    model = compile_seed_model(build_seed_model(), label_smoothing=0.1)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.loss, SparseCrossentropyWithSmoothing) and loaded.loss.label_smoothing == 0.1


def test_ladder_keeps_only_what_raises_validation_accuracy_and_reuses_finished_trials(sample_split, tmp_path, capsys):
    train, val, _, info = sample_split
    ladder = ablation.LADDER[:3]
    result = ablation.run_ladder("fashion_mnist", train, val, output_dir=tmp_path, epochs=1, progress="none",
                                 data_info=info, ladder=ladder)
    table = result.table
    assert list(table.index) == [0, 1, 2] and list(table["change tried"]) == [label for label, _ in ladder]
    best_so_far = table["val_accuracy"].iloc[0]
    for step in (1, 2):
        kept = table["val_accuracy"].iloc[step] > best_so_far
        assert table["kept"].iloc[step] == kept
        assert table["gain over best so far (pp)"].iloc[step] == pytest.approx(
            100 * (table["val_accuracy"].iloc[step] - best_so_far))
        best_so_far = max(best_so_far, table["val_accuracy"].iloc[step])
    assert result.best_metrics["final_val_accuracy"] == best_so_far
    assert (tmp_path / "ablation.csv").is_file() and (result.best_dir / "model.keras").is_file()
    for step in range(3):
        metrics = json.loads((tmp_path / f"step{step}" / "metrics.json").read_text())
        assert "test_accuracy" not in metrics, "trials never look at the test set"
        assert metrics["is_sample"] is True and metrics["recipe"]["input_norm"] in ("bn_width", "bn_channel")
    stamps = {step: (tmp_path / f"step{step}" / "metrics.json").stat().st_mtime_ns for step in range(3)}
    capsys.readouterr()
    again = ablation.run_ladder("fashion_mnist", train, val, output_dir=tmp_path, epochs=1, progress="none",
                                data_info=info, ladder=ladder)
    assert capsys.readouterr().out.count("Reusing the finished trial") == 3
    assert stamps == {step: (tmp_path / f"step{step}" / "metrics.json").stat().st_mtime_ns for step in range(3)}
    assert again.best_recipe == result.best_recipe
    # a trial recorded before a recipe field existed had that field's default: still reused
    path = tmp_path / "step0" / "metrics.json"
    metrics = json.loads(path.read_text())
    del metrics["recipe"]["flip"]
    path.write_text(json.dumps(metrics))
    assert ablation.run_trial(ablation.SEED_RECIPE, "fashion_mnist", train, val, output_dir=tmp_path / "step0",
                              epochs=1, data_info=info)[0] == metrics
    # after the choice, for the record: every trial on the test set, in table order, the winner's included
    _, _, (x_test, y_test), _ = sample_split
    assert result.trial_dirs == [tmp_path / f"step{step}" for step in range(3)]
    scores = ablation.trial_test_accuracies(result, x_test, y_test)
    assert list(scores.index) == [0, 1, 2] and scores.between(0.0, 1.0).all()
    winner = int(table.index[table["kept"]][-1])
    assert list(table["chosen"]) == [step == winner for step in table.index], "one stage: the last kept step wins"
    assert result.best_dir == tmp_path / f"step{winner}"
    best_pred = result.best_model.predict(x_test[..., None].astype("float32"), verbose=0).argmax(1)
    assert scores[winner] == pytest.approx(np.mean(best_pred == y_test))
    rerun = ablation.run_ladder("fashion_mnist", train, val, output_dir=tmp_path, epochs=2, progress="none",
                                data_info=info, ladder=ladder[:1])
    assert rerun.table["epochs"].iloc[0] == 2, "a different set-up is retrained, not reused"


def test_long_stage_retrains_the_winner_then_tries_only_the_augmentations_that_suit(sample_split, tmp_path):
    train, val, _, info = sample_split
    result = ablation.run_ladder("fashion_mnist", train, val, output_dir=tmp_path / "clothes", epochs=1,
                                 long_epochs=2, progress="none", data_info=info, ladder=ablation.LADDER[:2],
                                 long_ladder=ablation.LONG_LADDER[:4])  # the network steps: notebook 05's test
    table = result.table
    assert list(table["stage"]) == ["screening"] * 2 + ["long"] * 4
    assert list(table["epochs"]) == [1, 1, 2, 2, 2, 2]
    screening_best = table.loc[[0, 1]].loc[table.loc[[0, 1], "kept"]].iloc[-1]
    assert table.loc[2, "recipe"] == screening_best["recipe"], "the long stage starts from the screening winner"
    assert table.loc[2, "kept"] and np.isnan(table.loc[2, "gain over best so far (pp)"]), "a new reference, no gain"
    assert table.loc[3, "change tried"].startswith("horizontal flips") and "flip" in table.loc[3, "recipe"]
    assert table.loc[3, "gain over best so far (pp)"] == pytest.approx(
        100 * (table.loc[3, "val_accuracy"] - table.loc[2, "val_accuracy"]))
    long_winner = table.loc[table["kept"] & (table["stage"] == "long")].iloc[-1]
    chosen = table.loc[table["chosen"]]
    assert len(chosen) == 1 and chosen["val_accuracy"].iloc[0] == max(screening_best["val_accuracy"],
                                                                       long_winner["val_accuracy"])
    assert result.best_metrics["final_val_accuracy"] == chosen["val_accuracy"].iloc[0]
    assert result.best_dir == result.trial_dirs[int(chosen.index[0])]
    if long_winner["val_accuracy"] > screening_best["val_accuracy"]:
        assert result.best_metrics["epochs_completed"] == 2
    erased = keras.saving.load_model(result.trial_dirs[5] / "model.keras")  # what a resumed ladder reuses
    assert "random_erasing" in [layer.name for layer in erased.layers]
    digits = ablation.run_ladder("mnist", train, val, output_dir=tmp_path / "digits", epochs=1, long_epochs=1,
                                 progress="none", data_info=info, ladder=ablation.LADDER[:1],
                                 long_ladder=ablation.LONG_LADDER[:4])
    assert [label.split(" (")[0] for label in digits.table["change tried"]][1:] == [
        "the best recipe so far, trained longer", "small shifts"], "no flips, no erasing for digits"
    assert len(ablation.run_ladder("mnist", train, val, output_dir=tmp_path / "short", epochs=1, progress="none",
                                   data_info=info, ladder=ablation.LADDER[:1]).table) == 1, "long_epochs=0: one stage"


def _fake_trials(accuracy):
    """A stand-in for ``run_trial`` whose final validation accuracy is ``accuracy(recipe, epochs)``: stage logic
    without training."""
    def run_trial(recipe, dataset, train_data, val_data, *, output_dir, epochs, seed=0, **_):
        return {"final_val_accuracy": accuracy(recipe, epochs), "epochs_completed": epochs,
                "total_seconds": 60.0 * epochs, "mean_epoch_seconds": 60.0}, None
    return run_trial


def test_longer_stage_runs_only_where_the_long_stage_won(monkeypatch, tmp_path, capsys):
    """The third stage retrains the best recipe at ``longer_epochs`` and then tries erasing (clothes only),
    but only where the long stage beat the screening stage on validation; its winner can win overall, and
    the other seeds then train for its epochs."""
    ladders = dict(epochs=1, long_epochs=2, longer_epochs=3, ladder=(("seed", {}),),
                   long_ladder=(("the best recipe, longer", {}), ("flips", {"flip": True})))
    monkeypatch.setattr(ablation, "run_trial", _fake_trials(lambda r, e: 0.9 + e / 1000 + r.flip / 1e4 + r.erase / 1e4))
    result = ablation.run_ladder("fashion_mnist", None, None, output_dir=tmp_path, winner_seeds=1, **ladders)
    table = result.table
    assert list(table["stage"]) == ["screening", "long", "long", "longer", "longer", "seeds"]
    assert list(table["epochs"]) == [1, 2, 2, 3, 3, 3]
    assert table.loc[3, "recipe"] == "flip" and np.isnan(table.loc[3, "gain over best so far (pp)"])
    assert table.loc[4, "recipe"] == "flip, erase" and table.loc[4, "kept"]
    assert result.chosen_step == 4 and result.best_recipe == ablation.Recipe(flip=True, erase=True)
    assert table.loc[5, "recipe"] == "flip, erase" and table.loc[5, "seed"] == 1
    digits = ablation.run_ladder("mnist", None, None, output_dir=tmp_path, **ladders).table
    assert list(digits["stage"]) == ["screening", "long", "longer"], "no flips, no erasing for digits"
    capsys.readouterr()
    monkeypatch.setattr(ablation, "run_trial", _fake_trials(lambda r, e: 0.9 - e / 1000 + r.flip / 1e4))
    result = ablation.run_ladder("fashion_mnist", None, None, output_dir=tmp_path, **ladders)
    assert "--- longer stage (3 epochs) skipped: on validation, 2 epochs did not beat 1" in capsys.readouterr().out
    assert list(result.table["stage"]) == ["screening", "long", "long"] and result.chosen_step == 0
    for long_epochs, longer_epochs in ((2, 2), (0, 3), (2, -1)):
        with pytest.raises(ValueError, match="'longer_epochs' must be"):
            ablation.run_ladder("fashion_mnist", None, None, output_dir=tmp_path / "bad", epochs=1,
                                long_epochs=long_epochs, longer_epochs=longer_epochs)
    assert not (tmp_path / "bad").exists()


def test_test_time_flips_average_the_mirror_and_are_chosen_on_validation(sample_split):
    _, (x_val, y_val), _, _ = sample_split
    model = build_seed_model()
    plain, mirrored = (model.predict(x[..., None].astype("float32"), verbose=0) for x in (x_val, x_val[:, :, ::-1]))
    np.testing.assert_allclose(predict_proba(model, x_val, flip_average=True), (plain + mirrored) / 2, rtol=1e-5)
    choice = ablation.choose_test_time_flips(model, "fashion_mnist", x_val, y_val)
    assert choice["val_accuracy"] == pytest.approx(np.mean(plain.argmax(1) == y_val))
    assert choice["val_accuracy_with_flips"] == pytest.approx(np.mean((plain + mirrored).argmax(1) == y_val))
    assert choice["used"] == (choice["val_accuracy_with_flips"] > choice["val_accuracy"])
    digits = ablation.choose_test_time_flips(model, "mnist", x_val, y_val)
    assert digits == {"used": False, "val_accuracy": choice["val_accuracy"], "val_accuracy_with_flips": None}


def _fake_ladder(recipes: list[str], chosen: int, folder) -> ablation.LadderResult:
    import pandas as pd

    table = pd.DataFrame({"recipe": recipes, "chosen": [i == chosen for i in range(len(recipes))]})
    return ablation.LadderResult(table, ablation.Recipe.parse(recipes[chosen]), None, {}, folder / f"step{chosen}",
                                 [folder / f"step{i}" for i in range(len(recipes))])


def test_ensemble_selection_adds_the_trial_that_helps_most_and_stops_when_none_helps(monkeypatch, tmp_path):
    y = np.array([0, 1, 2, 3])

    def probabilities(*rows):  # one {class: probability} per image, the rest spread evenly
        return np.array([[row.get(c, (1 - sum(row.values())) / (4 - len(row))) for c in range(4)] for row in rows])

    # the winner (step 0) is sure of images 0-1 and wrong, unsure, on 2-3; step 2 the other way round;
    # step 1 is confidently wrong everywhere; step 3 is right on 0-2 only
    votes = {"step0": probabilities({0: .7}, {1: .7}, {0: .4, 2: .3}, {0: .4, 3: .3}),
             "step1": probabilities({3: .97}, {3: .97}, {3: .97}, {0: .97}),
             "step2": probabilities({1: .4, 0: .3}, {0: .4, 1: .3}, {2: .9}, {3: .9}),
             "step3": probabilities({0: .5}, {1: .5}, {2: .5}, {0: .5})}
    calls = []

    def fake(folder, x, flips):
        calls.append((folder.name, flips))
        return votes[folder.name]

    monkeypatch.setattr(ablation, "_trial_probabilities", fake)
    result = _fake_ladder(["seed", "flip", "label_smoothing=0.1", "flip, label_smoothing=0.1"], 0, tmp_path)
    choice = ablation.choose_ensemble(result, "fashion_mnist", np.zeros((4, 28, 28)), y, test_time_flips=True)
    accuracy = lambda steps: np.mean(np.mean([votes[f"step{s}"] for s in steps], 0).argmax(1) == y)
    assert choice["members"][0] == 0 and choice["path"][0] == accuracy([0]) == 0.5
    assert choice["members"] == [0, 2] and choice["path"] == [0.5, 1.0] and choice["used"]
    assert choice["val_accuracy"] == accuracy([0, 2]) == 1.0
    # flips: the winner as chosen, another trial only if it trained on mirrored images (steps 1 and 3 here)
    assert dict(calls) == {"step0": True, "step1": True, "step2": False, "step3": True}
    assert choice["test_time_flips"] == [0]
    calls.clear()
    np.testing.assert_allclose(ablation.ensemble_proba(result, [0, 2], "fashion_mnist", np.zeros((4, 28, 28)), True),
                               (votes["step0"] + votes["step2"]) / 2)
    alone = ablation.choose_ensemble(_fake_ladder(["seed", "flip"], 0, tmp_path), "mnist", np.zeros((4, 28, 28)), y)
    assert alone == {"used": False, "members": [0], "val_accuracy": 0.5, "path": [0.5], "test_time_flips": []}


def test_ensemble_of_real_trials_matches_its_validation_accuracy(sample_split, tmp_path):
    train, val, _, info = sample_split
    result = ablation.run_ladder("fashion_mnist", train, val, output_dir=tmp_path, epochs=1, progress="none",
                                 data_info=info, ladder=ablation.LADDER[:3])
    choice = ablation.choose_ensemble(result, "fashion_mnist", *val)
    winner = int(result.table.index[result.table["chosen"]][0])
    assert choice["members"][0] == winner and choice["path"][0] == pytest.approx(
        result.best_metrics["final_val_accuracy"], abs=1e-6)
    assert all(b > a for a, b in zip(choice["path"], choice["path"][1:]))
    assert choice["used"] == (len(choice["path"]) > 1)
    probabilities = ablation.ensemble_proba(result, choice["members"], "fashion_mnist", val[0])
    assert probabilities.shape == (len(val[1]), 10)
    assert np.mean(probabilities.argmax(1) == val[1]) == pytest.approx(choice["val_accuracy"])


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
    np.testing.assert_allclose(in_batches, ablation.penultimate_features(model, x_test[:50]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.softmax(logits)),
                               model.predict(x_test[:50, ..., None].astype("float32"), verbose=0), rtol=1e-4, atol=1e-5)


def test_summarize_never_claims_a_target_on_sample_data(sample_split, tmp_path):
    train, val, (x_test, y_test), info = sample_split
    result = ablation.run_ladder("fashion_mnist", train, val, output_dir=tmp_path, epochs=1, progress="none",
                                 data_info=info, ladder=ablation.LADDER[:1])
    table, summary = ablation.summarize({"fashion_mnist": result}, {"fashion_mnist": 0.99}, {"fashion_mnist": True})
    row = summary["fashion_mnist"]
    assert row["target met"] is False and row["is_sample"] is True and row["target"] == 0.940
    assert row["best_recipe"] == {"input_norm": "bn_width", "conv_bn": False, "augment": False, "flip": False,
                                  "shift": False, "erase": False, "label_smoothing": 0.0, "schedule": "seed", "arch": "seed"}
    assert table.loc["Fashion-MNIST", "test accuracy: best recipe (measured once)"] == 0.99
    assert row["epochs per trial"] == "1" and row["test_time_flips"] == {"used": False}
    flips = {"used": True, "val_accuracy": 0.5, "val_accuracy_with_flips": 0.6}
    _, full = ablation.summarize({"fashion_mnist": result}, {"fashion_mnist": 0.941}, {"fashion_mnist": False},
                                 {"fashion_mnist": flips})
    row = full["fashion_mnist"]
    assert row["target met"] is True and row["test_time_flips"] == flips
    assert row["best recipe (chosen on validation)"] == "seed + test-time flips"
    assert row["val accuracy: best recipe"] == 0.6, "the validation accuracy of what is tested"
    ensemble = {"used": True, "members": [0, 3], "val_accuracy": 0.7, "path": [0.6, 0.7], "test_time_flips": [0]}
    _, full = ablation.summarize({"fashion_mnist": result}, {"fashion_mnist": 0.95}, {"fashion_mnist": False},
                                 {"fashion_mnist": flips}, {"fashion_mnist": ensemble})
    row = full["fashion_mnist"]
    assert row["best recipe (chosen on validation)"] == "seed + test-time flips + ensemble of steps 0, 3"
    assert row["val accuracy: best recipe"] == 0.7 and row["ensemble"] == ensemble and row["target met"] is True


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
