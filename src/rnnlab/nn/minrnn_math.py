"""The maths of :mod:`rnnlab.nn.minrnn`: the gates of minGRU and minLSTM, their
derivatives, and the scans of the linear recurrence ``h_t = a_t * h_{t-1} + b_t``.

Every function takes the array module ``xp`` (numpy or CuPy) and works on arrays in
*processing order*: axis 0 is the step, ``t = 0 .. T-1`` (for the backward direction of
a bidirectional layer the caller reverses time first). Shapes::

    P       (T, N, G*H)   gate pre-activations, G = 2 (minGRU) or 3 (minLSTM)
    a, b    (T, N, H)     the recurrence's coefficients; la = log a, lb = log b
    h0      (N, H)        initial state
    h       (T+1, N, H)   h[0] = h0, h[t+1] = the state after step t
    dy      (T, N, H)     gradient of the outputs h[1:]
    dh      (T, N, H)     total gradient of each state

The equations are written out in the docstring of :mod:`rnnlab.nn.minrnn`.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

#: ``log 0`` in the log-space scans: finite, so that no ``inf - inf`` can arise (CuPy's
#: ``logaddexp`` gives NaN for two infinities), and ``exp(LOG_ZERO + x)`` is exactly 0
#: for every ``x`` a scan adds to it. Representable in float32.
LOG_ZERO = -1e30

#: Steps per block of the log-space scan. Inside a block the cumulative sums of
#: ``log a`` start from 0, so their size (and the rounding of ``log h``, which is their
#: difference with a log-sum of the same size) stays bounded by the block instead of
#: growing with T; the state is carried from block to block in linear space.
SCAN_BLOCK = 64


# ---------------------------------------------------------------- activations
def softplus(xp: ModuleType, x: Any) -> Any:
    """``log(1 + e^x)`` without overflow."""
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


def log_sigmoid(xp: ModuleType, x: Any) -> Any:
    """``log sigmoid(x) = -softplus(-x)``."""
    return -softplus(xp, -x)


def sigmoid(xp: ModuleType, x: Any) -> Any:
    """``1 / (1 + e^-x)`` without overflow (one ``exp`` of a non-positive number)."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1, e) / (1 + e)


def g(xp: ModuleType, x: Any) -> Any:
    """The positive activation of the candidate state: ``x + 1/2`` for ``x >= 0``,
    ``sigmoid(x)`` below (continuous at 0, where both are 1/2)."""
    return xp.where(x >= 0, x + 0.5, sigmoid(xp, x))  # eq: minrnn.g


def log_g(xp: ModuleType, x: Any) -> Any:
    """``log g(x)``: ``log(x + 1/2)`` for ``x >= 0``, ``-softplus(-x)`` below."""
    return xp.where(x >= 0, xp.log(xp.maximum(x, 0) + 0.5), log_sigmoid(xp, x))


def g_prime(xp: ModuleType, x: Any, gx: Any) -> Any:
    """``g'(x)`` from ``x`` and ``gx = g(x)``: 1 for ``x >= 0``, ``g (1 - g)`` below."""
    return xp.where(x >= 0, 1, gx * (1 - gx))


def log_positive(xp: ModuleType, v: Any) -> Any:
    """``log v`` where ``v > 0``, :data:`LOG_ZERO` elsewhere (no ``log 0`` is taken)."""
    pos = v > 0
    return xp.where(pos, xp.log(xp.where(pos, v, 1)), LOG_ZERO)


# ---------------------------------------------------------------------- gates
def mingru_gates(xp: ModuleType, P: Any, log_space: bool) -> tuple[Any, Any, dict[str, Any]]:
    """minGRU, ``P = [k; u]``: ``z = sigmoid(k)``, ``h~ = g(u)``, ``a = 1 - z``,
    ``b = z h~``. Returns ``(a, b, saved)``; with ``log_space``, ``saved`` also holds
    ``la = log a = -softplus(k)`` and ``lb = log z + log h~ = -softplus(-k) + log g(u)``."""
    H = P.shape[-1] // 2
    k, u = P[..., :H], P[..., H:]
    ht = g(xp, u)
    saved = {"ht": ht, "gp": g_prime(xp, u, ht)}
    if log_space:
        saved["la"], lz = log_sigmoid(xp, -k), log_sigmoid(xp, k)  # eq: mingru.log_a
        saved["lb"] = lz + log_g(xp, u)  # eq: mingru.log_b
        z = xp.exp(lz)
        a = xp.exp(saved["la"])
    else:
        z = sigmoid(xp, k)  # eq: mingru.z
        a = 1 - z  # eq: mingru.a
    saved["z"] = z
    return a, z * ht, saved  # eq: mingru.b


def mingru_gate_grads(xp: ModuleType, s: dict[str, Any], da: Any, db: Any) -> Any:
    """``dP = [dk; du]`` from ``da``, ``db``: ``dz = db h~ - da``, ``dh~ = db z``,
    ``dk = dz z (1 - z)``, ``du = dh~ g'(u)``."""
    z, ht = s["z"], s["ht"]
    dz = db * ht - da  # eq: mingru.dz
    dk = dz * z * (1 - z)  # eq: mingru.dk
    du = db * z * s["gp"]  # eq: mingru.du
    return xp.concatenate([dk, du], axis=-1)


def minlstm_gates(xp: ModuleType, P: Any, log_space: bool) -> tuple[Any, Any, dict[str, Any]]:
    """minLSTM, ``P = [kf; ki; u]``: ``f = sigmoid(kf)``, ``i = sigmoid(ki)``,
    ``f' = f / (f + i) = sigmoid(log f - log i)``, ``i' = i / (f + i) = sigmoid(log i -
    log f)`` (no division, no ``f + i`` that could underflow), ``h~ = g(u)``, ``a = f'``,
    ``b = i' h~``; with ``log_space``, ``la = log_sigmoid(log f - log i)`` and
    ``lb = log_sigmoid(log i - log f) + log g(u)``."""
    H = P.shape[-1] // 3
    kf, ki, u = P[..., :H], P[..., H : 2 * H], P[..., 2 * H :]
    lf, li = log_sigmoid(xp, kf), log_sigmoid(xp, ki)
    ht = g(xp, u)
    saved = {"f": sigmoid(xp, kf), "i": sigmoid(xp, ki), "ht": ht, "gp": g_prime(xp, u, ht)}
    if log_space:
        saved["la"] = log_sigmoid(xp, lf - li)
        lib = log_sigmoid(xp, li - lf)
        saved["lb"] = lib + log_g(xp, u)
        fn, in_ = xp.exp(saved["la"]), xp.exp(lib)
    else:
        fn, in_ = sigmoid(xp, lf - li), sigmoid(xp, li - lf)  # eq: minlstm.gates
    saved["fn"], saved["in"] = fn, in_
    return fn, in_ * ht, saved  # eq: minlstm.b


def minlstm_gate_grads(xp: ModuleType, s: dict[str, Any], da: Any, db: Any) -> Any:
    """``dP = [dkf; dki; du]``: ``df' = da``, ``di' = db h~``, ``dh~ = db i'``; through
    the normalisation (``s = f + i``, ``df = (df' - di') i'/s``, ``di = (di' - df') f'/s``)
    and the sigmoids, ``dkf = (df' - di') f' i' (1 - f)``, ``dki = (di' - df') f' i' (1 - i)``,
    ``du = dh~ g'(u)``."""
    fn, in_, ht = s["fn"], s["in"], s["ht"]
    dfn, din = da, db * ht
    common = (dfn - din) * fn * in_
    dkf = common * (1 - s["f"])
    dki = -common * (1 - s["i"])
    du = db * in_ * s["gp"]
    return xp.concatenate([dkf, dki, du], axis=-1)


CELLS = {
    "mingru": (2, mingru_gates, mingru_gate_grads),
    "minlstm": (3, minlstm_gates, minlstm_gate_grads),
}


# ---------------------------------------------------------------------- scans
def scan_sequential(xp: ModuleType, a: Any, b: Any, h0: Any) -> Any:
    """``h_t = a_t h_{t-1} + b_t``, one step at a time; returns ``h`` ``(T+1, N, H)``."""
    T = a.shape[0]
    h = xp.empty((T + 1, *h0.shape), dtype=b.dtype)
    h[0] = h0
    for t in range(T):
        xp.multiply(a[t], h[t], out=h[t + 1])
        h[t + 1] += b[t]  # eq: minrnn.scan
    return h


def grad_scan_sequential(xp: ModuleType, a: Any, dy: Any, dh_n: Any) -> tuple[Any, Any]:
    """``dh_t = dy_t + a_{t+1} dh_{t+1}`` backward in time from ``dh_{T-1} = dy_{T-1} +
    dh_n``; returns ``(dh, dh0)`` with ``dh0 = a_0 dh_0``."""
    dh = xp.empty_like(dy)
    carry = dh_n  # a_{t+1} dh_{t+1}
    for t in range(dy.shape[0] - 1, -1, -1):
        xp.add(dy[t], carry, out=dh[t])  # eq: minrnn.dh
        carry = a[t] * dh[t]
    return dh, carry


def logcumsumexp(xp: ModuleType, x: Any) -> Any:
    """``log(cumsum(exp(x)))`` along axis 0, stably: NumPy's ``logaddexp.accumulate``,
    or (an array module without it, as CuPy) a doubling scan, ``log2(T)`` passes of
    the elementwise ``logaddexp`` over shifted copies."""
    if xp is np:
        return np.logaddexp.accumulate(x, axis=0)
    out, step = x.copy(), 1
    while step < out.shape[0]:
        out[step:] = xp.logaddexp(out[step:], out[:-step])  # the right side reads old values
        step *= 2
    return out


def scan_log(xp: ModuleType, la: Any, lb: Any, h0: Any, block: int | None = None) -> Any:
    """``h_t = exp(la_t) h_{t-1} + exp(lb_t)`` in log space, ``block`` steps at a time:
    inside a block starting from ``h_s``, ``a*_t = cumsum(la)`` and
    ``h_t = exp(a*_t + logcumsumexp(lb - a*)_t) + exp(a*_t) h_s``.
    The state enters in linear space, so it may have any sign. Returns ``(T+1, N, H)``;
    ``block`` defaults to :data:`SCAN_BLOCK` (read at each call)."""
    T, block = la.shape[0], block or SCAN_BLOCK
    h = xp.empty((T + 1, *h0.shape), dtype=lb.dtype)
    h[0] = h0
    for s in range(0, T, block):
        e = min(s + block, T)
        astar = xp.cumsum(la[s:e], axis=0)  # eq: minrnn.astar
        h[s + 1 : e + 1] = xp.exp(astar + logcumsumexp(xp, lb[s:e] - astar))  # eq: minrnn.log_h
        h[s + 1 : e + 1] += xp.exp(astar) * h[s]  # eq: minrnn.h0
    return h


def scan_log_signed(xp: ModuleType, la: Any, v: Any, h0: Any,
                    block: int | None = None) -> Any:
    """``h_t = exp(la_t) h_{t-1} + v_t`` for ``v`` of any sign: the scan is linear in
    ``(h0, v)``, so it is the scan of the positive parts minus that of the negative parts."""
    plus = scan_log(xp, la, log_positive(xp, v), h0, block)
    minus = scan_log(xp, la, log_positive(xp, -v), xp.zeros_like(h0), block)
    return plus - minus  # eq: minrnn.signed


def grad_scan_log(xp: ModuleType, la: Any, dy: Any, dh_n: Any,
                  block: int | None = None) -> tuple[Any, Any]:
    """:func:`grad_scan_sequential` as a log-space scan run backward in time: with
    ``c_j = dh_{T-1-j}``, ``c_j = a_{T-j} c_{j-1} + dy_{T-1-j}``, ``c_{-1} = dh_n`` and
    ``a_T = 1``."""
    la_back = xp.concatenate([xp.zeros_like(la[:1]), la[:0:-1]])  # log a_T = 0, a_{T-1}..a_1
    c = scan_log_signed(xp, la_back, dy[::-1], dh_n, block)  # eq: minrnn.grad_log
    dh = c[1:][::-1]
    return dh, xp.exp(la[0]) * dh[0]
