"""What a run folder does with an earlier run: resume it exactly, reuse it, or refuse and keep it."""

from __future__ import annotations

import json
import shutil

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import Kill

from fmnist_utils import training
from fmnist_utils.data import steps_per_epoch
from fmnist_utils.lab import ablation
from fmnist_utils.models import build_seed_model, compile_seed_model
from fmnist_utils.runs import RunConflictError, fingerprint, load_run, update_metrics
from fmnist_utils.training import set_seed, train

#: Augmentation (random flips and erasing) and dropout: each draws from the model's random generators.
AUGMENTED = ablation.Recipe(flip=True, erase=True)


def _model(seed, recipe=None, epochs=3, batch_size=256, data=None):
    """The seed model, or ``recipe``'s with its optimizer, seeded and compiled afresh."""
    set_seed(seed)
    if recipe is None:
        return compile_seed_model(build_seed_model())
    steps = steps_per_epoch(len(data[0][0]), batch_size)
    return compile_seed_model(
        ablation.build_recipe_model(recipe, "fashion_mnist", seed=seed),
        ablation.recipe_optimizer(recipe, steps, epochs),
    )


def _train(folder, data, seed=1, epochs=3, callbacks=(), recipe=None, **settings):
    """A model seeded and compiled afresh (the seed's unless ``recipe``), trained into ``folder``."""
    model = _model(seed, recipe, epochs, settings.get("batch_size", 256), data)
    return train(
        model,
        *data,
        output_dir=folder,
        epochs=epochs,
        seed=seed,
        callbacks=list(callbacks),
        progress="none",
        **settings,
    )


def _killed(folder, data, kill, at=2, **settings):
    with pytest.raises(KeyboardInterrupt):
        _train(folder, data, callbacks=[kill(at)], **settings)
    assert (folder / "backup" / "latest.weights.h5").is_file() and not (folder / "metrics.json").exists()


def _snapshot(folder) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


COLUMNS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"]
#: Four steps an epoch (256 images, batches of 64) of an augmented recipe: a resume that drew another batch
#: order or other random flips, erasures or dropout masks than the run it continues would show.
EXACT = dict(recipe=AUGMENTED, batch_size=64, epochs=4)


def _assert_same_run(result, whole):
    pd.testing.assert_frame_equal(result.history[COLUMNS], whole.history[COLUMNS], check_exact=True)
    for a, b in zip(whole.model.get_weights(), result.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def whole(small_split, tmp_path_factory):
    """The uninterrupted run that every interrupted one must equal."""
    return _train(tmp_path_factory.mktemp("whole"), small_split, **EXACT)


def test_a_killed_and_resumed_run_equals_the_uninterrupted_run(small_split, tmp_path, kill, whole):
    _killed(tmp_path / "killed", small_split, kill, at=2, **EXACT)
    resumed = _train(tmp_path / "killed", small_split, **EXACT)
    assert resumed.metrics["resumed"] is True and whole.metrics["resumed"] is False
    _assert_same_run(resumed, whole)
    assert int(resumed.model.optimizer.iterations) == int(whole.model.optimizer.iterations) == 4 * 4
    assert not (tmp_path / "killed" / "backup").exists(), "the backup goes once the run is finished"
    assert not (tmp_path / "killed" / "fitted").exists()


class _KillAfterFit(keras.callbacks.Callback):
    """Raises KeyboardInterrupt as ``fit`` returns, before the run's files are written."""

    changes_training = False

    def on_train_end(self, logs=None):
        raise KeyboardInterrupt("simulated kill after fit, before finish_run")


def test_a_kill_after_fit_returns_loses_no_training(small_split, tmp_path, kill, whole):
    folder = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        _train(folder, small_split, callbacks=[_KillAfterFit()], **EXACT)
    assert not (folder / "metrics.json").exists() and (folder / "fitted" / "latest.weights.h5").is_file()
    recorded = _train(folder, small_split, callbacks=[kill(0)], **EXACT)  # kill(0): any new epoch fails
    _assert_same_run(recorded, whole)
    assert recorded.metrics["final_learning_rate"] == whole.metrics["final_learning_rate"]
    assert (folder / "model.keras").is_file() and not (folder / "fitted").exists()


class _KillBetweenTheTwoBackups(keras.callbacks.Callback):
    """Listed between RandomStateBackup and BackupAndRestore: kills the run after epoch ``at``'s random state
    was saved and before its weights were."""

    changes_training = False

    def __init__(self, at: int):
        super().__init__()
        self.at = at

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt("simulated kill between the two halves of the backup")


def test_a_kill_between_the_random_state_and_the_weights_resumes_exactly(small_split, tmp_path, whole):
    folder = tmp_path / "killed"
    model = _model(1, AUGMENTED, EXACT["epochs"], EXACT["batch_size"], small_split)
    run = training.start_run(folder, model, *small_split, epochs=4, batch_size=64, seed=1)
    with pytest.raises(KeyboardInterrupt):
        model.fit(  # notebook 03's list, with the kill between the random state and the weights
            run.train_batches,
            steps_per_epoch=run.steps_per_epoch,
            validation_data=run.val_batches,
            epochs=4,
            callbacks=[
                training.EpochTimer(),
                keras.callbacks.CSVLogger(run.history_csv),
                training.RandomStateBackup(run.backup_dir),
                _KillBetweenTheTwoBackups(at=2),
                keras.callbacks.BackupAndRestore(run.backup_dir),
            ],
            verbose=0,
            shuffle=False,
        )
    resumed = _train(folder, small_split, **EXACT)
    _assert_same_run(resumed, whole)


def test_a_new_run_restores_nothing_an_earlier_one_left(small_split, tmp_path, whole):
    folder = tmp_path / "stale"
    backup = folder / "backup"  # a backup without weights: no run to resume, only leftovers
    backup.mkdir(parents=True)
    (backup / "training_metadata.json").write_text(json.dumps({"epoch": 2, "batch": -1}))
    stale = {"0": np.array([7, 7], dtype="uint32")}
    for name in ("random_state.npz", "random_state_2.npz"):
        np.savez(backup / name, **stale)
    fresh = _train(folder, small_split, **EXACT)
    assert fresh.metrics["resumed"] is False
    _assert_same_run(fresh, whole)


def test_a_finished_run_whose_model_is_missing_is_refused_and_kept(small_split, tmp_path):
    _train(tmp_path, small_split, epochs=1)
    (tmp_path / "model.keras").unlink()
    before = _snapshot(tmp_path)
    with pytest.raises(RunConflictError, match="finished run whose model.keras is missing") as error:
        _train(tmp_path, small_split, epochs=1)
    assert "overwrite=True" in str(error.value) and "another folder" in str(error.value)
    assert _snapshot(tmp_path) == before, "its metrics and history are kept"
    again = _train(tmp_path, small_split, epochs=1, overwrite=True)
    assert (tmp_path / "model.keras").is_file() and again.metrics["epochs_completed"] == 1


def test_reusing_a_finished_run_never_replaces_its_recorded_test(fashion_sample, small_split, tmp_path):
    _, _, (x_test, y_test), _ = fashion_sample
    _train(tmp_path, small_split, epochs=1, test_data=(x_test[:200], y_test[:200]))
    before = _snapshot(tmp_path)
    with pytest.raises(RunConflictError, match="tested on another test set"):
        _train(tmp_path, small_split, epochs=1, test_data=(x_test[200:400], y_test[200:400]))
    assert _snapshot(tmp_path) == before, "the test result measured first is kept"
    same = _train(tmp_path, small_split, epochs=1, test_data=(x_test[:200], y_test[:200]))
    assert same.metrics == load_run(tmp_path)[0], "the same test set: the recorded result, as it was"


@pytest.mark.parametrize(
    "change,difference",
    [
        ({"seed": 2}, "seed: 1 -> 2"),
        ({"epochs": 5}, "epochs: 3 -> 5"),
        ({"batch_size": 128}, "batch_size: 256 -> 128"),
    ],
)
def test_a_killed_run_of_another_configuration_is_refused_and_kept(
    small_split, tmp_path, kill, change, difference
):
    _killed(tmp_path, small_split, kill, at=1)
    before = _snapshot(tmp_path)
    with pytest.raises(RunConflictError, match=difference) as error:
        _train(tmp_path, small_split, **{"seed": 1, "epochs": 3, **change})
    assert "killed run" in str(error.value) and "overwrite=True" in str(error.value)
    assert _snapshot(tmp_path) == before, "nothing deleted or rewritten"


def test_a_finished_run_of_another_configuration_is_refused_and_kept(small_split, tmp_path):
    _train(tmp_path, small_split, epochs=1)
    before = _snapshot(tmp_path)
    with pytest.raises(RunConflictError, match="seed: 1 -> 2") as error:
        _train(tmp_path, small_split, epochs=1, seed=2)
    assert "finished run" in str(error.value) and "another folder" in str(error.value)
    assert _snapshot(tmp_path) == before, "the finished run's files are untouched"


def test_overwrite_replaces_an_earlier_run_of_another_configuration(small_split, tmp_path, kill):
    _train(tmp_path, small_split, epochs=1)
    replaced = _train(tmp_path, small_split, epochs=2, seed=2, overwrite=True)
    assert load_run(tmp_path)[0]["seed"] == 2 and list(replaced.history["epoch"]) == [0, 1]
    _killed(tmp_path / "other", small_split, kill, at=1)
    fresh = _train(tmp_path / "other", small_split, epochs=1, overwrite=True)
    assert fresh.metrics["resumed"] is False and list(fresh.history["epoch"]) == [0]


def test_a_run_of_other_data_other_initial_weights_or_another_model_is_refused(small_split, tmp_path, kill):
    (x, y), val = small_split
    _killed(tmp_path, small_split, kill, at=1)
    with pytest.raises(RunConflictError, match="train_data_sha256"):
        _train(tmp_path, ((x[::-1], y[::-1]), val))
    keras.utils.set_random_seed(7)  # other initial weights, same shuffling seed
    unseeded = compile_seed_model(build_seed_model())
    with pytest.raises(RunConflictError, match="initial_weights_sha256"):
        train(unseeded, (x, y), val, output_dir=tmp_path, epochs=3, seed=1, progress="none")
    set_seed(1)
    with pytest.raises(RunConflictError, match="architecture_sha256"):
        model = compile_seed_model(build_seed_model("channel_bn"))
        train(model, (x, y), val, output_dir=tmp_path, epochs=3, seed=1, progress="none")


def test_the_same_finished_run_is_reused_and_evaluates_a_requested_test(
    fashion_sample, small_split, tmp_path, capsys
):
    _, _, (x_test, y_test), _ = fashion_sample
    first = _train(tmp_path, small_split, epochs=1)
    assert "test_accuracy" not in first.metrics
    again = _train(tmp_path, small_split, epochs=1, test_data=(x_test[:200], y_test[:200]))
    printed = capsys.readouterr().out
    assert "Reusing the finished run" in printed and "as recorded when it trained" in printed
    row = first.history.iloc[0]  # the recorded epoch log, one line an epoch, as Keras wrote it then
    assert (
        f"Epoch 1/1 - {row.epoch_seconds:.0f}s - accuracy: {row.accuracy:.4f} - loss: {row.loss:.4f}"
        in printed
    )
    for a, b in zip(first.model.get_weights(), again.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # loaded, not trained again
    predicted = again.model.predict(x_test[:200, ..., None].astype("float32"), verbose=0).argmax(1)
    assert again.metrics["test_accuracy"] == pytest.approx(np.mean(predicted == y_test[:200]), abs=1e-6)
    assert again.metrics["test_size"] == 200 and load_run(tmp_path)[0] == again.metrics, (
        "written to metrics.json"
    )


def test_fingerprint_ignores_layer_names_and_sees_the_optimizer(small_split):
    def compiled(**optimizer):
        set_seed(0)
        return compile_seed_model(
            build_seed_model(name=f"any_name_{len(optimizer)}"),
            keras.optimizers.Adam(**optimizer) if optimizer else None,
        )

    args = dict(epochs=3, batch_size=256, seed=0)
    first = fingerprint(compiled(), *small_split, **args)
    assert fingerprint(compiled(), *small_split, **args) == first  # layer and model names differ
    assert fingerprint(compiled(learning_rate=0.01), *small_split, **args)["optimizer"] != first["optimizer"]


def test_history_on_disk_keeps_each_epoch_once(tmp_path):
    rows = pd.DataFrame({"epoch": [0, 1, 1, 2], "accuracy": [0.5, 0.6, 0.61, 0.7], "val_accuracy": [0.4] * 4})
    rows.to_csv(tmp_path / "history.csv", index=False)
    (tmp_path / "metrics.json").write_text("{}")
    _, history = load_run(tmp_path)
    assert list(history["epoch"]) == [0, 1, 2] and history["accuracy"].tolist() == [0.5, 0.61, 0.7]
    assert pd.read_csv(tmp_path / "history.csv")["epoch"].tolist() == [0, 1, 2], "one source of truth"


def test_bfloat16_recorded_for_an_augmented_recipe(small_split, tmp_path):
    metrics, _ = ablation.run_trial(
        ablation.Recipe(flip=True),
        "fashion_mnist",
        *small_split,
        output_dir=tmp_path,
        epochs=1,
        precision="mixed_bfloat16",
        progress="none",
    )
    assert metrics["dtype_policy"] == "mixed_bfloat16"
    assert json.loads((tmp_path / "metrics.json").read_text())["dtype_policy"] == "mixed_bfloat16"


def test_a_trial_folder_follows_the_same_rules_as_a_run(small_split, tmp_path, capsys):
    trial = dict(
        recipe=ablation.SEED_RECIPE, dataset="fashion_mnist", output_dir=tmp_path, epochs=1, progress="none"
    )
    first, _ = ablation.run_trial(train_data=small_split[0], val_data=small_split[1], **trial)
    again, _ = ablation.run_trial(train_data=small_split[0], val_data=small_split[1], **trial)
    assert again == first and "Reusing the finished run" in capsys.readouterr().out
    before = _snapshot(tmp_path)
    (x, y), val = small_split
    flipped = np.ascontiguousarray(x[:, :, ::-1])  # same size, other images
    with pytest.raises(RunConflictError, match="train_data_sha256"):
        ablation.run_trial(train_data=(flipped, y), val_data=val, **trial)
    with pytest.raises(RunConflictError, match="batch_size: 256 -> 128"):
        ablation.run_trial(train_data=(x, y), val_data=val, batch_size=128, **trial)
    assert _snapshot(tmp_path) == before


# -- nothing lost, nothing silently wrong (issue 44) --------------------------------------------------------


def test_overwrite_never_deletes_a_run_of_the_same_settings(small_split, tmp_path, kill, whole, capsys):
    folder = tmp_path / "killed"
    _killed(folder, small_split, kill, at=2, **EXACT)
    resumed = _train(folder, small_split, overwrite=True, **EXACT)  # a learner told to pass overwrite=True
    assert resumed.metrics["resumed"] is True, "the killed run of the same settings resumes"
    _assert_same_run(resumed, whole)
    before = _snapshot(folder)
    again = _train(folder, small_split, overwrite=True, **EXACT)
    assert "Reusing the finished run" in capsys.readouterr().out
    assert _snapshot(folder) == before and again.metrics == resumed.metrics, (
        "the finished run is reused as is"
    )


@pytest.fixture(scope="module")
def killed_at_2(small_split, tmp_path_factory):
    """A run killed as its third epoch began: Keras' backup holds epoch 2 and, double-checkpointed, epoch 1."""
    folder = tmp_path_factory.mktemp("killed_at_2")
    with pytest.raises(KeyboardInterrupt):
        _train(folder, small_split, callbacks=[Kill(2)], **EXACT)
    return folder


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _weights_newer_than_metadata(backup):
    """A kill after Keras wrote epoch 2's weights and before it wrote the epoch number: the metadata still
    says epoch 1."""
    shutil.copyfile(backup / "training_metadata.json.bkp", backup / "training_metadata.json")


DAMAGE = {
    "weights removed": lambda b: (b / "latest.weights.h5").unlink(),
    "weights cut short": lambda b: _truncate(b / "latest.weights.h5"),
    "metadata removed": lambda b: (b / "training_metadata.json").unlink(),
    "metadata cut short": lambda b: _truncate(b / "training_metadata.json"),
    "weights newer than metadata": _weights_newer_than_metadata,
    "previous weights cut short": lambda b: _truncate(b / "latest.weights.h5.bkp"),
    "previous metadata removed": lambda b: (b / "training_metadata.json.bkp").unlink(),
    "epoch 2's random state removed": lambda b: (b / "random_state_2.npz").unlink(),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_backup_damaged_by_a_kill_at_any_point_of_its_write_resumes_exactly(
    small_split, tmp_path, killed_at_2, whole, damage
):
    folder = tmp_path / "killed"
    shutil.copytree(killed_at_2, folder)
    assert {"latest.weights.h5.bkp", "training_metadata.json.bkp"} <= {
        p.name for p in (folder / "backup").iterdir()
    }
    DAMAGE[damage](folder / "backup")
    resumed = _train(folder, small_split, **EXACT)
    assert resumed.metrics["resumed"] is True and resumed.metrics["epochs_completed"] == EXACT["epochs"]
    _assert_same_run(resumed, whole)  # from epoch 2 if the kill spared it, else from epoch 1


def test_a_first_backup_cut_short_starts_the_run_again(small_split, tmp_path, whole):
    folder = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        _train(folder, small_split, callbacks=[Kill(1)], **EXACT)
    _truncate(folder / "backup" / "latest.weights.h5")  # nothing whole to resume from, nothing to lose
    again = _train(folder, small_split, **EXACT)
    _assert_same_run(again, whole)


class _Slower(keras.callbacks.Callback):
    """A callback that changes training: the learning rate halved after the first epoch."""

    def __init__(self, factor: float = 0.5):
        super().__init__()
        self.factor = factor

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            self.model.optimizer.learning_rate = self.factor * float(self.model.optimizer.learning_rate)


def test_what_fit_is_given_is_part_of_the_run(small_split, tmp_path, kill):
    _killed(tmp_path, small_split, kill, at=1)
    before = _snapshot(tmp_path)
    with pytest.raises(
        RunConflictError, match="fit: "
    ) as error:  # the resume adds a callback that changes fit
        _train(tmp_path, small_split, callbacks=[_Slower()])
    assert "_Slower" in str(error.value) and _snapshot(tmp_path) == before
    model = _model(1)
    with pytest.raises(RunConflictError, match="fit: "):
        training.start_run(
            tmp_path, model, *small_split, epochs=3, seed=1, fit_options={"class_weight": {0: 2.0}}
        )
    options = {"callbacks": [_Slower(0.5)]}
    assert fingerprint(
        model, *small_split, epochs=3, batch_size=256, seed=1, fit=training.fit_settings(**options)
    ) != (
        fingerprint(
            model,
            *small_split,
            epochs=3,
            batch_size=256,
            seed=1,
            fit=training.fit_settings(callbacks=[_Slower(0.25)]),
        )
    ), "a callback's settings count"
    resumed = _train(tmp_path, small_split, callbacks=[training.EpochTimer()])  # recording only: the same run
    assert resumed.metrics["resumed"] is True


def test_other_library_versions_are_another_run_and_older_records_still_match(small_split, tmp_path):
    _train(tmp_path, small_split, epochs=1)
    metrics_file = tmp_path / "metrics.json"
    recorded = json.loads(metrics_file.read_text())
    assert set(recorded["fingerprint"]["versions"]) == {"keras", "tensorflow", "numpy"}
    other = recorded | {"fingerprint": recorded["fingerprint"] | {"versions": {"keras": "3.0.0"}}}
    metrics_file.write_text(json.dumps(other))
    with pytest.raises(RunConflictError, match="versions"):
        _train(tmp_path, small_split, epochs=1)
    older = {k: v for k, v in recorded["fingerprint"].items() if k not in ("fit", "versions")}
    metrics_file.write_text(
        json.dumps(recorded | {"fingerprint": older})
    )  # a run recorded before both fields
    assert _train(tmp_path, small_split, epochs=1).metrics["seed"] == 1, "still recognised: reused"


def test_a_model_file_that_is_not_the_runs_own_is_refused(small_split, tmp_path):
    _train(tmp_path / "a", small_split, epochs=1)
    _train(tmp_path / "b", small_split, epochs=1, seed=2)
    recorded = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert len(recorded["model_sha256"]) == 64
    shutil.copyfile(tmp_path / "b" / "model.keras", tmp_path / "a" / "model.keras")  # seed 2's model put back
    before = _snapshot(tmp_path / "a")
    with pytest.raises(RunConflictError, match="not the model this run saved"):
        _train(tmp_path / "a", small_split, epochs=1)
    assert _snapshot(tmp_path / "a") == before
    legacy = tmp_path / "b" / "metrics.json"  # a run finished before hashes were recorded
    legacy.write_text(
        json.dumps({k: v for k, v in json.loads(legacy.read_text()).items() if k != "model_sha256"})
    )
    reused = _train(tmp_path / "b", small_split, epochs=1, seed=2)
    assert reused.metrics["model_sha256"] == json.loads(legacy.read_text())["model_sha256"], "recorded now"


def test_a_test_result_is_recorded_with_its_test_set(fashion_sample, small_split, tmp_path):
    _, _, (x_test, y_test), _ = fashion_sample
    _train(tmp_path, small_split, epochs=1)
    first, other = (x_test[:200], y_test[:200]), (x_test[200:400], y_test[200:400])
    with pytest.raises(ValueError, match="test_data"):
        update_metrics(tmp_path, {"test_accuracy": 0.5})
    recorded = update_metrics(tmp_path, {"test_accuracy": 0.5}, test_data=first)
    assert recorded["test_size"] == 200 and len(recorded["test_data_sha256"]) == 64
    before = _snapshot(tmp_path)
    with pytest.raises(RunConflictError, match="another test set"):
        update_metrics(tmp_path, {"test_accuracy": 0.6, "evaluation": {}}, test_data=other)
    assert _snapshot(tmp_path) == before
    assert update_metrics(tmp_path, {"test_accuracy": 0.5}, test_data=first) == recorded
    assert update_metrics(tmp_path, {"note": "no test"})["note"] == "no test", (
        "other updates need no test set"
    )
