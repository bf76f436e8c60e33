"""The course reads in one sitting a notebook; the research lives in appendices; committed outputs are clean,
complete and belong to the code beside them."""

from __future__ import annotations

import ast

import nbformat
import pytest

from fmnist_utils.params import project_root
from fmnist_utils.run_notebooks import APPENDICES
from tools.publish import code_digest, output_problems, recorded_digest

ROOT = project_root()
COURSE = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
APPENDIX = sorted((ROOT / "notebooks" / "appendix").glob("*.ipynb"))
#: Every notebook whose outputs are committed: the series, the appendices, and 03's MNIST run.
COMMITTED = [*COURSE, *APPENDIX, *sorted((ROOT / "results").rglob("*.ipynb"))]
#: Markdown words a course notebook may hold (06 less: its research is appendix A4's); a cell's limit is
#: test_notebooks_alone's.
NOTEBOOK_WORDS, SPEED_NOTEBOOK_WORDS = 1_800, 1_500
#: Code cells that print nothing by design. By tag: the parameters and the imports. By content: cells that
#: only define (imports, functions, classes, constants: the reusable cells). By their first line, the rest:
#: parameter checks that pass silently, 03's network built and compiled (fit prints its log in the next
#: cell), and 06's training that runs with source="measure" only.
SILENT_TAGS = {"parameters", "imports"}
SILENT_CELLS = {
    "03_training": ["keras.backend.clear_session()  # a fresh start"],
    "03_training_mnist": ["keras.backend.clear_session()  # a fresh start"],
    "06_train_fast": ["fast_epochs = recipes[", "import time"],  # and the reusable recipe (its loss object)
    "A1_why_not_09323": ['check_choice("data_source", data_source, ("auto", "sample"))'],
    "A2_precision_and_hardware": ["for precision in precisions:"],
    "A3_ablation_ladder": ['published_root = resolve_dir("published_dir"'],
    "A4_speed_investigations": ['results = resolve_dir("results_dir"'],
}


def _markdown_words(path) -> list[int]:
    cells = nbformat.read(path, as_version=4).cells
    return [len(c.source.split()) for c in cells if c.cell_type == "markdown"]


def _defines_only(source: str) -> bool:
    """True for a cell of imports, function and class definitions and constants."""
    definitions = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)

    def constant(node):
        try:
            return isinstance(node, ast.Assign) and ast.literal_eval(node.value) is not None
        except ValueError:
            return False

    body = ast.parse(source).body
    return bool(body) and all(isinstance(n, definitions) or constant(n) for n in body)


def _silent_by_design(path, cell) -> bool:
    first_line = cell.source.splitlines()[0] if cell.source else ""
    return (
        bool(SILENT_TAGS & set(cell.metadata.get("tags", [])))
        or _defines_only(cell.source)
        or any(first_line.startswith(start) for start in SILENT_CELLS.get(path.stem, []))
    )


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.stem)
def test_a_course_notebook_reads_in_one_sitting(path):
    words = _markdown_words(path)
    limit = SPEED_NOTEBOOK_WORDS if path.name.startswith("06_") else NOTEBOOK_WORDS
    assert sum(words) <= limit, f"{path.name}: {sum(words):,} words of markdown, at most {limit:,}"


def test_the_appendices_are_run_by_the_series_and_linked_from_the_course_and_readme():
    assert sorted(f"appendix/{p.name}" for p in APPENDIX) == sorted(APPENDICES)
    course_text = " ".join(path.read_text() for path in COURSE)
    readme = (ROOT / "README.md").read_text()
    for path in APPENDIX:
        assert f"appendix/{path.name}" in course_text, f"no course notebook links to {path.name}"
        assert f"notebooks/appendix/{path.name}" in readme, f"README's notebook map lacks {path.name}"


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_a_committed_notebook_shows_no_error_stderr_or_machine_path(path):
    assert output_problems(nbformat.read(path, as_version=4)) == []


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_a_committed_notebook_is_the_code_that_made_its_outputs(path):
    nb = nbformat.read(path, as_version=4)
    assert recorded_digest(nb) == code_digest(nb), (
        f"{path.name}: a code cell changed after its outputs were made; execute it again "
        "(python -m tools.refresh, or a series run and python -m tools.publish for 03, 04 and 07)"
    )


def test_editing_a_code_cell_of_a_committed_notebook_breaks_its_digest_and_markdown_does_not():
    nb = nbformat.read(ROOT / "notebooks" / "03_training.ipynb", as_version=4)
    gallery = next(c for c in nb.cells if c.cell_type == "code" and "n=24" in c.source)
    markdown = next(c for c in nb.cells if c.cell_type == "markdown")
    markdown.source += "\nA new sentence."
    assert code_digest(nb) == recorded_digest(nb)
    gallery.source = gallery.source.replace("n=24", "n=12")
    assert code_digest(nb) != recorded_digest(nb)


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_every_code_cell_of_a_committed_notebook_shows_its_outputs(path):
    nb = nbformat.read(path, as_version=4)
    empty = [
        f"cell {i}: {cell.source.splitlines()[0] if cell.source else '(empty)'}"
        for i, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and not cell.outputs and not _silent_by_design(path, cell)
    ]
    assert empty == [], f"{path.name}: code cells without outputs (not executed?)"
