"""Optional compiled kernels (numba) for the float32 hot loops on the CPU.

``pip install "rnnlab[fast]"`` brings numba; without it, or with ``RNNLAB_KERNELS=numpy``,
every caller uses its NumPy path, which stays the reference (and the only path for float64,
so gradient checks always run on NumPy's exact functions). The kernels fuse what NumPy
does in many passes into one sweep, with an exponential that the compiler vectorises:

    exp(x) = 2^k * p(r),  k = round(x / ln 2),  r = x - k ln 2,  p a degree-7 polynomial

(relative error <= 3e-7, about two float32 ulps; inputs are clamped to [-80, 80], where
sigmoid and tanh are saturated to float32 precision anyway). Sigmoid and tanh follow as
``1 / (1 + e^-x)`` and ``2 / (1 + e^-2x) - 1``, which agree with NumPy's to about 1e-7
absolute. Each kernel releases the GIL, so the row sweeps can run on two threads.

The cell kernels take exactly the arrays the NumPy steps of :mod:`rnnlab.nn._cellmath`
use, so the two paths are interchangeable step by step; ``tests/nn/test_kernels.py``
checks that they agree.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import numpy as np

_KERNELS: Any = None
_TRIED = False


def enabled() -> bool:
    """True when numba is importable and ``RNNLAB_KERNELS`` is not ``numpy``."""
    return get() is not None


def get() -> Any:
    """The compiled kernels (the :mod:`rnnlab._numba_kernels` module), or ``None``."""
    global _KERNELS, _TRIED
    if os.environ.get("RNNLAB_KERNELS", "auto").strip().lower() in ("numpy", "0", "off"):
        return None
    if not _TRIED:
        _TRIED = True
        try:
            _KERNELS = importlib.import_module("rnnlab._numba_kernels")
        except ImportError:
            _KERNELS = None
    return _KERNELS


def for_arrays(xp: Any, dtype: Any) -> Any:
    """The kernels that apply to arrays of this module and dtype: numba's for numpy
    float32, the CUDA kernels (:mod:`rnnlab._cuda_kernels`) for CuPy, else ``None``."""
    if os.environ.get("RNNLAB_KERNELS", "auto").strip().lower() in ("numpy", "0", "off"):
        return None
    if getattr(xp, "__name__", "") == "cupy":
        return _cuda()
    if xp is not np or np.dtype(dtype) != np.float32:
        return None
    return get()


_CUDA: Any = None


def _cuda() -> Any:  # pragma: no cover - needs CuPy and a GPU
    global _CUDA
    if _CUDA is None:
        _CUDA = importlib.import_module("rnnlab._cuda_kernels")
    return _CUDA
