"""``mpiexec -n 2 rnnlab train`` stopped by SIGTERM to mpiexec (a batch system's kill):
every rank finishes its step, rank 0 saves it, and the job exits 143 (128 + 15), the
status one process gives, with the command to resume."""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import time

import pytest
from tests.mpi.jobs import MPIEXEC, started_job

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
    reason="mpi4py or mpiexec is not installed (pip install 'rnnlab[mpi]')")


def test_sigterm_to_mpiexec_exits_143_with_a_checkpoint(tmp_path):
    from rnnlab.train.checkpoint import read_checkpoint
    from rnnlab.train.metrics import read_metrics

    run = tmp_path / "run"
    metrics = run / "metrics.jsonl"
    cmd = [sys.executable, "-m", "rnnlab", "train", "--corpus", "stdlib", "--max-chars",
           "200000", "--hidden-size", "16", "--embedding-dim", "8", "--batch-size", "4",
           "--bptt", "16", "--epochs", "50", "--log-every", "20", "--out", str(run)]
    with started_job(cmd, 2, tmp_path) as proc:
        deadline = time.monotonic() + 90
        while not (metrics.exists() and metrics.read_text().count('"train"') >= 2):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "terminated: state saved to" in out + err and "--resume" in out + err
    stops = [r for r in read_metrics(metrics) if r["event"] == "stop"]
    assert [r["reason"] for r in stops] == ["terminated"]
    _, meta = read_checkpoint(run / "last.safetensors")
    assert meta["progress"]["step"] == stops[0]["step"]
