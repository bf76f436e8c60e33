"""Prose never types a number that a run decides: every number in README and in the course's markdown is found
where it comes from, or the test names it (file, cell, number, context) so that a writer can fix it.

A number of a notebook's markdown cell is found in the outputs of the code cells that cell describes (the code
cells around it, up to the next markdown cell on each side), in the notebook's own code (constants of the
design: ``epochs = 30``), or among the declared facts of ``prose_facts.py``. Not in results/: a notebook's
code prints what its prose states (a number quoted from results/ with nothing printing it beside it is how
05's first table came to say 0.9427 where its published network scores 0.9426). README has no code: its numbers
are found in the results/ files meant to be quoted or among the facts. Matching is by rounding to the prose's
decimals.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from prose_facts import FACTS

ROOT = Path(__file__).resolve().parents[1]
#: The prose that is checked: README, the course's notebooks and MNIST's copy of 03. Add
#: ``"notebooks/appendix/*.ipynb"`` to check the appendices too.
PROSE = ("README.md", "notebooks/0[1-7]_*.ipynb", "results/seed/03_training_mnist.ipynb")
#: The results/ files meant to be quoted (summaries and records), not per-epoch logs such as history.csv,
#: whose epoch column would match any small number.
RESULTS = ("results/**/*.md", "results/**/*.json")
#: How many code cells on each side of a markdown cell it describes (fewer where a markdown cell comes first).
WINDOW = 3
#: Words before an integer that let it stand for a rounded decimal ("about 13" for 13.4).
ABOUT = re.compile(r"(?:about|≈|~)\s*$", re.IGNORECASE)

#: HTML's tags and attributes, and style sheets: not text.
HTML = re.compile(r"<(?P<block>style|script)\b.*?</(?P=block)>|<[^>]*>", re.DOTALL | re.IGNORECASE)
#: Text whose numbers are not prose: replaced by spaces (positions kept for the context of a message).
NOT_PROSE = re.compile(
    "|".join(
        (
            r"```.*?```",  # fenced code
            r"`[^`\n]*`",  # inline code
            r"\$\$.*?\$\$|\$[^$\n]+\$",  # LaTeX
            r"\]\([^)\s]*\)",  # link targets and image paths
            r"https?://\S+",  # bare URLs
            HTML.pattern,  # HTML tags and their attributes
            r"^[ \t]*#+[ \t]*\d+",  # a heading's section number: "## 10 · ..."
            r"^[ \t]*\d+[.)][ \t]",  # an ordered list's marker
            r"\bsections?[ \t]+\d+",  # a reference to a section
            r"\b\d{4}-\d{2}-\d{2}\b",  # a date
            r"\b\d+-bit\b",  # a number format's name: 16-bit
            r"\b(?:Python|Keras|TensorFlow|JAX|NumPy|CUDA)[ \t]+\d+(?:\.\d+)*",  # a version: Keras 3.15
            r"#\d+",  # an issue's number: #44
        )
    ),
    re.DOTALL | re.MULTILINE | re.IGNORECASE,
)
#: A number in prose: 0.9323, 1,879,098, 93.2 %, 15.0× (a ratio like any other). Not part of a name (A1,
#: float32, AVX-512) and not followed by a letter or digit.
PROSE_NUMBER = re.compile(
    r"(?<![\w.,])(?<![A-Za-z]-)(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?!\w)(\s*%)?(\s*(?:million|M)\b)?"
)
#: Any number in code, outputs or results/ (5e-05, 1,664, 76s), not one in a name, hash or version (seed3, 3.0.11).
ANY_NUMBER = re.compile(r"(?<![A-Za-z0-9_.])\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][-+]?\d+)?(?![A-Za-z_.]*\d)")


@dataclass(frozen=True)
class Number:
    """A number as prose writes it: its value, how it rounds, and the words around it that change its value."""

    text: str
    value: float
    decimals: int
    percent: bool
    about: bool
    scale: float = 1.0

    @property
    def digits(self) -> int:
        """Its digits as a whole number writes them, without leading zeros: 0.0009 has 1, 1.9 million 7."""
        written = len(re.sub(r"\D", "", self.text).lstrip("0"))
        return written + (6 if self.scale == 1e6 else 0)

    @property
    def places(self) -> int:
        """The decimal place it is rounded to: 2 for 0.93, -5 for 1.9 million."""
        return self.decimals - (6 if self.scale == 1e6 else 0)


def skipped(whole: str, decimals: str | None) -> bool:
    """Integers that are names or too common to check.

    Single digits ("3 seeds", "5×5", "notebook 3") are skipped: mostly counts of the design, and checking them
    would flood the list with noise. So are notebook names (01-07) and years (1990-2030).
    """
    if decimals or "," in whole:
        return False
    return len(whole) == 1 or (len(whole) == 2 and whole.startswith("0")) or 1990 <= int(whole) <= 2030


def prose_numbers(source: str) -> list[tuple[Number, str]]:
    """The numbers of a markdown text, each with about 60 characters of context."""
    text = NOT_PROSE.sub(lambda m: " " * len(m.group()), source)
    found = []
    for m in PROSE_NUMBER.finditer(text):
        whole, decimals, percent, million = m.groups()
        if skipped(whole, decimals):
            continue
        scale = 1e6 if million else 1.0
        number = Number(
            text=m.group().strip(),
            value=float(whole.replace(",", "") + (decimals or "")) * scale,
            decimals=len(decimals or ".") - 1,
            percent=bool(percent),
            about=bool(ABOUT.search(text[max(0, m.start() - 12) : m.start()])),
            scale=scale,
        )
        context = " ".join(source[max(0, m.start() - 30) : m.end() + 30].split())
        found.append((number, context))
    return found


def numbers(text: str) -> set[str]:
    """Every number in code, outputs or results/, as written (thousands separators removed)."""
    return {m.group().replace(",", "") for m in ANY_NUMBER.finditer(text)}


def decimals(candidate: str) -> int:
    """How many decimals a found number is written with (5e-05 counts as exact)."""
    if "e" in candidate.lower():
        return 99
    return len(candidate.partition(".")[2])


def matches(number: Number, candidates: set[str], *, as_written: bool = False) -> bool:
    """Whether a found number rounds to the prose's number and is at least as precise (exactly as precise if
    ``as_written``). An integer matches only exactly, unless after "about"; a percentage matches its value or
    100 times it (93.2 % for 0.9323)."""
    exact = number.places == 0 and not number.about
    tolerance = 1e-9 if exact else 0.5 * 10.0**-number.places + 1e-9
    for candidate in candidates:
        value, precision = float(candidate), decimals(candidate)
        readings = [(value, precision)] + ([(100 * value, precision - 2)] if number.percent else [])
        for v, p in readings:
            precise = p == number.places if as_written else p >= number.places
            if precise and abs(v - number.value) <= tolerance:
                return True
    return False


def in_pool(number: Number, pool: set[str]) -> bool:
    """Whether a pool of numbers from elsewhere (results/, the facts) holds the prose's number.

    A pool holds many numbers, and a short one in it proves nothing: a number of at least 3 digits (0.9323,
    93.2 %, 1.75×, 158, 1.9 million) matches by rounding, a shorter one only as written (4.8, 0.0009, 28).
    """
    return matches(number, pool, as_written=number.digits < 3)


def output_text(cell: dict) -> str:
    """What a code cell shows as text: streams, text/plain, text/markdown and text/html without its tags."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append("".join(output.get("text", "")))
        data = output.get("data", {})
        for mime in ("text/plain", "text/markdown", "text/html"):
            parts.append("".join(data.get(mime, "")))
    return HTML.sub(" ", "\n".join(parts))


def described_outputs(cells: list[dict], index: int) -> set[str]:
    """The numbers the code cells around a markdown cell show, up to WINDOW code cells on each side."""
    shown: set[str] = set()
    for step in (-1, 1):
        i = index + step
        while 0 <= i < len(cells) and cells[i]["cell_type"] == "code" and abs(i - index) <= WINDOW:
            shown |= numbers(output_text(cells[i]))
            i += step
    return shown


def results_numbers() -> set[str]:
    """The numbers of results/ that prose may quote; integers below 100 would match any count, so not those."""
    found = {n for pattern in RESULTS for file in ROOT.glob(pattern) for n in numbers(file.read_text())}
    return {n for n in found if decimals(n) or float(n) >= 100}


FACT_NUMBERS = {repr(value) for value, _ in FACTS}


def unfound(path: Path) -> list[str]:
    """One line per number of the prose that is found nowhere it may come from."""
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    if path.suffix != ".ipynb":
        results = results_numbers()
        return [
            f"{name}: {n.text} in «{context}»"
            for n, context in prose_numbers(path.read_text())
            if not (in_pool(n, results) or in_pool(n, FACT_NUMBERS))
        ]
    cells = json.loads(path.read_text())["cells"]
    code = set().union(*(numbers("".join(c["source"])) for c in cells if c["cell_type"] == "code"))
    lines = []
    for index, cell in enumerate(cells):
        if cell["cell_type"] == "markdown":
            here = code | described_outputs(cells, index)
            lines += [
                f"{name} cell {index}: {n.text} in «{context}»"
                for n, context in prose_numbers("".join(cell["source"]))
                if not (matches(n, here) or in_pool(n, FACT_NUMBERS))
            ]
    return lines


FILES = sorted({file for pattern in PROSE for file in ROOT.glob(pattern)})


@pytest.mark.parametrize("path", FILES, ids=[str(f.relative_to(ROOT)) for f in FILES])
def test_prose_states_only_numbers_it_can_point_to(path):
    lines = unfound(path)
    assert not lines, f"prose numbers found in no output, result or fact ({len(lines)}):\n" + "\n".join(lines)


def test_a_number_no_cell_beside_it_prints_is_named_and_one_printed_or_declared_is_not(tmp_path):
    def cell(kind, source, printed=""):
        outputs = [{"output_type": "stream", "name": "stdout", "text": printed}] if printed else []
        return {"cell_type": kind, "source": source, **({"outputs": outputs} if kind == "code" else {})}

    cells = [
        cell(
            "markdown", "Accuracy 0.8123, about 13 times as many errors; the 2017 notebook reported 0.9323."
        ),
        cell("code", "print(accuracy)", "accuracy 0.81234, errors 13.4 times MNIST's\n"),
        cell("markdown", "## Later\n\nFrom epoch 13 the loss rises; 0.7777 on the test set."),
        cell("code", "plot(history)"),
    ]
    page = tmp_path / "page.ipynb"
    page.write_text(json.dumps({"cells": cells}))
    assert unfound(page) == [
        "page.ipynb cell 2: 13 in «## Later From epoch 13 the loss rises; 0.7777 on the»",
        "page.ipynb cell 2: 0.7777 in «From epoch 13 the loss rises; 0.7777 on the test set.»",
    ]
