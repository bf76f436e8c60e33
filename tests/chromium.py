"""Debian's Chromium as the browser tests start it (never a browser download)."""

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
