"""Shared fixtures: the sample split, a simulated kill, an isolated data environment, the full data when present,
a local HTTP mirror."""

from __future__ import annotations

import http.server
import os
import threading
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import keras  # noqa: E402
import pytest  # noqa: E402

from fmnist_utils import data  # noqa: E402


def _full_data_root() -> Path | None:
    root = os.environ.get(data.ENV_DATA_DIR)
    if not root:
        return None
    root = Path(root)
    ok = all(
        (root / folder / f).is_file() for folder in data.FOLDERS.values() for f in data.IDX_FILES.values()
    )
    return root if ok else None


#: The files that run for many minutes (notebook series, ladders, benchmarks), roughly the longest first:
#: collected before the rest so that ``-n 2 --dist loadfile --no-loadscope-reorder`` (README's test command)
#: starts the two longest at once on the two workers and the short files fill the gaps at the end.
LONG_FILES = (
    "test_beyond.py",
    "test_notebooks_alone.py",
    "test_notebooks.py",
    "test_benchmark.py",
    "test_speed.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the tests of :data:`LONG_FILES` to the front, in that order; the rest keep theirs."""
    items.sort(
        key=lambda item: LONG_FILES.index(item.path.name) if item.path.name in LONG_FILES else len(LONG_FILES)
    )


FULL_DATA_ROOT = _full_data_root()
needs_full_data = pytest.mark.skipif(
    FULL_DATA_ROOT is None,
    reason=f"full datasets not available: set {data.ENV_DATA_DIR} to a folder with mnist/ and fashion-mnist/",
)


@pytest.fixture
def full_data_root() -> Path:
    if FULL_DATA_ROOT is None:
        pytest.skip(f"full datasets not available: set {data.ENV_DATA_DIR}")
    return FULL_DATA_ROOT


@pytest.fixture
def isolated(monkeypatch, tmp_path) -> Path:
    """No named folder, an empty cache, no Keras cache, no Debian folder, a mirror that refuses."""
    monkeypatch.delenv(data.ENV_DATA_DIR, raising=False)
    monkeypatch.setenv(data.ENV_CACHE_DIR, str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "debian" / "fashion-mnist")
    monkeypatch.setenv(data.ENV_MIRROR, "http://127.0.0.1:9/")  # discard port: connection refused at once
    return tmp_path


class _Mirror(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, bytes, int | None]] = {}

    def do_GET(self):  # noqa: N802 (http.server API)
        status, body, announced = self.routes.get(self.path, (404, b"not found", None))
        self.send_response(status)
        self.send_header("Content-Length", str(announced if announced is not None else len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def mirror(monkeypatch):
    """A local HTTP server on 127.0.0.1; ``mirror.serve(name, body, status=200, announce=None)``."""
    routes: dict[str, tuple[int, bytes, int | None]] = {}
    handler = type("Handler", (_Mirror,), {"routes": routes})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    class Mirror:
        url = f"http://127.0.0.1:{server.server_address[1]}/"

        @staticmethod
        def serve(name: str, body: bytes, status: int = 200, announce: int | None = None) -> None:
            routes["/" + name] = (status, body, announce)

    monkeypatch.setenv(data.ENV_MIRROR, Mirror.url)
    yield Mirror
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def fashion_sample():
    """The bundled Fashion-MNIST sample split the seed's way: ``(train, val, test, info)``."""
    ((x, y), test), info = data.load_dataset(
        "fashion_mnist", source="sample", verbose=False, return_info=True
    )
    train, val = data.train_val_split(x, y, dataset="fashion_mnist")
    return train, val, test, info


@pytest.fixture(scope="session")
def small_split(fashion_sample):
    """256 training and 128 validation images of the sample: a run of a few epochs takes seconds."""
    (x, y), (x_val, y_val), _, _ = fashion_sample
    return (x[:256], y[:256]), (x_val[:128], y_val[:128])


class Kill(keras.callbacks.Callback):
    """Raises KeyboardInterrupt as epoch ``at`` begins, as if the kernel died after epoch ``at - 1``."""

    changes_training = False  # a kill from outside: the run it stops is the same run

    def __init__(self, at: int):
        super().__init__()
        self.at = at

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt(f"simulated kill before epoch {epoch}")


@pytest.fixture
def kill():
    """``kill(at)``: a callback that kills a run as epoch ``at`` begins."""
    return Kill
