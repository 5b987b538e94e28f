"""Small learnable tasks trained for many steps with plain SGD written here: the layers'
gradients must be right for more than one step (stale caches, accumulation, in-place
updates), in float32 and float64.

Every task asserts that the loss falls by at least 20x (50x for the copy task; the
margins measured are 3x to 4x beyond that) and that the final predictions are right.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rnnlab import nn

DTYPES = [np.float32, np.float64]


def sgd_step(model: nn.Module, lr: float, clip: float | None = None) -> None:
    """``p -= lr * g`` for every parameter (optionally clipping the global norm), then
    zero the gradients."""
    pairs = [(p, g) for _, p, g in model.named_parameters_and_grads()]
    scale = 1.0
    if clip is not None:
        norm = float(np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for _, g in pairs)))
        scale = min(1.0, clip / max(norm, 1e-12))
    for p, g in pairs:
        p -= p.dtype.type(lr * scale) * g
    model.zero_grad()


# ---------------------------------------------------------- next-token model
class TokenModel(nn.Module):
    """Embedding -> LSTM -> Linear, trained with SoftmaxCrossEntropy."""

    def __init__(self, vocab: int, dtype: Any) -> None:
        super().__init__(dtype=dtype)
        self.emb = nn.Embedding(vocab, 8, padding_idx=vocab - 1, rng=1, dtype=dtype)
        self.rnn = nn.LSTM(8, 24, rng=2, dtype=dtype)
        self.head = nn.Linear(24, vocab, rng=3, dtype=dtype)
        self.loss = nn.SoftmaxCrossEntropy()

    def forward(self, ids: Any, targets: Any, lengths: Any = None) -> float:
        logits = self.head.forward(self.rnn.forward(self.emb.forward(ids), lengths=lengths))
        self.logits = logits
        return self.loss.forward(logits, targets)

    def backward(self) -> None:
        self.emb.backward(self.rnn.backward(self.head.backward(self.loss.backward())))


@pytest.mark.parametrize("dtype", DTYPES)
def test_lstm_language_model_memorises_a_periodic_sequence(dtype: Any) -> None:
    # period 6; the token after 0 depends on the one before it, so memory is needed
    pattern = np.array([0, 1, 2, 0, 3, 4])
    PAD, T = 5, 10
    stream = np.tile(pattern, 8)
    starts = np.arange(6)
    ids = np.stack([stream[s : s + T] for s in starts])
    targets = np.stack([stream[s + 1 : s + T + 1] for s in starts])
    lengths = np.array([10, 10, 7, 10, 4, 10])  # a padded batch
    for i, L in enumerate(lengths):
        ids[i, L:] = PAD
        targets[i, L:] = -100
    model = TokenModel(6, dtype)
    first = model.forward(ids, targets, lengths)
    model.backward()
    for _ in range(250):
        sgd_step(model, lr=1.0, clip=5.0)
        last = model.forward(ids, targets, lengths)
        model.backward()
    assert last < first / 20, (first, last)
    pred = model.logits.argmax(axis=-1)
    # after two tokens of context the next token is determined
    known = (targets != -100) & (np.arange(T) >= 1)
    assert np.array_equal(pred[known], targets[known])


# ---------------------------------------------------- sequence regression tasks
class Regressor(nn.Module):
    def __init__(self, cell: nn.Recurrent, hidden: int, dtype: Any) -> None:
        super().__init__(dtype=dtype)
        self.rnn = cell
        self.head = nn.Linear(hidden, 1, rng=9, dtype=dtype)
        self.loss = nn.MSELoss()

    def forward(self, xs: Any, ys: Any) -> float:
        self.pred = self.head.forward(self.rnn.forward(xs))  # (N, T, 1)
        return self.loss.forward(self.pred, ys)

    def backward(self) -> None:
        self.rnn.backward(self.head.backward(self.loss.backward()))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_learns_a_running_sum(dtype: Any, reset_after: bool) -> None:
    rng = np.random.default_rng(0)
    N, T = 64, 6

    def batch() -> tuple[np.ndarray, np.ndarray]:
        xs = rng.uniform(-1, 1, size=(N, T, 1))
        return xs.astype(dtype), (np.cumsum(xs, axis=1) / 3).astype(dtype)

    model = Regressor(nn.GRU(1, 12, reset_after=reset_after, rng=4, dtype=dtype), 12, dtype)
    xs, ys = batch()
    first = model.forward(xs, ys)
    model.backward()
    for _ in range(300):
        sgd_step(model, lr=0.5, clip=2.0)
        xs, ys = batch()
        model.forward(xs, ys)
        model.backward()
    xs, ys = batch()  # fresh data: it learnt the rule, not the batch
    last = model.forward(xs, ys)
    assert last < first / 20, (first, last)
    assert np.abs(model.pred - ys).max() < 0.25


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_learns_to_copy_the_previous_input(dtype: Any, nonlinearity: str) -> None:
    rng = np.random.default_rng(1)
    N, T = 64, 6

    def batch() -> tuple[np.ndarray, np.ndarray]:
        xs = rng.uniform(-1, 1, size=(N, T, 1))
        ys = np.concatenate([np.zeros((N, 1, 1)), xs[:, :-1]], axis=1)  # y_t = x_{t-1}
        return xs.astype(dtype), ys.astype(dtype)

    model = Regressor(nn.RNN(1, 16, nonlinearity=nonlinearity, rng=5, dtype=dtype), 16,
                      dtype)
    xs, ys = batch()
    first = model.forward(xs, ys)
    model.backward()
    for _ in range(300):
        sgd_step(model, lr=0.1, clip=2.0)
        xs, ys = batch()
        model.forward(xs, ys)
        model.backward()
    xs, ys = batch()
    last = model.forward(xs, ys)
    assert last < first / 50, (first, last)
    assert np.abs(model.pred - ys).mean() < 0.05
    assert np.abs(model.pred - ys).max() < 0.3


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_regression_recovers_the_weights(dtype: Any) -> None:
    rng = np.random.default_rng(2)
    W, b = rng.standard_normal((2, 4)), rng.standard_normal(2)
    x = rng.standard_normal((128, 4))
    y = x @ W.T + b
    layer = nn.Linear(4, 2, rng=0, dtype=dtype)
    loss_fn = nn.MSELoss()
    x, y = x.astype(dtype), y.astype(dtype)
    first = loss_fn.forward(layer.forward(x), y)
    for _ in range(200):
        layer.backward(loss_fn.backward())
        sgd_step(layer, lr=0.2)
        last = loss_fn.forward(layer.forward(x), y)
    assert last < first / 1000
    np.testing.assert_allclose(layer.params["weight"], W, atol=1e-2)
    np.testing.assert_allclose(layer.params["bias"], b, atol=1e-2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bidirectional_lstm_classifies_by_a_middle_token(dtype: Any) -> None:
    """Label of a sequence = its token at position 2: needs both directions' final states
    routed through h_n (trains dstate, not dhs)."""
    rng = np.random.default_rng(3)
    N, T, V = 48, 5, 4
    emb = nn.Embedding(V, 6, rng=1, dtype=dtype)
    rnn = nn.LSTM(6, 10, bidirectional=True, rng=2, dtype=dtype)
    head = nn.Linear(20, V, rng=3, dtype=dtype)
    loss_fn = nn.SoftmaxCrossEntropy()
    params = [emb, rnn, head]

    def step(ids: np.ndarray) -> tuple[float, np.ndarray]:
        rnn.forward(emb.forward(ids))
        feats = np.concatenate([rnn.h_n[0], rnn.h_n[1]], axis=1)  # (N, 2H)
        logits = head.forward(feats)
        loss = loss_fn.forward(logits, ids[:, 2])
        dfeats = head.backward(loss_fn.backward())
        dh_n = np.stack([dfeats[:, :10], dfeats[:, 10:]])
        emb.backward(rnn.backward(None, (dh_n, np.zeros_like(dh_n))))
        return loss, logits

    first, _ = step(rng.integers(0, V, size=(N, T)))
    for _ in range(300):
        for m in params:
            sgd_step(m, lr=2.0, clip=5.0)
        step(rng.integers(0, V, size=(N, T)))
    for m in params:
        m.zero_grad()
    ids = rng.integers(0, V, size=(N, T))
    last, logits = step(ids)
    assert last < first / 20, (first, last)
    assert np.array_equal(logits.argmax(axis=1), ids[:, 2])
