"""load_stdlib: the offline corpus built from this Python's standard library source."""

from __future__ import annotations

import re

import numpy as np
import pytest

from rnnlab.data import DataError, load_stdlib
from rnnlab.data.stdlib import stdlib_files, stdlib_root


def make_fake_stdlib(root):
    (root / "json").mkdir(parents=True)
    (root / "site-packages" / "numpy").mkdir(parents=True)
    (root / "__pycache__").mkdir()
    (root / "os.py").write_text("import sys\n" * 20, encoding="utf-8")
    (root / "abc.py").write_text("class ABC:\n    pass", encoding="utf-8")
    (root / "json" / "__init__.py").write_text("def dumps(x):\r\n    return x\r\n",
                                               encoding="utf-8")
    (root / "latin.py").write_bytes(b"# caf\xe9\n")
    (root / "blob.py").write_bytes(b"\x00\x01")
    (root / "notes.txt").write_text("not python\n", encoding="utf-8")
    (root / "site-packages" / "numpy" / "core.py").write_text("third party\n", encoding="utf-8")
    (root / "__pycache__" / "os.cpython-311.py").write_text("cached\n", encoding="utf-8")


def test_fake_stdlib_is_read_in_order_skipping_the_rest(tmp_path):
    make_fake_stdlib(tmp_path)
    names = [p.relative_to(tmp_path).as_posix() for p in stdlib_files(tmp_path)]
    assert names == ["abc.py", "blob.py", "json/__init__.py", "latin.py", "os.py"]
    c = load_stdlib(root=tmp_path, split=(0.8, 0.1, 0.1))
    text = "class ABC:\n    pass\n" + "def dumps(x):\n    return x\n" + "import sys\n" * 20
    vocab = c.vocab
    ids = np.concatenate(list(c.parts.values()))
    assert len(ids) == len(text)
    np.testing.assert_array_equal(c.train, vocab.encode(text[:len(c.train)]))
    assert "3 .py files (2 unreadable or non-UTF-8 skipped)" in c.description
    assert f"{len(text):,} characters" in c.description
    assert f"vocabulary {len(vocab)}" in c.description


def test_max_chars_cuts_exactly(tmp_path):
    make_fake_stdlib(tmp_path)
    c = load_stdlib(50, root=tmp_path, split=(0.6, 0.2, 0.2))
    assert len(c.train) + len(c.valid) + len(c.test) == 50
    assert "3 .py files" in c.description and "cut at max_chars=50" in c.description


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="max_chars expected an int >= 1, got 0"):
        load_stdlib(0)
    with pytest.raises(TypeError, match="max_chars expected an int or None, got float"):
        load_stdlib(1e6)
    with pytest.raises(DataError, match="no such folder"):
        load_stdlib(root=tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty corpus"):
        load_stdlib(root=tmp_path / "empty")


def test_real_stdlib_prefix_is_deterministic():
    a = load_stdlib(max_chars=100_000)
    b = load_stdlib(max_chars=100_000)
    assert a.vocab == b.vocab and a.level == "char" and a.name == "stdlib"
    for x, y in zip(a.parts.values(), b.parts.values(), strict=True):
        np.testing.assert_array_equal(x, y)
    assert len(a.train) == 90_000 and a.train.dtype == np.int32
    assert a.source == str(stdlib_root())
    assert "site-packages" not in "".join(str(p) for p in stdlib_files()[:50])
    assert re.search(r"\d[\d,]* \.py files", a.description)


@pytest.mark.slow
def test_real_stdlib_whole():
    c = load_stdlib()
    total = len(c.train) + len(c.valid) + len(c.test)
    assert total > 1_000_000
    assert f"{total:,} characters" in c.description
    assert f"vocabulary {len(c.vocab):,}" in c.description
