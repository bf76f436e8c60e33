"""fmnist_utils: the plumbing behind the MNIST vs Fashion-MNIST course (notebooks 01-04).

The lesson is in the notebooks; this package keeps what they share:

* ``protocol``: the seed's numbers (results, epochs, batch size, learning rate, split) and the targets;
* ``params``: checks of notebook parameters, the runs folder;
* ``files``: files written whole or not at all;
* ``data``: find, verify and load the datasets, the bundled sample, the seed's split, the batches ``fit`` reads;
* ``models``: the seed network, its optimizer and loss, layer tables;
* ``runs``: run folders (fingerprint; resume, reuse or refuse an earlier run), histories, metrics;
* ``training``: ``start_run`` / ``finish_run`` around ``fit``, the callbacks, ``train`` for scripts;
* ``evaluation``: predictions, metrics, confusions, embeddings;
* ``plots``: the course's figures;
* ``tables``: a pandas Styler shown as text too (registered on import, in IPython);
* ``comparison``: our runs beside the seed's results, the seed spread;
* ``run_notebooks``: run the series with papermill.

``fmnist_utils.lab`` holds the research of notebooks 05-06 and the appendices (ablation ladder, speed
benchmarks, shipped artifacts, dataset releases); nothing in the course part imports it.
"""

import os as _os

# TensorFlow's C++ start-up chatter (CUDA probing on CPU-only machines) drowns the tutorial's output.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

from fmnist_utils.tables import show_stylers_as_text as _show_stylers_as_text  # noqa: E402

# A table a notebook shows as a Styler reads in any text view of the notebook too (diffs, terminals).
_show_stylers_as_text()
