"""Debian's Chromium as the browser tests start it (never a browser download)."""

import os
import shutil
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
#: Headless, and nothing that reaches outside this machine (background networking, updates, sync).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def screenshot(page, path: Path) -> None:
    """A PNG of ``page`` at ``path``, copied to ``$FMNIST_SCREENSHOT_DIR`` when set (how assets/ is refreshed)."""
    page.screenshot(path=str(path))
    assert path.read_bytes()[:4] == b"\x89PNG"
    if os.environ.get("FMNIST_SCREENSHOT_DIR"):
        Path(os.environ["FMNIST_SCREENSHOT_DIR"]).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(os.environ["FMNIST_SCREENSHOT_DIR"]) / path.name)
