"""Files written into folders others can write to (issue 26, items 2 and 11): planted
symbolic links are never written through, temporaries have unguessable names, and a
failed write (a full disk, a file size limit) names the file it was writing."""

from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnlab.cli import main
from rnnlab.data import open_ids, safefiles, save_ids
from rnnlab.train import checkpoint as ck
from rnnlab.train.checkpoint import read_checkpoint, write_checkpoint
from tests.reliability.conftest import TEXT

ARRAYS = {"model/w": np.arange(6, dtype=np.float32).reshape(2, 3)}


def _predictable_draws(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The first random part a writer draws is "0" * 16, then "1" * 16, ..."""
    draws = [c * 16 for c in "0123456789"]
    monkeypatch.setattr(safefiles, "_suffix", lambda: draws.pop(0))
    return draws


def _plant(folder: Path, name: str, victim: Path) -> list[Path]:
    """Symbolic links to ``victim`` under the old predictable temporary name and under
    the first name the writer will draw."""
    links = [folder / f".{name}.tmp-{os.getpid()}", folder / f".{name}.tmp-{os.getpid()}.tmp",
             folder / f".{name}.{os.getpid()}.tmp",
             folder / f".{name}.tmp-{os.getpid()}-{'0' * 16}"]
    for link in links:
        link.symlink_to(victim)
    return links


def test_a_checkpoint_is_never_written_through_a_planted_link(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    run = tmp_path / "run"
    run.mkdir()
    links = _plant(run, "last.safetensors", victim)
    draws = _predictable_draws(monkeypatch)
    write_checkpoint(run / "last.safetensors", ARRAYS, {"kind": "test"})
    assert victim.read_text() == "precious\n"
    assert len(draws) == 8  # the planted name was refused, the next one used
    arrays, meta = read_checkpoint(run / "last.safetensors")
    assert meta["kind"] == "test" and np.array_equal(arrays["model/w"], ARRAYS["model/w"])
    assert all(link.is_symlink() for link in links)  # left alone, not deleted
    # a link at the target itself is replaced, not written through
    (run / "best.safetensors").symlink_to(victim)
    write_checkpoint(run / "best.safetensors", ARRAYS, {"kind": "test"})
    assert victim.read_text() == "precious\n"
    assert not (run / "best.safetensors").is_symlink()


def test_temporary_names_are_unguessable_and_new(tmp_path):
    names = {safefiles.temporary_name(tmp_path / "x.npy").name for _ in range(50)}
    assert len(names) == 50
    assert all(n.startswith(f".x.npy.tmp-{os.getpid()}-") for n in names)
    fd, tmp = safefiles.create_temporary(tmp_path / "x.npy")
    os.close(fd)
    mode = tmp.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # the permissions of any new file, not 0600
    assert safefiles.writer_pid(tmp.name) == os.getpid()
    assert safefiles.writer_pid(f".x.npy.tmp-{os.getpid()}") == os.getpid()  # older name
    assert safefiles.writer_pid("x.npy") is None


def test_ids_are_never_written_through_a_planted_link(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    folder = tmp_path / "corpus"
    folder.mkdir()
    _plant(folder, "train.npy", victim)
    _predictable_draws(monkeypatch)
    path = save_ids(folder / "train", np.arange(10))
    assert victim.read_text() == "precious\n"
    assert open_ids(path).tolist() == list(range(10))


def test_stale_temporaries_of_dead_writers_go_links_stay(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    stale_old = tmp_path / f".last.safetensors.tmp-{pid}"
    stale_new = tmp_path / f".last.safetensors.tmp-{pid}-{'a' * 16}"
    link = tmp_path / f".best.safetensors.tmp-{pid}-{'b' * 16}"
    mine = tmp_path / f".last.safetensors.tmp-{os.getpid()}-{'c' * 16}"
    for f in (stale_old, stale_new, mine):
        f.write_bytes(b"x")
    link.symlink_to(tmp_path / "elsewhere")
    removed = ck.remove_stale_temporaries(tmp_path)
    assert sorted(removed) == sorted([stale_old, stale_new])
    assert link.is_symlink() and mine.exists()


def test_metrics_are_not_appended_through_a_link(tmp_path):
    from rnnlab.train.metrics import MetricsLog

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")  # no newline: the torn-line repair would add one
    (tmp_path / "metrics.jsonl").symlink_to(victim)
    with pytest.raises(OSError, match="symbolic link") as info:
        MetricsLog(tmp_path / "metrics.jsonl").log("train", step=1)
    assert info.value.filename == str(tmp_path / "metrics.jsonl")
    assert victim.read_text() == "precious"


class _FullDisk:
    """A file object whose writes fail as on a full disk."""

    def __init__(self, fh):
        self.fh = fh

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self.fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()


def test_a_full_disk_names_the_checkpoint(tmp_path, monkeypatch, capsys):
    from rnnlab.data import safefiles

    monkeypatch.setattr(safefiles, "open", lambda *a, **kw: _FullDisk(open(*a, **kw)),
                        raising=False)
    target = tmp_path / "run" / "last.safetensors"
    with pytest.raises(OSError) as info:
        write_checkpoint(target, ARRAYS, {"kind": "test"})
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert list((tmp_path / "run").iterdir()) == []  # the temporary is gone
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT)
    code = main(["train", "--corpus", str(corpus), "--out", str(tmp_path / "r"),
                 "--max-steps", "2", "--no-progress", "--sample-length", "0",
                 "--hidden-size", "8", "--batch-size", "4", "--bptt", "8"])
    assert code == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'r' / 'last.safetensors'}: No space left on device" in err


def test_a_full_disk_names_the_ids_file(tmp_path, monkeypatch):
    from rnnlab.data import ids

    monkeypatch.setattr(ids, "open", lambda *a, **kw: _FullDisk(open(*a, **kw)),
                        raising=False)
    with pytest.raises(OSError) as info:
        save_ids(tmp_path / "ids", np.arange(5))
    assert info.value.filename == str(tmp_path / "ids.npy")
    assert "No space left on device" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_file_size_limit_names_the_file_in_a_real_run(tmp_path):
    """The kernel refuses the write (RLIMIT_FSIZE, SIGXFSZ ignored: EFBIG), as a full
    disk would: the one-line error names the checkpoint being written."""
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT)
    run = tmp_path / "run"

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    result = subprocess.run(
        [sys.executable, "-m", "rnnlab", "train", "--corpus", str(corpus), "--out", str(run),
         "--max-steps", "2", "--no-progress", "--sample-length", "0", "--hidden-size", "32",
         "--batch-size", "4", "--bptt", "8"],
        capture_output=True, text=True, preexec_fn=limit, timeout=120)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"rnnlab: error: {run / 'last.safetensors'}: File too large", last
    assert "Traceback" not in result.stderr
    assert not list(run.glob(".*.tmp-*"))
