"""Validation of notebook parameters (papermill injects them; a typo must fail loudly and early).

Each check raises ``ValueError`` naming the parameter, what is allowed, and what it got.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ENV_RUNS_DIR = "FMNIST_RUNS_DIR"


def check_choice(name: str, value: Any, allowed: Sequence[Any]) -> Any:
    """``value`` if it is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"Parameter {name!r} must be one of {', '.join(map(repr, allowed))}; got {value!r}.")
    return value


def check_int(name: str, value: Any, minimum: int = 1, allow_none: bool = False) -> int | None:
    """``value`` as an int >= ``minimum`` (or None when allowed); bools and floats with a fraction fail."""
    if value is None and allow_none:
        return None
    ok = isinstance(value, int) and not isinstance(value, bool)
    if isinstance(value, float) and value.is_integer():
        ok, value = True, int(value)
    if not ok or value < minimum:
        allowed = f"an integer >= {minimum}" + (" or None" if allow_none else "")
        raise ValueError(f"Parameter {name!r} must be {allowed}; got {value!r}.")
    return value


def check_int_list(name: str, value: Any, minimum: int = 1) -> list[int]:
    """``value`` as a non-empty list of integers >= ``minimum``; papermill's ``-p`` text "5,20" and a single
    integer included."""
    items = [v.strip() for v in value.split(",")] if isinstance(value, str) else value
    items = [items] if isinstance(items, int) else items
    if isinstance(items, (list, tuple)) and items:
        numbers = [int(v) if isinstance(v, str) and v.isdigit() else v for v in items]
        if all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in numbers):
            return numbers
    raise ValueError(
        f'Parameter {name!r} must be a non-empty list of integers >= {minimum} (or text such as "5,20"); '
        f"got {value!r}."
    )


def project_root() -> Path | None:
    """The repository root when the package runs from a checkout (editable install), else None."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "notebooks").is_dir() and (root / "pyproject.toml").is_file() else None


def shown_path(path: str | os.PathLike) -> str:
    """``path`` as a notebook prints it: relative to the project, else ``~/...``, else ``.../<parent>/<name>``
    (an output shows no machine's absolute path)."""
    path = Path(path).expanduser().resolve()
    for base, prefix in ((project_root(), ""), (Path.home().resolve(), "~/")):
        if base is not None and path.is_relative_to(base):
            return prefix + path.relative_to(base).as_posix() if path != base else prefix or "."
    return ".../" + "/".join(path.parts[-2:])


def default_runs_dir() -> Path:
    """Where runs go unless told: ``FMNIST_RUNS_DIR``, else ``<repo>/runs``, else ``./runs``.

    Anchored to the project, not the current directory, so JupyterLab (cwd = notebooks/) and papermill
    started from anywhere write to the same place.
    """
    if os.environ.get(ENV_RUNS_DIR):
        return Path(os.environ[ENV_RUNS_DIR]).expanduser().resolve()
    root = project_root()
    return (root / "runs") if root else Path.cwd() / "runs"


def resolve_dir(name: str, value: Any, default: Path) -> Path:
    """A folder parameter: None or "" means ``default``; anything else must be a path string."""
    if value is None or value == "":
        return default
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"Parameter {name!r} must be a folder path (string) or None; got {value!r}.")
    return Path(value).expanduser().resolve()
