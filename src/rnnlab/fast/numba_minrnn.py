"""numba kernels of minGRU and minLSTM (:mod:`rnnlab.nn.minrnn`): the gates and the linear
recurrence of one layer direction in one compiled pass, forward and backward (imported
only when numba is installed).

The reference computes the gates in several NumPy passes over ``(T, N, H)`` arrays and
then scans; here each row ``n`` of the batch is one loop over time that reads the
pre-activations ``P`` and writes the states (forward) or the pre-activation gradients
(backward). The gates are recomputed from ``P`` in the backward instead of being kept.
The arithmetic is the reference's sequential mode (the same formulas in the same order;
only the libm behind ``exp`` and ``log1p`` differs from NumPy's), so in float64 it
agrees with both modes of the reference to rounding (``tests/fast/test_minrnn_engine.py``).

Arguments, all C-contiguous, in *time* order (``reverse`` runs ``t = T-1 .. 0``, the
backward direction of a bidirectional layer)::

    P       (T, N, G*H)   pre-activations, G = 2 (minGRU: [k; u]) or 3 (minLSTM: [kf; ki; u])
    h0      (N, H)        initial state
    valid   (T, N) uint8  1 where step t of row n is inside its sequence
    h       (T+1, N, H)   out: h[0] = h0, h[s+1] the state after the s-th processed step
    dy      (T, N, H)     gradient of the outputs (time order)
    dh_n    (N, H)        gradient of the final state
    dP      (T, N, G*H)   out: gradient of P (zero at padded steps)
    dh0     (N, H)        out: gradient of h0
    dh      (T, N, H)     out when ``record``: the total gradient of each state, in
                          processing order (shape (0, 0, 0) otherwise)

``n0, n1``: the rows this call handles (rows are independent, so parts can run on
several threads and the result does not depend on the split).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import overload

from rnnlab.fast.kernels import JitOptions
from rnnlab.fast.numba_kernels import _exp1

_OPTS: JitOptions = {"nogil": True, "boundscheck": False, "cache": True, "error_model": "numpy"}
#: constants exact in float32, so that float32 arithmetic stays float32 (a float64
#: literal would widen it) and float64 arithmetic is unchanged
ONE, HALF, ZERO = np.float32(1.0), np.float32(0.5), np.float32(0.0)


def _exp(x):  # pragma: no cover - numba's overload below is what runs
    """``exp``: the vectorising polynomial of :mod:`rnnlab.fast.kernels` in float32
    (clamped to [-80, 80]), libm's in float64."""
    raise NotImplementedError


@overload(_exp, inline="always")
def _exp_for(x):
    if x == types.float32:
        return lambda x: _exp1(x)
    return lambda x: math.exp(x)


def _norm_gates(kf, ki):  # pragma: no cover - numba's overload below is what runs
    """``(f, i, f', i')`` of minLSTM from ``kf``, ``ki``."""
    raise NotImplementedError


@overload(_norm_gates, inline="always")
def _norm_gates_for(kf, ki):
    if kf == types.float32:
        # float32: f' = 1 / (1 + r), i' = r / (1 + r) with r = i / f, which vectorises
        # (no log). When both pre-activations are <= 0, r = e^(ki - kf) (1 + e^kf) /
        # (1 + e^ki) exactly, free of the underflow of f and i far below zero (where the
        # clamped exp would make them equal); otherwise one of f, i is >= 1/2 and i / f
        # is accurate.
        def gates(kf, ki):
            f, i = _sigmoid(kf), _sigmoid(ki)
            low = _exp(ki - kf) * (ONE + _exp(kf)) / (ONE + _exp(ki))
            r = low if (kf <= ZERO and ki <= ZERO) else i / f
            fn = ONE / (ONE + r)
            return f, i, fn, r * fn
        return gates

    def gates(kf, ki):  # float64: the reference's formulas (log space, no division)
        lf, li = _log_sigmoid(kf), _log_sigmoid(ki)
        return _sigmoid(kf), _sigmoid(ki), _sigmoid(lf - li), _sigmoid(li - lf)
    return gates


@njit(**_OPTS, inline="always")
def _sigmoid(x):
    e = _exp(-abs(x))
    return (ONE if x >= ZERO else e) / (ONE + e)


@njit(**_OPTS, inline="always")
def _log_sigmoid(x):
    return -(max(-x, ZERO) + math.log1p(math.exp(-abs(x))))


@njit(**_OPTS, inline="always")
def _g(x):
    return x + HALF if x >= ZERO else _sigmoid(x)


@njit(**_OPTS, inline="always")
def _g_prime(x, gx):
    return ONE if x >= ZERO else gx * (ONE - gx)


@njit(**_OPTS)
def mingru_forward(P, h0, valid, reverse, h, n0, n1):
    T, H = P.shape[0], h0.shape[1]
    for n in range(n0, n1):
        for j in range(H):
            h[0, n, j] = h0[n, j]
        for s in range(T):
            t = T - 1 - s if reverse else s
            if valid[t, n]:
                for j in range(H):
                    z = _sigmoid(P[t, n, j])
                    ht = _g(P[t, n, H + j])
                    h[s + 1, n, j] = (ONE - z) * h[s, n, j] + z * ht
            else:
                for j in range(H):
                    h[s + 1, n, j] = h[s, n, j]


@njit(**_OPTS)
def mingru_backward(P, h, dy, dh_n, valid, reverse, dP, dh0, dh, record, n0, n1):
    T, H = P.shape[0], dh_n.shape[1]
    for n in range(n0, n1):
        for j in range(H):
            dh0[n, j] = dh_n[n, j]  # the carry a_{t+1} dh_{t+1}, finally a_0 dh_0
        for s in range(T - 1, -1, -1):
            t = T - 1 - s if reverse else s
            if valid[t, n]:
                for j in range(H):
                    d = dy[t, n, j] + dh0[n, j]
                    if record:
                        dh[s, n, j] = d
                    k, u = P[t, n, j], P[t, n, H + j]
                    z = _sigmoid(k)
                    ht = _g(u)
                    dz = d * ht - d * h[s, n, j]  # db h~ - da
                    dP[t, n, j] = dz * z * (ONE - z)
                    dP[t, n, H + j] = d * z * _g_prime(u, ht)
                    dh0[n, j] = (ONE - z) * d
            else:
                for j in range(H):
                    if record:
                        dh[s, n, j] = dh0[n, j]
                    dP[t, n, j] = ZERO
                    dP[t, n, H + j] = ZERO


@njit(**_OPTS)
def minlstm_forward(P, h0, valid, reverse, h, n0, n1):
    T, H = P.shape[0], h0.shape[1]
    for n in range(n0, n1):
        for j in range(H):
            h[0, n, j] = h0[n, j]
        for s in range(T):
            t = T - 1 - s if reverse else s
            if valid[t, n]:
                for j in range(H):
                    _, _, fn, in_ = _norm_gates(P[t, n, j], P[t, n, H + j])
                    ht = _g(P[t, n, 2 * H + j])
                    h[s + 1, n, j] = fn * h[s, n, j] + in_ * ht
            else:
                for j in range(H):
                    h[s + 1, n, j] = h[s, n, j]


@njit(**_OPTS)
def minlstm_backward(P, h, dy, dh_n, valid, reverse, dP, dh0, dh, record, n0, n1):
    T, H = P.shape[0], dh_n.shape[1]
    for n in range(n0, n1):
        for j in range(H):
            dh0[n, j] = dh_n[n, j]
        for s in range(T - 1, -1, -1):
            t = T - 1 - s if reverse else s
            if valid[t, n]:
                for j in range(H):
                    d = dy[t, n, j] + dh0[n, j]
                    if record:
                        dh[s, n, j] = d
                    f, i, fn, in_ = _norm_gates(P[t, n, j], P[t, n, H + j])
                    u = P[t, n, 2 * H + j]
                    ht = _g(u)
                    common = (d * h[s, n, j] - d * ht) * fn * in_  # (df' - di') f' i'
                    dP[t, n, j] = common * (ONE - f)
                    dP[t, n, H + j] = -common * (ONE - i)
                    dP[t, n, 2 * H + j] = d * in_ * _g_prime(u, ht)
                    dh0[n, j] = fn * d
            else:
                for j in range(H):
                    if record:
                        dh[s, n, j] = dh0[n, j]
                    dP[t, n, j] = ZERO
                    dP[t, n, H + j] = ZERO
                    dP[t, n, 2 * H + j] = ZERO


KERNELS = {
    "mingru": (mingru_forward, mingru_backward),
    "minlstm": (minlstm_forward, minlstm_backward),
}
