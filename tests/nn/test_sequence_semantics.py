"""Sequence-layer semantics: padded batches (``lengths``) and stateful layers
(``stateful=True``, ``reset_state``, ``set_state``) for RNN, LSTM and GRU."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab import nn

KINDS = {
    "rnn_tanh": (nn.RNN, {}),
    "rnn_relu": (nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTM, {}),
    "gru": (nn.GRU, {}),
    "gru_reset_before": (nn.GRU, {"reset_after": False}),
}
TOL = 1e-12


def make(kind: str, **kwargs: Any) -> nn.Recurrent:
    cls, extra = KINDS[kind]
    kwargs.setdefault("dtype", np.float64)
    return cls(3, 4, **extra, **kwargs)


def state_of(layer: nn.Recurrent) -> Any:
    return (layer.h_n, layer.c_n) if layer.has_cell else layer.h_n


# -------------------------------------------------------------------- lengths
@pytest.mark.parametrize("kind", sorted(KINDS))
@settings(max_examples=8, deadline=None)
@given(num_layers=st.integers(1, 2), bidirectional=st.booleans(), N=st.integers(1, 4),
       T=st.integers(1, 5), with_state=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_padded_batch_equals_each_sequence_alone(kind: str, num_layers: int,
                                                 bidirectional: bool, N: int, T: int,
                                                 with_state: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    layer = make(kind, num_layers=num_layers, bidirectional=bidirectional, rng=rng)
    S, KH = num_layers * (2 if bidirectional else 1), 4 * (2 if bidirectional else 1)
    xs = rng.standard_normal((N, T, 3))
    lengths = rng.integers(0, T + 1, size=N)
    h0, c0 = rng.standard_normal((S, N, 4)), rng.standard_normal((S, N, 4))
    state = ((h0, c0) if layer.has_cell else h0) if with_state else None
    dhs = rng.standard_normal((N, T, KH))
    hs = layer.forward(xs, state, lengths)
    h_n, c_n = layer.h_n.copy(), None if layer.c_n is None else layer.c_n.copy()
    dxs = layer.backward(dhs)
    dh0 = layer.dh0.copy()
    grads = {k: g.copy() for k, g in layer.grads.items()}
    layer.zero_grad()

    # padded outputs and the gradients of padded inputs are exactly zero
    for i, L in enumerate(lengths):
        assert not hs[i, L:].any()
        assert not dxs[i, L:].any()
    summed = {k: np.zeros_like(g) for k, g in grads.items()}
    for i, L in enumerate(lengths):
        h0_i = h0[:, i : i + 1] if with_state else np.zeros((S, 1, 4))
        c0_i = c0[:, i : i + 1] if with_state else np.zeros((S, 1, 4))
        if L == 0:  # nothing to run: the final state is the initial state
            np.testing.assert_array_equal(h_n[:, i : i + 1], h0_i)
            if c_n is not None:
                np.testing.assert_array_equal(c_n[:, i : i + 1], c0_i)
            np.testing.assert_array_equal(dh0[:, i], 0)
            continue
        state_i = (h0_i, c0_i) if layer.has_cell else h0_i
        hs_i = layer.forward(np.ascontiguousarray(xs[i : i + 1, :L]), state_i)
        np.testing.assert_allclose(hs[i : i + 1, :L], hs_i, rtol=TOL, atol=TOL)
        # the final state is the state at the sequence's last real step
        np.testing.assert_allclose(h_n[:, i : i + 1], layer.h_n, rtol=TOL, atol=TOL)
        if c_n is not None:
            np.testing.assert_allclose(c_n[:, i : i + 1], layer.c_n, rtol=TOL, atol=TOL)
        dxs_i = layer.backward(np.ascontiguousarray(dhs[i : i + 1, :L]))
        np.testing.assert_allclose(dxs[i : i + 1, :L], dxs_i, rtol=TOL, atol=TOL)
        np.testing.assert_allclose(dh0[:, i : i + 1], layer.dh0, rtol=TOL, atol=TOL)
        for k, g in layer.grads.items():
            summed[k] += g
        layer.zero_grad()
    for k, g in grads.items():  # batch gradients are the sum of the per-sequence ones
        np.testing.assert_allclose(g, summed[k], rtol=1e-10, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_upstream_gradient_at_padded_steps_is_ignored(kind: str) -> None:
    rng = np.random.default_rng(0)
    layer = make(kind, num_layers=2, bidirectional=True, rng=rng)
    xs, lengths = rng.standard_normal((3, 5, 3)), np.array([3, 5, 1])
    dhs = rng.standard_normal((3, 5, 8))
    layer.forward(xs, lengths=lengths)
    dx1 = layer.backward(dhs)
    g1 = {k: g.copy() for k, g in layer.grads.items()}
    layer.zero_grad()
    garbage = dhs.copy()
    for i, L in enumerate(lengths):
        garbage[i, L:] = 1e6
    dx2 = layer.backward(garbage)
    np.testing.assert_array_equal(dx1, dx2)
    for k, g in layer.grads.items():
        np.testing.assert_array_equal(g, g1[k])


def test_full_lengths_equal_no_lengths() -> None:
    rng = np.random.default_rng(1)
    layer = make("lstm", num_layers=2, bidirectional=True, rng=rng)
    xs = rng.standard_normal((2, 4, 3))
    a = layer.forward(xs)
    h_a = layer.h_n.copy()
    b = layer.forward(xs, lengths=[4, 4])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(h_a, layer.h_n)


# ------------------------------------------------------------------- stateful
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_stateful_layer_carries_state_between_forwards(kind: str) -> None:
    rng = np.random.default_rng(2)
    whole = make(kind, num_layers=2, rng=3)
    chunked = make(kind, num_layers=2, rng=3, stateful=True)
    xs = rng.standard_normal((2, 6, 3))
    full = whole.forward(xs)
    parts = [chunked.forward(np.ascontiguousarray(xs[:, s : s + 2])) for s in (0, 2, 4)]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), full, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(chunked.h_n, whole.h_n, rtol=TOL, atol=TOL)
    if whole.has_cell:
        np.testing.assert_allclose(chunked.c_n, whole.c_n, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_reset_state_and_set_state(kind: str) -> None:
    rng = np.random.default_rng(4)
    plain = make(kind, rng=5)
    layer = make(kind, rng=5, stateful=True)
    xs = rng.standard_normal((3, 4, 3))
    fresh = plain.forward(xs)
    np.testing.assert_array_equal(layer.forward(xs), fresh)
    assert not np.array_equal(layer.forward(xs), fresh)  # started from the carried state
    layer.reset_state()
    np.testing.assert_array_equal(layer.forward(xs), fresh)

    h, c = rng.standard_normal((1, 3, 4)), rng.standard_normal((1, 3, 4))
    state = (h, c) if layer.has_cell else h
    expected = plain.forward(xs, state)
    layer.set_state(state)
    h[...] = 0  # set_state copied
    np.testing.assert_array_equal(layer.forward(xs), expected)
    # an explicit state wins over the carried one
    np.testing.assert_array_equal(layer.forward(xs, (h, c) if layer.has_cell else h),
                                  plain.forward(xs, (h, c) if layer.has_cell else h))


def test_stateful_carries_the_state_of_the_last_real_step() -> None:
    rng = np.random.default_rng(6)
    layer = make("gru", rng=1, stateful=True)
    xs = rng.standard_normal((2, 4, 3))
    layer.forward(xs, lengths=[2, 4])
    carried = layer.h_n.copy()
    plain = make("gru", rng=1)
    plain.forward(np.ascontiguousarray(xs[:1, :2]))
    np.testing.assert_allclose(carried[:, :1], plain.h_n, rtol=TOL, atol=TOL)
    ys = rng.standard_normal((2, 3, 3))
    np.testing.assert_array_equal(layer.forward(ys), plain.forward(ys, carried))


def test_stateful_backward_stops_at_the_chunk_boundary() -> None:
    """Truncated BPTT: backward of a chunk reports dh0 but touches nothing earlier."""
    rng = np.random.default_rng(7)
    layer = make("lstm", rng=2, stateful=True)
    xs = rng.standard_normal((2, 6, 3))
    layer.forward(np.ascontiguousarray(xs[:, :3]))
    h, c = layer.h_n.copy(), layer.c_n.copy()
    out = layer.forward(np.ascontiguousarray(xs[:, 3:]))
    dx = layer.backward(np.ones_like(out))
    plain = make("lstm", rng=2)
    plain.forward(np.ascontiguousarray(xs[:, 3:]), (h, c))
    np.testing.assert_array_equal(dx, plain.backward(np.ones_like(out)))
    np.testing.assert_array_equal(layer.dh0, plain.dh0)
    np.testing.assert_array_equal(layer.dc0, plain.dc0)


def test_stateful_batch_size_change_needs_reset() -> None:
    layer = make("lstm", rng=0, stateful=True)
    layer.forward(np.zeros((3, 2, 3)))
    with pytest.raises(ValueError, match=r"LSTM\.forward: the stateful layer carries a state "
                                         r"for batch size 3, got batch size 2"):
        layer.forward(np.zeros((2, 2, 3)))
    layer.reset_state()
    layer.forward(np.zeros((2, 2, 3)))


def test_non_stateful_layer_does_not_carry_state() -> None:
    layer = make("rnn_tanh", rng=0)
    xs = np.random.default_rng(0).standard_normal((2, 3, 3))
    np.testing.assert_array_equal(layer.forward(xs), layer.forward(xs))
