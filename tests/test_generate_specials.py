"""Issue 22, items 2 and 6: a character model never generates <unk>/<eos>; the command
line speaks its options about unknown prime symbols and prints one plain notice."""

from __future__ import annotations

import warnings

import pytest

from rnnlab.cli import main
from rnnlab.data import Vocab
from rnnlab.generate import (
    UnknownSymbolsError,
    UnknownSymbolsWarning,
    generate,
    generate_stream,
    not_text_ids,
)
from rnnlab.models import RNNLM


def biased_model(vocab: Vocab, towards: list[int]) -> RNNLM:
    """A model whose every next-token distribution is almost all on ``towards``."""
    model = RNNLM(len(vocab), 4, 8, rng=0)
    for name, param in model.named_parameters():
        if name == "decoder.bias":
            param[...] = 0.0
            param[towards] = 30.0
    model.eval()
    return model


def test_char_vocabulary_specials_are_not_text():
    vocab = Vocab.build("hello world", level="char")
    assert not_text_ids(vocab) == (vocab.unk_id, vocab.eos_id) == (0, 1)
    assert not_text_ids(Vocab.build(["a", "b"], level="word")) == ()


@pytest.mark.parametrize("kw", [{"strategy": "sample", "seed": 0},
                                {"strategy": "sample", "temperature": 5.0, "seed": 1},
                                {"strategy": "sample", "top_k": 3, "seed": 2},
                                {"strategy": "greedy"}, {"strategy": "beam", "beam_width": 3}])
def test_char_model_never_samples_a_special(kw):
    vocab = Vocab.build("abcdef\n" * 3, level="char")
    model = biased_model(vocab, [vocab.unk_id, vocab.eos_id])
    text = generate(model, vocab, "ab", 60, **kw)
    assert "<unk>" not in text and "<eos>" not in text
    assert len(text) == 62 and set(text) <= set("abcdef\n")
    streamed = "".join(generate_stream(model, vocab, "ab", 60, chunk=7, **kw))
    assert streamed == text


def test_word_model_keeps_its_specials():
    vocab = Vocab.build(["a", "b", "c"], level="word")
    model = biased_model(vocab, [vocab.unk_id])
    assert "<unk>" in generate(model, vocab, "a", 5, strategy="greedy")


def test_python_api_keeps_its_keyword_wording():
    vocab = Vocab.build("abc", level="char")
    model = biased_model(vocab, [2])
    with pytest.raises(UnknownSymbolsError, match="pass unknown='unk'") as info:
        generate(model, vocab, "xa", 3)
    assert isinstance(info.value, ValueError) and info.value.missing == ["x"]
    with pytest.warns(UnknownSymbolsWarning, match="replaced by <unk>: 'x'"):
        generate(model, vocab, "xa", 3, unknown="unk", seed=0)


TEXT = "to be or not to be that is the question\nwhether tis nobler in the mind\n" * 30


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gen")
    corpus = folder / "t.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    assert main(["train", "--corpus", str(corpus), "--out", str(folder / "run"),
                 "--no-progress", "--hidden-size", "8", "--embedding-dim", "4",
                 "--batch-size", "4", "--bptt", "8", "--max-steps", "1",
                 "--sample-length", "0"]) == 0
    return str(folder / "run" / "last.safetensors")


def test_cli_unknown_prime_names_the_option(checkpoint, capsys):
    capsys.readouterr()
    assert main(["generate", checkpoint, "--prime", "XYZ", "--length", "3"]) == 2
    err = capsys.readouterr().err
    assert err == ("rnnlab: error: generate: --prime has 3 symbol(s) not in the vocabulary: "
                   "'X', 'Y', 'Z' (pass --unknown unk to map them to <unk>)\n")
    assert "unknown='unk'" not in err


def test_cli_unknown_unk_prints_a_plain_notice(checkpoint, capsys):
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a raw warning would fail here
        assert main(["generate", checkpoint, "--prime", "tX", "--length", "5", "--seed",
                     "0", "--unknown", "unk"]) == 0
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert lines == ["rnnlab: generate: --unknown unk: --prime symbols not in the vocabulary "
                     "replaced by <unk>: 'X'"]
    assert "UserWarning" not in captured.err and "warnings.warn" not in captured.err
    assert captured.out.startswith("t<unk>")
    assert "<eos>" not in captured.out and captured.out.count("<unk>") == 1
