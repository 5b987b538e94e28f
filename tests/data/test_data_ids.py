"""save_ids / open_ids / encode_to_npy: .npy files written in chunks, opened memory-mapped."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.data import DataError, Vocab, encode_to_npy, load_text, open_ids, save_ids


def test_save_and_open_array_roundtrip(tmp_path):
    ids = np.arange(1000, dtype=np.int64) % 37
    path = save_ids(tmp_path / "ids", ids)
    assert path.name == "ids.npy"
    mm = open_ids(path)
    assert isinstance(mm, np.memmap) and mm.dtype == np.int32 and mm.shape == (1000,)
    np.testing.assert_array_equal(mm, ids)
    np.testing.assert_array_equal(np.load(path), ids)  # plain numpy reads it too
    loaded = open_ids(path, mmap=False)
    assert not isinstance(loaded, np.memmap)


def test_save_chunks_of_unknown_total_length(tmp_path):
    rng = np.random.default_rng(0)
    chunks = [rng.integers(0, 500, size=n) for n in (0, 7, 1, 300, 0, 42)]
    path = save_ids(tmp_path / "c.npy", (c for c in chunks), dtype=np.int64)
    out = open_ids(path)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, np.concatenate(chunks))


def test_save_list_of_ints_and_empty(tmp_path):
    np.testing.assert_array_equal(open_ids(save_ids(tmp_path / "l.npy", [3, 1, 2])), [3, 1, 2])
    assert open_ids(save_ids(tmp_path / "e.npy", [])).shape == (0,)


def test_save_from_memmap_source(tmp_path):
    big = np.lib.format.open_memmap(tmp_path / "src.npy", mode="w+", dtype=np.int32,
                                    shape=(5000,))
    big[:] = np.arange(5000) % 11
    big.flush()
    src = open_ids(tmp_path / "src.npy")
    np.testing.assert_array_equal(open_ids(save_ids(tmp_path / "dst.npy", src)), src)


def test_save_errors_leave_no_file(tmp_path):
    with pytest.raises(DataError, match=r"ids expected in \[0, 2147483647\] for int32, got -1"):
        save_ids(tmp_path / "neg.npy", np.array([1, -1]))
    with pytest.raises(DataError, match="got 2147483648 in chunk 0"):
        save_ids(tmp_path / "big.npy", np.array([2**31]))
    with pytest.raises(TypeError, match="chunk 1 expected a 1-D integer array"):
        save_ids(tmp_path / "f.npy", [np.array([1]), np.array([0.5])])
    with pytest.raises(ValueError, match="1-D"):
        save_ids(tmp_path / "2d.npy", np.zeros((2, 2), dtype=np.int32))
    with pytest.raises(TypeError, match="integer dtype"):
        save_ids(tmp_path / "x.npy", [1], dtype=np.float32)
    assert list(tmp_path.iterdir()) == []


def test_open_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        open_ids(tmp_path / "missing.npy")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(DataError, match=r"not a readable \.npy file"):
        open_ids(tmp_path / "junk.npy")
    np.save(tmp_path / "f.npy", np.zeros(3, dtype=np.float32))
    with pytest.raises(DataError, match="expected a 1-D integer array"):
        open_ids(tmp_path / "f.npy")


@pytest.mark.parametrize("level", ["char", "word"])
def test_encode_to_npy_matches_load_text(tmp_path, level):
    folder = tmp_path / "txt"
    folder.mkdir()
    (folder / "a.txt").write_text("one two three\r\nfour five\n" * 30, encoding="utf-8")
    (folder / "b.txt").write_text("six seven\neight", encoding="utf-8")
    corpus = load_text(folder, level)
    vocab = Vocab.from_dict(corpus.vocab.to_dict())
    ids = encode_to_npy(folder, vocab, tmp_path / "all.npy")
    assert isinstance(ids, np.memmap)
    np.testing.assert_array_equal(ids, np.concatenate(list(corpus.parts.values())))
