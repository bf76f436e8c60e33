"""Cells a reader can copy into a project of their own, and the exercises with their hidden solutions.

A cell tagged ``reusable`` carries its own imports and runs alone in a fresh kernel where ``fmnist_utils``
cannot be imported. A cell tagged ``solution`` is a hidden code cell that answers the markdown cell tagged
``exercise`` above it.
"""

from __future__ import annotations

import re

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from fmnist_utils.params import project_root
from fmnist_utils.protocol import SEED_TOTAL_PARAMS

pytestmark = pytest.mark.notebooks
NOTEBOOK_DIR = project_root() / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
#: Run first in the fresh kernel: as in a project without the package, `import fmnist_utils` (or any of its
#: modules) raises ModuleNotFoundError; the cell leaves no name behind for the reusable cell to lean on.
WITHOUT_FMNIST_UTILS = """\
import sys

sys.modules["fmnist_utils"] = None
del sys
try:
    import fmnist_utils
    raise AssertionError("fmnist_utils is still importable")
except ModuleNotFoundError:
    pass
"""
IMPORT_LINE = re.compile(r"^(import [\w.]+|from [\w.]+ import )", re.MULTILINE)


def _tagged(path, tag: str) -> list[tuple[int, nbformat.NotebookNode]]:
    """The cells of a notebook (of any type) tagged ``tag``, with their positions."""
    cells = nbformat.read(path, as_version=4).cells
    return [(i, c) for i, c in enumerate(cells) if tag in c.metadata.get("tags", [])]


def _reusable_cells() -> list:
    """One case per reusable cell: its notebook and its position there."""
    return [
        pytest.param(path, i, id=f"{path.stem}-cell{i}")
        for path in NOTEBOOKS
        for i, _ in _tagged(path, "reusable")
    ]


def _reusable_sources(name: str) -> str:
    """The reusable cells of notebook ``name``, as one text."""
    return "\n".join(c.source for _, c in _tagged(NOTEBOOK_DIR / name, "reusable"))


def test_every_notebook_has_one_imports_cell():
    for path in NOTEBOOKS:
        assert [c.cell_type for _, c in _tagged(path, "imports")] == ["code"], path.name


def test_reusable_cells_build_the_model_and_optimizer_and_load_the_data():
    import keras

    built: dict = {}
    for _, cell in _tagged(NOTEBOOK_DIR / "02_model_build.ipynb", "reusable"):
        exec(compile(cell.source, "02_model_build.ipynb", "exec"), built)
    models = [v for v in built.values() if isinstance(v, keras.Model)]
    assert [m.count_params() for m in models] == [SEED_TOTAL_PARAMS], (
        "02's reusable cells build the seed model"
    )
    assert [type(v).__name__ for v in built.values() if isinstance(v, keras.optimizers.Optimizer)] == ["Adam"]
    assert re.search(r"\b(load|read)\w*\(", _reusable_sources("01_data_exploration.ipynb")), (
        "no reusable cell of 01 reads the data (calls a load...() or read...() function)"
    )


@pytest.mark.parametrize("path,index", _reusable_cells())
def test_reusable_cell_carries_its_own_imports(path, index):
    cell = nbformat.read(path, as_version=4).cells[index]
    assert cell.cell_type == "code", f"{path.name} cell {index}"
    assert "fmnist_utils" not in cell.source, f"{path.name} cell {index} names fmnist_utils"
    assert IMPORT_LINE.search(cell.source), f"{path.name} cell {index} imports nothing"


@pytest.fixture(scope="module")
def sample_as_keras_files(tmp_path_factory):
    """The bundled samples as the gzipped IDX files Keras' cache and the publishers ship (a user's copy)."""
    import gzip

    from fmnist_utils import data

    root = tmp_path_factory.mktemp("datasets")
    for name, folder in data.FOLDERS.items():
        (x_train, y_train), (x_test, y_test) = data.load_sample(name)
        (root / folder).mkdir()
        for stem, array in (
            ("train-images-idx3", x_train),
            ("train-labels-idx1", y_train),
            ("t10k-images-idx3", x_test),
            ("t10k-labels-idx1", y_test),
        ):
            (root / folder / f"{stem}-ubyte.gz").write_bytes(gzip.compress(data.to_idx(array)))
    return root


#: Run before each reusable cell: the names every earlier cell left are deleted, so that a cell that leaned on
#: another's definitions or imports fails as it would in a project of its own.
FORGET_EARLIER_CELLS = "%reset -f"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if _tagged(p, "reusable")], ids=lambda p: p.stem)
def test_reusable_cells_run_alone_without_fmnist_utils(path, tmp_path, sample_as_keras_files, monkeypatch):
    """Each reusable cell of a notebook in one kernel without the package, every earlier name forgotten first
    (one kernel a notebook instead of one a cell)."""
    monkeypatch.setenv("FMNIST_DATA_DIR", str(sample_as_keras_files))  # the kernel inherits it
    metadata = nbformat.read(path, as_version=4).metadata
    fresh = nbformat.v4.new_notebook(
        metadata=metadata, cells=[nbformat.v4.new_code_cell(WITHOUT_FMNIST_UTILS)]
    )
    client = NotebookClient(
        fresh, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    with client.setup_kernel():
        client.execute_cell(fresh.cells[0], 0)
        for index, cell in _tagged(path, "reusable"):
            for source in (FORGET_EARLIER_CELLS, cell.source):
                fresh.cells.append(nbformat.v4.new_code_cell(source))
                try:
                    client.execute_cell(fresh.cells[-1], len(fresh.cells) - 1)
                except CellExecutionError as error:
                    pytest.fail(
                        f"{path.name} cell {index}, run alone without fmnist_utils:\n{error}", pytrace=False
                    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_solutions_are_hidden_code_cells_after_their_exercise(path):
    cells = nbformat.read(path, as_version=4).cells
    for i, solution in _tagged(path, "solution"):
        assert solution.cell_type == "code", f"{path.name} cell {i}: a solution is a code cell"
        hidden = solution.metadata.get("jupyter", {})
        assert hidden.get("source_hidden") is True and hidden.get("outputs_hidden") is True, (
            f"{path.name} cell {i}: a solution's source and outputs stay collapsed until opened (JupyterLab)"
        )
        assert "hide-cell" in solution.metadata.get("tags", []), (
            f"{path.name} cell {i}: hidden in Jupyter Book too"
        )
        above = [c for c in cells[:i] if c.cell_type == "markdown"]
        assert above and "exercise" in above[-1].metadata.get("tags", []), (
            f"{path.name} cell {i}: the last markdown cell above a solution is its exercise"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_has_three_to_five_exercises(path):
    exercises = [c for _, c in _tagged(path, "exercise")]
    assert {c.cell_type for c in exercises} <= {"markdown"}, f"{path.name}: an exercise is a markdown cell"
    assert 3 <= len(exercises) <= 5, f"{path.name}: {len(exercises)} exercises"
