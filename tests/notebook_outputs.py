"""Reading executed notebooks: their errors, what they printed and displayed; running one with papermill, or
on a machine with no data and no network."""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import nbformat
import papermill as pm
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from papermill.translators import translate_parameters

from fmnist_utils.params import project_root

NOTEBOOKS = project_root() / "notebooks"
SOURCE_NOTEBOOKS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")) + sorted(NOTEBOOKS.glob("appendix/*.ipynb"))
#: A machine with no copy of either dataset and no network: every download fails at once.
OFFLINE = {
    "FMNIST_DATA_DIR": None,
    "FMNIST_CACHE_DIR": None,
    "XDG_CACHE_HOME": None,
    "KERAS_HOME": None,
    "FMNIST_MIRROR_URL": "http://127.0.0.1:9/",
    "http_proxy": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
}


def digest(paths) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


@contextlib.contextmanager
def offline(home: Path) -> Iterator[None]:
    """The environment of :data:`OFFLINE` with ``home`` (an empty folder) as the home folder."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HOME", str(home))
        for name, value in OFFLINE.items():
            env.delenv(name, raising=False) if value is None else env.setenv(name, value)
        yield


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


def stderr(nb) -> list[str]:
    """What a notebook's cells wrote to stderr."""
    return [
        o.text
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.output_type == "stream" and o.name == "stderr"
    ]


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


def _tagged(nb, tag: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if tag in c.metadata.get("tags", []))


def assert_all_rejected(notebook: str, tmp_path, cases: list[tuple[dict, str]]) -> None:
    """Each case's ``(parameters, message)``, in one kernel: the imports once, then per case the parameters
    cell, the case's values as papermill injects them and the validation cell (the code cell after the
    imports), which must fail with ``message`` and write nothing. One kernel instead of one per case;
    :func:`assert_rejected` shows the same through papermill itself."""
    nb = nbformat.read(NOTEBOOKS / notebook, as_version=4)
    imports = _tagged(nb, "imports")
    validation = next(c for c in nb.cells[imports + 1 :] if c.cell_type == "code")
    parameters = nb.cells[_tagged(nb, "parameters")]
    work = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(nb.cells[imports].source)])
    client = NotebookClient(work, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}})
    with client.setup_kernel():
        client.execute_cell(work.cells[0], 0)
        for i, (values, message) in enumerate(cases):
            out = tmp_path / f"case{i}"
            injected = translate_parameters("python3", "python", {"output_dir": str(out), **values})
            case = nbformat.v4.new_code_cell("\n".join([parameters.source, injected, validation.source]))
            work.cells.append(case)
            with pytest.raises(CellExecutionError) as err:
                client.execute_cell(case, len(work.cells) - 1)
            assert err.value.ename == "ValueError" and message in err.value.evalue, (values, err.value.evalue)
            assert not out.exists(), f"{values}: nothing is written before the parameters are valid"
