"""Beyond the seed: change one thing at a time, keep what helps on validation, test the winner once.

:data:`LADDER` lists the changes in the order notebook 05 tries them. :func:`run_ladder` trains the
seed recipe, then each step applied to the best recipe so far, and keeps a step only if it raises the
final validation accuracy (greedy forward selection on the validation split). The test set plays no
part in the choice: the caller evaluates the winning model on it once, at the end, and may then score
every trial on it for the record (:func:`trial_test_accuracies`), never to choose.

Each trial is an ordinary :func:`fmnist_utils.training.train` run in its own folder, so a killed
ablation resumes mid-trial, and a finished trial with the same recipe is reused instead of retrained.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from fmnist_utils.data import DataInfo

SCHEDULES = ("seed", "one_cycle")
#: Horizontal flips keep a garment's class; they turn digits into non-digits.
FLIP_SAFE = {"fashion_mnist": True, "mnist": False}
ONE_CYCLE_PEAK_LR = 2e-3


@dataclass(frozen=True)
class Recipe:
    """How a model is built and trained; the defaults are the seed's."""

    input_norm: str = "bn_width"  # "bn_width" (seed), "bn_channel", "rescale" (x / 255, no input BN)
    conv_bn: bool = False  # BatchNormalization after each convolution
    augment: bool = False  # random shifts and rotations (+ horizontal flips where the class survives them)
    flip: bool = False  # horizontal flips only (no shifts or rotations): the lightest augmentation, clothes only
    label_smoothing: float = 0.0
    schedule: str = "seed"  # "seed" (Adam, 1e-3 / (1 + 1e-3 t)) or "one_cycle" (warm-up, then cosine)

    def __post_init__(self):
        from fmnist_utils.models import INPUT_NORMS

        if self.input_norm not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {', '.join(map(repr, INPUT_NORMS))}; got {self.input_norm!r}.")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(map(repr, SCHEDULES))}; got {self.schedule!r}.")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1); got {self.label_smoothing!r}.")

    @classmethod
    def parse(cls, text: str) -> "Recipe":
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
            kind = fields[key]
            if kind is bool:
                values[key] = value.strip().lower() in ("", "true", "1", "yes")
            else:
                values[key] = kind(value.strip())
        return cls(**values)

    def describe(self) -> str:
        """What differs from the seed recipe, e.g. ``"input_norm=bn_channel, augment"``."""
        changed = [(k, v) for k, v in asdict(self).items() if v != getattr(SEED_RECIPE, k)]
        return ", ".join(k if v is True else f"{k}={v}" for k, v in changed) or "seed"


SEED_RECIPE = Recipe()

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


def build_recipe_model(recipe: Recipe, dataset: str, precision: str = "float32", seed: int = 0):
    """The (uncompiled) model of ``recipe``; augmentation flips only datasets in :data:`FLIP_SAFE`."""
    from fmnist_utils.models import augmentation_layers, build_cnn

    if recipe.flip and not FLIP_SAFE[dataset]:
        raise ValueError(f"Recipe field 'flip' does not suit {dataset}: a mirrored digit is no digit. "
                         f"Flips suit: {', '.join(n for n, safe in FLIP_SAFE.items() if safe)}.")
    augmentation = None
    if recipe.augment or recipe.flip:
        augmentation = augmentation_layers(flip=FLIP_SAFE[dataset], seed=seed, shifts_and_rotations=recipe.augment)
    return build_cnn(input_norm=recipe.input_norm, conv_bn=recipe.conv_bn, augmentation=augmentation,
                     precision=precision, name=f"cnn_{dataset}")


def recipe_optimizer(recipe: Recipe, steps_per_epoch: int, epochs: int):
    """Adam on the recipe's learning-rate schedule."""
    import keras

    from fmnist_utils.models import one_cycle_schedule, seed_optimizer

    if recipe.schedule == "seed":
        return seed_optimizer()
    return keras.optimizers.Adam(one_cycle_schedule(steps_per_epoch, epochs, ONE_CYCLE_PEAK_LR))


def _finished_trial(folder: Path, recipe: Recipe, epochs: int, train_size: int, precision: str) -> dict | None:
    """The metrics of a finished trial in ``folder`` with exactly this set-up, else None."""
    path = folder / "metrics.json"
    if not (path.is_file() and (folder / "model.keras").is_file()):
        return None
    metrics = json.loads(path.read_text())
    recorded = {**asdict(SEED_RECIPE), **metrics.get("recipe", {})}  # a field added later had its default
    same = (recorded == asdict(recipe) and metrics.get("epochs_completed") == epochs
            and metrics.get("train_size") == train_size and metrics.get("precision") == precision)
    return metrics if same else None


def run_trial(recipe: Recipe, dataset: str, train_data, val_data, *, output_dir: str | os.PathLike, epochs: int,
              batch_size: int = 256, seed: int = 0, precision: str = "float32", progress: str = "auto",
              data_info: DataInfo | None = None):
    """Train ``recipe`` (validation only, no test set) into ``output_dir``; returns ``(metrics, model)``.
    A finished trial of the same recipe, epochs, data size and precision there is loaded, not retrained."""
    import keras

    from fmnist_utils.models import resolve_precision
    from fmnist_utils.training import set_seed, train

    folder, precision = Path(output_dir), resolve_precision(precision)
    finished = _finished_trial(folder, recipe, epochs, len(train_data[0]), precision)
    if finished is not None:
        print(f"Reusing the finished trial in {folder} ({recipe.describe()})")
        return finished, keras.saving.load_model(folder / "model.keras")
    set_seed(seed)
    model = build_recipe_model(recipe, dataset, precision=precision, seed=seed)
    steps_per_epoch = int(np.ceil(len(train_data[0]) / batch_size))
    result = train(model, train_data, val_data, None, output_dir=folder, epochs=epochs, batch_size=batch_size,
                   seed=seed, optimizer=recipe_optimizer(recipe, steps_per_epoch, epochs), progress=progress,
                   data_info=data_info, label_smoothing=recipe.label_smoothing,
                   extra={"recipe": asdict(recipe), "precision": precision})
    return result.metrics, result.model


@dataclass
class LadderResult:
    """What :func:`run_ladder` found for one dataset."""

    table: Any  # pandas DataFrame, one row per step
    best_recipe: Recipe
    best_model: Any
    best_metrics: dict[str, Any]
    best_dir: Path  # the winning trial's folder (history, metrics, model)
    trial_dirs: list[Path]  # every step's folder, in table order


def run_ladder(dataset: str, train_data, val_data, *, output_dir: str | os.PathLike, epochs: int,
               batch_size: int = 256, seed: int = 0, precision: str = "float32", progress: str = "auto",
               data_info: DataInfo | None = None, ladder=LADDER) -> LadderResult:
    """Greedy forward selection over ``ladder`` on the validation split (see the module docstring)."""
    import pandas as pd

    out = Path(output_dir)
    best: tuple[Recipe, dict, Any, Path] | None = None
    rows, folders = [], []
    for i, (label, changes) in enumerate(ladder):
        recipe = replace(best[0], **changes) if best else replace(SEED_RECIPE, **changes)
        print(f"--- step {i}: {label} -> [{recipe.describe()}]")
        folder = out / f"step{i}"
        folders.append(folder)
        metrics, model = run_trial(recipe, dataset, train_data, val_data, output_dir=folder,
                                   epochs=epochs, batch_size=batch_size, seed=seed, precision=precision,
                                   progress=progress, data_info=data_info)
        val = metrics["final_val_accuracy"]
        gain = None if best is None else 100 * (val - best[1]["final_val_accuracy"])
        kept = best is None or val > best[1]["final_val_accuracy"]
        if kept:
            best = (recipe, metrics, model, folder)
        print(f"    validation accuracy {val:.4f}" + ("" if gain is None else f" ({gain:+.2f} pp)")
              + (" -> kept" if kept else " -> dropped"))
        rows.append({"step": i, "change tried": label, "recipe": recipe.describe(), "val_accuracy": val,
                     "gain over best so far (pp)": gain, "kept": kept, "epochs": metrics["epochs_completed"],
                     "minutes": metrics["total_seconds"] / 60, "s / epoch": metrics["mean_epoch_seconds"]})
    table = pd.DataFrame(rows).set_index("step")
    table.to_csv(out / "ablation.csv")
    return LadderResult(table, best[0], best[2], best[1], best[3], folders)


def trial_test_accuracies(result: LadderResult, x_test: np.ndarray, y_test: np.ndarray) -> Any:
    """Each trial's test accuracy, in table order (a pandas Series), for the record once the choice is
    made: it shows each change's effect on unseen images, and must never feed back into the choice."""
    import keras
    import pandas as pd

    from fmnist_utils.evaluation import predict_proba

    accuracy = [float(np.mean(predict_proba(keras.saving.load_model(folder / "model.keras"), x_test).argmax(1)
                              == np.asarray(y_test))) for folder in result.trial_dirs]
    return pd.Series(accuracy, index=result.table.index, name="test_accuracy")


def penultimate_features(model, x: np.ndarray, layer: str = "fc2", batch_size: int = 1024) -> np.ndarray:
    """The activations of ``layer`` (the 64-unit dense layer before the classifier) for images (N, 28, 28)."""
    import keras

    extractor = keras.Model(model.inputs, model.get_layer(layer).output)
    x = np.asarray(x, dtype="float32")[..., np.newaxis]
    return np.asarray(extractor.predict(x, batch_size=batch_size, verbose=0), dtype="float32")


#: What the best recipe should reach on the full test sets (issue targets; Fashion-MNIST moonshot 0.950).
TARGETS = {"fashion_mnist": 0.940, "mnist": 0.9960}


def summarize(results: dict[str, LadderResult], test_accuracy: dict[str, float],
              is_sample: dict[str, bool]) -> tuple[Any, dict[str, Any]]:
    """One row per dataset (seed recipe vs best recipe, the test accuracy measured once, the seed's 2017
    number and the target) as a DataFrame, and the same as a JSON-ready dict for ``summary.json``."""
    import pandas as pd

    from fmnist_utils.comparison import DATASET_LABELS, SEED_RESULTS

    rows, summary = [], {}
    for name, result in results.items():
        table = result.table
        row = {
            "dataset": DATASET_LABELS[name],
            "best recipe (chosen on validation)": result.best_recipe.describe(),
            "val accuracy: seed recipe": float(table["val_accuracy"].iloc[0]),
            "val accuracy: best recipe": float(result.best_metrics["final_val_accuracy"]),
            "test accuracy: best recipe (measured once)": float(test_accuracy[name]),
            "seed 2017 test accuracy": SEED_RESULTS[name],
            "target": TARGETS[name],
            "target met": bool(test_accuracy[name] >= TARGETS[name]) and not is_sample[name],
            "epochs per trial": int(table["epochs"].iloc[0]),
            "ladder minutes": float(table["minutes"].sum()),
        }
        rows.append(row)
        summary[name] = {**row, "best_recipe": asdict(result.best_recipe), "is_sample": is_sample[name],
                         "ablation": table.reset_index().to_dict(orient="records")}
    return pd.DataFrame(rows).set_index("dataset"), summary
