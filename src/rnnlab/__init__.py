"""rnnlab: recurrent neural networks from scratch in NumPy, with explicit, tested backward.

Imported before numpy, rnnlab asks OpenBLAS to let its idle worker threads sleep after
2^20 cycles (about 0.4 ms) instead of spinning for 2^28 (about 0.1 s), by setting
``OPENBLAS_THREAD_TIMEOUT=20`` unless it is already set. A spinning BLAS thread holds a
core that rnnlab's own threads need between two BLAS calls (the per-step products of the
time loops, see :mod:`rnnlab.nn._packed`, and the row sweeps of the loss). OpenBLAS
reads the variable once, when numpy loads it: imported after numpy, rnnlab changes
nothing, and its time loops then keep their per-step products in BLAS.
"""

import os as _os
import sys as _sys

if "numpy" not in _sys.modules:
    _os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")

__version__ = "0.1.0"
