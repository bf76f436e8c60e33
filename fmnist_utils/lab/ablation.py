"""Beyond the seed: change one thing at a time, keep what helps on validation, test the winner once.

:data:`LADDER` lists the changes in the order notebook 05 tries them. :func:`run_ladder` trains the
seed recipe, then each step applied to the best recipe so far, and keeps a step only if it raises the
final validation accuracy (greedy forward selection on the validation split). Given ``long_epochs``, a
second stage follows: the best recipe retrained for longer (the new reference), then the augmentations
of :data:`LONG_LADDER` that suit the dataset, which need that longer budget to pay off, and last the
one step beyond the seed's network, a VGG-style body in place of its own, then the augmentations again on
that network (a step whose recipe a trial of the stage already trained is skipped). Given ``longer_epochs``
too, a third stage doubles down where the budget paid: only if the second stage's winner beat the first's on
validation, the best recipe is retrained for ``longer_epochs`` (the new reference), then with random erasing
(:data:`LONGER_LADDER`), the augmentation that makes the task hardest and so needs the most epochs. The winner is
the best stage winner on validation: longer training is kept, like any change, only if it helps.
Given ``winner_seeds``, a last stage trains the winner's recipe again with other seeds (``seed + 1``, ...):
never chosen themselves, they measure the seed-to-seed spread and join the ensemble candidates (a *deep
ensemble*: the same recipe from different random starts makes different mistakes).
:func:`choose_test_time_flips` then decides, on validation too, whether averaging each prediction with
that of the mirrored image helps, and :func:`choose_ensemble` which trials to average with the winner.
The test set plays no part in any choice: the caller evaluates what was chosen on it once, at the end,
and may then score every trial on it for the record (:func:`trial_test_accuracies`), never to choose.

Each trial is an ordinary :func:`fmnist_utils.training.train` run in its own folder, so a killed
ablation resumes mid-trial, and a finished trial with the same recipe is reused instead of retrained.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from fmnist_utils.data import DATASETS, DISPLAY_NAMES, DataInfo, steps_per_epoch
from fmnist_utils.evaluation import as_images, predict_proba
from fmnist_utils.files import write_json
from fmnist_utils.lab.networks import (
    ARCHS,
    INPUT_NORMS,
    augmentation_layers,
    build_cnn,
    one_cycle_schedule,
    recipe_loss,
)
from fmnist_utils.models import compile_seed_model, resolve_precision, seed_optimizer
from fmnist_utils.params import check_choice, check_int
from fmnist_utils.protocol import BEYOND_TARGETS, ONE_CYCLE_PEAK_LR, SEED_BATCH_SIZE, SEED_RESULTS
from fmnist_utils.runs import differences, update_metrics
from fmnist_utils.training import set_seed, train

SCHEDULES = ("seed", "one_cycle")
#: Horizontal flips keep a garment's class; they turn digits into non-digits.
FLIP_SAFE = {"fashion_mnist": True, "mnist": False}
#: A garment with a patch hidden is still the same garment; a digit missing a stroke can become another
#: (an 8 without its top loop is a 6 or a 0, a 7 without its bar a 1).
ERASE_SAFE = {"fashion_mnist": True, "mnist": False}
#: Recipe fields that can change an image's class: (the datasets they suit, why the others are refused).
CLASS_CHANGING = {
    "flip": (FLIP_SAFE, "a mirrored digit is no digit"),
    "erase": (ERASE_SAFE, "a digit missing a stroke can become another"),
}


@dataclass(frozen=True)
class Recipe:
    """How a model is built and trained; the defaults are the seed's."""

    input_norm: str = "bn_width"  # "bn_width" (seed), "bn_channel", "rescale" (x / 255, no input BN)
    conv_bn: bool = False  # BatchNormalization after each convolution
    augment: bool = False  # random shifts and rotations (+ horizontal flips where the class survives them)
    flip: bool = (
        False  # horizontal flips only (no shifts or rotations): the lightest augmentation, clothes only
    )
    shift: bool = False  # random shifts of up to 2 pixels, nothing else
    erase: bool = False  # random erasing: a rectangle of noise in half of the images, clothes only
    label_smoothing: float = 0.0
    schedule: str = "seed"  # "seed" (Adam, 1e-3 / (1 + 1e-3 t)) or "one_cycle" (warm-up, then cosine)
    #: the network body: "seed" (2 conv + 3 dense), "vgg" (2 x 2 3x3 conv + 1 dense) or "vgg_lite" (vgg with
    #: one convolution on the 28x28 maps)
    arch: str = "seed"
    #: each max pooling straight after the convolution before it, ahead of its BatchNormalization and relu
    pool_first: bool = False

    def __post_init__(self):
        check_choice("arch", self.arch, ARCHS)
        check_choice("input_norm", self.input_norm, INPUT_NORMS)
        check_choice("schedule", self.schedule, SCHEDULES)
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1); got {self.label_smoothing!r}.")

    @classmethod
    def parse(cls, text: str) -> Recipe:
        """The inverse of :meth:`describe`: ``"input_norm=bn_channel, conv_bn, label_smoothing=0.1"``."""
        fields = {k: type(v) for k, v in asdict(cls()).items()}
        values: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            if item == "seed":
                continue
            key, _, value = item.partition("=")
            key = key.strip()
            if key not in fields:
                raise ValueError(f"Unknown recipe field {key!r}. Valid fields: {', '.join(fields)}.")
            values[key] = _field_value(key, fields[key], value.strip())
        return cls(**values)

    def describe(self) -> str:
        """What differs from the seed recipe, e.g. ``"input_norm=bn_channel, augment"``."""
        changed = [(k, v) for k, v in asdict(self).items() if v != getattr(SEED_RECIPE, k)]
        return ", ".join(k if v is True else f"{k}={v}" for k, v in changed) or "seed"


SEED_RECIPE = Recipe()


def _field_value(key: str, kind: type, text: str) -> Any:
    """A recipe field's value from its text: booleans only as ``true``/``false`` (or the bare name)."""
    if kind is not bool:
        return kind(text)
    if text.lower() not in ("", "true", "false"):
        raise ValueError(f"Recipe field {key!r} is true or false; got {text!r}.")
    return text.lower() != "false"


#: (what the step tries, the fields it changes on the best recipe so far), in the order tried.
LADDER: tuple[tuple[str, dict[str, Any]], ...] = (
    ("seed recipe (BatchNormalization over the image width)", {}),
    ("input BatchNormalization over the channel", {"input_norm": "bn_channel"}),
    ("BatchNormalization after each convolution", {"conv_bn": True}),
    ("pixels divided by 255 instead of an input BatchNormalization", {"input_norm": "rescale"}),
    ("data augmentation (shifts, rotations, flips for clothes)", {"augment": True}),
    ("label smoothing 0.1", {"label_smoothing": 0.1}),
    ("one-cycle learning rate (1-epoch warm-up to 2e-3, cosine decay)", {"schedule": "one_cycle"}),
)

#: The one step that leaves the seed's network: a VGG-style body, with the schedule it needs.
VGG: dict[str, Any] = {"arch": "vgg", "conv_bn": True, "schedule": "one_cycle"}

#: The second stage, at ``long_epochs``: lighter augmentations, one at a time, on the best recipe so far.
#: Its first step retrains that recipe for longer and becomes the reference the others must beat.
LONG_LADDER: tuple[tuple[str, dict[str, Any]], ...] = (
    ("the best recipe so far, trained longer (the new reference)", {}),
    ("horizontal flips (clothes only)", {"flip": True}),
    ("small shifts (up to 2 pixels)", {"shift": True}),
    ("random erasing (clothes only)", {"erase": True}),
    ("a VGG-style network, with the one-cycle schedule", VGG),  # vgg_body: 3x3 convolutions, BN, dropout
    ("the VGG-style network with small shifts", {**VGG, "shift": True}),
    ("the VGG-style network with random erasing (clothes only)", {**VGG, "erase": True}),
)


#: The third stage, at ``longer_epochs``, run only where the long stage beat the screening stage: the best
#: recipe trained longer still (the new reference), then random erasing, which hides part of every other image.
LONGER_LADDER: tuple[tuple[str, dict[str, Any]], ...] = (
    ("the best recipe so far, trained longer still (the new reference)", {}),
    ("random erasing (clothes only)", {"erase": True}),
)


def suits(changes: dict[str, Any], dataset: str) -> bool:
    """Whether a ladder step keeps the classes of ``dataset`` (no flips or erasing for digits)."""
    return all(safe[dataset] for field, (safe, _) in CLASS_CHANGING.items() if changes.get(field))


def build_recipe_model(recipe: Recipe, dataset: str, precision: str = "float32", seed: int = 0):
    """The (uncompiled) model of ``recipe``; flips and erasing only for datasets in :data:`FLIP_SAFE` and
    :data:`ERASE_SAFE` (the seed-style ``augment`` then leaves flips out, a recipe that asks for them fails)."""
    for field, (safe, why) in CLASS_CHANGING.items():
        if getattr(recipe, field) and not safe[dataset]:
            raise ValueError(
                f"Recipe field {field!r} does not suit {dataset}: {why}. "
                f"It suits: {', '.join(n for n, ok in safe.items() if ok)}."
            )
    augmentation = augmentation_layers(
        shifts_and_rotations=recipe.augment,
        small_shifts=recipe.shift,
        flip=recipe.flip or (recipe.augment and FLIP_SAFE[dataset]),
        erase=recipe.erase,
        seed=seed,
    )
    return build_cnn(
        input_norm=recipe.input_norm,
        conv_bn=recipe.conv_bn,
        augmentation=augmentation,
        precision=precision,
        name=f"cnn_{dataset}",
        arch=recipe.arch,
        pool_first=recipe.pool_first,
    )


def recipe_optimizer(recipe: Recipe, steps_per_epoch: int, epochs: int):
    """Adam on the recipe's learning-rate schedule."""
    if recipe.schedule == "seed":
        return seed_optimizer()
    return keras.optimizers.Adam(one_cycle_schedule(steps_per_epoch, epochs, ONE_CYCLE_PEAK_LR))


def run_trial(
    recipe: Recipe,
    dataset: str,
    train_data,
    val_data,
    *,
    output_dir: str | os.PathLike,
    epochs: int,
    batch_size: int = SEED_BATCH_SIZE,
    seed: int = 0,
    precision: str = "float32",
    progress: str = "auto",
    data_info: DataInfo | None = None,
):
    """Train ``recipe`` (validation only, no test set) into ``output_dir``; returns ``(metrics, model)``.
    The folder follows :func:`fmnist_utils.runs.open_run`: the same finished trial is reused, another
    configuration refused."""
    precision = resolve_precision(precision)
    set_seed(seed)
    model = build_recipe_model(recipe, dataset, precision=precision, seed=seed)
    steps = steps_per_epoch(len(train_data[0]), batch_size)
    compile_seed_model(model, recipe_optimizer(recipe, steps, epochs), recipe_loss(recipe.label_smoothing))
    result = train(
        model,
        train_data,
        val_data,
        output_dir=output_dir,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
        data_info=data_info,
        extra={"recipe": asdict(recipe), "precision": precision},
    )
    return result.metrics, result.model


@dataclass
class LadderResult:
    """What :func:`run_ladder` found for one dataset."""

    table: Any  # pandas DataFrame, one row per step
    best_recipe: Recipe
    best_model: Any
    best_metrics: dict[str, Any]
    best_dir: Path  # the winning trial's folder (history, metrics, model); its row is ``chosen`` in the table
    trial_dirs: list[Path]  # every step's folder, in table order

    @property
    def chosen_step(self) -> int:
        """The winning trial's step number (its row is ``chosen`` in the table)."""
        return int(self.table.index[self.table["chosen"]][0])


def _table_row(
    step: int,
    stage: str,
    label: str,
    recipe: Recipe,
    metrics: dict[str, Any],
    gain: float | None,
    kept: bool,
    seed: int,
) -> dict[str, Any]:
    """One row of the ablation table: the trial's recipe, validation accuracy, gain, seed and cost (snake_case
    keys; :func:`for_display` gives them their labels)."""
    return {
        "step": step,
        "stage": stage,
        "change": label,
        "recipe": recipe.describe(),
        "val_accuracy": metrics["final_val_accuracy"],
        "gain_pp": gain,
        "kept": kept,
        "epochs": metrics["epochs_completed"],
        "seed": seed,
        "minutes": metrics["total_seconds"] / 60,
        "seconds_per_epoch": metrics["mean_epoch_seconds"],
    }


def check_stage_epochs(long_epochs: Any, longer_epochs: Any) -> tuple[int, int]:
    """The second and third stages' epochs as ints; a third stage needs a second, and a longer budget."""
    long_epochs = check_int("long_epochs", long_epochs, minimum=0)
    longer_epochs = check_int("longer_epochs", longer_epochs, minimum=0)
    if longer_epochs and not 0 < long_epochs < longer_epochs:
        raise ValueError(
            f"Parameter 'longer_epochs' must be 0 (no third stage) or more than 'long_epochs' "
            f"({long_epochs}, which must not be 0); got {longer_epochs!r}."
        )
    return long_epochs, longer_epochs


def _best_stage_winner(winners: list[tuple]) -> tuple:
    """The stage winner with the highest validation accuracy; a tie keeps the earlier (shorter) stage's."""
    return max(winners, key=lambda winner: winner[1]["final_val_accuracy"])


def run_ladder(
    dataset: str,
    train_data,
    val_data,
    *,
    output_dir: str | os.PathLike,
    epochs: int,
    long_epochs: int = 0,
    longer_epochs: int = 0,
    batch_size: int = SEED_BATCH_SIZE,
    seed: int = 0,
    precision: str = "float32",
    progress: str = "auto",
    data_info: DataInfo | None = None,
    ladder=LADDER,
    long_ladder=LONG_LADDER,
    longer_ladder=LONGER_LADDER,
    winner_seeds: int = 0,
) -> LadderResult:
    """Greedy forward selection over ``ladder`` at ``epochs``, then (if ``long_epochs``) over the steps of
    ``long_ladder`` that suit ``dataset`` at ``long_epochs``, then (if ``longer_epochs`` and the long stage
    won) over those of ``longer_ladder`` at ``longer_epochs``, on the validation split, then the winner's
    recipe with ``winner_seeds`` other seeds (module docstring)."""
    winner_seeds = check_int("winner_seeds", winner_seeds, minimum=0)
    long_epochs, longer_epochs = check_stage_epochs(long_epochs, longer_epochs)
    out = Path(output_dir)
    trial = dict(
        dataset=dataset,
        train_data=train_data,
        val_data=val_data,
        batch_size=batch_size,
        precision=precision,
        progress=progress,
        data_info=data_info,
    )
    stages = [("screening", epochs, ladder)]
    for stage, stage_epochs, stage_ladder in (
        ("long", long_epochs, long_ladder),
        ("longer", longer_epochs, longer_ladder),
    ):
        if stage_epochs:
            stages.append((stage, stage_epochs, [step for step in stage_ladder if suits(step[1], dataset)]))
    best: tuple[Recipe, dict, Any, Path] | None = None  # the best trial of the current stage so far
    rows, folders, winners = [], [], []
    for stage, stage_epochs, steps in stages:
        if len(winners) >= 2 and _best_stage_winner(winners) is not winners[-1]:
            print(
                f"--- {stage} stage ({stage_epochs} epochs) skipped: on validation, "
                f"{winners[-1][1]['epochs_completed']} "
                f"epochs did not beat {winners[-2][1]['epochs_completed']}, so a still longer budget is not tried"
            )
            break
        tried: dict[Recipe, int] = {}  # the recipes this stage has trained, and their steps
        for j, (label, changes) in enumerate(steps):
            i = len(rows)
            recipe = replace(best[0] if best else SEED_RECIPE, **changes)
            if recipe in tried:  # e.g. shifts on the new network when the best recipe has them already
                print(
                    f"--- skipped ({stage}): {label} -> [{recipe.describe()}] is step {tried[recipe]}'s recipe"
                )
                continue
            tried[recipe] = i
            print(f"--- step {i} ({stage}, {stage_epochs} epochs): {label} -> [{recipe.describe()}]")
            folder = out / f"step{i}"
            folders.append(folder)
            metrics, model = run_trial(recipe, output_dir=folder, epochs=stage_epochs, seed=seed, **trial)
            val = metrics["final_val_accuracy"]
            reference = j == 0  # a stage's first step sets the reference for its budget
            gain = None if reference else 100 * (val - best[1]["final_val_accuracy"])
            kept = reference or val > best[1]["final_val_accuracy"]
            if kept:
                best = (recipe, metrics, model, folder)
            print(
                f"    validation accuracy {val:.4f}"
                + ("" if gain is None else f" ({gain:+.2f} pp)")
                + (" -> reference" if reference else " -> kept" if kept else " -> dropped")
            )
            rows.append(_table_row(i, stage, label, recipe, metrics, gain, kept, seed))
        winners.append(best)
    winner = _best_stage_winner(winners)
    recipe, epochs_won = winner[0], winner[1]["epochs_completed"]
    for other_seed in range(seed + 1, seed + 1 + winner_seeds):  # the winner again: ensemble candidates only
        i = len(rows)
        print(
            f"--- step {i} (seeds, {epochs_won} epochs): the chosen recipe with seed {other_seed} "
            f"-> [{recipe.describe()}]"
        )
        folder = out / f"step{i}"
        folders.append(folder)
        metrics, _ = run_trial(recipe, output_dir=folder, epochs=epochs_won, seed=other_seed, **trial)
        val, gain = (
            metrics["final_val_accuracy"],
            100 * (metrics["final_val_accuracy"] - winner[1]["final_val_accuracy"]),
        )
        print(f"    validation accuracy {val:.4f} ({gain:+.2f} pp against the same recipe with seed {seed})")
        rows.append(
            _table_row(
                i,
                "seeds",
                f"the chosen recipe again, seed {other_seed}",
                recipe,
                metrics,
                gain,
                False,
                other_seed,
            )
        )
    table = pd.DataFrame(rows).set_index("step")
    table["chosen"] = [folder == winner[3] for folder in folders]
    table.to_csv(out / "ablation.csv")
    return LadderResult(table, winner[0], winner[2], winner[1], winner[3], folders)


def ladder_from_summary(row: dict[str, Any], folder: str | os.PathLike | None = None) -> LadderResult:
    """A finished ladder as ``summary.json`` recorded it (one dataset's ``row``): its table, winner and,
    given ``folder``, trial folders ``folder/step<K>`` (to predict with trials retrained there); no models."""
    table = pd.DataFrame(row["ablation"]).set_index("step")
    chosen = int(table.index[table["chosen"]][0])
    folder = Path(folder) if folder is not None else None
    return LadderResult(
        table,
        Recipe(**row["best_recipe"]),
        None,
        {
            "final_val_accuracy": float(table.loc[chosen, "val_accuracy"]),
            "epochs_completed": int(table.loc[chosen, "epochs"]),
        },
        folder / f"step{chosen}" if folder else None,
        [folder / f"step{step}" for step in table.index] if folder else [],
    )


def seed_spread_pp(table: Any) -> float | None:
    """The range (max - min, in points) of the chosen recipe's validation accuracy over its seeds (the chosen
    trial and the ``seeds`` stage), or None without a seeds stage."""
    same_recipe = table.loc[(table["stage"] == "seeds") | table["chosen"], "val_accuracy"]
    return float(100 * (same_recipe.max() - same_recipe.min())) if len(same_recipe) > 1 else None


def gains_against_spread(table: Any) -> Any:
    """Every kept change with a gain beside the seed-to-seed spread: greedy selection keeps any gain, this
    says which gains are larger than what another seed alone moves (a DataFrame, snake_case columns)."""
    spread = seed_spread_pp(table)
    kept = table[table["kept"] & table["gain_pp"].notna()]
    out = kept[["stage", "change", "recipe", "gain_pp"]].copy()
    out["seed_spread_pp"] = spread
    out["larger_than_spread"] = None if spread is None else out["gain_pp"] > spread
    return out


def choose_test_time_flips(model, dataset: str, x_val: np.ndarray, y_val: np.ndarray) -> dict[str, Any]:
    """Whether to average each prediction with the mirrored image's, decided on validation like every
    other step: ``{"used": bool, "val_accuracy": plain, "val_accuracy_with_flips": averaged or None}``.
    Digits are never mirrored (:data:`FLIP_SAFE`)."""
    y_val = np.asarray(y_val)
    if not FLIP_SAFE[dataset]:
        plain = float(np.mean(predict_proba(model, x_val).argmax(1) == y_val))
        return {"used": False, "val_accuracy": plain, "val_accuracy_with_flips": None}
    plain, flipped = (float(np.mean(p.argmax(1) == y_val)) for p in predict_with_flips(model, x_val))
    return {"used": flipped > plain, "val_accuracy": plain, "val_accuracy_with_flips": flipped}


def trained_on_mirrors(recipe: Recipe, dataset: str) -> bool:
    """Whether a model of ``recipe`` saw mirrored images in training (flips, or ``augment`` on clothes)."""
    return FLIP_SAFE[dataset] and (recipe.flip or recipe.augment)


def _ensemble_inputs(
    result: LadderResult, dataset: str, test_time_flips: bool
) -> dict[int, tuple[Path, bool]]:
    """Each trial's folder and whether it predicts with test-time flips: the winner as chosen on validation,
    any other trial only if flips were chosen and it saw mirrored images in training."""
    return {
        int(step): (
            folder,
            test_time_flips
            and (int(step) == result.chosen_step or trained_on_mirrors(Recipe.parse(recipe), dataset)),
        )
        for step, recipe, folder in zip(result.table.index, result.table["recipe"], result.trial_dirs)
    }


def _trial_probabilities(folder: Path, x: np.ndarray, flips: bool) -> np.ndarray:
    model = keras.saving.load_model(folder / "model.keras")
    return predict_with_flips(model, x)[1] if flips else predict_proba(model, x)


def choose_ensemble(
    result: LadderResult, dataset: str, x_val: np.ndarray, y_val: np.ndarray, test_time_flips: bool = False
) -> dict[str, Any]:
    """Greedy ensemble selection (Caruana et al., 2004) over the ladder's trials, on validation like every
    other choice: start from the winner, add the trial whose averaged probabilities raise the validation
    accuracy most, stop when none raises it. Costs no training, only predictions of models already there.
    Returns ``{"used": more than the winner, "members": steps in the order added, "val_accuracy": of the
    average, "path": validation accuracy after each addition, "test_time_flips": steps that predict with flips}``."""
    y_val = np.asarray(y_val)
    inputs = _ensemble_inputs(result, dataset, test_time_flips)
    probabilities = {
        step: _trial_probabilities(folder, x_val, flips) for step, (folder, flips) in inputs.items()
    }

    def accuracy(members: list[int]) -> float:
        return float(np.mean(np.mean([probabilities[m] for m in members], axis=0).argmax(1) == y_val))

    members = [result.chosen_step]
    path = [accuracy(members)]
    while len(members) < len(probabilities):
        score, step = max((accuracy(members + [s]), -s) for s in probabilities if s not in members)
        if score <= path[-1]:
            break
        members.append(-step)
        path.append(score)
    return {
        "used": len(members) > 1,
        "members": members,
        "val_accuracy": path[-1],
        "path": path,
        "test_time_flips": [m for m in members if inputs[m][1]],
    }


def ensemble_proba(
    result: LadderResult, members: list[int], dataset: str, x: np.ndarray, test_time_flips: bool = False
) -> np.ndarray:
    """The mean class probabilities of the trials ``members`` (steps), each predicting as in
    :func:`choose_ensemble`."""
    inputs = _ensemble_inputs(result, dataset, test_time_flips)
    return np.mean([_trial_probabilities(inputs[m][0], x, inputs[m][1]) for m in members], axis=0)


def trial_test_accuracies(result: LadderResult, x_test: np.ndarray, y_test: np.ndarray) -> Any:
    """Each trial's test accuracy, in table order (a pandas Series), for the record once the choice is
    made: it shows each change's effect on unseen images, and must never feed back into the choice."""
    accuracy = [
        float(np.mean(_trial_probabilities(folder, x_test, flips=False).argmax(1) == np.asarray(y_test)))
        for folder in result.trial_dirs
    ]
    return pd.Series(accuracy, index=result.table.index, name="test_accuracy")


def penultimate_features(model, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """What the classifier sees for images (N, 28, 28): the input of the final ``probabilities`` layer (the
    last hidden layer's activations: 64 for the seed's network, 256 for the VGG-style one). Called eagerly,
    batch by batch: a new sub-model's ``predict`` would compile (and warn about retracing) for a few batches."""
    extractor = keras.Model(model.inputs, model.get_layer("probabilities").input)
    x = np.asarray(x, dtype="float32")[..., np.newaxis]
    return np.concatenate(
        [
            keras.ops.convert_to_numpy(extractor([x[i : i + batch_size]], training=False)).astype("float32")
            for i in range(0, len(x), batch_size)
        ]
    )


#: The labels readers see for the snake_case keys of the ablation table (:func:`_table_row`, ``ablation.csv``)
#: and of :func:`summarize`'s rows (``summary.json``): data keys stay plain, tables rename for display. Keys
#: not here keep their name (``val_accuracy``, ``kept``, a trial's ``test_accuracy``, ``target``, ...).
DISPLAY_LABELS = {
    # the ablation table
    "change": "change tried",
    "gain_pp": "gain over best so far (pp)",
    "seed_spread_pp": "range over the winner's random seeds (pp)",
    "larger_than_spread": "larger than the spread",
    "seconds_per_epoch": "s / epoch",
    # summarize's rows
    "best_recipe_text": "best recipe (chosen on validation)",
    "val_accuracy_seed_recipe": "val accuracy: the seed's network (the ladder's first step)",
    "val_accuracy_best_recipe": "val accuracy: best recipe",
    "test_accuracy_best_recipe": "test accuracy: best recipe (measured once)",
    "seed_2017_test_accuracy": "seed 2017 test accuracy",
    "target_met": "target met",
    "epochs_per_trial": "epochs per trial",
    "ladder_minutes": "ladder minutes",
}


def for_display(table: Any) -> Any:
    """A copy of ``table`` (a DataFrame with snake_case columns) with the labels of :data:`DISPLAY_LABELS`."""
    return table.rename(columns=DISPLAY_LABELS)


def record_predictor_test(
    best_dir: Path, evaluation: Any, test_time_flips: bool, members: list[int], test_data: tuple
) -> dict[str, Any]:
    """Record in the winner's folder the test result of the predictor chosen on validation (the winner, with
    test-time flips and ensemble members if chosen), under the predictor's name, never as the trial's own."""
    return update_metrics(
        best_dir,
        {
            "predictor": {"test_time_flips": test_time_flips, "ensemble_members": members},
            "predictor_test_accuracy": evaluation.accuracy,
            "predictor_evaluation": evaluation.to_dict(),
        },
        test_data=test_data,
    )


def write_summary(path: Path, settings: dict[str, Any], datasets: dict[str, Any]) -> dict[str, Any]:
    """Write ``summary.json``: ``settings`` and these ``datasets``' rows, keeping the other datasets' rows of
    an earlier ladder of the same settings (a ladder run one dataset at a time); a summary of other settings
    is refused and kept."""
    merged = dict(datasets)
    if path.is_file():
        earlier = json.loads(path.read_text())
        changed = differences({k: v for k, v in earlier.items() if k != "datasets"}, settings)
        if changed:
            raise ValueError(
                f"{path} holds a ladder of other settings; it is kept:\n  "
                + "\n  ".join(changed)
                + "\nGive this ladder another output folder, or move the earlier one away."
            )
        merged = earlier["datasets"] | datasets
    summary = {**settings, "datasets": {name: merged[name] for name in sorted(merged, key=DATASETS.index)}}
    write_json(path, summary)
    return summary


def summarize(
    results: dict[str, LadderResult],
    test_accuracy: dict[str, float],
    is_sample: dict[str, bool],
    test_time_flips: dict[str, dict[str, Any]] | None = None,
    ensembles: dict[str, dict[str, Any]] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """One row per dataset (seed recipe vs best recipe, the test accuracy measured once, the seed's 2017
    number and the target) as a DataFrame with the labels of :data:`DISPLAY_LABELS`, and the same as a
    JSON-ready dict for ``summary.json``, with snake_case keys.
    ``test_time_flips`` and ``ensembles``: :func:`choose_test_time_flips`'s and :func:`choose_ensemble`'s
    answers per dataset, if they were asked; ``test_accuracy`` is that of what they chose."""

    rows, summary = [], {}
    for name, result in results.items():
        table, flips = result.table, (test_time_flips or {}).get(name, {"used": False})
        ensemble = (ensembles or {}).get(name, {"used": False})
        val = (
            ensemble["val_accuracy"]
            if ensemble["used"]
            else flips["val_accuracy_with_flips"]
            if flips["used"]
            else result.best_metrics["final_val_accuracy"]
        )
        row = {
            "dataset": DISPLAY_NAMES[name],
            "best_recipe_text": result.best_recipe.describe()
            + (" + test-time flips" if flips["used"] else "")
            + (
                f" + ensemble of steps {', '.join(map(str, ensemble['members']))}" if ensemble["used"] else ""
            ),
            "val_accuracy_seed_recipe": float(table["val_accuracy"].iloc[0]),
            "val_accuracy_best_recipe": float(val),
            "test_accuracy_best_recipe": float(test_accuracy[name]),
            "seed_2017_test_accuracy": SEED_RESULTS[name],
            "target": BEYOND_TARGETS[name],
            "target_met": bool(test_accuracy[name] >= BEYOND_TARGETS[name]) and not is_sample[name],
            "epochs_per_trial": " then ".join(str(e) for e in dict.fromkeys(table["epochs"].astype(int))),
            "ladder_minutes": float(table["minutes"].sum()),
        }
        rows.append(row)
        summary[name] = {
            **row,
            "best_recipe": asdict(result.best_recipe),
            "is_sample": is_sample[name],
            "test_time_flips": flips,
            "ensemble": ensemble,
            "ablation": table.reset_index().to_dict(orient="records"),
        }
    return summary_table(rows), summary


#: The columns of :func:`summary_table`, in order (the keys of :func:`summarize`'s rows).
SUMMARY_COLUMNS = (
    "dataset",
    "best_recipe_text",
    "val_accuracy_seed_recipe",
    "val_accuracy_best_recipe",
    "test_accuracy_best_recipe",
    "seed_2017_test_accuracy",
    "epochs_per_trial",
    "ladder_minutes",
)


def summary_table(rows: Any) -> Any:
    """One row per dataset, labelled for readers: :func:`summarize`'s rows or ``summary.json``'s datasets."""
    table = pd.DataFrame([{key: row[key] for key in SUMMARY_COLUMNS} for row in rows]).set_index("dataset")
    return for_display(table)


def predict_with_flips(model, x: np.ndarray, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Both predictions test-time flips are chosen between, each image predicted once: the plain
    probabilities and their mean with the mirror image's."""
    x = as_images(x)
    plain = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype="float32")
    mirrored = np.asarray(model.predict(x[:, :, ::-1], batch_size=batch_size, verbose=0), dtype="float32")
    return plain, (plain + mirrored) / 2
