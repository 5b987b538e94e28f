"""PTB and tiny-shakespeare: local lookup, hash checks, (fake) downloads, published facts.

The network is never used: ``conftest.py`` replaces ``pooch.retrieve`` by a function that
raises, and the download tests below replace it by a fake that writes the file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pooch
import pytest

from rnnlab.data import EOS, UNK, DataError, load_corpus, load_ptb, load_tinyshakespeare, remote
from rnnlab.data.remote import PTB_FILES, SHAKESPEARE_FILE, RemoteFile, fetch

TINY = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 20
FAKE_PTB = {"train": " the cat sat \n the dog sat \n a <unk> ran \n",
            "valid": " the cat ran \n", "test": " a dog sat \n"}


def fake_remote(tmp_path: Path, content: bytes = b"hello\n") -> RemoteFile:
    return RemoteFile("thing", "thing.txt", "https://example.invalid/thing.txt",
                      hashlib.sha256(content).hexdigest())


def write_fake_ptb(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for part, text in FAKE_PTB.items():
        (folder / f"ptb.{part}.txt").write_text(text, encoding="utf-8")


# ------------------------------------------------------------------ lookup
@pytest.mark.parametrize("layout", ["direct", "subfolder"])
def test_local_copy_found_in_data_dir(tmp_path, layout):
    r = fake_remote(tmp_path)
    where = tmp_path / ("thing" if layout == "subfolder" else "")
    where.mkdir(exist_ok=True)
    (where / "thing.txt").write_bytes(b"hello\n")
    assert fetch(r, tmp_path) == where / "thing.txt"


def test_local_copy_found_through_env(tmp_path, monkeypatch):
    r = fake_remote(tmp_path)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "thing.txt").write_bytes(b"hello\n")
    monkeypatch.setenv("RNNLAB_DATA", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    assert fetch(r) == tmp_path / "b" / "thing.txt"


def test_data_dir_is_looked_at_before_env(tmp_path, monkeypatch):
    r = fake_remote(tmp_path)
    for name in ("arg", "env"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "thing.txt").write_bytes(b"hello\n")
    monkeypatch.setenv("RNNLAB_DATA", str(tmp_path / "env"))
    assert fetch(r, tmp_path / "arg").parent.name == "arg"


def test_hash_mismatch_and_verify_false(tmp_path):
    r = fake_remote(tmp_path)
    (tmp_path / "thing.txt").write_bytes(b"tampered\n")
    with pytest.raises(DataError, match=rf"thing\.txt: sha256 [0-9a-f]{{64}} does not match "
                                        rf"the published {r.sha256}.*verify=False"):
        fetch(r, tmp_path)
    assert fetch(r, tmp_path, verify=False) == tmp_path / "thing.txt"


# ---------------------------------------------------------------- download
def test_download_with_pooch_into_cache(tmp_path, monkeypatch):
    calls = []

    def fake_retrieve(url, known_hash=None, fname=None, path=None, **kw):
        calls.append((url, known_hash, fname, Path(path), kw))
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / fname).write_text(TINY, encoding="utf-8")
        return str(Path(path) / fname)

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    monkeypatch.setenv("RNNLAB_CACHE", str(tmp_path / "cache"))
    c = load_tinyshakespeare(tmp_path / "empty", verify=False)
    url, known_hash, fname, path, _ = calls[0]
    assert url == SHAKESPEARE_FILE.url and fname == "input.txt" and known_hash is None
    assert path == tmp_path / "cache" / "tinyshakespeare"
    assert c.source == str(path / "input.txt") and c.level == "char"
    fetch(SHAKESPEARE_FILE, tmp_path / "empty")
    assert calls[1][1] == f"sha256:{SHAKESPEARE_FILE.sha256}"


def test_cache_dir_defaults_to_pooch_os_cache(monkeypatch):
    monkeypatch.delenv("RNNLAB_CACHE")
    assert remote.cache_dir() == Path(pooch.os_cache("rnnlab"))


def test_download_failure_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNLAB_DATA", str(tmp_path / "envdir"))
    with pytest.raises(DataError) as info:
        load_ptb(tmp_path / "mine")
    msg = str(info.value)
    assert "ptb.train.txt (ptb) is not available offline and could not be downloaded" in msg
    for place in (tmp_path / "mine" / "ptb.train.txt", tmp_path / "mine" / "ptb" /
                  "ptb.train.txt", tmp_path / "envdir" / "ptb" / "ptb.train.txt"):
        assert str(place) in msg
    assert PTB_FILES["train"].url in msg and "ConnectionError: network disabled" in msg
    assert "data_dir=" in msg and "RNNLAB_DATA" in msg and PTB_FILES["train"].sha256 in msg


def test_download_failure_without_any_local_dir():
    with pytest.raises(DataError, match=r"no data_dir= given and \$RNNLAB_DATA is not set"):
        load_tinyshakespeare()


# --------------------------------------------------------------- fake data
def test_load_ptb_from_a_small_fake_copy(tmp_path):
    write_fake_ptb(tmp_path / "ptb")
    c = load_ptb(tmp_path, verify=False)
    assert c.vocab.itos[:3] == [UNK, EOS, "sat"]
    assert len(c.train) == 12 and c.vocab.decode_text(c.valid) == "the cat ran\n"
    with pytest.raises(DataError, match="does not match the published"):
        load_ptb(tmp_path)


# ------------------------------------------------------------ real copies
def test_ptb_published_facts(ptb_dir):
    c = load_ptb(ptb_dir)
    assert (len(c.train), len(c.valid), len(c.test)) == (929_589, 73_760, 82_430)
    assert len(c.vocab) == 10_000 and c.vocab.level == "word"
    assert (c.vocab.unk_id, c.vocab.eos_id) == (0, 1)
    assert c.train.dtype == np.int32
    assert int((c.train == c.vocab.eos_id).sum()) == 42_068  # one <eos> per line
    assert "929,589" in c.description and "10,000" in c.description
    first = (ptb_dir / "ptb" / "ptb.valid.txt").read_text(encoding="utf-8").split("\n")[0]
    assert c.vocab.decode(c.valid[:len(first.split()) + 1]) == [*first.split(), EOS]


def test_ptb_through_env_and_dispatcher(ptb_dir, monkeypatch):
    monkeypatch.setenv("RNNLAB_DATA", str(ptb_dir))
    assert len(load_corpus("PTB").train) == 929_589


def test_tinyshakespeare_facts(shakespeare_dir):
    c = load_corpus("shakespeare", data_dir=shakespeare_dir)
    total = len(c.train) + len(c.valid) + len(c.test)
    assert total == 1_115_394 and c.level == "char"
    assert len(c.vocab) == 67  # 65 characters + <unk>, <eos>
    assert (len(c.train), len(c.valid)) == (1_003_855, 55_769)
    assert c.vocab.decode_text(c.train[:14]) == "First Citizen:"
    w = load_tinyshakespeare(shakespeare_dir, level="word", split=(0.8, 0.1, 0.1))
    assert w.level == "word" and w.vocab.eos_id == 1
