"""Run folders are never shared by accident (issue 26, items 1 and 6): a new run refuses
a folder holding another run (``--overwrite`` replaces it; without ``--out`` a numbered
folder is taken), a lock refuses a second live trainer, ``--out`` with ``--resume`` is
honoured or refused, and a run written inside a corpus folder does not become corpus
text."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rnnlab.cli import main
from rnnlab.data import load_text
from rnnlab.data.textio import text_files
from rnnlab.train.metrics import read_metrics
from rnnlab.train.state import load_model
from tests.reliability.conftest import TEXT

SMALL = ["--no-progress", "--sample-length", "0", "--embedding-dim", "4", "--batch-size", "4",
         "--bptt", "8"]


def _train(corpus: Path, out: Path | None, *extra: str) -> int:
    where = ["--out", str(out)] if out is not None else []
    return main(["train", "--corpus", str(corpus), *where, *SMALL, *extra])


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "c.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_a_new_run_refuses_a_folder_holding_another_run(tmp_path, corpus, capsys):
    run = tmp_path / "run"
    assert _train(corpus, run, "--hidden-size", "32", "--max-steps", "2") == 0
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    capsys.readouterr()
    # the repro: a smaller model into the same folder, then --resume
    assert _train(corpus, run, "--hidden-size", "8", "--max-steps", "3") == 1
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--overwrite" in err
    assert f"--resume {run / 'last.safetensors'}" in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before  # untouched
    assert main(["train", "--resume", str(run / "last.safetensors"), "--max-steps", "3",
                 "--no-progress", "--sample-length", "0"]) == 0
    capsys.readouterr()
    # --overwrite replaces the run: its files only, and none of the old records remain
    (run / "notes.txt").write_text("mine")
    assert _train(corpus, run, "--hidden-size", "8", "--max-steps", "3", "--overwrite") == 0
    model, _, _ = load_model(run / "last.safetensors")
    assert model.config.hidden_size == 8 and (run / "notes.txt").read_text() == "mine"
    stops = [r for r in read_metrics(run / "metrics.jsonl") if r["event"] == "stop"]
    assert [r["step"] for r in stops] == [3]
    assert main(["train", "--resume", str(run / "last.safetensors"), "--max-steps", "4",
                 "--no-progress", "--sample-length", "0"]) == 0


def test_without_out_a_fresh_numbered_folder_is_taken(tmp_path, corpus, capsys,
                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert _train(corpus, None, "--hidden-size", "32", "--max-steps", "2") == 0
    assert _train(corpus, None, "--hidden-size", "8", "--max-steps", "2") == 0
    out, err = capsys.readouterr()
    first, second = Path("runs/c.txt-lstm"), Path("runs/c.txt-lstm-2")
    assert "runs/c.txt-lstm holds another run; this run goes to runs/c.txt-lstm-2" in err
    assert load_model(first / "last.safetensors")[0].config.hidden_size == 32
    assert load_model(second / "last.safetensors")[0].config.hidden_size == 8
    assert '"run": "runs/c.txt-lstm-2"' in out
    assert _train(corpus, None, "--hidden-size", "16", "--max-steps", "2",
                  "--overwrite") == 0
    assert load_model(first / "last.safetensors")[0].config.hidden_size == 16
    assert not Path("runs/c.txt-lstm-3").exists()


def test_a_locked_folder_is_refused(tmp_path, corpus, capsys):
    run = tmp_path / "run"
    run.mkdir()
    fd = os.open(run / "rnnlab.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another open file: as another process would
        os.write(fd, b"4242\n")
        assert _train(corpus, run, "--max-steps", "2", "--hidden-size", "8") == 1
        err = capsys.readouterr().err
        assert "is in use by another rnnlab trainer (process 4242)" in err
        assert not (run / "metrics.jsonl").exists()
    finally:
        os.close(fd)
    assert _train(corpus, run, "--max-steps", "2", "--hidden-size", "8") == 0


def test_a_second_live_trainer_is_refused(tmp_path, corpus, capsys):
    """Two real processes: the first trains on; the second (a new run with --overwrite,
    and a resume) is refused at once, and the first is not disturbed."""
    run = tmp_path / "run"
    first = subprocess.Popen(
        [sys.executable, "-m", "rnnlab", "train", "--corpus", str(corpus), "--out", str(run),
         *SMALL, "--hidden-size", "8", "--epochs", "1000", "--log-every", "1",
         "--checkpoint-every", "5"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (run / "last.safetensors").exists():
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.05)
        capsys.readouterr()
        assert _train(corpus, run, "--max-steps", "2", "--overwrite") == 1
        assert f"in use by another rnnlab trainer (process {first.pid})" in \
            capsys.readouterr().err
        assert main(["train", "--resume", str(run / "last.safetensors"), "--max-steps", "1",
                     "--no-progress", "--sample-length", "0"]) == 1
        assert f"(process {first.pid})" in capsys.readouterr().err
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGINT)
        _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    records = read_metrics(run / "metrics.jsonl")
    assert records[-1]["event"] == "stop" and records[-1]["reason"] == "interrupted"


def test_out_with_resume_is_honoured_or_refused(tmp_path, corpus, capsys):
    run = tmp_path / "run"
    assert _train(corpus, run, "--max-steps", "2", "--hidden-size", "8") == 0
    last = run / "last.safetensors"
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["train", "--resume", str(last), "--out", str(tmp_path / "elsewhere")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--out" in err and "continues in its own folder" in err and str(run) in err
    assert not (tmp_path / "elsewhere").exists()
    with pytest.raises(SystemExit) as exc:
        main(["train", "--resume", str(last), "--overwrite"])
    assert exc.value.code == 2 and "--overwrite" in capsys.readouterr().err
    # --out naming the run's own folder (any spelling) is what resume does anyway
    assert main(["train", "--resume", str(last), "--out", str(run / "." / ""),
                 "--max-steps", "3", "--no-progress", "--sample-length", "0"]) == 0
    assert json.loads(capsys.readouterr().out.split("\n--- sample")[0])["steps"] == 3
    # a run folder names its last checkpoint
    assert main(["train", "--resume", str(run), "--max-steps", "4", "--no-progress",
                 "--sample-length", "0"]) == 0


# ----------------------------------------------------------- item 6: run in corpus
def test_a_run_inside_the_corpus_folder_is_not_corpus_text(tmp_path, capsys):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text(TEXT[: len(TEXT) // 2])
    (notes / "b.txt").write_text(TEXT[len(TEXT) // 2:])
    before = load_text(notes)
    run = notes / "run"
    assert _train(notes, run, "--max-steps", "3", "--hidden-size", "8") == 0
    assert (run / "metrics.jsonl").exists() and (run / "rnnlab.lock").exists()
    texts, binary = text_files(notes)
    assert texts == [notes / "a.txt", notes / "b.txt"] and binary == []
    after = load_text(notes)
    assert after.description == before.description and after.vocab == before.vocab
    # a folder named by a checkpoint is not walked: --corpus gives it (checked by digest)
    assert main(["train", "--resume", str(run / "last.safetensors"), "--corpus", str(notes),
                 "--max-steps", "5", "--no-progress", "--sample-length", "0"]) == 0
    assert main(["eval", str(run / "last.safetensors"), "--corpus", str(notes)]) == 0


def test_an_older_run_folder_without_a_lock_is_recognised(tmp_path):
    notes = tmp_path / "notes"
    (notes / "old").mkdir(parents=True)
    (notes / "a.txt").write_text(TEXT)
    (notes / "old" / "metrics.jsonl").write_text('{"event": "train"}\n')
    (notes / "old" / "best.safetensors").write_bytes(b"\x08" + b"\x00" * 7 + b"{}")
    (notes / "old" / "README.txt").write_text("what this run was\n")  # kept: the user's
    lone = notes / "other"
    lone.mkdir()
    (lone / "metrics.jsonl").write_text("a user's own file of that name\n")
    texts, _ = text_files(notes)
    assert texts == [notes / "a.txt", notes / "old" / "README.txt",
                     lone / "metrics.jsonl"]
