"""Vocab: order, cut-offs, specials, encode/decode, tokenisation, JSON round trip, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.data import EOS, UNK, DataError, Vocab, detokenize, tokenize
from rnnlab.data import vocab as vocab_module


def test_char_build_orders_specials_then_frequency_then_token():
    v = Vocab.build("abracadabra", level="char")
    # a:5, b:2, r:2, c:1, d:1 -> ties by token
    assert v.itos == [UNK, EOS, "a", "b", "r", "c", "d"]
    assert v.stoi["a"] == 2 and v.unk_id == 0 and v.eos_id == 1
    assert len(v) == 7 and v.level == "char"
    assert "a" in v and "z" not in v


def test_build_from_iterable_equals_build_from_str():
    text = "the quick brown fox jumps over the lazy dog\n"
    assert Vocab.build(iter(list(text)), "char") == Vocab.build(text, "char")


def test_word_build_and_cutoffs():
    tokens = "a a a b b c d d d d e".split()
    v = Vocab.build(tokens, "word")
    assert v.itos == [UNK, EOS, "d", "a", "b", "c", "e"]
    assert Vocab.build(tokens, "word", min_freq=2).itos == [UNK, EOS, "d", "a", "b"]
    assert Vocab.build(tokens, "word", max_size=4).itos == [UNK, EOS, "d", "a"]
    assert Vocab.build(tokens, "word", max_size=2).itos == [UNK, EOS]


def test_specials_present_in_data_are_not_duplicated():
    v = Vocab.build([UNK, "x", EOS, "x", UNK], "word")
    assert v.itos == [UNK, EOS, "x"]


def test_custom_specials_and_no_unk():
    v = Vocab.build("abc", "char", specials=("<pad>",))
    assert v.itos[0] == "<pad>" and v.unk_id is None and v.eos_id is None
    v2 = Vocab.build("abc", "char", specials=())
    assert v2.itos == ["a", "b", "c"]


def test_encode_maps_unknown_to_unk():
    v = Vocab.build("abc", "char")
    ids = v.encode("abz")
    assert ids.dtype == np.int32 and ids.tolist() == [v.stoi["a"], v.stoi["b"], v.unk_id]
    assert v.encode(["a", "z"]).tolist() == [v.stoi["a"], v.unk_id]
    assert v.encode("").shape == (0,) and v.encode([]).dtype == np.int32


def test_encode_unknown_without_unk_raises():
    v = Vocab.build("abc", "char", specials=(EOS,))
    with pytest.raises(DataError, match=r"not in the vocabulary.*no '<unk>'.*\['z', 'q'\]"):
        v.encode("azqz")
    w = Vocab.build(["x", "y"], "word", specials=())
    with pytest.raises(DataError, match=r"1 tokens are not in the vocabulary"):
        w.encode(["x", "nope"])


def test_encode_decode_roundtrip_word():
    v = Vocab.build(tokenize("the cat sat\non the mat\n", "word"), "word")
    text = "the cat\nsat on the mat\n"
    ids = v.encode_text(text)
    assert ids.dtype == np.int32
    assert v.decode(ids) == tokenize(text, "word")
    assert v.decode_text(ids) == text
    assert v.decode(3) == [v.itos[3]]
    assert v.decode([]) == []


def test_decode_errors():
    v = Vocab.build("ab", "char")
    with pytest.raises(DataError, match=r"ids expected in \[0, 4\), got 4"):
        v.decode([0, 4])
    with pytest.raises(DataError, match=r"got -1"):
        v.decode(np.array([-1]))
    with pytest.raises(TypeError, match="integers"):
        v.decode([0.5])
    with pytest.raises(ValueError, match="1-D"):
        v.decode(np.zeros((2, 2), dtype=np.int32))


def test_word_encode_rejects_str():
    v = Vocab.build(["a"], "word")
    with pytest.raises(TypeError, match="encode_text"):
        v.encode("a b")
    with pytest.raises(TypeError, match="tokenize"):
        Vocab.build("a b", "word")


def test_tokenize_word_level_eos_per_newline():
    assert tokenize(" a  b \n\nc d", "word") == ["a", "b", EOS, EOS, "c", "d"]
    assert tokenize("a b\n", "word") == ["a", "b", EOS]
    assert tokenize("a\nb", "word", eos=None) == ["a", "b"]
    assert tokenize("ab\n", "char") == ["a", "b", "\n"]
    assert detokenize(["a", "b", EOS, EOS, "c"], "word") == "a b\n\nc"
    v = Vocab.build(["a"], "word", specials=(UNK,))  # no <eos>: newlines are whitespace
    assert v.tokenize("a\na") == ["a", "a"]


def test_to_dict_from_dict_json_roundtrip():
    v = Vocab.build("héllo wörld 😀\n", "char", min_freq=1)
    d = json.loads(json.dumps(v.to_dict()))
    w = Vocab.from_dict(d)
    assert w == v and w.level == "char" and w.itos == v.itos
    assert w.encode("wörld").tolist() == v.encode("wörld").tolist()
    assert hash(w) == hash(v)
    assert "size=" in repr(v)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.update(format="other"), "format"),
        (lambda d: d.update(version=99), "version"),
        (lambda d: d.pop("itos"), "missing key 'itos'"),
        (lambda d: d.update(itos="abc"), "itos expected a list"),
        (lambda d: d.update(itos=["a", "a", UNK, EOS]), "more than once"),
        (lambda d: d.update(itos=["a", "b"]), "specials"),
        (lambda d: d.update(level="byte"), "level"),
    ],
)
def test_from_dict_errors(mutate, match):
    d = Vocab.build("ab", "char").to_dict()
    mutate(d)
    with pytest.raises(DataError, match=match):
        Vocab.from_dict(d)


def test_vocab_that_does_not_fit():
    with pytest.raises(DataError, match=r"max_size: expected at least 2 .*got 1"):
        Vocab.build("abc", "char", max_size=1)
    with pytest.raises(DataError, match=r"max_size: expected at least 1"):
        Vocab.build("abc", "char", max_size=0, specials=())
    with pytest.raises(TypeError, match="max_size"):
        Vocab.build("abc", "char", max_size=2.5)
    with pytest.raises(ValueError, match="min_freq"):
        Vocab.build("abc", "char", min_freq=0)


def test_more_tokens_than_int32_ids(monkeypatch):
    monkeypatch.setattr(vocab_module, "MAX_VOCAB_SIZE", 4)
    with pytest.raises(DataError, match=r"5 tokens do not fit in int32 ids \(at most 4\)"):
        Vocab.build("abc", "char")
    assert len(Vocab.build("abc", "char", max_size=4)) == 4


def test_constructor_errors():
    with pytest.raises(DataError, match="empty"):
        Vocab([], "char", specials=())
    with pytest.raises(DataError, match="single characters"):
        Vocab([UNK, EOS, "ab"], "char")
    with pytest.raises(ValueError, match="level: expected 'char' or 'word', got 'byte'"):
        Vocab([UNK, EOS], "byte")
    with pytest.raises(ValueError, match="distinct"):
        Vocab.build("a", "char", specials=(UNK, UNK))
    with pytest.raises(TypeError, match="itos"):
        Vocab("abc", "char")


text_strategy = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)


@settings(max_examples=60, deadline=None)
@given(text_strategy, text_strategy)
def test_char_fast_path_matches_token_path(train, other):
    v = Vocab.build(train, "char")
    fast = v.encode(other)
    slow = v.encode(list(other))
    assert fast.dtype == slow.dtype == np.int32
    assert fast.tolist() == slow.tolist()
    if all(c in v for c in other):
        assert v.decode_text(fast) == other


words = st.text(alphabet="abcxyz", min_size=1, max_size=4)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(words, st.just(EOS)), max_size=30))
def test_word_tokens_roundtrip_through_text(tokens):
    assert tokenize(detokenize(tokens, "word"), "word") == tokens
