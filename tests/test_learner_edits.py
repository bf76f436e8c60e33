"""A committed notebook run as a learner runs it: its own cells in order (no papermill, nothing injected), with
only its ``# Parameters`` cell edited. What the learner typed there is what runs."""

from __future__ import annotations

import ast
import contextlib
import json
import re

import nbformat
import pytest
from nbclient import NotebookClient
from notebook_outputs import NOTEBOOKS, errors, printed

from fmnist_utils.params import project_root

pytestmark = pytest.mark.notebooks
COMMITTED = sorted(NOTEBOOKS.glob("**/*.ipynb")) + [
    project_root() / "results" / "seed" / "03_training_mnist.ipynb"
]


def _parameters_cell(nb) -> nbformat.NotebookNode:
    [cell] = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    return cell


def edit_parameters(nb, **values) -> None:
    """Type each value over its line of the ``# Parameters`` cell, keeping the line's comment, as a learner
    would; a name the cell does not set fails."""
    cell = _parameters_cell(nb)
    for name, value in values.items():
        cell.source, found = re.subn(
            rf"^{name} = [^#\n]*?(?=\s*#|$)", f"{name} = {value!r}", cell.source, count=1, flags=re.M
        )
        assert found, f"the parameters cell sets no {name}"


def _literal_assignments(source: str) -> set[str]:
    """The names a cell sets to a literal (``seed = 3``); IPython's ``%`` and ``!`` lines left out."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            with contextlib.suppress(ValueError, TypeError, SyntaxError):
                ast.literal_eval(node.value)
                names.add(node.targets[0].id)
    return names


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_the_parameters_cell_is_the_one_place_a_parameter_is_set(path):
    nb = nbformat.read(path, as_version=4)
    parameters = _parameters_cell(nb)
    names = _literal_assignments(parameters.source)
    for cell in [c for c in nb.cells[nb.cells.index(parameters) + 1 :] if c.cell_type == "code"]:
        again = names & _literal_assignments(cell.source)
        assert not again, (
            f"{path.name}: a later cell sets {sorted(again)} again: a learner's edit does nothing"
        )


def test_notebook_03_trains_what_its_edited_parameters_cell_says(tmp_path, monkeypatch):
    nb = nbformat.read(NOTEBOOKS / "03_training.ipynb", as_version=4)
    edit_parameters(nb, dataset="mnist", data_source="sample", epochs=1, train_limit=400, seed=1)
    nb.cells = [
        c for c in nb.cells if "solution" not in c.metadata.get("tags", [])
    ]  # the exercises' answers:
    for cell in nb.cells:  # tests/test_notebooks.py runs them
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    monkeypatch.setenv("FMNIST_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FMNIST_PROGRESS", "none")
    NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    assert errors(nb) == []
    run = json.loads((tmp_path / "runs" / "mnist" / "metrics.json").read_text())
    assert (run["dataset"], run["is_sample"], run["epochs_completed"], run["seed"]) == ("mnist", True, 1, 1)
    assert run["train_size"] + run["val_size"] == 400 and run["test_size"] == 500
    assert "Training on MNIST" in printed(nb) and "SAMPLE DATA" in printed(nb)
    assert not (tmp_path / "runs" / "fashion_mnist").exists(), "nothing of the page's own run is reused"
