"""Re-execute, in place, the committed notebooks that train no seed-protocol run (maintainer tool).

``python -m tools.refresh notebooks/05_beyond_the_seed.ipynb notebooks/appendix/A1_why_not_09323.ipynb ...``
executes each notebook with its own defaults on your full data (``FMNIST_DATA_DIR``), in kernels set up as the
series runner sets them (TensorFlow's start-up lines to ``logs/``), then writes it over the source: 01 and 02,
05 (``source="published"``: a small trial, then the committed ladder), 06 (``source="published"``: a few
training steps timed here, then the committed benchmark; run it on an otherwise idle machine) and the
appendices train no seed-protocol run. 03, 04 and 07 come from a series run (``tools.publish``). A notebook
with an error, a stderr output or a path of this machine is refused and the committed one kept.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from fmnist_utils.params import project_root
from fmnist_utils.run_notebooks import Step, execute, quiet_kernels
from tools.publish import PublishError, _publish_notebook

#: Notebooks whose outputs depend on a series run's trained models: tools.publish writes them.
FROM_A_SERIES_RUN = ("03_training.ipynb", "04_compare_mnist_fashion.ipynb", "07_your_own_images.ipynb")


def refresh(notebook: Path, work: Path, notebooks: Path | None = None) -> None:
    """Execute ``notebook`` (a path inside ``notebooks``, the project's by default) into ``work``, then write
    it over itself."""
    notebooks = (notebooks or project_root() / "notebooks").resolve()
    relative = notebook.resolve().relative_to(notebooks).as_posix()
    if relative in FROM_A_SERIES_RUN:
        raise PublishError(f"{relative} shows a series run's models: publish a run with tools.publish")
    step = Step(relative)
    with quiet_kernels(step.log_file(work)):
        execute(step, notebooks, work, log_output=False)
    _publish_notebook(work / relative, notebook)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.refresh", description=__doc__)
    parser.add_argument("notebooks", type=Path, nargs="+", help="notebooks under notebooks/ to re-execute")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        for notebook in args.notebooks:
            try:
                refresh(notebook, Path(work))
            except PublishError as refused:
                print(f"{notebook}: {refused}", file=sys.stderr)
                return 1
            print(f"{notebook}: executed and written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
