"""``Recurrent.forward_tokens``: the embedding lookup and the first input projection as one
``(V, G*H)`` table (character models), against the plain path and finite differences."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rnnlab import nn
from rnnlab.gradcheck import assert_gradients

LAYERS = [
    ("lstm", 1, False), ("lstm", 2, True), ("gru", 2, False), ("gru", 1, True),
    ("rnn", 2, False), ("rnn", 1, True),
]


def build(kind: str, layers: int, bi: bool, dtype: Any = np.float64, **kw: Any) -> nn.Recurrent:
    cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[kind]
    return cls(4, 5, layers, bidirectional=bi, dtype=dtype, rng=1, **kw)


def grads_of(layer: nn.Module) -> dict[str, np.ndarray]:
    return {name: g.copy() for name, _, g in layer.named_parameters_and_grads()}


@pytest.mark.parametrize("kind,layers,bi", LAYERS)
def test_same_outputs_and_gradients_as_the_plain_path(kind: str, layers: int, bi: bool) -> None:
    rng = np.random.default_rng(0)
    V, N, T = 3, 4, 6  # every id repeats: the per-token sums are exercised
    E = rng.standard_normal((V, 4))
    ids = rng.integers(0, V, (N, T))
    layer = build(kind, layers, bi)
    dout = rng.standard_normal((N, T, 5 * (2 if bi else 1)))

    out = layer.forward(E[ids])
    dx = layer.backward(dout)
    plain_grads = grads_of(layer)
    plain_dE = np.zeros_like(E)
    np.add.at(plain_dE, ids, dx)

    layer.zero_grad()
    start = rng.standard_normal(E.shape)  # the table's gradient is added, not written
    dE = start.copy()
    out_t = layer.forward_tokens(ids, E, dE)
    np.testing.assert_allclose(out_t, out, rtol=1e-12, atol=1e-12)
    assert layer.backward(dout) is None
    np.testing.assert_allclose(dE - start, plain_dE, rtol=1e-11, atol=1e-12)
    for name, g in grads_of(layer).items():
        np.testing.assert_allclose(g, plain_grads[name], rtol=1e-11, atol=1e-12, err_msg=name)

    layer.zero_grad()
    layer.forward_tokens(ids, E)  # no grad array: the table's gradient is skipped
    layer.backward(dout)
    for name, g in grads_of(layer).items():
        np.testing.assert_allclose(g, plain_grads[name], rtol=1e-11, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("kind,layers,bi", LAYERS)
def test_finite_difference_gradients(kind: str, layers: int, bi: bool) -> None:
    rng = np.random.default_rng(2)
    V, N, T = 3, 2, 4
    E = rng.standard_normal((V, 4))
    ids = rng.integers(0, V, (N, T))
    layer = build(kind, layers, bi)
    R = rng.standard_normal((N, T, 5 * (2 if bi else 1)))

    def loss() -> float:
        return float((layer.forward_tokens(ids, E) * R).sum())

    dE = np.zeros_like(E)
    layer.zero_grad()
    layer.forward_tokens(ids, E, dE)
    layer.backward(R)
    checks = {"table": (E, dE.copy())}
    checks.update({name: (p, g.copy()) for name, p, g in layer.named_parameters_and_grads()})
    assert_gradients(loss, checks)


def test_float32_and_stateful_windows() -> None:
    """float32 (the compiled scatter when numba is present) and the carried state."""
    rng = np.random.default_rng(3)
    E = rng.standard_normal((5, 4)).astype(np.float32)
    ids = rng.integers(0, 5, (3, 10))
    plain = build("lstm", 2, False, np.float32, stateful=True)
    token = build("lstm", 2, False, np.float32, stateful=True)
    dout = rng.standard_normal((3, 5, 5)).astype(np.float32)
    dE = np.zeros_like(E)
    for window in (ids[:, :5], ids[:, 5:]):
        out = plain.forward(E[window])
        dx = plain.backward(dout)
        out_t = token.forward_tokens(window, E, dE)
        token.backward(dout)
        np.testing.assert_allclose(out_t, out, rtol=1e-5, atol=1e-6)
    expected = np.zeros_like(E)
    np.add.at(expected, ids[:, 5:], dx)
    plain_first = build("lstm", 2, False, np.float32)
    plain_first.forward(E[ids[:, :5]])
    np.add.at(expected, ids[:, :5], plain_first.backward(dout))
    np.testing.assert_allclose(dE, expected, rtol=1e-4, atol=1e-5)
    for (name, _, g), (_, _, g_t) in zip(plain.named_parameters_and_grads(),
                                         token.named_parameters_and_grads(), strict=True):
        np.testing.assert_allclose(g_t, g, rtol=1e-4, atol=1e-5, err_msg=name)


def test_bad_input_names_the_argument() -> None:
    layer = build("gru", 1, False)
    E = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"GRU.forward_tokens: ids expected ids in \[0, 3\)"):
        layer.forward_tokens(np.array([[0, 3]]), E)
    with pytest.raises(TypeError, match="forward_tokens: ids expected an integer dtype"):
        layer.forward_tokens(np.zeros((1, 2)), E)
    with pytest.raises(ValueError, match="forward_tokens: ids expected"):
        layer.forward_tokens(np.array([0, 1]), E)
    with pytest.raises(ValueError, match="forward_tokens: weight expected"):
        layer.forward_tokens(np.array([[0, 1]]), np.zeros((3, 5)))
    with pytest.raises((TypeError, ValueError), match="forward_tokens: weight expected"):
        layer.forward_tokens(np.array([[0, 1]]), E.astype(np.float32))
    with pytest.raises(ValueError, match="forward_tokens: grad expected shape"):
        layer.forward_tokens(np.array([[0, 1]]), E, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="forward_tokens: ids expected N >= 1"):
        layer.forward_tokens(np.zeros((1, 0), dtype=int), E)
