"""``mpiexec -n 2 rnnlab train ...`` (issue 23): one run folder claimed by rank 0, one
metrics file whose records carry ``world_size``, one printed summary, checkpoints that
resume with another number of processes, the same parameters as one process (float64),
and errors that end every rank with a non-zero status instead of a hang."""

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

pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (pip install mpich)")

TEXT = ("the quick brown fox jumps over the lazy dog\n"
        "pack my box with five dozen liquor jugs\n") * 40
OPTIONS = ("--level", "char", "--batch-size", "4", "--bptt", "8", "--hidden-size", "12",
           "--embedding-dim", "8", "--dtype", "float64", "--dropout", "0.2", "--seed", "0",
           "--eval-batch-size", "4", "--no-progress", "--sample-length", "0")


def rnnlab(tmp: Path, k: int, *args: str, timeout: float = 60, check: bool = True
           ) -> subprocess.CompletedProcess:
    corpus = tmp / "small.txt"
    if not corpus.exists():
        corpus.write_text(TEXT, encoding="utf-8")
    return run_job([sys.executable, "-m", "rnnlab", "train", *args], k, tmp, timeout=timeout,
                   check=check)


def params(folder: Path) -> dict[str, np.ndarray]:
    from rnnlab.train.checkpoint import read_checkpoint

    arrays, meta = read_checkpoint(folder / "last.safetensors")
    return {"step": np.array(meta["progress"]["step"]), **arrays}


def assert_same(a: dict, b: dict, tol: float = 1e-10) -> None:
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=0, atol=tol, err_msg=key)


def test_two_processes_one_run_and_resume_with_another_number(tmp_path):
    started = time.monotonic()
    two = rnnlab(tmp_path, 2, "--corpus", "small.txt", "--max-steps", "6", *OPTIONS)
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert runs == ["small.txt-lstm"]  # rank 0 alone claimed (no numbered second folder)
    folder2 = tmp_path / "runs" / runs[0]
    assert json.loads(two.stdout)["steps"] == 6  # one summary, printed by rank 0 alone
    assert two.stdout.count('"steps"') == 1
    assert "training on 2 processes" in two.stderr + two.stdout
    records = [json.loads(line) for line in
               (folder2 / "metrics.jsonl").read_text().splitlines()]
    assert records and {r["world_size"] for r in records} == {2}

    rnnlab(tmp_path, 1, "--corpus", "small.txt", "--max-steps", "6", *OPTIONS,
           "--out", "one")
    assert_same(params(tmp_path / "one"), params(folder2))  # float64: to rounding

    shutil.copytree(folder2, tmp_path / "two-then-one")
    shutil.copytree(tmp_path / "one", tmp_path / "one-then-two")
    rnnlab(tmp_path, 1, "--resume", "two-then-one", "--max-steps", "10", "--no-progress",
           "--sample-length", "0")
    rnnlab(tmp_path, 2, "--resume", "one-then-two", "--max-steps", "10", "--no-progress",
           "--sample-length", "0")
    a, b = params(tmp_path / "two-then-one"), params(tmp_path / "one-then-two")
    assert int(a["step"]) == 10
    assert_same(a, b)
    sizes = [json.loads(line)["world_size"] for line in
             (tmp_path / "one-then-two" / "metrics.jsonl").read_text().splitlines()]
    assert sizes[0] == 1 and sizes[-1] == 2
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("args, cause", [
    (("--corpus", "small.txt", "--lr", "-1"), "--lr"),
    (("--corpus", "small.txt", "--batch-size", "3"), "rnnlab: error: rank 0 of 2"),
    (("--corpus", "missing.txt"), "missing.txt"),
    (("--corpus", "small.txt", "--no-such-option"), "no-such-option"),
])
def test_an_error_ends_every_rank(tmp_path, args, cause):
    started = time.monotonic()
    proc = rnnlab(tmp_path, 2, *args, "--max-steps", "2", check=False, timeout=60)
    assert proc.returncode != 0
    assert time.monotonic() - started < 30
    assert "error:" in proc.stderr and cause in proc.stderr
    assert proc.stderr.count("usage:") <= 1  # rank 0 alone prints the usage
    if "--batch-size" not in args:  # refused before a run folder is claimed
        assert not (tmp_path / "runs").exists()
