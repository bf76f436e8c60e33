"""The package's layout: a course library small enough to read in an evening, and the lab apart from it."""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import pytest

import fmnist_utils
import fmnist_utils.lab

PACKAGE = Path(fmnist_utils.__file__).parent
COURSE = sorted(PACKAGE.glob("*.py"))
LAB = sorted((PACKAGE / "lab").glob("*.py"))
#: An evening's reading for what the course notebooks import, every line counted: about 2,500 lines, 200 more
#: since a run survives a kill at any moment and its fingerprint sees what fit is given (issue 44), and 100 more
#: for tables that read as text, 03's step-time estimate and the error ratio over seeds (issue 42). The batch
#: runner (``run_notebooks``) executes the notebooks from the command line; no notebook imports it.
COURSE_LINES = 2_850
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


#: The import names of packages whose distribution name differs.
DISTRIBUTIONS = {"PIL": "pillow", "sklearn": "scikit-learn"}
#: Imported only on another Keras backend (``machine_info``, the any-backend tool), never on the course's.
OTHER_BACKENDS = {"jax", "torch"}
#: The maintainers' tools: tests, linter, the website. A learner does not install them.
MAINTAINERS_TOOLS = {"pytest", "pytest-xdist", "playwright", "ruff", "sphinx", "myst-nb", "sphinx-book-theme"}


def _pinned(path: Path) -> set[str]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {line.split("==")[0].lower() for line in lines if "==" in line}


def _imported_by_the_course() -> set[str]:
    """The top-level packages the notebooks and the package import (IPython's % lines left out)."""
    root = PACKAGE.parent
    sources = [p.read_text() for p in PACKAGE.rglob("*.py")]
    for notebook in (root / "notebooks").rglob("*.ipynb"):
        for cell in json.loads(notebook.read_text())["cells"]:
            if cell["cell_type"] == "code":
                lines = "".join(cell["source"]).splitlines()
                sources.append("\n".join(line for line in lines if not line.lstrip().startswith(("%", "!"))))
    names = set()
    for source in sources:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"fmnist_utils"} - OTHER_BACKENDS


def test_a_learner_installs_what_the_course_runs_and_no_maintainers_tools():
    root = PACKAGE.parent
    course, maintainers = _pinned(root / "requirements.txt"), _pinned(root / "requirements-dev.txt")
    needed = {DISTRIBUTIONS.get(name, name).lower() for name in _imported_by_the_course()}
    assert needed <= course, f"imported but not in requirements.txt: {sorted(needed - course)}"
    assert not course & MAINTAINERS_TOOLS, (
        f"maintainers' tools in requirements.txt: {course & MAINTAINERS_TOOLS}"
    )
    assert (
        MAINTAINERS_TOOLS <= maintainers
        and "-r requirements.txt" in (root / "requirements-dev.txt").read_text()
    )
