"""Shared test setup: make the helper modules in ``tests/`` (``gradcheck``) importable.

pytest's default ``prepend`` import mode already puts this directory on ``sys.path``
when it loads this conftest; the insertion below makes that explicit and independent of
the import mode, without touching ``src/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import rnnlab.families  # noqa: F401  (registers the tasks of Trainer(model, data, ...))

TESTS_DIR = str(Path(__file__).resolve().parent)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

# One BLAS thread for the whole suite: the tests measure results, not speed, and on a
# shared machine OpenBLAS's spinning threads can make small products 50x slower.
import numpy as np  # noqa: E402  (numpy must be loaded for threadpoolctl to find BLAS)
from threadpoolctl import threadpool_limits  # noqa: E402

_BLAS_LIMIT = threadpool_limits(limits=1, user_api="blas")
del np
