"""Data-parallel training on MPI (issue 23): each test starts ``mpiexec -n K`` on
tests/mpi/worker.py as a subprocess with a timeout (MPICH's mpiexec, from the ``mpich``
wheel, runs as root and with more processes than cores)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tests.mpi.jobs import MPIEXEC, run_job

pytest.importorskip("mpi4py", reason="mpi4py is not installed (pip install 'rnnlab[mpi]')")

WORKER = Path(__file__).with_name("worker.py")
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (pip install mpich)")

TEXT = ("the quick brown fox jumps over the lazy dog\n"
        "pack my box with five dozen liquor jugs\n"
        "how vexingly quick daft zebras jump\n") * 25


def run(tmp: Path, k: int, mode: str, out: str, *extra: str, timeout: float = 60,
        check: bool = True) -> subprocess.CompletedProcess:
    text = tmp / "text.txt"
    if not text.exists():
        text.write_text(TEXT, encoding="utf-8")
    return run_job([sys.executable, str(WORKER), mode, str(tmp / out), str(text), *extra], k,
                   tmp, timeout=timeout, check=check)


def result(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "result.npz") as data:
        return {k: data[k] for k in data.files}


def assert_same(a: dict, b: dict, tol: float = 1e-10) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=0, atol=tol, err_msg=key)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mpi")
    run(tmp, 1, "run", "k1")
    return tmp, result(tmp / "k1")


@pytest.mark.parametrize("k", [2, 4])
def test_k_processes_train_as_one(single, k):
    """Global batch 20 on K ranks against one process: parameters, the loss of every one
    of 20 steps (dropout on) and the validation loss agree to 1e-10; one reduction of one
    buffer per step; every metrics record carries world_size."""
    tmp, one = single
    proc = run(tmp, k, "run", f"k{k}")
    assert f"training on {k} processes" in proc.stdout + proc.stderr
    many = result(tmp / f"k{k}")
    assert len(many["losses"]) == 20
    assert_same(one, many)
    assert json.loads((tmp / f"k{k}" / "world_sizes.json").read_text()) == [k]
    assert json.loads((tmp / "k1" / "world_sizes.json").read_text()) == [1]
    counts = json.loads((tmp / f"k{k}" / "counts.json").read_text())
    assert counts["reductions"] == 20
    n_params = sum(v.size for key, v in one.items() if key.startswith("p/"))
    for calls in counts["calls"]:  # every rank: one big buffer per step, nothing per parameter
        assert sum(1 for size in calls if size > 8) == 20
        assert all(size in (n_params + 3, 2, 4, 1) for size in calls), sorted(set(calls))


def test_resume_with_another_number_of_processes(single):
    """A checkpoint written by 2 ranks after 10 steps resumes with 1 and with 4 and ends
    where the single 20-step run ends."""
    tmp, one = single
    run(tmp, 2, "half", "half")
    for k in (1, 4):
        folder = tmp / f"resumed{k}"
        shutil.copytree(tmp / "half", folder)
        run(tmp, k, "run", folder.name, str(folder / "last.safetensors"))
        assert_same(one, result(folder))


def test_a_rank_that_raises_ends_all_ranks(single):
    tmp, _ = single
    started = time.monotonic()
    proc = run(tmp, 2, "raise", "raised", check=False, timeout=60)
    assert proc.returncode != 0
    assert time.monotonic() - started < 30
    assert "rank 1 of 2 failed" in proc.stderr and "injected failure on rank 1" in proc.stderr


def test_a_killed_rank_ends_the_others_and_the_checkpoint_survives(single):
    from rnnlab.train.checkpoint import read_checkpoint

    tmp, _ = single
    started = time.monotonic()
    proc = run(tmp, 2, "kill", "killed", check=False, timeout=60)
    assert proc.returncode != 0
    assert time.monotonic() - started < 30
    _, meta = read_checkpoint(tmp / "killed" / "last.safetensors")  # written at step 2
    assert meta["progress"]["step"] == 2
