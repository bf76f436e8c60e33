"""The Chromium the browser tests drive: the system's, else Playwright's own if installed (never a download)."""

import os
import shutil
from pathlib import Path

#: The system's Chromium, by the names distributions give it.
SYSTEM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
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


def _playwright_chromium() -> Path | None:
    """The Chromium ``playwright install chromium`` put on this machine, if it did."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    with sync_playwright() as pw:
        path = Path(pw.chromium.executable_path)
    return path if path.is_file() else None


def find_chromium() -> tuple[Path | None, str]:
    """The browser to drive and, when there is none, why the browser tests skip."""
    for name in SYSTEM_NAMES:
        if found := shutil.which(name):
            return Path(found), ""
    if found := _playwright_chromium():
        return found, ""
    return None, (
        f"no Chromium found: none of {', '.join(SYSTEM_NAMES)} is on PATH and Playwright has no browser "
        "installed (apt install chromium, or python -m playwright install chromium)"
    )


CHROMIUM, NO_CHROMIUM = find_chromium()


def screenshot(page, path: Path) -> None:
    """A PNG of ``page`` at ``path``, copied to ``$FMNIST_SCREENSHOT_DIR`` when set (how assets/ is refreshed)."""
    page.screenshot(path=str(path))
    assert path.read_bytes()[:4] == b"\x89PNG"
    if os.environ.get("FMNIST_SCREENSHOT_DIR"):
        Path(os.environ["FMNIST_SCREENSHOT_DIR"]).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(os.environ["FMNIST_SCREENSHOT_DIR"]) / path.name)
