"""The type checker passes over the rooms that are typed (mypy at its default level, with
the configuration in pyproject.toml). The lead widens TYPED to all of src/ once every
room type-checks (then ``mypy`` alone, reading ``files = src``, is the check)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "rnnlab"

#: Files and folders under src/rnnlab that type-check clean.
TYPED = ("nn", "optim", "models", "backend.py", "functional.py", "seq2seq/model.py",
         "seq2seq/attention.py", "seq2seq/decoders.py", "seq2seq/search.py", "data/core.py",
         "data/remote.py", "data/vocab.py", "data/ids.py", "data/batching.py",
         "viz/__init__.py", "viz/_mpl.py", "viz/browser.py", "viz/curves.py",
         "viz/gradients.py", "viz/predictions.py", "viz/probe.py", "viz/projection.py",
         "viz/tokens.py", "viz/units.py")


def test_the_typed_rooms_type_check(tmp_path):
    pytest.importorskip("mypy", reason="mypy is not installed (pip install '.[test]')")
    paths = [str(SRC / entry) for entry in TYPED]
    # errors are reported for these files only: a module they import is read, not judged
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--follow-imports=silent", "--cache-dir",
         str(tmp_path / "cache"), "--no-error-summary", *paths],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
