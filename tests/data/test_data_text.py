"""Reading text (UTF-8 checks, folders) and load_text / load_corpus / Corpus.save."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.data import EOS, UNK, Corpus, DataError, Vocab, load_corpus, load_text
from rnnlab.data.corpus import split_bounds
from rnnlab.data.textio import iter_text, read_text, text_files


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------- reading
def test_non_utf8_reports_byte_offset(tmp_path):
    f = write(tmp_path / "bad.txt", "héllo\n".encode() + b"caf\xe9 au lait\n")
    with pytest.raises(DataError, match=r"bad\.txt: not valid UTF-8 at byte offset 10 \(bytes e9"):
        read_text(f)


@settings(max_examples=40, deadline=None)
@given(prefix=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
       chunk=st.integers(min_value=1, max_value=9))
def test_byte_offset_is_exact_across_chunks(tmp_path_factory, prefix, chunk):
    data = prefix.encode("utf-8")
    f = write(tmp_path_factory.mktemp("t") / "x.txt", data + b"\xff tail")
    if b"\x00" in data:
        return
    with pytest.raises(DataError, match=rf"byte offset {len(data):,} "):
        list(iter_text(f, chunk_bytes=chunk))


def test_truncated_multibyte_at_end_reports_its_offset(tmp_path):
    f = write(tmp_path / "cut.txt", b"ab" + "é".encode()[:1])
    with pytest.raises(DataError, match="byte offset 2 "):
        read_text(f)


def test_binary_file_is_reported(tmp_path):
    f = write(tmp_path / "blob.bin", b"abc\x00\x01\x02")
    with pytest.raises(DataError, match=r"binary file \(a NUL byte at byte offset 3\)"):
        read_text(f)
    with pytest.raises(DataError, match="binary"):
        load_text(f)


@settings(max_examples=40, deadline=None)
@given(text=st.text(alphabet="ab\r\n é", max_size=40), chunk=st.integers(1, 7))
def test_chunked_reading_normalises_newlines_like_python(tmp_path_factory, text, chunk):
    f = write(tmp_path_factory.mktemp("t") / "x.txt", "\ufeff" + text)
    pieces = list(iter_text(f, chunk_bytes=chunk))
    expected = text.replace("\r\n", "\n").replace("\r", "\n")
    assert "".join(pieces) == expected
    assert all(p.endswith("\n") for p in pieces[:-1])


def test_folder_listing_sorted_skips_hidden_and_binary(tmp_path):
    write(tmp_path / "b" / "z.txt", "z\n")
    write(tmp_path / "a.txt", "a\n")
    write(tmp_path / "b" / "a.txt", "ba\n")
    write(tmp_path / ".hidden.txt", "h\n")
    write(tmp_path / ".git" / "x.txt", "g\n")
    write(tmp_path / "img.png", b"\x89PNG\x00\x00")
    texts, binary = text_files(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in texts] == ["a.txt", "b/a.txt", "b/z.txt"]
    assert [p.name for p in binary] == ["img.png"]
    assert text_files(tmp_path, suffixes=(".txt",))[1] == []
    with pytest.raises(DataError, match=r"no text file with suffix \['\.png'\] \(1 binary"):
        text_files(tmp_path, suffixes=(".png",))
    with pytest.raises(DataError, match="no such file or folder"):
        text_files(tmp_path / "missing")


# ------------------------------------------------------------------ load_text
def test_load_text_char_level_split_and_vocab(tmp_path):
    text = "".join("abcdefg\n"[i % 8] for i in range(104))
    f = write(tmp_path / "c.txt", text)
    c = load_text(f, "char", split=(0.8, 0.1, 0.1))  # bounds 83.2 -> 83, 93.6 -> 94
    assert (len(c.train), len(c.valid), len(c.test)) == (83, 11, 10)
    assert c.train.dtype == np.int32 and c.level == "char" and c.name == "c.txt"
    ids = np.concatenate([c.train, c.valid, c.test])
    assert c.vocab.decode_text(ids) == text
    assert c.vocab.itos[:2] == [UNK, EOS]
    assert "104 characters" in c.description and "vocabulary" in c.description
    assert "Corpus(name='c.txt'" in repr(c)


def test_vocab_comes_from_training_part_only(tmp_path):
    f = write(tmp_path / "w.txt", "a b a b a b a b\nzz\n")
    c = load_text(f, "word", split=(0.8, 0.1, 0.1))
    assert "zz" not in c.vocab
    assert c.vocab.unk_id in c.test.tolist() or c.vocab.unk_id in c.valid.tolist()


def test_load_text_word_level_with_cutoffs(tmp_path):
    f = write(tmp_path / "w.txt", "the cat sat\nthe dog sat\nthe end\n" * 4)
    c = load_text(f, "word", split=(0.5, 0.25, 0.25), min_freq=4)
    assert c.vocab.itos == [UNK, EOS, "the", "sat"]
    assert c.vocab.decode(c.train[:4]) == ["the", UNK, "sat", EOS]
    small = load_text(f, "word", split=(0.5, 0.25, 0.25), max_size=3)
    assert small.vocab.itos == [UNK, EOS, "the"]


def test_load_text_folder_is_deterministic_and_files_end_with_newline(tmp_path):
    write(tmp_path / "d" / "2.txt", "second first")
    write(tmp_path / "d" / "1.txt", "first second\n")
    write(tmp_path / "d" / "logo.bin", b"\x00\x01")
    c1 = load_text(tmp_path / "d", "word", split=(0.5, 0.25, 0.25))
    c2 = load_text(tmp_path / "d", "word", split=(0.5, 0.25, 0.25))
    ids = np.concatenate(list(c1.parts.values()))
    assert c1.vocab.decode_text(ids) == "first second\nsecond first\n"
    assert all(np.array_equal(a, b) for a, b in zip(c1.parts.values(), c2.parts.values(),
                                                    strict=True))
    assert "2 text files, 1 binary skipped" in c1.description


def test_load_text_with_existing_vocab(tmp_path):
    f = write(tmp_path / "t.txt", "abcabcabcabcxyz\n")
    v = Vocab.build("abc", "char")
    c = load_text(f, vocab=v, split=(0.6, 0.2, 0.2))
    assert c.vocab is v and c.level == "char"
    assert c.vocab.unk_id in c.test.tolist()
    strict = Vocab.build("abc\n", "char", specials=(EOS,))
    with pytest.raises(DataError, match=r"t\.txt: Vocab\.encode: .*no '<unk>'.*'x'"):
        load_text(f, vocab=strict)
    with pytest.raises(DataError, match="expected a word-level vocabulary, got a char-level"):
        load_text(f, "word", vocab=v)
    with pytest.raises(TypeError, match="vocab expected a Vocab"):
        load_text(f, vocab={"itos": []})


@pytest.mark.parametrize("content", ["", "\n\n  \n", "\ufeff"])
def test_empty_corpus(tmp_path, content):
    f = write(tmp_path / "e.txt", content)
    with pytest.raises(DataError, match="empty corpus"):
        load_text(f)


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty corpus, the folder holds no text file"):
        load_text(tmp_path / "empty")
    write(tmp_path / "bin" / "x.dat", b"\x00")
    with pytest.raises(DataError, match=r"no text file \(1 binary or unreadable files skipped"):
        load_text(tmp_path / "bin")


def test_non_utf8_file_in_folder(tmp_path):
    write(tmp_path / "a.txt", "ok\n")
    write(tmp_path / "b.txt", b"ab\xc3\x28")
    with pytest.raises(DataError, match=r"b\.txt: not valid UTF-8 at byte offset 2"):
        load_text(tmp_path)


def test_split_that_leaves_a_part_empty(tmp_path):
    f = write(tmp_path / "s.txt", "abcdefghi")
    with pytest.raises(DataError, match=r"split=\(0\.9, 0\.05, 0\.05\) of 10 tokens leaves "
                                        r"the test part empty"):
        load_text(f)
    assert split_bounds(10, (0.5, 0.3, 0.2)) == (5, 8)
    with pytest.raises(DataError, match="leaves the test part empty"):
        split_bounds(3, (0.5, 0.4, 0.1))


@pytest.mark.parametrize("split", [(0.5, 0.5), (0.5, 0.3, 0.3), (1.0, 0.0, 0.0), "abc",
                                   (0.5, "x", 0.5)])
def test_bad_split_argument(tmp_path, split):
    f = write(tmp_path / "s.txt", "abcdefghij" * 10)
    with pytest.raises(ValueError, match="split: expected"):
        load_text(f, split=split)


def test_bad_level_and_missing_path(tmp_path):
    with pytest.raises(ValueError, match="level: expected 'char' or 'word', got 'byte'"):
        load_text(tmp_path, "byte")
    with pytest.raises(DataError, match="no such file or folder"):
        load_text(tmp_path / "nope.txt")


# ------------------------------------------------------- save / open / dispatch
def test_corpus_save_and_open_memory_mapped(tmp_path):
    f = write(tmp_path / "c.txt", "hello world, hello data\n" * 5)
    c = load_text(f, "char")
    out = c.save(tmp_path / "saved")
    d = Corpus.open(out)
    assert isinstance(d.train, np.memmap) and d.vocab == c.vocab
    assert (d.name, d.level, d.description, d.source) == (c.name, c.level, c.description,
                                                          c.source)
    for a, b in zip(c.parts.values(), d.parts.values(), strict=True):
        np.testing.assert_array_equal(a, b)
    again = load_corpus(out, mmap=False)
    assert not isinstance(again.train, np.memmap)
    with pytest.raises(DataError, match="cannot be read"):
        Corpus.open(tmp_path)


def test_load_corpus_dispatch(tmp_path):
    f = write(tmp_path / "c.txt", "abcdefghij" * 10)
    w = write(tmp_path / "w.txt", "a b c d e f g h i j\n")
    assert load_corpus(w, level="word", split=(0.4, 0.3, 0.3)).level == "word"
    assert load_corpus(str(f)).name == "c.txt"
    with pytest.raises(DataError, match="neither a known corpus name"):
        load_corpus("no-such-corpus")
    with pytest.raises(TypeError, match="name_or_path"):
        load_corpus(3)
    stdlib = load_corpus("STDLIB", max_chars=2000)
    assert stdlib.name == "stdlib"
