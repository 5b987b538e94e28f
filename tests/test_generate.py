"""Generation: strategies, reproducibility, filtering, unknown prime symbols."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.data import Vocab
from rnnlab.generate import filter_distribution, generate, generate_ids
from rnnlab.models import RNNLM

TEXT = "abcabcabd\n" * 3


@pytest.fixture(scope="module")
def trained():
    vocab = Vocab.build(list(TEXT), "char")
    ids = vocab.encode(list(TEXT * 20))
    model = RNNLM(len(vocab), 12, 24, rng=0)
    for _ in range(60):
        model.reset_state()
        for s in range(0, len(ids) - 21, 20):
            model.zero_grad()
            model.forward_loss(ids[None, s:s + 20], ids[None, s + 1:s + 21])
            model.backward()
            for _, p, g in model.named_parameters_and_grads():
                p -= 0.5 * np.clip(g, -1, 1)
    model.eval()
    return model, vocab


def test_greedy_continues_the_pattern(trained):
    model, vocab = trained
    text = generate(model, vocab, "abcab", 4, strategy="greedy")
    assert text == "abcabcabd"  # the pattern is abcabcabd


def test_sampling_is_reproducible_with_a_seed(trained):
    model, vocab = trained
    a = generate(model, vocab, "ab", 30, temperature=8.0, seed=3)
    b = generate(model, vocab, "ab", 30, temperature=8.0, seed=3)
    c = generate(model, vocab, "ab", 30, temperature=8.0, seed=4)
    assert a == b and a != c and a.startswith("ab") and len(a) >= 32


def test_top_k_one_and_tiny_top_p_equal_greedy(trained):
    model, vocab = trained
    greedy = generate(model, vocab, "abc", 12, strategy="greedy")
    assert generate(model, vocab, "abc", 12, top_k=1, seed=0) == greedy
    assert generate(model, vocab, "abc", 12, top_p=1e-9, seed=0) == greedy


def test_beam_width_one_is_greedy_and_wider_beams_score_higher(trained):
    model, vocab = trained
    prime = vocab.encode(list("abca"))
    greedy = generate_ids(model, list(prime), 6, strategy="greedy")
    assert generate_ids(model, list(prime), 6, strategy="beam", beam_width=1) == greedy
    assert len(generate_ids(model, list(prime), 6, strategy="beam", beam_width=4)) == 6
    assert generate_ids(model, list(prime), 0, strategy="beam") == []


def test_model_state_and_mode_are_untouched(trained):
    model, vocab = trained
    model.train()
    before = model.get_state()
    generate(model, vocab, "a", 5, seed=0)
    after = model.get_state()
    assert model.training
    np.testing.assert_array_equal(before[0], after[0])
    model.eval()


def test_stepper_matches_forward(trained):
    model, vocab = trained
    ids = vocab.encode(list("abcabcab"))
    model.reset_state()
    full = model.forward(ids[None])[0]
    stepper = model.stepper(1)
    for t, token in enumerate(ids):
        np.testing.assert_allclose(stepper.step(np.array([token]))[0], full[t], atol=1e-5)


def test_unknown_prime_symbols(trained):
    model, vocab = trained
    with pytest.raises(ValueError, match=r"not in the vocabulary: 'x', 'z'"):
        generate(model, vocab, "xaz", 3)
    with pytest.warns(UserWarning, match="replaced by <unk>"):
        text = generate(model, vocab, "xa", 3, unknown="unk", seed=0)
    assert text.startswith("<unk>a")


def test_empty_prime_and_bad_options(trained):
    model, vocab = trained
    assert len(generate(model, vocab, "", 5, seed=1)) >= 5
    for kwargs, pattern in [({"temperature": 0}, "temperature"), ({"top_k": 0}, "top_k"),
                            ({"top_p": 1.5}, "top_p"), ({"strategy": "nucleus"}, "strategy"),
                            ({"length": -1}, "length"), ({"beam_width": 0}, "beam_width"),
                            ({"unknown": "skip"}, "unknown")]:
        with pytest.raises(ValueError, match=pattern):
            generate(model, vocab, "a", **{"length": 3, **kwargs})
    with pytest.raises(TypeError, match="prime expected a str"):
        generate(model, vocab, b"ab", 3)


def test_filter_distribution():
    logits = np.array([1.0, 3.0, 2.0, -1.0])
    p = filter_distribution(logits)
    assert p.sum() == pytest.approx(1) and np.argmax(p) == 1
    top2 = filter_distribution(logits, top_k=2)
    assert (top2 > 0).sum() == 2 and top2[1] > top2[2] > 0
    nucleus = filter_distribution(logits, top_p=0.7)
    assert nucleus[1] > 0 and nucleus[3] == 0 and nucleus.sum() == pytest.approx(1)
    cold = filter_distribution(logits, temperature=0.05)
    assert cold[1] > 0.999
