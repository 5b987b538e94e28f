"""Shared test setup: make the helper modules in ``tests/`` (``gradcheck``) importable.

pytest's default ``prepend`` import mode already puts this directory on ``sys.path``
when it loads this conftest; the insertion below makes that explicit and independent of
the import mode, without touching ``src/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

TESTS_DIR = str(Path(__file__).resolve().parent)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)
