"""``mpiexec -n 2 rnnlab seq2seq train`` (issue 23): rank 0 claims the run folder, prints
the summary and writes the model; the result equals one process's to 1e-10 (float64, the
tolerance of tests/mpi/test_tasks_mpi.py and why); ``--resume`` of a run started on one
process continues on two."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from tests.mpi.jobs import MPIEXEC, run_job

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
    reason="mpi4py or mpiexec is not installed (pip install 'rnnlab[mpi]')")


def _task(tmp: Path) -> Path:
    from rnnlab.seq2seq import make_addition
    from rnnlab.seq2seq.tasks import format_line

    pairs = make_addition(96, seed=0, max_digits=1)
    data = tmp / "sums.txt"
    data.write_text("\n".join(format_line(q, a) for q, a in
                              zip(pairs.questions, pairs.answers, strict=True)) + "\n")
    return data


def _train(tmp: Path, k: int, out: str, *extra: str) -> str:
    """A run on ``k`` processes; a ``--resume`` takes the run's own options (it refuses
    options given again, as ``rnnlab train --resume`` does)."""
    options = [] if "--resume" in extra else [
        "--hidden-size", "8", "--embedding-dim", "4", "--batch-size", "16", "--lr", "0.01",
        "--dtype", "float64"]
    cmd = [sys.executable, "-m", "rnnlab", "seq2seq", "train", *options,
           "--out", str(tmp / f"{out}.safetensors"), *extra]
    return run_job(cmd, k, tmp, timeout=120).stdout


def _params(path: Path) -> dict[str, np.ndarray]:
    from rnnlab.seq2seq.training import load_checkpoint

    model, _, _ = load_checkpoint(path)
    return {name: np.asarray(p) for name, p in model.named_parameters()}


def test_seq2seq_train_on_two_processes_as_on_one(tmp_path):
    data = _task(tmp_path)
    one = _train(tmp_path, 1, "k1", "--task", str(data), "--epochs", "2")
    two = _train(tmp_path, 2, "k2", "--task", str(data), "--epochs", "2")
    assert one.count('"checkpoint"') == 1 and two.count('"checkpoint"') == 1  # rank 0 alone
    assert "training on 2 processes" in two
    a, b = _params(tmp_path / "k1.safetensors"), _params(tmp_path / "k2.safetensors")
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=0, atol=1e-10, err_msg=name)
    summary = json.loads(two[two.index("{\n"):])
    assert summary["run"] == str(tmp_path / "k2") and summary["epochs"] == 2


def test_seq2seq_resume_on_two_processes(tmp_path):
    data = _task(tmp_path)
    _train(tmp_path, 1, "r", "--task", str(data), "--epochs", "2", "--max-steps", "4")
    text = _train(tmp_path, 2, "r", "--resume", str(tmp_path / "r"))
    assert text.count(f"resuming {tmp_path / 'r' / 'last.safetensors'}") == 1
    straight = _train(tmp_path, 1, "s", "--task", str(data), "--epochs", "2")
    assert json.loads(straight[straight.index("{\n"):])["steps"] == \
        json.loads(text[text.index("{\n"):])["steps"]
    a, b = _params(tmp_path / "s.safetensors"), _params(tmp_path / "r.safetensors")
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=0, atol=1e-10, err_msg=name)
