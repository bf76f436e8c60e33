"""A table shown as a pandas Styler reads as text too: in a kernel, and in every committed notebook."""

from __future__ import annotations

import nbformat
import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

from fmnist_utils.params import project_root
from fmnist_utils.tables import show_stylers_as_text, styler_text

ROOT = project_root()
#: Every notebook whose outputs are committed: the course, the appendices and 03's MNIST run.
COMMITTED = sorted((ROOT / "notebooks").rglob("*.ipynb")) + sorted((ROOT / "results").rglob("*.ipynb"))


def _table() -> pd.DataFrame:
    return pd.DataFrame({"class": ["Shirt", "Trouser"], "accuracy": [0.7812, 0.99], "errors": [219, 1010]})


def test_a_styler_reads_as_its_formatted_table_aligned():
    styled = _table().style.format({"accuracy": "{:.3f}", "errors": "{:,}"}).hide()
    assert styler_text(styled).splitlines() == [
        "  class  accuracy  errors",
        "  Shirt     0.781     219",
        "Trouser     0.990   1,010",
    ]


def test_a_kernel_that_imported_the_package_shows_a_styler_as_text():
    shell = InteractiveShell.instance()
    try:
        show_stylers_as_text()
        data, _ = shell.display_formatter.format(_table().style.format({"accuracy": "{:.1%}"}))
    finally:
        InteractiveShell.clear_instance()
    assert "Styler" not in data["text/plain"]
    assert "78.1%" in data["text/plain"] and "<table" in data["text/html"]


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_a_committed_notebook_shows_no_table_as_an_object_name(path):
    outputs = [o for c in nbformat.read(path, as_version=4).cells for o in c.get("outputs", [])]
    names = [o for o in outputs if "Styler at 0x" in "".join(o.get("data", {}).get("text/plain", ""))]
    assert not names, f"{path.name}: {len(names)} tables show only their object's name as text"
