"""Reading executed notebooks: their errors, what they printed and displayed; running one with papermill."""

from __future__ import annotations

import hashlib
import re

import nbformat
import papermill as pm
import pytest

from fmnist_utils.params import project_root

NOTEBOOKS = project_root() / "notebooks"
SOURCE_NOTEBOOKS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) + sorted(NOTEBOOKS.glob("appendix/*.ipynb"))


def digest(paths) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def errors(nb) -> list[str]:
    return [
        f"{o.ename}: {o.evalue}"
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.output_type == "error"
    ]


def displayed(nb) -> str:
    """Every plain-text rendering a notebook displayed (tables, values), joined, terminal colours removed."""
    text = "".join(
        o.get("data", {}).get("text/plain", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.output_type in ("execute_result", "display_data")
    )
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def html(nb) -> str:
    """Every HTML rendering a notebook displayed (styled tables have no plain-text twin worth reading)."""
    return "".join(
        o.get("data", {}).get("text/html", "")
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.output_type in ("execute_result", "display_data")
    )


def printed(nb) -> str:
    return "".join(
        o.text
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.output_type == "stream" and o.name == "stdout"
    )


def executed(notebook: str, tmp_path, parameters: dict):
    """``notebook`` run by papermill with ``parameters`` into ``tmp_path``, read back."""
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(str(NOTEBOOKS / notebook), str(out), progress_bar=False, parameters=parameters)
    return nbformat.read(out, as_version=4)


def assert_rejected(notebook: str, tmp_path, parameters: dict, message: str) -> None:
    """Executing ``notebook`` with ``parameters`` fails in validation with ``message``, writing nothing."""
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(
            str(NOTEBOOKS / notebook),
            str(tmp_path / "out.ipynb"),
            parameters={"output_dir": str(tmp_path / "run"), **parameters},
            progress_bar=False,
        )
    assert err.value.ename == "ValueError" and message in err.value.evalue
    assert not (tmp_path / "run").exists(), "nothing is written before the parameters are valid"
