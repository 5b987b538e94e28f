"""Killed saves: a training process killed with SIGKILL inside checkpoint writes (at every
phase of the write, at a random write and a random byte) never loses its previous
checkpoint, ``--resume`` goes on from it, and the run ends bit for bit where an unkilled
one does. Five kills here; ``benchmarks/reliability_kill.py`` does 50 and more, some at
random times."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.train import Trainer
from rnnlab.train.checkpoint import remove_stale_temporaries
from rnnlab.train.metrics import MetricsLog, read_metrics
from tests.reliability.conftest import small_config, small_model
from tests.reliability.killing import PHASES, kill_campaign


def test_five_kills_while_saving_lose_nothing(tmp_path: Path) -> None:
    report = kill_campaign(tmp_path, 5, np.random.default_rng(5), total=30, timer_share=0.0)
    assert not report.violations, report.violations
    assert report.kills == 5 and sorted(report.by_phase) == sorted(PHASES)
    assert report.inside_write == 4  # "done" kills after the write returned
    assert report.final_equal and report.final_step == 30
    assert report.stale_temporaries_left == 0


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temporaries_of_dead_writers_are_removed(tmp_path: Path, corpus: Any) -> None:
    dead = tmp_path / f".last.safetensors.tmp-{_dead_pid()}"
    alive = tmp_path / f".best.safetensors.tmp-{1}"  # pid 1 is alive
    other = tmp_path / ".notes.txt"
    for path in (dead, alive, other):
        path.write_bytes(b"partial")
    Trainer(small_model(corpus), corpus, small_config(), tmp_path, echo=lambda m: None)
    assert not dead.exists() and alive.exists() and other.exists()
    assert remove_stale_temporaries(tmp_path / "missing") == []


def test_a_torn_metrics_line_does_not_swallow_the_next_record(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"event": "train", "step": 1}) + "\n" + '{"event": "tra',
                    encoding="utf-8")
    MetricsLog(path).log("checkpoint", step=2)
    records = read_metrics(path)
    assert [r["event"] for r in records] == ["train", "checkpoint"]
    MetricsLog(path).log("stop", step=3)  # a clean file is left as it is
    assert len(path.read_text(encoding="utf-8").splitlines()) == 4
