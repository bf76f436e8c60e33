"""Build the course's website from the committed, executed notebooks: ``python -m tools.book``.

Copies ``book/`` (settings and landing page), ``notebooks/`` and MNIST's executed 03 into a source folder
beside the site and runs Sphinx (MyST-NB with sphinx-book-theme) with warnings as errors. Nothing is executed
and nothing is fetched: the pages show the published runs' outputs, and the theme's files are bundled. Open
``_build/book/html/index.html`` in a browser, or serve the folder: ``python -m http.server -d _build/book/html``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from sphinx.cmd.build import build_main

from fmnist_utils.params import project_root

#: What the site is made of, relative to the project: the notebooks keep their places, so links between
#: them (and 03's to MNIST's run) resolve as they do in the repository.
SOURCES = ("notebooks", "results/seed/03_training_mnist.ipynb")
#: Left out of the copy: what running the notebooks in place may leave beside them.
IGNORED = shutil.ignore_patterns(".ipynb_checkpoints", "runs", "logs", "__pycache__")


def build(out: Path | None = None) -> Path:
    """Write the site into ``out`` (default ``<project>/_build/book``); return its html folder."""
    root = project_root()
    if root is None:
        raise RuntimeError("the website is built from the project's checkout (its notebooks/ and book/)")
    out = Path(out or root / "_build" / "book")
    src, html = out / "src", out / "html"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(root / "book", src, ignore=IGNORED)
    for name in SOURCES:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        if (root / name).is_dir():
            shutil.copytree(root / name, src / name, ignore=IGNORED)
        else:
            shutil.copyfile(root / name, src / name)
    status = build_main(["-W", "-q", "-E", "-b", "html", "-d", str(out / "doctrees"), str(src), str(html)])
    if status:
        raise RuntimeError(f"Sphinx failed (exit status {status}); its messages are above")
    return html


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.book", description=__doc__)
    parser.add_argument("--out", type=Path, help="where to build (default: <project>/_build/book)")
    args = parser.parse_args(argv)
    try:
        html = build(args.out)
    except RuntimeError as failed:
        print(f"error: {failed}", file=sys.stderr)
        return 1
    print(f"Built the website: open {html / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
