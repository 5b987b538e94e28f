"""Finite-difference gradient checks (float64, relative error <= 1e-6) for every
attention score and for a whole small model of each kind."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.gradcheck import assert_gradients
from rnnlab.seq2seq import Attention, Batch, Seq2Seq, Seq2SeqConfig
from rnnlab.seq2seq.data import IGNORE_INDEX

F64 = np.float64


@pytest.mark.parametrize("score", ["dot", "general", "additive"])
@pytest.mark.parametrize("masked", [False, True])
def test_attention_gradients(score, masked):
    rng = np.random.default_rng(3)
    N, U, S, D = 2, 3, 4, 5
    Dk = D if score == "dot" else 4
    att = Attention(D, Dk, score, attn_size=3, rng=rng, dtype=F64)
    q = rng.standard_normal((N, U, D))
    k = rng.standard_normal((N, S, Dk))
    mask = np.array([[True] * S, [True, True, False, False]]) if masked else None
    w = rng.standard_normal((N, U, Dk))

    def loss():
        return float((att(q, k, mask) * w).sum())

    loss()
    att.zero_grad()
    dq, dk = att.backward(w.copy())
    checks = {"q": (q, dq), "k": (k, dk)}
    checks.update({name: (p, g) for name, p, g in att.named_parameters_and_grads()})
    assert_gradients(loss, checks)
    if masked:
        assert np.all(att.weights[1, :, 2:] == 0)
        assert np.all(dk[1, 2:] == 0)
    np.testing.assert_allclose(att.weights.sum(axis=-1), 1.0)


#: (model kind, padded batch): every decoder, both cells, reverse and bidirectional options.
KINDS = [
    (dict(decoder="plain"), False),
    (dict(decoder="plain", cell="gru", reverse=True), True),
    (dict(decoder="peeky", cell="gru", reverse=True), False),
    (dict(decoder="peeky", bidirectional=True), True),
    (dict(decoder="attention", score="dot", reverse=True), True),
    (dict(decoder="attention", score="general", cell="gru", bidirectional=True), False),
    (dict(decoder="attention", score="additive"), True),
    (dict(decoder="bahdanau", reverse=True, bidirectional=True), True),
    (dict(decoder="bahdanau", score="dot", cell="gru"), False),
]
#: Finite-difference step for whole models: some gradients (attention weights behind
#: a recurrent layer) are ~1e-5, where a step of 1e-6 leaves roundoff near the tolerance.
MODEL_EPS = 1e-5


def tiny_batch(rng, padded):
    V, N, S, U = 7, 3, 5, 4
    src = rng.integers(2, V, size=(N, S)).astype(np.int32)
    lengths = None
    if padded:
        lengths = np.array([5, 3, 2])
        src[1, 3:] = 0
        src[2, 2:] = 0
    dec_in = rng.integers(2, V, size=(N, U)).astype(np.int32)
    targets = rng.integers(0, V, size=(N, U)).astype(np.int64)
    if padded:
        targets[2, 2:] = IGNORE_INDEX
    return Batch(src, lengths, dec_in, targets)


@pytest.mark.parametrize(("kind", "padded"), KINDS,
                         ids=["-".join(f"{n}={v}" for n, v in k.items()) + ("-padded" if p
                                                                               else "")
                              for k, p in KINDS])
def test_model_gradients(kind, padded):
    rng = np.random.default_rng(11)
    hidden = 2 if kind.get("bidirectional") else 3  # the decoder gets twice as many
    cfg = Seq2SeqConfig(vocab_size=7, embedding_dim=3, hidden_size=hidden, dtype="float64",
                        **kind)
    model = Seq2Seq(cfg, rng=5)
    for _, param in model.named_parameters():  # larger weights: gradients well above
        param[...] = rng.normal(0.0, 0.7, param.shape)  # the finite differences' roundoff
    batch = tiny_batch(rng, padded)

    def loss():
        return model.forward_loss(batch)

    model.zero_grad()
    loss()
    model.backward()
    checks = {name: (p, g.copy()) for name, p, g in model.named_parameters_and_grads()}
    errors = assert_gradients(loss, checks, eps=MODEL_EPS)
    assert len(errors) == len(checks)
