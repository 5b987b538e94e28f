"""Central finite-difference gradient checks (float64) for every layer.

Each check builds a scalar loss ``sum(output * R)`` (plus the final states times their
own random weights), runs the analytic backward once, then perturbs every entry of every
parameter, of the input and of the initial state(s) and compares with
:func:`rnnlab.gradcheck.assert_gradients` (relative error <= 1e-6). Shapes, flags and the seed
are drawn by hypothesis; sizes stay small so that the whole file runs in seconds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rnnlab import nn
from rnnlab.gradcheck import assert_gradients, numeric_gradient, relative_error

SEEDS = st.integers(0, 2**32 - 1)


def param_checks(layer: nn.Module) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``name: (param, copy of its analytic gradient)`` for every parameter of ``layer``."""
    return {f"param {name}": (p, g.copy()) for name, p, g in layer.named_parameters_and_grads()}


# ----------------------------------------------------------------- the helper
def test_helper_matches_known_gradients() -> None:
    rng = np.random.default_rng(0)
    A = rng.standard_normal((3, 4))
    x = rng.standard_normal(4)
    numeric = numeric_gradient(lambda: float(np.sin(A @ x).sum()), x)
    analytic = A.T @ np.cos(A @ x)
    assert relative_error(analytic, numeric) < 1e-9
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.ones(2), -np.ones(2)) == 1.0
    x_before = x.copy()
    numeric_gradient(lambda: float(x.sum()), x)
    assert np.array_equal(x, x_before)  # perturbation undone


def test_helper_detects_a_wrong_gradient() -> None:
    w = np.array([1.0, 2.0, 3.0])
    with pytest.raises(AssertionError, match="param w: relative error"):
        assert_gradients(lambda: float((w**2).sum()), {"param w": (w, 2 * w + [0, 0, 1e-3])})


def test_helper_rejects_float32() -> None:
    with pytest.raises(TypeError, match="float64"):
        numeric_gradient(lambda: 0.0, np.zeros(2, dtype=np.float32))


# ------------------------------------------------------------------ sequences
SEQUENCE_KINDS = {
    "rnn_tanh": (nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTM, {}),
    "gru": (nn.GRU, {"reset_after": True}),
    "gru_reset_before": (nn.GRU, {"reset_after": False}),
}


@pytest.mark.parametrize("kind", sorted(SEQUENCE_KINDS))
@settings(max_examples=15, deadline=None)
@given(num_layers=st.integers(1, 2), bidirectional=st.booleans(), bias=st.booleans(),
       N=st.integers(1, 3), T=st.integers(1, 4), D=st.integers(1, 3), H=st.integers(1, 3),
       with_lengths=st.booleans(), with_dropout=st.booleans(), seed=SEEDS)
# a gradient of 3.6e-5 whose central difference at eps 1e-6 is off by round-off alone
@example(num_layers=2, bidirectional=True, bias=True, N=1, T=2, D=1, H=1, with_lengths=True,
         with_dropout=True, seed=731755)
def test_sequence_layer_gradients(kind: str, num_layers: int, bidirectional: bool, bias: bool,
                                  N: int, T: int, D: int, H: int, with_lengths: bool,
                                  with_dropout: bool, seed: int) -> None:
    cls, extra = SEQUENCE_KINDS[kind]
    rng = np.random.default_rng(seed)
    dropout = 0.4 if with_dropout and num_layers > 1 else 0.0
    layer = cls(D, H, num_layers=num_layers, bidirectional=bidirectional, bias=bias,
                dropout=dropout, dtype=np.float64, rng=rng, **extra)
    is_lstm = kind == "lstm"
    S, K = num_layers * (2 if bidirectional else 1), 2 if bidirectional else 1
    xs = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((S, N, H)) * 0.5
    c0 = rng.standard_normal((S, N, H)) * 0.5
    R, Rh, Rc = (rng.standard_normal((N, T, K * H)), rng.standard_normal((S, N, H)),
                 rng.standard_normal((S, N, H)))
    lengths = rng.integers(0, T + 1, size=N) if with_lengths else None
    state = (h0, c0) if is_lstm else h0
    drop_seed = int(rng.integers(2**32))

    def loss() -> float:
        layer.rng = np.random.default_rng(drop_seed)  # the same dropout mask every time
        hs = layer.forward(xs, state, lengths)
        total = float((hs * R).sum() + (layer.h_n * Rh).sum())
        if is_lstm:
            total += float((layer.c_n * Rc).sum())
        return total

    loss()
    dxs = layer.backward(R, (Rh, Rc) if is_lstm else Rh)
    checks = param_checks(layer)
    checks["input xs"] = (xs, dxs)
    checks["h0"] = (h0, layer.dh0.copy())
    if is_lstm:
        checks["c0"] = (c0, layer.dc0.copy())
    assert_gradients(loss, checks)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_sequence_gradients_with_zero_initial_state(kind: str) -> None:
    """``state=None`` and only ``dhs`` (no ``dstate``): dh0 is still the gradient of h0 = 0."""
    cls, extra = SEQUENCE_KINDS[kind]
    rng = np.random.default_rng(7)
    layer = cls(2, 3, num_layers=2, bidirectional=True, dtype=np.float64, rng=rng, **extra)
    xs, R = rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 3, 6))
    h0, c0 = np.zeros((4, 2, 3)), np.zeros((4, 2, 3))
    layer.forward(xs)
    dxs = layer.backward(R)
    checks = param_checks(layer)
    checks["input xs"] = (xs, dxs)
    checks["h0"] = (h0, layer.dh0.copy())
    if kind == "lstm":
        checks["c0"] = (c0, layer.dc0.copy())

    def loss() -> float:
        return float((layer.forward(xs, (h0, c0) if kind == "lstm" else h0) * R).sum())

    assert_gradients(loss, checks)


# ---------------------------------------------------------------------- cells
CELL_KINDS = {
    "rnn_tanh": (nn.RNNCell, {"nonlinearity": "tanh"}),
    "rnn_relu": (nn.RNNCell, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTMCell, {}),
    "gru": (nn.GRUCell, {"reset_after": True}),
    "gru_reset_before": (nn.GRUCell, {"reset_after": False}),
}


@pytest.mark.parametrize("kind", sorted(CELL_KINDS))
@settings(max_examples=10, deadline=None)
@given(bias=st.booleans(), N=st.integers(1, 3), D=st.integers(1, 4), H=st.integers(1, 4),
       seed=SEEDS)
def test_cell_gradients(kind: str, bias: bool, N: int, D: int, H: int, seed: int) -> None:
    cls, extra = CELL_KINDS[kind]
    rng = np.random.default_rng(seed)
    cell = cls(D, H, bias=bias, dtype=np.float64, rng=rng, **extra)
    x, h, c = (rng.standard_normal((N, D)), rng.standard_normal((N, H)),
               rng.standard_normal((N, H)))
    Rh, Rc = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    if kind == "lstm":
        def loss() -> float:
            h1, c1 = cell.forward(x, (h, c))
            return float((h1 * Rh).sum() + (c1 * Rc).sum())

        loss()
        dx, dh, dc = cell.backward(Rh, Rc)
        checks = {**param_checks(cell), "x": (x, dx), "h": (h, dh), "c": (c, dc)}
    else:
        def loss() -> float:
            return float((cell.forward(x, h) * Rh).sum())

        loss()
        dx, dh = cell.backward(Rh)
        checks = {**param_checks(cell), "x": (x, dx), "h": (h, dh)}
    assert_gradients(loss, checks)


def test_cells_unrolled_by_hand_with_kept_caches() -> None:
    """A loop over time with one cell, its caches kept and walked back in reverse order."""
    rng = np.random.default_rng(3)
    cell = nn.LSTMCell(2, 3, dtype=np.float64, rng=rng)
    xs = rng.standard_normal((4, 2, 2))  # (T, N, D)
    R = rng.standard_normal((4, 2, 3))

    def run() -> tuple[float, list[Any]]:
        h = c = None
        caches, total = [], 0.0
        for t in range(4):
            h, c = cell.forward(xs[t], None if h is None else (h, c))
            caches.append(cell.cache)
            total += float((h * R[t]).sum())
        return total, caches

    _, caches = run()
    dxs = np.zeros_like(xs)
    dh, dc = np.zeros((2, 3)), np.zeros((2, 3))
    for t in reversed(range(4)):
        dxs[t], dh, dc = cell.backward(dh + R[t], dc, cache=caches[t])
    assert_gradients(lambda: run()[0], {**param_checks(cell), "xs": (xs, dxs)})


# --------------------------------------------------------- small layers, losses
@settings(max_examples=8, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=3), out_f=st.integers(1, 4),
       bias=st.booleans(), seed=SEEDS)
def test_linear_gradients(shape: list[int], out_f: int, bias: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    layer = nn.Linear(shape[-1], out_f, bias=bias, dtype=np.float64, rng=rng)
    x = rng.standard_normal(shape)
    R = rng.standard_normal((*shape[:-1], out_f))

    def loss() -> float:
        return float((layer.forward(x) * R).sum())

    loss()
    dx = layer.backward(R)
    assert_gradients(loss, {**param_checks(layer), "x": (x, dx)})


@settings(max_examples=8, deadline=None)
@given(V=st.integers(1, 6), E=st.integers(1, 3),
       ids_shape=st.lists(st.integers(1, 5), min_size=1, max_size=2), seed=SEEDS)
def test_embedding_gradients(V: int, E: int, ids_shape: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    layer = nn.Embedding(V, E, dtype=np.float64, rng=rng)
    ids = rng.integers(0, V, size=ids_shape)  # repeated ids are likely: their rows sum
    R = rng.standard_normal((*ids_shape, E))

    def loss() -> float:
        return float((layer.forward(ids) * R).sum())

    loss()
    layer.backward(R)
    assert_gradients(loss, param_checks(layer))


def test_embedding_padding_row_gets_no_gradient_and_others_are_exact() -> None:
    rng = np.random.default_rng(5)
    layer = nn.Embedding(5, 3, padding_idx=1, dtype=np.float64, rng=rng)
    ids = np.array([[1, 0, 1, 4], [2, 1, 0, 0]])
    R = rng.standard_normal((2, 4, 3))

    def loss() -> float:
        return float((layer.forward(ids) * R).sum())

    loss()
    layer.backward(R)
    grad = layer.grads["weight"]
    assert not grad[1].any()
    numeric = numeric_gradient(loss, layer.params["weight"])
    numeric[1] = 0.0  # PyTorch's convention: the padding row is frozen
    assert relative_error(grad, numeric) <= 1e-6


@settings(max_examples=10, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=3),
       ignore_index=st.sampled_from([-100, 0]), reduction=st.sampled_from(["mean", "sum"]),
       dloss=st.sampled_from([1.0, 0.3]), seed=SEEDS)
def test_cross_entropy_gradients(shape: list[int], ignore_index: int, reduction: str,
                                 dloss: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    V = shape[-1]
    logits = rng.standard_normal(shape) * 2
    targets = rng.integers(0, V, size=shape[:-1])
    targets[rng.random(targets.shape) < 0.3] = ignore_index
    loss_fn = nn.SoftmaxCrossEntropy(ignore_index=ignore_index, reduction=reduction)

    def loss() -> float:
        return dloss * loss_fn.forward(logits, targets)

    loss()
    dlogits = loss_fn.backward(dloss)
    ignored = targets == ignore_index
    assert not dlogits[ignored].any()
    assert_gradients(loss, {"logits": (logits, dlogits)})


@settings(max_examples=8, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       reduction=st.sampled_from(["mean", "sum"]), seed=SEEDS)
def test_mse_gradients(shape: list[int], reduction: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    pred, target = rng.standard_normal(shape), rng.standard_normal(shape)
    loss_fn = nn.MSELoss(reduction=reduction)

    def loss() -> float:
        return 0.7 * loss_fn.forward(pred, target)

    loss()
    assert_gradients(loss, {"pred": (pred, loss_fn.backward(0.7))})


@pytest.mark.parametrize("cls", [nn.Dropout, nn.LockedDropout])
@settings(max_examples=5, deadline=None)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 3)),
       p=st.sampled_from([0.0, 0.3, 0.7]), seed=SEEDS)
def test_dropout_gradients(cls: type, shape: tuple[int, int, int], p: float,
                           seed: int) -> None:
    rng = np.random.default_rng(seed)
    layer = cls(p, dtype=np.float64, rng=0)
    x, R = rng.standard_normal(shape), rng.standard_normal(shape)

    def loss() -> float:
        layer.rng = np.random.default_rng(seed)  # fixes the mask
        return float((layer.forward(x) * R).sum())

    loss()
    assert_gradients(loss, {"x": (x, layer.backward(R))})
