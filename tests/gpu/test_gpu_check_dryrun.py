"""The GPU check's dry run (``benchmarks/gpu_check.py --dry-run``): every part of the
one command meant for a real card runs here on the fake CuPy module, so that the GPU
call does not fail on a typo. It needs no GPU (nothing here is marked ``gpu``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PARTS = {"env", "tests", "bench-D", "char-train", "char-eval-cpu", "char-gen-cpu", "ptb"}


def test_dry_run_runs_every_part_and_writes_the_summary(tmp_path):
    pytest.importorskip("torch")  # the benchmark part compares with PyTorch (on the CPU here)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--out", str(out),
         "--dry-run", "--work", str(tmp_path / "work")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=280, check=False)
    said = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert proc.returncode in (0, 1), said  # 1: a part failed (reported, checked below)
    summary = json.loads((out / "gpu_check_summary.json").read_text(encoding="utf-8"))
    assert summary["dry_run"] is True
    rows = {row["part"]: row for row in summary["rows"]}
    assert set(rows) == PARTS, said
    for part in PARTS - {"tests"}:
        assert rows[part]["status"] == "ok", (part, rows[part]["result"], said)

    # the tests part: four gpu-marked tests on the fake device, the second made to hang;
    # the hang is cut by the per-test timeout and the others still run (pass or fail:
    # what they find is the suite's business, that they ran is the harness's)
    tests = rows["tests"]["details"]
    hung = tests["selftest_hang"]
    assert tests["tests"][hung]["outcome"] == "timeout", rows["tests"]["result"]
    others = [t["outcome"] for nodeid, t in tests["tests"].items() if nodeid != hung]
    assert len(others) == 3 and set(others) <= {"passed", "failed"}, tests["tests"]
    assert tests["runs"] == 2

    bench = rows["bench-D"]["details"]
    assert bench["rnnlab_tok_s"] > 0 and bench["torch_tok_s"] > 0
    assert rows["char-train"]["details"]["loss_falling"]
    assert rows["char-eval-cpu"]["details"]["relative_difference"] <= 1e-3
    assert rows["char-gen-cpu"]["details"]["sample"].startswith("def ")
    assert rows["ptb"]["details"]["data"].startswith("SYNTHETIC")
    assert rows["ptb"]["details"]["loss_falling"]

    markdown = (out / "gpu_check_summary.md").read_text(encoding="utf-8")
    assert "DRY RUN" in markdown and "| char-train | ok |" in markdown
    assert "rnnlab GPU check (DRY RUN" in proc.stdout  # the table printed at the end
    # OUT holds three files (the device tool brings back at most eight), the logs packed
    assert sorted(p.name for p in out.iterdir()) == [
        "gpu_check_logs.tar.gz", "gpu_check_summary.json", "gpu_check_summary.md"]
    with tarfile.open(out / "gpu_check_logs.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"logs/env.out.txt", "logs/ptb-metrics.jsonl", "logs/char-metrics.jsonl",
            "logs/tests-1.jsonl.traceback.txt"} <= names
