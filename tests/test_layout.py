"""The package's layout: a course library small enough to read in an evening, and the lab apart from it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import fmnist_utils
import fmnist_utils.lab

PACKAGE = Path(fmnist_utils.__file__).parent
COURSE = sorted(PACKAGE.glob("*.py"))
LAB = sorted((PACKAGE / "lab").glob("*.py"))
#: An evening's reading for what the course notebooks import, every line counted: about 2,500 lines, and 200
#: more since a run survives a kill at any moment and its fingerprint sees what fit is given (issue 44). The
#: batch runner (``run_notebooks``) executes the notebooks from the command line; no notebook imports it.
COURSE_LINES = 2_750
RUNNER = PACKAGE / "run_notebooks.py"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_the_course_never_imports_the_lab(path):
    lab = sorted(name for name in _imported_modules(path) if name.startswith("fmnist_utils.lab"))
    assert not lab, f"{path.name} imports {lab}"


def test_the_course_reads_in_an_evening():
    lines = sum(len(path.read_text().splitlines()) for path in COURSE if path != RUNNER)
    assert lines <= COURSE_LINES, f"the course part has {lines} lines"


@pytest.mark.parametrize(
    "package,paths", [(fmnist_utils, COURSE), (fmnist_utils.lab, LAB)], ids=["course", "lab"]
)
def test_the_package_docstrings_map_every_module(package, paths):
    listed = set(re.findall(r"``(\w+)``", package.__doc__))
    modules = {path.stem for path in paths} - {"__init__"}
    assert modules <= listed, f"not in {package.__name__}'s docstring: {sorted(modules - listed)}"
