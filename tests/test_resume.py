"""Resuming and reusing runs: only a run with the same configuration fingerprint continues or is reused."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest

from fmnist_utils import ablation
from fmnist_utils.data import load_dataset, train_val_split
from fmnist_utils.models import build_seed_model, compile_seed_model
from fmnist_utils.training import ResumeMismatchError, fingerprint, load_run, set_seed, train


@pytest.fixture(scope="module")
def small_split():
    (x, y), _ = load_dataset("fashion_mnist", source="sample", verbose=False)
    (x_tr, y_tr), val = train_val_split(x, y, dataset="fashion_mnist")
    return (x_tr[:256], y_tr[:256]), (val[0][:128], val[1][:128])


class _Crash(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("simulated kill")


def _killed_run(folder, train_data, val_data, seed=1, epochs=3):
    set_seed(seed)
    with pytest.raises(KeyboardInterrupt):
        train(
            build_seed_model(),
            train_data,
            val_data,
            output_dir=folder,
            epochs=epochs,
            seed=seed,
            callbacks=[_Crash()],
            progress="none",
        )
    assert (folder / "backup" / "latest.weights.h5").is_file()


@pytest.mark.parametrize(
    "change,difference",
    [
        ({"seed": 2}, "seed: 1 -> 2"),
        ({"epochs": 5}, "epochs: 3 -> 5"),
        ({"batch_size": 128}, "batch_size: 256 -> 128"),
    ],
)
def test_a_backup_of_another_configuration_is_not_resumed(small_split, tmp_path, change, difference):
    _killed_run(tmp_path, *small_split)
    before = sorted(p.name for p in (tmp_path / "backup").iterdir())
    settings = {"seed": 1, "epochs": 3, "batch_size": 256, **change}
    set_seed(settings["seed"])
    with pytest.raises(ResumeMismatchError, match=difference) as error:
        train(build_seed_model(), *small_split, output_dir=tmp_path, progress="none", **settings)
    assert "delete" in str(error.value) and "resume=False" in str(error.value)
    assert sorted(p.name for p in (tmp_path / "backup").iterdir()) == before, "nothing deleted"


def test_a_backup_on_other_data_or_another_model_is_not_resumed(small_split, tmp_path):
    (x, y), val = small_split
    _killed_run(tmp_path, (x, y), val)
    set_seed(1)
    with pytest.raises(ResumeMismatchError, match="train_data_sha256"):
        train(
            build_seed_model(),
            (x[::-1], y[::-1]),
            val,
            output_dir=tmp_path,
            epochs=3,
            seed=1,
            progress="none",
        )
    with pytest.raises(ResumeMismatchError, match="architecture_sha256"):
        train(
            build_seed_model("channel_bn"),
            (x, y),
            val,
            output_dir=tmp_path,
            epochs=3,
            seed=1,
            progress="none",
        )


def test_the_same_configuration_resumes(small_split, tmp_path):
    _killed_run(tmp_path, *small_split)
    set_seed(1)
    result = train(build_seed_model(), *small_split, output_dir=tmp_path, epochs=3, seed=1, progress="none")
    assert result.metrics["resumed"] is True and list(result.history["epoch"]) == [0, 1, 2]
    assert result.metrics["fingerprint"]["seed"] == 1 and not (tmp_path / "backup").exists()


def test_fingerprint_ignores_layer_names_and_sees_the_optimizer(small_split):
    def compiled(**optimizer):
        set_seed(0)
        return compile_seed_model(
            build_seed_model(name=f"any_name_{len(optimizer)}"),
            keras.optimizers.Adam(**optimizer) if optimizer else None,
        )

    args = dict(epochs=3, batch_size=256, seed=0)
    keras.backend.clear_session()
    first = fingerprint(compiled(), *small_split, **args)
    again = fingerprint(compiled(), *small_split, **args)  # layer names and model name differ
    assert first == again
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


def test_a_finished_trial_is_reused_only_with_the_same_configuration(small_split, tmp_path, capsys):
    trial = dict(
        recipe=ablation.SEED_RECIPE, dataset="fashion_mnist", output_dir=tmp_path, epochs=1, progress="none"
    )
    first, _ = ablation.run_trial(train_data=small_split[0], val_data=small_split[1], **trial)
    again, _ = ablation.run_trial(train_data=small_split[0], val_data=small_split[1], **trial)
    assert again == first and "Reusing the finished trial" in capsys.readouterr().out
    other_batch, _ = ablation.run_trial(
        train_data=small_split[0], val_data=small_split[1], batch_size=128, **trial
    )
    assert other_batch["batch_size"] == 128 and "Reusing" not in capsys.readouterr().out
    (x, y), val = small_split
    other_data, _ = ablation.run_trial(train_data=(x[:200], y[:200]), val_data=val, **trial)
    assert other_data["train_size"] == 200 and "Reusing" not in capsys.readouterr().out
    flipped = np.ascontiguousarray(x[:, :, ::-1])  # same size, other images: the old key could not tell
    ablation.run_trial(train_data=(flipped, y), val_data=val, **trial)
    assert "Reusing" not in capsys.readouterr().out


def test_a_finished_run_is_loaded_not_trained_again(small_split, tmp_path, capsys):
    set_seed(3)
    first = train(build_seed_model(), *small_split, output_dir=tmp_path, epochs=1, seed=3, progress="none")
    set_seed(3)
    again = train(build_seed_model(), *small_split, output_dir=tmp_path, epochs=1, seed=3, progress="none")
    assert "finished earlier" in capsys.readouterr().out
    assert again.metrics == first.metrics and not (tmp_path / "backup").exists()
    for a, b in zip(first.model.get_weights(), again.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    set_seed(3)
    other = train(build_seed_model(), *small_split, output_dir=tmp_path, epochs=2, seed=3, progress="none")
    assert other.metrics["epochs_completed"] == 2 and "finished earlier" not in capsys.readouterr().out
