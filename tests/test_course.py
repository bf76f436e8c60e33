"""The course reads in one sitting a notebook; the research lives in appendices; committed outputs are clean."""

from __future__ import annotations

import nbformat
import pytest

from fmnist_utils.params import project_root
from fmnist_utils.run_notebooks import APPENDICES
from tools.publish import output_problems

ROOT = project_root()
COURSE = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
APPENDIX = sorted((ROOT / "notebooks" / "appendix").glob("*.ipynb"))
#: Every notebook whose outputs are committed: the series, the appendices, and 03's MNIST run.
COMMITTED = [*COURSE, *APPENDIX, *sorted((ROOT / "results").rglob("*.ipynb"))]
#: Markdown words a course notebook may hold (06 less: its research is appendix A4's); a cell's limit is
#: test_notebooks_alone's.
NOTEBOOK_WORDS, SPEED_NOTEBOOK_WORDS = 1_800, 1_500


def _markdown_words(path) -> list[int]:
    cells = nbformat.read(path, as_version=4).cells
    return [len(c.source.split()) for c in cells if c.cell_type == "markdown"]


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
def test_a_committed_notebook_shows_no_error_stderr_reused_run_or_machine_path(path):
    assert output_problems(nbformat.read(path, as_version=4)) == []
