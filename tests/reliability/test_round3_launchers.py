"""Issue 30 (reliability, third round), the items whose fix lives in the launchers that
"A training stack a reader can hold in their head" moves: written first, against the
command line only (``python -m rnnlab`` in a subprocess), so that they survived the move,
and fixed once in the shared prologue (:mod:`rnnlab.train.launch`: read_named_file,
check_unchanged, check_output_file, the resume checks) and the trainer (the options every
process must share).

The checkpoints of items 2 and 3 are edited as a forger would (the document's checksum
written again, :func:`tests.ckptdoc.rewrite_document`): every string of the document that
names the data file is pointed at another file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.ckptdoc import rewrite_document

SECRET = "secret_token=abc123XYZ"
PASSWD = "root:x:0:0:root:/root:/bin/bash"
PAIRS = "".join(f"{a}+{b}_{a + b}\n" for a in range(8) for b in range(6))  # 48 pairs
SERIES = "t,y\n" + "".join(f"{i},{(i * 37) % 11 / 10:.2f}\n" for i in range(80))


def rnnlab(cwd: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "rnnlab", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def _point_at(path: Path, old: str, new: str) -> None:
    """Every string of the checkpoint's document equal to ``old`` (or naming the same
    file) made ``new``."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str) and node and (node == old or os.path.abspath(node) == old):
            return new
        return node

    def edit(document: dict[str, Any]) -> None:
        changed = walk(document)
        assert changed != document, f"the document does not name {old}"
        document.clear()
        document.update(changed)

    rewrite_document(path, edit)


def _seq2seq_run(tmp_path: Path, *extra: str) -> tuple[Path, Path]:
    data = tmp_path / "pairs.txt"
    data.write_text(PAIRS, encoding="utf-8")
    out = tmp_path / "runs" / "s.safetensors"
    done = rnnlab(tmp_path, "seq2seq", "train", "--task", str(data), "--epochs", "1",
                  "--hidden-size", "8", "--embedding-dim", "4", "--batch-size", "8",
                  "--out", str(out), "--quiet", *extra)
    assert done.returncode == 0, done.stderr
    return data, out


def _forecast_run(tmp_path: Path, *extra: str) -> tuple[Path, Path]:
    csv = tmp_path / "s.csv"
    csv.write_text(SERIES, encoding="utf-8")
    out = tmp_path / "runs" / "f"
    done = rnnlab(tmp_path, "train", "--task", "forecast", "--csv", str(csv), "--column", "y",
                  "--window", "4", "--hidden-size", "6", "--epochs", "1", "--batch-size",
                  "8", "--out", str(out), "--no-progress", "--plot", "", *extra)
    assert done.returncode == 0, done.stderr
    return csv, out


def _secret(tmp_path: Path, text: str) -> Path:
    secret = tmp_path / "elsewhere" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text(text, encoding="utf-8")
    return secret


def _said(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout + done.stderr


# ------------------------------------------------- items 2, 3: paths a checkpoint names
def test_item2_seq2seq_does_not_read_or_echo_a_file_its_checkpoint_names(tmp_path):
    data, out = _seq2seq_run(tmp_path)
    secret = _secret(tmp_path, f"{PASSWD}\n")  # no '_': read_pairs refuses the line
    for name in ("best.safetensors", "last.safetensors"):
        _point_at(out.with_suffix("") / name, str(data), str(secret))
    _point_at(out, str(data), str(secret))
    for args in (("seq2seq", "eval", str(out)),
                 ("seq2seq", "train", "--resume", str(out.with_suffix("")), "--epochs", "2",
                  "--quiet")):
        done = rnnlab(tmp_path, *args)
        assert PASSWD not in _said(done), args
        assert done.returncode != 0, args  # the data is not the run's: asks for the path


def test_item3_the_forecaster_does_not_echo_the_csv_its_checkpoint_names(tmp_path):
    csv, out = _forecast_run(tmp_path)
    secret = _secret(tmp_path, f"{SECRET},b\n1,2\n")
    _point_at(out / "last.safetensors", str(csv), str(secret))
    done = rnnlab(tmp_path, "train", "--task", "forecast", "--resume",
                  str(out / "last.safetensors"), "--no-progress")
    assert SECRET not in _said(done)
    assert done.returncode != 0


# ----------------------------------------------------------- item 7: a mistyped resume
def test_item7_a_mistyped_resume_leaves_no_lock_behind(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    for target in ("typo/last.safetensors", "typo", "last.safetensors"):
        done = rnnlab(work, "train", "--resume", target, "--no-progress")
        assert done.returncode != 0, target
    leftovers = sorted(str(p.relative_to(work)) for p in work.rglob("rnnlab.lock"))
    assert leftovers == [] and not (work / "typo").exists(), leftovers


# ------------------------------------------------ item 9: seq2seq resume and options
def test_item9_seq2seq_resume_refuses_options_it_cannot_change(tmp_path):
    _, out = _seq2seq_run(tmp_path)
    done = rnnlab(tmp_path, "seq2seq", "train", "--resume", str(out.with_suffix("")),
                  "--lr", "0.5", "--batch-size", "7", "--hidden-size", "99", "--decoder",
                  "plain", "--epochs", "2", "--quiet")
    assert done.returncode != 0
    for flag in ("--lr", "--batch-size", "--hidden-size", "--decoder"):
        assert flag in done.stderr, flag


# ------------------------------------------------ item 15: output paths checked first
def test_item15_seq2seq_out_without_a_suffix_fails_before_training_or_works(tmp_path):
    data = tmp_path / "pairs.txt"
    data.write_text(PAIRS, encoding="utf-8")
    out = tmp_path / "runs" / "name"
    done = rnnlab(tmp_path, "seq2seq", "train", "--task", str(data), "--epochs", "1",
                  "--hidden-size", "8", "--embedding-dim", "4", "--batch-size", "8",
                  "--out", str(out), "--quiet")
    assert "Is a directory" not in done.stderr
    trained = any((tmp_path / "runs").rglob("metrics.jsonl"))
    assert (done.returncode == 0) or not trained, done.stderr


def test_item15_the_forecast_plot_path_is_checked_before_training(tmp_path):
    csv = tmp_path / "s.csv"
    csv.write_text(SERIES, encoding="utf-8")
    out = tmp_path / "runs" / "f"
    done = rnnlab(tmp_path, "train", "--task", "forecast", "--csv", str(csv), "--column", "y",
                  "--window", "4", "--hidden-size", "6", "--epochs", "1", "--batch-size", "8",
                  "--out", str(out), "--no-progress", "--plot", "/no/such/dir/x.png")
    assert done.returncode != 0 and "/no/such/dir" in done.stderr
    assert not (out / "last.safetensors").exists()  # refused before any training


# ------------------------------------------------- item 18: the launchers' messages
@pytest.mark.parametrize("flag", ["--seed", "--split-seed", "--data-seed"])
def test_item18_a_negative_seq2seq_seed_names_its_option(tmp_path, flag):
    data = tmp_path / "pairs.txt"
    data.write_text(PAIRS, encoding="utf-8")
    task = ("--task", "addition", "--source", "generated", "--n", "40") \
        if flag == "--data-seed" else ("--task", str(data))
    done = rnnlab(tmp_path, "seq2seq", "train", *task, "--epochs", "1", "--hidden-size", "8",
                  "--out", str(tmp_path / "runs" / "s.safetensors"), "--quiet", flag, "-1")
    assert done.returncode != 0 and flag in done.stderr, done.stderr


def test_item18_generate_names_its_seed_option(tmp_path):
    train = [*_corpus(tmp_path), "--batch-size", "4", "--max-steps", "2", "--out", "lm"]
    assert rnnlab(tmp_path, *train).returncode == 0
    done = rnnlab(tmp_path, "generate", "lm/last.safetensors", "--seed", "-1")
    assert done.returncode != 0 and "--seed" in done.stderr, done.stderr


def test_item18_translate_reports_the_plot_file_it_wrote(tmp_path):
    pytest.importorskip("matplotlib")
    _, out = _seq2seq_run(tmp_path, "--decoder", "attention")
    done = rnnlab(tmp_path, "seq2seq", "translate", str(out), "1+2", "--plot",
                  str(tmp_path / "somedir"))
    assert done.returncode == 0, done.stderr
    written = [p for p in tmp_path.iterdir() if p.name.startswith("somedir")]
    assert written and all(str(p) in _said(done) for p in written), _said(done)


# ------------------------------------------------------ item 18: under MPI (mpich)
MPIEXEC = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) \
    or shutil.which("mpiexec")
needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (pip install mpich)")


def _mpi(cwd: Path, *parts: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``mpiexec -n 1 PART0 : -n 1 PART1 ...``: one process per part (the options of each
    rank may differ), every part a command line of ``python -m rnnlab``."""
    pytest.importorskip("mpi4py", reason="mpi4py is not installed")
    cmd: list[str] = [str(MPIEXEC)]
    for k, part in enumerate(parts):
        cmd += ([":"] if k else []) + ["-n", "1", sys.executable, "-m", "rnnlab", *part]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _corpus(tmp_path: Path) -> list[str]:
    (tmp_path / "c.txt").write_text("the quick brown fox jumps over the lazy dog\n" * 40)
    return ["train", "--corpus", "c.txt", "--hidden-size", "8", "--embedding-dim", "4",
            "--bptt", "8", "--no-progress", "--sample-length", "0"]


@needs_mpi
def test_item18_under_mpi_an_error_is_printed_once(tmp_path):
    _corpus(tmp_path)
    bad = ["train", "--corpus", "missing.txt", "--no-progress", "--out", "r"]
    done = _mpi(tmp_path, bad, bad)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.startswith("rnnlab: error:")]
    assert len(lines) == 1, done.stderr


@needs_mpi
def test_item18_under_mpi_ranks_with_other_options_end_in_one_rnnlab_line(tmp_path):
    base = [*_corpus(tmp_path), "--batch-size", "4", "--max-steps", "2", "--out", "r"]
    done = _mpi(tmp_path, [*base, "--hidden-size", "8"], [*base, "--hidden-size", "12"])
    assert done.returncode != 0
    assert "Message truncated" not in done.stderr and "Traceback" not in done.stderr
    assert sum(line.startswith("rnnlab: error:") for line in done.stderr.splitlines()) == 1


@needs_mpi
def test_item18_a_process_count_that_does_not_divide_the_batch_says_so(tmp_path):
    base = [*_corpus(tmp_path), "--batch-size", "4", "--max-steps", "2", "--out", "r"]
    assert rnnlab(tmp_path, *base).returncode == 0
    resume = ["train", "--resume", "r/last.safetensors", "--max-steps", "4", "--no-progress",
              "--sample-length", "0"]
    done = _mpi(tmp_path, resume, resume, resume)
    assert done.returncode != 0
    assert "does not fit its corpus" not in done.stderr
    assert "3 processes" in done.stderr and "batch" in done.stderr, done.stderr
