"""No committed text file holds an absolute path of a machine: a home, checkout, mount or temporary folder."""

from __future__ import annotations

import re
import subprocess

import pytest

from fmnist_utils.params import project_root

ROOT = project_root()
#: Top folders of machine paths on Linux and macOS, and a Windows drive's user folders. The patterns are joined
#: from parts so that this file holds no path it looks for.
FOLDERS = ("work", "home", "root", "Users", "mnt", "tmp", "private", "var/folders")
WINDOWS_USERS = ("Users", "Documents and Settings")
SEPARATOR = r"(?:\\\\|\\|/)"  # a Windows separator, also as JSON and Python strings escape it
#: Not inside a URL, a word or a relative path (``../shared``, an elided ``.../tmp/x``, ``~/tmp``).
UNIX = r"(?<![\w.~-])/(?:" + "|".join(FOLDERS) + ")/"
WINDOWS = r"(?<!\w)[A-Za-z]:" + SEPARATOR + "+(?:" + "|".join(WINDOWS_USERS) + ")" + SEPARATOR
MACHINE_PATH = re.compile(f"{UNIX}|{WINDOWS}")


def _tracked_texts() -> dict[str, str]:
    """Every git-tracked file of the checkout that is text (UTF-8 without NUL), by path."""
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    texts = {}
    for name in filter(None, listing.decode().split("\0")):
        path = ROOT / name
        data = path.read_bytes() if path.is_file() else b""  # deleted, not yet committed: nothing in it
        try:
            if b"\0" not in data:
                texts[name] = data.decode()
        except UnicodeDecodeError:
            pass  # binary
    return texts


def _where(name: str, text: str, found: re.Match) -> str:
    """``file:line: the path``, for a path found in a file."""
    line = text.count("\n", 0, found.start()) + 1
    return f"{name}:{line}: {text[found.start() :].splitlines()[0][:80]!r}"


def test_the_pattern_finds_machine_paths_not_urls_or_relative_paths():
    machine = [
        "/" + "home/ada/x",
        "/" + "var/folders/q/T",
        "C:" + "\\Users\\ada",
        "C:" + "\\\\Users\\\\a",
        "d:/" + "Users/a",
    ]
    elsewhere = [
        "https://example.org/" + "home/a",
        "../shared/datasets",
        ".../" + "tmp/x",
        "~/" + "tmp/x",
        "runs/tmp/x",
    ]
    assert [bool(MACHINE_PATH.search(f'"{p}"')) for p in machine + elsewhere] == [True] * 5 + [False] * 5


@pytest.mark.skipif(ROOT is None or not (ROOT / ".git").exists(), reason="needs the project's git checkout")
def test_no_tracked_file_holds_a_path_of_a_machine():
    texts = _tracked_texts()
    found = [_where(name, text, m) for name, text in texts.items() for m in MACHINE_PATH.finditer(text)]
    assert not found, (
        "absolute paths of a machine in committed files: write them relative to the project (runs/..., "
        "../shared/...) as fmnist_utils.params.shown_path does, or name the data's source:\n"
        + "\n".join(found)
    )
