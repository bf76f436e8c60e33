"""Tables in notebooks: a pandas ``Styler`` also renders as aligned text (a diff, a terminal, a text view), where
pandas alone gives ``<pandas.io.formats.style.Styler at 0x...>``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pandas.io.formats.style import Styler

#: Separates the cells of Styler.to_string before they are aligned (a character no table holds).
_CELL = "\x1f"


def styler_text(styler: Styler) -> str:
    """The table a Styler shows, formatted as it formats it, in columns aligned to the right."""
    rows = [line.split(_CELL) for line in styler.to_string(delimiter=_CELL).splitlines()]
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(max(map(len, rows)))]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in rows)


def _pretty(styler: Styler, printer, cycle: bool) -> None:
    """IPython's text/plain printer for a Styler."""
    printer.text(styler_text(styler))


def show_stylers_as_text() -> None:
    """Give every Styler displayed in this IPython kernel a text/plain rendering (nothing outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        # by name: importing the package does not import pandas; IPython binds the printer once a Styler shows
        shell.display_formatter.formatters["text/plain"].for_type_by_name(
            "pandas.io.formats.style", "Styler", _pretty
        )
