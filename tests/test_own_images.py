"""Notebook 07: a folder of a user's images, checked, loaded, trained on from scratch and from 03's models."""

from __future__ import annotations

import keras
import nbformat
import numpy as np
import pandas as pd
import papermill as pm
import pytest
from PIL import Image

from fmnist_utils.models import build_seed_model, layer_spec
from fmnist_utils.params import project_root

NOTEBOOK = project_root() / "notebooks" / "07_your_own_images.ipynb"


def _cells(*needles: str) -> dict:
    """The names defined by 07's reusable cells that contain ``needles``, run in one namespace."""
    cells = nbformat.read(NOTEBOOK, as_version=4).cells
    namespace: dict = {}
    for needle in needles:
        [cell] = [c for c in cells if "reusable" in c.metadata.get("tags", []) and needle in c.source]
        exec(compile(cell.source, NOTEBOOK.name, "exec"), namespace)
    return namespace


def _image_folder(root, classes: dict[str, int], size=(40, 30), channels: int = 3, suffix=".jpg"):
    """``root`` with one subfolder per class holding that many random images of ``size``."""
    rng = np.random.default_rng(0)
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8).squeeze()
            Image.fromarray(pixels).save(root / name / f"{i:03d}{suffix}")
    return root


@pytest.fixture
def check():
    return _cells("def check_image_folder")["check_image_folder"]


def test_a_good_folder_is_counted_and_stray_files_are_skipped(tmp_path, check, capsys):
    folder = _image_folder(tmp_path / "pets", {"cat": 10, "dog": 12})
    (folder / "cat" / "notes.txt").write_text("not an image")
    (folder / "dog" / "labels.csv").write_text("a,b")
    assert check(folder) == {"cat": 10, "dog": 12}
    assert "Skipped 2 files that are not .png/.jpg/.jpeg/.bmp images (.csv, .txt)" in capsys.readouterr().out


def test_a_gif_is_refused_before_keras_lists_it_and_fails_in_grayscale(tmp_path, check):
    folder = _image_folder(tmp_path / "pets", {"cat": 10, "dog": 12})
    (folder / "dog" / "clip.gif").write_bytes(b"GIF89a")
    with pytest.raises(
        ValueError, match=r"holds GIF files.*\(1: dog/clip.gif\): convert them to PNG or remove"
    ):
        check(folder)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda root: root / "missing", "does not exist"),
        (lambda root: root, "needs one subfolder per class, at least two; found none"),
        (lambda root: _image_folder(root, {"cat": 12}), "at least two; found only 'cat'"),
        (lambda root: _image_folder(root, {"cat": 12, "dog": 0}), "class 'dog' has 0 readable images"),
        (lambda root: _image_folder(root, {"cat": 12, "dog": 9}), "class 'dog' has 9 readable images"),
        (lambda root: _image_folder(root, {"train": 12, "test": 12}), "holds splits, not classes"),
    ],
)
def test_a_folder_that_cannot_be_trained_on_is_named_with_its_problem(tmp_path, check, make, message):
    folder = make(tmp_path)
    with pytest.raises((ValueError, FileNotFoundError), match=message) as error:
        check(folder)
    assert str(folder) in str(error.value), "the error names the folder"


def test_damaged_images_are_named(tmp_path, check):
    folder = _image_folder(tmp_path / "pets", {"cat": 12, "dog": 12})
    (folder / "dog" / "broken.png").write_bytes(b"not a png at all")
    (folder / "cat" / "._000.jpg").write_bytes(b"\x00\x05\x16\x07")  # macOS metadata beside a copied photo
    truncated = (folder / "cat" / "001.jpg").read_bytes()
    (folder / "cat" / "001.jpg").write_bytes(truncated[: len(truncated) // 2])
    with pytest.raises(
        ValueError, match=r"3 files are not readable images \(cat/._000.jpg, cat/001.jpg, dog/broken"
    ):
        check(folder)


def test_the_loader_resizes_to_grayscale_and_splits_stratified(tmp_path):
    cells = _cells("def load_image_folder")
    folder = _image_folder(tmp_path / "pets", {"cat": 20, "dog": 20, "eel": 20}, size=(40, 30))
    x, y, names = cells["load_image_folder"](folder, image_size=28)
    assert x.shape == (60, 28, 28, 1) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 255
    assert names == ["cat", "dog", "eel"] and np.bincount(y).tolist() == [20, 20, 20]
    parts = cells["split"](x, y, seed=0)
    assert [len(part[1]) for part in parts] == [42, 9, 9]
    assert all(np.bincount(part[1]).tolist() == [n // 3] * 3 for part, n in zip(parts, (42, 9, 9)))
    again = cells["split"](x, y, seed=0)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(parts, again)), "the same seed, the same split"


def test_notebook_07_network_is_the_seed_network_with_its_own_classes():
    build = _cells("def build_seed_cnn")["build_seed_cnn"]
    assert layer_spec(build(10)).equals(layer_spec(build_seed_model()))
    five = layer_spec(build(5))
    assert five.iloc[:-1].equals(layer_spec(build_seed_model()).iloc[:-1])
    assert build(5).output_shape == (None, 5)


def test_input_statistics_normalise_each_pixel_column_of_the_training_images():
    cells = _cells("def build_seed_cnn")
    rng = np.random.default_rng(0)
    images = rng.normal(100.0, 1.0, (50, 28, 28, 1)) * np.linspace(1, 40, 28)[None, None, :, None]
    model = cells["set_input_statistics"](cells["build_seed_cnn"](3), images.astype("float32"))
    normalised = keras.ops.convert_to_numpy(model.get_layer("input_bn")(images, training=False))
    np.testing.assert_allclose(normalised.mean(axis=(0, 1, 3)), 0, atol=1e-3)
    np.testing.assert_allclose(normalised.std(axis=(0, 1, 3)), 1, atol=1e-2)
    untouched = keras.ops.convert_to_numpy(
        cells["build_seed_cnn"](3).get_layer("input_bn")(images, training=False)
    )
    assert untouched.mean() > 50, "Keras starts the moving mean at 0: raw pixels pass almost unscaled"


def test_transfer_keeps_the_trained_convolutions_frozen_under_a_new_head():
    trained = build_seed_model()
    model = _cells("def transfer_model")["transfer_model"](trained, 4)
    features = model.layers[0]
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1)).astype("float32")
    flatten = trained.get_layer("flatten")
    expected = keras.Model(trained.inputs[0], flatten.output)(images)
    np.testing.assert_array_equal(features(images), expected)
    assert model.output_shape == (None, 4)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 8192 * 128 + 128 + 128 * 64 + 64 + 64 * 4 + 4, "only the new head learns"


def _run(tmp_path, **parameters):
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(
        str(NOTEBOOK),
        str(out),
        parameters={"output_dir": str(tmp_path / "run"), **parameters},
        progress_bar=False,
        kernel_name="python3",
    )
    return nbformat.read(out, as_version=4)


@pytest.mark.notebooks
def test_notebook_07_trains_on_a_folder_of_colour_jpegs_of_another_size(tmp_path):
    folder = _image_folder(tmp_path / "shapes", {"circle": 12, "square": 12, "star": 12}, size=(40, 30))
    nb = _run(tmp_path, images_dir=str(folder), models_dir=str(tmp_path / "no_models"), epochs=1, shots="2")
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "Found 36 files belonging to 3 classes" in text
    assert "No mnist/model.keras in models_dir: its start is skipped" in text
    assert "No fashion_mnist/model.keras in models_dir" in text
    results = pd.read_csv(tmp_path / "run" / "results.csv")
    assert results[["images per class", "start", "training images"]].values.tolist() == [
        ["2", "from scratch", 6],
        ["2", "frozen random convolutions", 6],  # the control needs no trained model
        ["all", "from scratch", 25],  # 36 images, 11 held out (30 %, rounded up)
    ]
    assert not (tmp_path / "run" / "digits").exists(), "the demo folder is written only when it is used"


@pytest.mark.notebooks
def test_notebook_07_stops_before_training_on_a_folder_of_one_class(tmp_path):
    folder = _image_folder(tmp_path / "cats_only", {"cat": 12})
    with pytest.raises(pm.PapermillExecutionError) as error:
        _run(tmp_path, images_dir=str(folder))
    assert error.value.ename == "ValueError" and "found only 'cat'" in error.value.evalue
    assert str(folder) in error.value.evalue
    assert not (tmp_path / "run" / "results.csv").exists() and not (tmp_path / "run" / "figures").exists()
