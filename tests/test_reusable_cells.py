"""Cells tagged ``reusable`` survive being copied: each runs in a fresh kernel after the imports cell alone."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from fmnist_utils.params import project_root

pytestmark = pytest.mark.notebooks
NOTEBOOKS = sorted((project_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _tagged(nb, tag: str) -> list:
    return [c for c in nb.cells if c.cell_type == "code" and tag in c.metadata.get("tags", [])]


def _reusable_cells() -> list:
    cases = []
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(_tagged(nb, "reusable")):
            cases.append(pytest.param(path, i, id=f"{path.stem}-reusable{i}"))
    return cases


def test_every_notebook_has_one_imports_cell():
    for path in NOTEBOOKS:
        assert len(_tagged(nbformat.read(path, as_version=4), "imports")) == 1, path.name


def test_reusable_cells_cover_model_optimizer_data_and_plots():
    sources = "\n".join(c.source for p in NOTEBOOKS for c in _tagged(nbformat.read(p, as_version=4), "reusable"))
    for needle in ("build_seed_model(", "seed_optimizer(", "load_dataset(", "plots."):
        assert needle in sources, f"no reusable cell calls {needle}"


@pytest.mark.parametrize("path,index", _reusable_cells())
def test_reusable_cell_runs_after_the_imports_alone(path, index, tmp_path):
    nb = nbformat.read(path, as_version=4)
    imports, cell = _tagged(nb, "imports")[0], _tagged(nb, "reusable")[index]
    fresh = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(imports.source),
                                            nbformat.v4.new_code_cell(cell.source)])
    fresh.metadata = nb.metadata
    NotebookClient(fresh, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o for c in fresh.cells for o in c.outputs if o.output_type == "error"]
    assert not errors, f"{path.name}: {errors}"
    assert fresh.cells[1].execution_count is not None
