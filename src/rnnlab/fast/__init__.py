"""The speed engine: everything in rnnlab that exists only to be fast.

A reader can skip this package. The reference (``rnnlab.nn`` and what it uses) is plain
NumPy; at a few places it asks :func:`engine_for` for an engine and offers it the work
(the loop over time of a scan, the softmax cross-entropy sweep, a weight update, ...;
the list is in :mod:`rnnlab.fast.engine`). The engine either does the work, faster and
with the same result up to rounding, or declines. ``RNNLAB_FAST=0`` (or
``rnnlab.fast.set_enabled(False)``) makes it decline everything.

What is here: the switches (:mod:`~rnnlab.fast.config`), host and BLAS threads
(:mod:`~rnnlab.fast.threads`), the engine's loops and cell steps (:mod:`~rnnlab.fast.loop`,
:mod:`~rnnlab.fast.cells`), packed per-step products (:mod:`~rnnlab.fast.packed`), the
loss sweep (:mod:`~rnnlab.fast.losses`) and the compiled kernels (numba:
:mod:`~rnnlab.fast.numba_kernels`, :mod:`~rnnlab.fast.numba_gemm`; CuPy:
:mod:`~rnnlab.fast.cuda_kernels`). Nothing here imports the layers, models or trainer.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from rnnlab.fast.config import enabled, set_enabled, settings
from rnnlab.fast.engine import Engine, ReferenceEngine
from rnnlab.fast.threads import blas_threads

REFERENCE = ReferenceEngine()
_ENGINES: dict[tuple[str, str], Engine] = {}
_LOCK = threading.Lock()


def engine_for(xp: Any, dtype: Any) -> ReferenceEngine:
    """The engine for arrays of the module ``xp`` (numpy or cupy) and ``dtype``: the
    engine proper, or :data:`REFERENCE` when ``RNNLAB_FAST`` is off."""
    if not enabled():
        return REFERENCE
    key = (getattr(xp, "__name__", "numpy"), np.dtype(dtype).str)
    engine = _ENGINES.get(key)
    if engine is None:
        with _LOCK:
            engine = _ENGINES.setdefault(key, Engine(xp, dtype))
    return engine


__all__ = ["REFERENCE", "Engine", "ReferenceEngine", "blas_threads", "enabled", "engine_for",
           "set_enabled", "settings"]
