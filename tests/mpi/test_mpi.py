"""Data-parallel training on MPI (issue 23): each test starts ``mpiexec -n K`` on
tests/mpi/worker.py as a subprocess with a timeout (MPICH's mpiexec, from the ``mpich``
wheel, runs as root and with more processes than cores)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tests.mpi.jobs import MPIEXEC, run_job, started_job

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
    from rnnlab.train.distributed import AGREED_STOPS

    n_params = sum(v.size for key, v in one.items() if key.startswith("p/"))
    tail = 3 + len(AGREED_STOPS)  # loss, loss terms, items, one flag per agreed stop
    for calls in counts["calls"]:  # every rank: one big buffer per step, nothing per parameter
        assert sum(1 for size in calls if size > 8) == 20
        assert all(size in (n_params + tail, 2, 4, 1) for size in calls), sorted(set(calls))


@pytest.mark.parametrize("mode", ["mingru", "block"])
def test_min_cells_train_as_one(tmp_path, mode):
    """The same with the min cells: a 2-layer minGRU (dropout masks between its layers,
    time-major) and the paper's block around minLSTM (masks inside each block): 2 ranks
    agree with one process to 1e-10."""
    run(tmp_path, 1, mode, "k1")
    run(tmp_path, 2, mode, "k2")
    assert_same(result(tmp_path / "k1"), result(tmp_path / "k2"))


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


def ranks_of(folder: Path, k: int) -> list[dict]:
    """What each rank wrote when its fit ended: step, stop reason, parameter checksums."""
    return [json.loads((folder / f"rank{r}.json").read_text()) for r in range(k)]


def resumes_to_the_single_run(tmp: Path, one: dict, stopped: str, k: int) -> None:
    """The stopped run's checkpoint, resumed with ``k`` processes up to step 20, ends where
    the uninterrupted single-process run ends."""
    folder = tmp / f"{stopped}-resumed{k}"
    shutil.copytree(tmp / stopped, folder)
    run(tmp, k, "run", folder.name, str(folder / "last.safetensors"))
    assert_same(one, result(folder))


def test_a_time_budget_stops_every_rank_at_the_same_step(single):
    """max_time under MPI: the last rank is slow and its clock asks for the stop, which
    every rank learns in the same reduction: both stop after the same step with the same
    parameters, rank 0's checkpoint holds that step and resumes (here with one process)
    to the uninterrupted run's end."""
    from rnnlab.train.checkpoint import read_checkpoint
    from rnnlab.train.metrics import read_metrics

    tmp, one = single
    run(tmp, 2, "time", "timed")
    ranks = ranks_of(tmp / "timed", 2)
    assert ranks[0] == ranks[1]  # step, reason and parameters (checksums, bit for bit)
    step = ranks[0]["step"]
    assert ranks[0]["stopped"] == "max_time" and 0 < step < 20
    _, meta = read_checkpoint(tmp / "timed" / "last.safetensors")
    assert meta["progress"]["step"] == step
    stops = [r for r in read_metrics(tmp / "timed" / "metrics.jsonl") if r["event"] == "stop"]
    assert [(r["reason"], r["step"]) for r in stops] == [("max_time", step)]
    resumes_to_the_single_run(tmp, one, "timed", 1)


@pytest.mark.parametrize("target, signum, reason", [
    ("launcher", signal.SIGINT, "interrupted"),  # Ctrl-C: mpiexec passes it to every rank
    ("launcher", signal.SIGTERM, "terminated"),  # kill, timeout, a batch system: the same
    ("rank 1", signal.SIGTERM, "terminated"),  # one rank alone is told
])
def test_a_stop_signal_stops_every_rank_at_the_same_step(single, target, signum, reason):
    """A stop signal to mpiexec (which forwards it to every rank) or to one rank alone:
    every rank stops after the same step with that reason, rank 0 saves that step, the job
    exits 0 without a hang, and the checkpoint resumes (with 2 processes) to the
    uninterrupted run's end."""
    from rnnlab.train.checkpoint import read_checkpoint

    tmp, one = single
    name = f"signal-{target.replace(' ', '')}-{reason}"
    text = tmp / "text.txt"
    metrics = tmp / name / "metrics.jsonl"
    cmd = [sys.executable, str(WORKER), "slow", str(tmp / name), str(text)]
    with started_job(cmd, 2, tmp) as proc:
        deadline = time.monotonic() + 60
        while not (metrics.exists() and metrics.read_text().count('"train"') >= 3):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        os.kill(proc.pid if target == "launcher" else
                int((tmp / name / "pid1").read_text()), signum)
        time.sleep(0.3)  # for mpiexec to pass the signal on; the ranks wait for "go"
        (tmp / name / "go").write_text("")
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr[-3000:]
    ranks = ranks_of(tmp / name, 2)
    assert ranks[0] == ranks[1]
    step = ranks[0]["step"]
    assert ranks[0]["stopped"] == reason and 4 <= step < 20
    _, meta = read_checkpoint(tmp / name / "last.safetensors")
    assert meta["progress"]["step"] == step
    resumes_to_the_single_run(tmp, one, name, 2)


def test_a_divergence_rolls_every_rank_back_together(single):
    """A NaN in one gradient of the last rank, at steps 7 and 13 (max_divergences=1): the
    reduced gradient is NaN on every rank, so all roll back to step 5 together, train on
    with the halved learning rate, and at the second divergence all roll back to step 10
    and raise DivergenceError (no MPI_Abort: the job ends normally). Two processes follow
    one process to 1e-10 throughout: the losses (replayed steps included), the rolled-back
    parameters and the saved checkpoint."""
    from rnnlab.train.checkpoint import read_checkpoint
    from rnnlab.train.metrics import read_metrics

    tmp, _ = single
    events = {}
    for k in (1, 2):
        name = f"diverge{k}"
        run(tmp, k, "diverge", name)
        ranks = ranks_of(tmp / name, k)
        assert all(r == ranks[0] for r in ranks)
        assert ranks[0]["stopped"].startswith("DivergenceError: training diverged 2 times")
        assert ranks[0]["step"] == 10
        _, meta = read_checkpoint(tmp / name / "last.safetensors")
        assert (meta["progress"]["step"], meta["progress"]["divergences"]) == (10, 2)
        events[k] = [(r["step"], r["rolled_back_to"], r["lr"]) for r in
                     read_metrics(tmp / name / "metrics.jsonl") if r["event"] == "divergence"]
    assert events[1] == events[2] == [(7, 5, 0.005), (13, 10, 0.0025)]
    assert_same(result(tmp / "diverge1"), result(tmp / "diverge2"))


def test_ranks_that_drift_apart_stop_together_at_the_next_check(single):
    """TrainConfig.check_every=4 (over the world's 5): a parameter nudged on the last rank
    before step 6 is caught by the comparison after step 8, on every rank, which raises a
    DriftError (no MPI_Abort: the job ends normally)."""
    tmp, _ = single
    run(tmp, 2, "drift", "drift")
    ranks = ranks_of(tmp / "drift", 2)
    assert [r["step"] for r in ranks] == [8, 8]
    for r in ranks:
        assert r["stopped"].startswith("DriftError: the parameters of the 2 processes differ "
                                       "at step 8")
