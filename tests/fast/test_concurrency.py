"""The engine is safe in the programs people write: threads that each run a model, a
thread doing its own BLAS work beside a training, and a forked child. Each case runs in
a subprocess under a time limit (a hang fails the test instead of stopping the suite)
and must give the same results as the same work done alone (see `concurrency_cases`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(case: str, timeout: float) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    try:
        done = subprocess.run([sys.executable, "-m", "tests.fast.concurrency_cases", case],
                              cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{case}: still running after {timeout} s (a hang)")
    assert done.returncode == 0, f"{case}: results differ from alone\n{done.stderr[-3000:]}"


def test_two_threads_evaluating_book_models() -> None:
    _run("two_evals", 120)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")
def test_forked_child_after_the_pool_started() -> None:
    _run("after_fork", 60)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["two_trainings", "beside_matmul_main",
                                  "beside_matmul_worker"])
def test_big_training_beside_other_threads(case: str) -> None:
    _run(case, 300)
