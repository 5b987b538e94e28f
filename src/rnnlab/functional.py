"""The course-style functional API ("RNN step by step"), column layout.

Arrays are columns: ``x`` is ``(n_x, m, T_x)``, hidden states ``(n_a, m)``, biases
``(n, 1)``. Names, arguments and returns follow the classic exercise:

* ``rnn_cell_forward(xt, a_prev, parameters) -> (a_next, yt_pred, cache)``
* ``rnn_forward(x, a0, parameters) -> (a, y_pred, caches)``
* ``rnn_cell_backward(da_next, cache) -> {dxt, da_prev, dWax, dWaa, dba}``
* ``rnn_backward(da, caches) -> {dx, da0, dWax, dWaa, dba}``
* ``lstm_cell_forward(xt, a_prev, c_prev, parameters) -> (a_next, c_next, yt_pred, cache)``
* ``lstm_forward(x, a0, parameters) -> (a, y, c, caches)``
* ``lstm_cell_backward(da_next, dc_next, cache) -> {dxt, da_prev, dc_prev, dWf, dbf, ...}``
* ``lstm_backward(da, caches) -> {dx, da0, dWf, dbf, dWi, dbi, dWc, dbc, dWo, dbo}``

RNN parameters: ``Wax (n_a, n_x)``, ``Waa (n_a, n_a)``, ``Wya (n_y, n_a)``, ``ba (n_a, 1)``,
``by (n_y, 1)``. LSTM parameters: ``Wf, Wi, Wc, Wo`` each ``(n_a, n_a + n_x)`` applied to
``[a_prev; xt]``, biases ``bf, bi, bc, bo`` ``(n_a, 1)``, and ``Wy (n_y, n_a)``, ``by``.
``yt_pred`` is a softmax over axis 0. As in the course, the backward functions take the
gradient of the hidden states only (the softmax output is not differentiated).

No equation is written here: the functions translate the column layout to the layers'
row layout and run the same cell maths and time loop as :class:`rnnlab.nn.RNN` and
:class:`rnnlab.nn.LSTM` (``Wax`` is exactly PyTorch's ``weight_ih``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from rnnlab.backend import Array, xp_of
from rnnlab.nn.cells.lstm import LSTMMath
from rnnlab.nn.cells.rnn import RNNMath
from rnnlab.nn.scan import (
    Weights,
    final_state,
    new_back_trace,
    new_trace,
    scan_backward,
    scan_forward,
)
from rnnlab.nn.trace import Trace

_RNN = RNNMath("tanh")
_LSTM = LSTMMath()
_GATES = ("i", "f", "c", "o")  # the course's names for PyTorch's gate order i, f, g, o


def softmax(x: Array, axis: int = 0) -> Any:
    """Numerically stable softmax along ``axis`` (columns by default)."""
    xp = xp_of(x)
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


class RNNCellCache(NamedTuple):
    a_next: Any
    a_prev: Any
    xt: Any
    parameters: Mapping[str, Any]
    trace: Trace


class LSTMCellCache(NamedTuple):
    a_next: Any
    c_next: Any
    a_prev: Any
    c_prev: Any
    ft: Any
    it: Any
    cct: Any
    ot: Any
    xt: Any
    parameters: Mapping[str, Any]
    trace: Trace


class Caches(tuple):
    """``(list of per-step caches, x)`` as in the course; also holds the whole scan."""

    trace: Trace
    kind: str

    def __new__(cls, steps: list[Any], x: Array, trace: Trace, kind: str) -> Caches:
        obj = super().__new__(cls, (steps, x))
        obj.trace, obj.kind = trace, kind
        return obj


def _param(parameters: Mapping[str, Any], name: str, shape: tuple[int, ...]) -> Any:
    if not isinstance(parameters, Mapping):
        raise TypeError(f"parameters: expected a dict, got {type(parameters).__name__}")
    if name not in parameters:
        raise KeyError(f"parameters: missing {name!r} (expected shape {shape})")
    value = parameters[name]
    if tuple(value.shape) != shape:
        raise ValueError(f"parameters[{name!r}]: expected shape {shape}, got {tuple(value.shape)}")
    return value


def _require(parameters: Mapping[str, Any], name: str, shape: str) -> Any:
    """``parameters[name]``, or a clear error when ``parameters`` is no dict or lacks it."""
    if not isinstance(parameters, Mapping):
        raise TypeError(f"parameters: expected a dict, got {type(parameters).__name__}")
    if name not in parameters:
        raise KeyError(f"parameters: missing {name!r} (expected shape {shape})")
    return parameters[name]


def _check_rank(name: str, value: Any, layout: str) -> None:
    ndim = layout.count(",") + 1
    if not hasattr(value, "shape"):
        raise TypeError(f"{name}: expected an array {layout}, got {type(value).__name__}")
    if value.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array {layout}, got shape "
                         f"{tuple(value.shape)}")


def _check(name: str, value: Any, shape: tuple[int, ...]) -> None:
    if not hasattr(value, "shape"):
        raise TypeError(f"{name}: expected an array of shape {shape}, got {type(value).__name__}")
    if tuple(value.shape) != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {tuple(value.shape)}")


# ----------------------------------------------------------------------- RNN
def _rnn_weights(parameters: Mapping[str, Any], n_x: int) -> tuple[Weights, Any, Any]:
    n_a = _require(parameters, "Waa", "(n_a, n_a)").shape[0]
    Wax = _param(parameters, "Wax", (n_a, n_x))
    Waa = _param(parameters, "Waa", (n_a, n_a))
    ba = _param(parameters, "ba", (n_a, 1))
    Wya = _require(parameters, "Wya", "(n_y, n_a)")
    by = _param(parameters, "by", (Wya.shape[0], 1))
    _param(parameters, "Wya", (Wya.shape[0], n_a))
    return Weights(Wax, Waa, ba[:, 0], xp_of(ba).zeros_like(ba[:, 0])), Wya, by


def _run(math: Any, x_rows: Any, w: Weights, h0: Array, c0: Any = None) -> Trace:
    """Scan ``x_rows`` ``(T, m, n_x)`` with the layers' time loop."""
    T, m, n_x = x_rows.shape
    xp = xp_of(x_rows)
    for name, value in (("weights", w.W_ih), ("hidden state", h0)):
        if value.dtype != x_rows.dtype:
            raise TypeError(f"{name}: expected dtype {x_rows.dtype} (the dtype of x), "
                            f"got {value.dtype}")
    tr = new_trace(math, xp, T, m, n_x, w.W_hh.shape[1], x_rows.dtype)
    scan_forward(math, tr, xp.ascontiguousarray(x_rows), w, h0, c0)
    return tr


def _back(math: Any, tr: Trace, w: Weights, dH: Array, dh_n: Array, dc_n: Array | None = None
          ) -> tuple[Any, Weights, Any, Any]:
    xp = tr.xp
    grads = Weights(xp.zeros_like(w.W_ih), xp.zeros_like(w.W_hh), xp.zeros_like(w.b_ih),
                    xp.zeros_like(w.b_hh))

    def acc(g: Any, a: Array, b: Array) -> None:
        g += a @ b

    dX = xp.empty((tr.T * tr.N, tr.D), dtype=tr.dtype)
    dh0, dc0 = scan_backward(math, tr, new_back_trace(math, tr), w, grads, acc,
                             dH=dH, dh_n=dh_n, dc_n=dc_n, dX=dX)
    return dX.reshape(tr.T, tr.N, tr.D), grads, dh0, dc0


def rnn_cell_forward(xt: Array, a_prev: Array, parameters: Mapping[str, Any]
                     ) -> tuple[Any, Any, RNNCellCache]:
    """One tanh RNN step: ``a_next = tanh(Wax xt + Waa a_prev + ba)``,
    ``yt_pred = softmax(Wya a_next + by)``."""
    _check_rank("xt", xt, "(n_x, m)")
    w, Wya, by = _rnn_weights(parameters, xt.shape[0])
    _check("a_prev", a_prev, (w.W_hh.shape[0], xt.shape[1]))
    tr = _run(_RNN, xt.T[None], w, a_prev.T)
    a_next = final_state(tr)[0].T.copy()
    yt_pred = softmax(Wya @ a_next + by)
    return a_next, yt_pred, RNNCellCache(a_next, a_prev, xt, parameters, tr)


def rnn_cell_backward(da_next: Any, cache: RNNCellCache) -> dict[str, Any]:
    """Gradients of one step from the gradient ``da_next`` of its hidden state."""
    _check("da_next", da_next, tuple(cache.a_next.shape))
    w, _, _ = _rnn_weights(cache.parameters, cache.xt.shape[0])
    dX, g, dh0, _ = _back(_RNN, cache.trace, w, None, da_next.T)
    return {"dxt": dX[0].T, "da_prev": dh0.T, "dWax": g.W_ih, "dWaa": g.W_hh,
            "dba": g.b_ih[:, None]}


def rnn_forward(x: Array, a0: Any, parameters: Mapping[str, Any]) -> tuple[Any, Any, Caches]:
    """Run the tanh RNN over ``x`` ``(n_x, m, T_x)``; ``a`` ``(n_a, m, T_x)``,
    ``y_pred`` ``(n_y, m, T_x)``."""
    _check_rank("x", x, "(n_x, m, T_x)")
    n_x, m, T_x = x.shape
    w, Wya, by = _rnn_weights(parameters, n_x)
    _check("a0", a0, (w.W_hh.shape[0], m))
    tr = _run(_RNN, x.transpose(2, 1, 0), w, a0.T)
    a = tr.outputs.transpose(2, 1, 0).copy()
    y_pred = softmax(xp_of(x).einsum("ya,amt->ymt", Wya, a) + by[:, :, None])
    prev = tr.previous.transpose(2, 1, 0)
    steps = [(a[:, :, t], prev[:, :, t], x[:, :, t], parameters) for t in range(T_x)]
    return a, y_pred, Caches(steps, x, tr, "rnn")


def rnn_backward(da: Array, caches: Caches) -> dict[str, Any]:
    """Backward through :func:`rnn_forward` from ``da`` ``(n_a, m, T_x)``, the upstream
    gradient of every hidden state."""
    _, x = caches
    tr = caches.trace
    _check("da", da, (tr.H, tr.N, tr.T))
    w, _, _ = _rnn_weights(caches[0][0][3], x.shape[0])
    dX, g, dh0, _ = _back(_RNN, tr, w, da.transpose(2, 1, 0), None)
    return {"dx": dX.transpose(2, 1, 0), "da0": dh0.T, "dWax": g.W_ih, "dWaa": g.W_hh,
            "dba": g.b_ih[:, None]}


# ---------------------------------------------------------------------- LSTM
def _lstm_weights(parameters: Mapping[str, Any], n_x: int) -> tuple[Weights, Any, Any]:
    if not isinstance(parameters, Mapping):
        raise TypeError(f"parameters: expected a dict, got {type(parameters).__name__}")
    if "Wf" not in parameters:
        raise KeyError("parameters: missing 'Wf' (expected shape (n_a, n_a + n_x))")
    n_a = parameters["Wf"].shape[0]
    Ws = [_param(parameters, f"W{g}", (n_a, n_a + n_x)) for g in _GATES]
    bs = [_param(parameters, f"b{g}", (n_a, 1)) for g in _GATES]
    Wy = _require(parameters, "Wy", "(n_y, n_a)")
    _param(parameters, "Wy", (Wy.shape[0], n_a))
    by = _param(parameters, "by", (Wy.shape[0], 1))
    xp = xp_of(Ws[0])
    W_hh = xp.concatenate([W[:, :n_a] for W in Ws])  # the course's [a_prev; xt] order
    W_ih = xp.concatenate([W[:, n_a:] for W in Ws])
    b = xp.concatenate([bb[:, 0] for bb in bs])
    return Weights(W_ih, W_hh, b, xp.zeros_like(b)), Wy, by


def _lstm_grads(g: Weights, n_a: int) -> dict[str, Any]:
    xp = xp_of(g.W_ih)
    out = {}
    for k, gate in enumerate(_GATES):
        rows = slice(k * n_a, (k + 1) * n_a)
        out[f"dW{gate}"] = xp.concatenate([g.W_hh[rows], g.W_ih[rows]], axis=1)
        out[f"db{gate}"] = g.b_ih[rows][:, None]
    return out


def lstm_cell_forward(xt: Array, a_prev: Array, c_prev: Any, parameters: Mapping[str, Any]
                      ) -> tuple[Any, Any, Any, LSTMCellCache]:
    """One LSTM step; returns ``(a_next, c_next, yt_pred, cache)``."""
    _check_rank("xt", xt, "(n_x, m)")
    w, Wy, by = _lstm_weights(parameters, xt.shape[0])
    n_a, m = w.W_hh.shape[1], xt.shape[1]
    _check("a_prev", a_prev, (n_a, m))
    _check("c_prev", c_prev, (n_a, m))
    tr = _run(_LSTM, xt.T[None], w, a_prev.T, c_prev.T)
    h, c = final_state(tr)
    a_next, c_next = h.T.copy(), c.T.copy()
    acts = tr.buffers["acts"][0].T  # (4 n_a, m): i, f, g, o
    it, ft, cct, ot = (acts[k * n_a : (k + 1) * n_a].copy() for k in range(4))
    yt_pred = softmax(Wy @ a_next + by)
    cache = LSTMCellCache(a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters, tr)
    return a_next, c_next, yt_pred, cache


def lstm_cell_backward(da_next: Any, dc_next: Any, cache: LSTMCellCache) -> dict[str, Any]:
    """Gradients of one LSTM step from ``da_next`` and ``dc_next``."""
    _check("da_next", da_next, tuple(cache.a_next.shape))
    _check("dc_next", dc_next, tuple(cache.c_next.shape))
    w, _, _ = _lstm_weights(cache.parameters, cache.xt.shape[0])
    dX, g, dh0, dc0 = _back(_LSTM, cache.trace, w, None, da_next.T, dc_next.T)
    return {"dxt": dX[0].T, "da_prev": dh0.T, "dc_prev": dc0.T,
            **_lstm_grads(g, w.W_hh.shape[1])}


def lstm_forward(x: Array, a0: Any, parameters: Mapping[str, Any]
                 ) -> tuple[Any, Any, Any, Caches]:
    """Run the LSTM over ``x`` ``(n_x, m, T_x)`` from ``a0`` (and a zero cell state);
    returns ``a``, ``y``, ``c`` and the caches."""
    _check_rank("x", x, "(n_x, m, T_x)")
    n_x, m, T_x = x.shape
    w, Wy, by = _lstm_weights(parameters, n_x)
    n_a = w.W_hh.shape[1]
    _check("a0", a0, (n_a, m))
    xp = xp_of(x)
    tr = _run(_LSTM, x.transpose(2, 1, 0), w, a0.T, xp.zeros((m, n_a), dtype=x.dtype))
    a = tr.outputs.transpose(2, 1, 0).copy()
    c = tr.cell_states[1:].transpose(2, 1, 0).copy()
    y = softmax(xp.einsum("ya,amt->ymt", Wy, a) + by[:, :, None])
    acts = tr.buffers["acts"].transpose(2, 1, 0)  # (4 n_a, m, T)
    prev_a = tr.previous.transpose(2, 1, 0)
    prev_c = tr.cell_states[:T_x].transpose(2, 1, 0)
    steps = []
    for t in range(T_x):
        it, ft, cct, ot = (acts[k * n_a : (k + 1) * n_a, :, t] for k in range(4))
        steps.append((a[:, :, t], c[:, :, t], prev_a[:, :, t], prev_c[:, :, t], ft, it, cct,
                      ot, x[:, :, t], parameters))
    return a, y, c, Caches(steps, x, tr, "lstm")


def lstm_backward(da: Array, caches: Caches) -> dict[str, Any]:
    """Backward through :func:`lstm_forward` from ``da`` ``(n_a, m, T_x)``."""
    _, x = caches
    tr = caches.trace
    _check("da", da, (tr.H, tr.N, tr.T))
    w, _, _ = _lstm_weights(caches[0][0][9], x.shape[0])
    dX, g, dh0, _ = _back(_LSTM, tr, w, da.transpose(2, 1, 0), None)
    return {"dx": dX.transpose(2, 1, 0), "da0": dh0.T, **_lstm_grads(g, w.W_hh.shape[1])}
