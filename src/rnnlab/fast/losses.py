"""The softmax cross-entropy sweep of the engine: compiled kernels, rows in cache-sized
blocks, shared between host threads.

The reference (:func:`rnnlab.nn.losses.softmax_xent_`) computes the loss and its gradient
over the whole ``(M, V)`` array in a few NumPy passes. Here, with numba's kernels, each
block of rows (:data:`BLOCK_ELEMENTS` elements, which stay in a core's L2 cache) is swept
three times in compiled loops with a vectorised exponential, and threads claim blocks one
at a time from a shared counter; on a GPU CuPy's fused kernels do the same. Every row is
independent and the per-row losses are summed in row order, so the result does not
depend on the threads.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlab.backend import xp_of
from rnnlab.fast import kernels as _kernels
from rnnlab.fast.threads import cpu_workers, release_blas_threads, run_together

#: rows handled per block: a block of a 10,000-word softmax stays in a core's L2 cache
BLOCK_ELEMENTS = 1 << 17


def softmax_xent(Z: Any, targets: Any, valid: Any, scale: float) -> float | None:
    """Overwrite the logits ``Z`` (M, V) with ``scale * (softmax(Z) - onehot(targets))``
    (zero on rows that are not ``valid``) and return the summed loss of the valid rows;
    None when no kernel applies (the reference then runs)."""
    xp = xp_of(Z)
    kernels = _kernels.for_arrays(xp, Z.dtype)
    if kernels is None:
        return None
    if xp is not np:  # CuPy's fused kernels
        return kernels.xent_rows(Z, targets, valid, scale)
    block = max(1, BLOCK_ELEMENTS // max(1, Z.shape[1]))
    threads = 1 if Z.size < 4 * BLOCK_ELEMENTS else cpu_workers()
    losses = np.empty(Z.shape[0], np.float64)
    counter = np.zeros(1, np.int64)
    if threads > 1:
        release_blas_threads()  # idle BLAS workers would spin on the second core
    run_together(lambda: kernels.xent_blocks(Z, targets, valid, float(scale), losses,
                                             block, counter), threads)
    return float(losses.sum())

