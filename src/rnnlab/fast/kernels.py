"""The compiled kernels: numba's for NumPy float32 arrays, CuPy's for arrays on a GPU.

``pip install "rnnlab[fast]"`` brings numba; without it (or with ``RNNLAB_KERNELS=0``)
the engine runs its NumPy forms. The numba kernels (:mod:`rnnlab.fast.numba_kernels`)
fuse what NumPy does in many passes into one sweep, with an exponential that the
compiler vectorises::

    exp(x) = 2^k * p(r),  k = round(x / ln 2),  r = x - k ln 2,  p a degree-7 polynomial

(relative error at most about two float32 ulps; inputs are clamped to [-80, 80], where
sigmoid and tanh are saturated to float32 precision anyway). Sigmoid and tanh follow as
``1 / (1 + e^-x)`` and ``2 / (1 + e^-2x) - 1``. Each kernel releases the GIL, so the row
sweeps can run on two threads. They take exactly the arrays of the engine's NumPy steps
(:mod:`rnnlab.fast.cells`), so the two forms are interchangeable step by step
(``tests/fast/test_kernels.py``).
"""

from __future__ import annotations

import importlib
import threading
from typing import Any, Literal, TypedDict

import numpy as np

from rnnlab.fast.config import switch


class JitOptions(TypedDict, total=False):
    """The options the numba modules pass to ``njit`` (typed, so that ``njit(**options)``
    is checked against numba's signature)."""

    nogil: bool
    boundscheck: bool
    cache: bool
    fastmath: set[str]
    error_model: Literal["python", "numpy"]


_LOCK = threading.Lock()
_LOADED: dict[str, Any] = {}


def _load(name: str) -> Any:
    """The module ``rnnlab.fast.<name>``, or None when it cannot be imported (cached)."""
    if name not in _LOADED:
        with _LOCK:
            if name not in _LOADED:
                try:
                    _LOADED[name] = importlib.import_module(f"rnnlab.fast.{name}")
                except ImportError:
                    _LOADED[name] = None
    return _LOADED[name]


def get() -> Any:
    """numba's kernels (:mod:`rnnlab.fast.numba_kernels`), or None when numba is missing
    or ``RNNLAB_KERNELS`` is off."""
    return _load("numba_kernels") if switch("RNNLAB_KERNELS") else None


def minrnn(always: bool = False) -> Any:
    """numba's minGRU / minLSTM kernels (:mod:`rnnlab.fast.numba_minrnn`, float32 and
    float64), or None when numba is missing or ``RNNLAB_KERNELS`` is off (unless
    ``always``)."""
    return _load("numba_minrnn") if always or switch("RNNLAB_KERNELS") else None


def for_arrays(xp: Any, dtype: Any) -> Any:
    """The kernels for arrays of this module and dtype: numba's for NumPy float32,
    CuPy's (:mod:`rnnlab.fast.cuda_kernels`) on a GPU, else None."""
    if not switch("RNNLAB_KERNELS"):
        return None
    if getattr(xp, "__name__", "") == "cupy":
        return _load("cuda_kernels")
    if xp is not np or np.dtype(dtype) != np.float32:
        return None
    return get()
