"""fmnist_utils: the shared library of the MNIST vs Fashion-MNIST notebook series.

Modules: ``data`` (find, verify, load, split), ``models`` (the seed CNN and its optimizer),
``training`` (fit with timing, logs, checkpoints), ``evaluation`` (metrics), ``plots`` (figures),
``run_notebooks`` (execute the series with papermill).
"""

import os as _os

# TensorFlow's C++ start-up chatter (CUDA probing on CPU-only machines) drowns the tutorial's output.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
