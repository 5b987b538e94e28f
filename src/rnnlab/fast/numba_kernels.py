"""The numba kernels behind :mod:`rnnlab.fast.kernels` (imported only when numba is installed).

Module-level functions so that numba can cache their machine code on disk.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from rnnlab.fast import numba_gemm as gemm  # the packed per-step products; its atomic counter
from rnnlab.fast.kernels import JitOptions

#: Every fast-math flag but ``arcp`` (division through a reciprocal). LLVM vectorises
#: these loops and keeps a scalar copy of each that it runs when two arrays lie close
#: together (it cannot prove they do not overlap), so which copy runs depends on where
#: the allocator put the arrays. With ``arcp`` the two copies of ``1 / (1 + e)`` rounded
#: differently, and identical runs could part in the last bit
#: (``tests/nn/test_kernel_placement.py``); without it they give the same bits.
_FASTMATH: set[str] = {"nnan", "ninf", "nsz", "contract", "afn", "reassoc"}
_OPTS: JitOptions = {"nogil": True, "fastmath": _FASTMATH, "boundscheck": False, "cache": True,
         "error_model": "numpy"}
f32 = np.float32


@intrinsic
def _bits_to_f32(typingctx, bits):
    """The float32 whose bits are the int32 ``bits`` (a register move; it vectorises)."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@njit(**_OPTS, inline="always")
def _exp1(v):
    """exp(v) for one float32 (see :mod:`rnnlab.fast.kernels`): ``2^k`` is built from its
    exponent bits, so the whole function vectorises inside any loop that calls it."""
    v = min(max(v, f32(-80.0)), f32(80.0))
    k = np.floor(v * f32(1.4426950408889634) + f32(0.5))
    r = v - k * f32(0.693359375) - k * f32(-2.12194440e-4)
    p = f32(1.9875691500e-4)
    p = p * r + f32(1.3981999507e-3)
    p = p * r + f32(8.3334519073e-3)
    p = p * r + f32(4.1665795894e-2)
    p = p * r + f32(1.6666665459e-1)
    p = p * r + f32(5.0000001201e-1)
    return (p * r * r + r + f32(1.0)) * _bits_to_f32((np.int32(k) + np.int32(127)) << 23)


@njit(**_OPTS)
def vexp(x):  # x (n,) float32 in place
    for i in range(x.size):
        x[i] = _exp1(x[i])


@njit(**_OPTS)
def xent_blocks(z, t, valid, scale, losses, block, counter):
    """Rows z (B, V) -> scale * (softmax(z) - onehot(t)) in place; losses (B,) float64 <-
    each row's loss (0 on ignored rows, whose gradient is zero and whose logits are never
    read). The rows go in blocks of ``block``; each caller takes the next block from
    ``counter`` (an int64 array of one element, zero at the start) until none is left,
    so any number of threads may run this at once, and a thread that starts late simply
    takes fewer blocks. Three sweeps per row: the maximum, the exponentials and their
    sum, the scaling."""
    B, V = z.shape
    addr = counter.ctypes.data
    while True:
        lo = gemm._fetch_add(addr) * block
        if lo >= B:
            return
        for n in range(lo, min(B, lo + block)):
            row = z[n]
            if not valid[n]:
                row[:] = f32(0.0)
                losses[n] = 0.0
                continue
            m = row[0]
            for j in range(1, V):
                m = max(m, row[j])
            picked = row[t[n]] - m
            s = f32(0.0)
            for j in range(V):
                e = _exp1(row[j] - m)
                row[j] = e
                s += e
            losses[n] = np.log(np.float64(s)) - np.float64(picked)
            factor = f32(scale) / s
            for j in range(V):
                row[j] *= factor
            row[t[n]] -= f32(scale)


@njit(**_OPTS)
def lstm_forward(a, c_prev, c, tc, h, e):
    """a (N, 4H) pre-activations -> activations (i, f, g, o) in place; c, tanh(c), h.
    e (N, 4H) float32 is scratch (the exponentials in a loop of their own vectorise
    better here than inside the gate loops)."""
    N, G = a.shape
    H = G // 4
    for n in range(N):
        for j in range(2 * H):
            e[n, j] = -a[n, j]
        for j in range(2 * H, 3 * H):
            e[n, j] = f32(-2.0) * a[n, j]
        for j in range(3 * H, G):
            e[n, j] = -a[n, j]
    vexp(e.reshape(-1))
    for n in range(N):
        for j in range(2 * H):
            a[n, j] = f32(1.0) / (f32(1.0) + e[n, j])
        for j in range(2 * H, 3 * H):
            a[n, j] = f32(2.0) / (f32(1.0) + e[n, j]) - f32(1.0)
        for j in range(3 * H, G):
            a[n, j] = f32(1.0) / (f32(1.0) + e[n, j])
    flat = e.reshape(-1)[: N * H]  # reused as scratch for exp(-2c)
    for n in range(N):
        for j in range(H):
            cc = a[n, H + j] * c_prev[n, j] + a[n, j] * a[n, 2 * H + j]
            c[n, j] = cc
            flat[n * H + j] = f32(-2.0) * cc
    vexp(flat)
    for n in range(N):
        for j in range(H):
            th = f32(2.0) / (f32(1.0) + flat[n * H + j]) - f32(1.0)
            tc[n, j] = th
            h[n, j] = a[n, 3 * H + j] * th

@njit(**_OPTS)
def lstm_backward(a, tc, c_prev, dh, dc, dA):
    """From dh, dc (dc updated in place to dc_prev) write the gate gradients dA."""
    N, G = a.shape
    H = G // 4
    for n in range(N):
        for j in range(H):
            i, f, g, o = a[n, j], a[n, H + j], a[n, 2 * H + j], a[n, 3 * H + j]
            t, d = tc[n, j], dh[n, j]
            dct = dc[n, j] + d * o * (f32(1.0) - t * t)
            dA[n, j] = dct * g * i * (f32(1.0) - i)
            dA[n, H + j] = dct * c_prev[n, j] * f * (f32(1.0) - f)
            dA[n, 2 * H + j] = dct * i * (f32(1.0) - g * g)
            dA[n, 3 * H + j] = d * t * o * (f32(1.0) - o)
            dc[n, j] = dct * f

@njit(**_OPTS)
def sigmoid_(a, e):
    """a (N, K) in place -> sigmoid(a)."""
    N, K = a.shape
    for n in range(N):
        for j in range(K):
            e[n, j] = -a[n, j]
    vexp(e.reshape(-1))
    for n in range(N):
        for j in range(K):
            a[n, j] = f32(1.0) / (f32(1.0) + e[n, j])

@njit(**_OPTS)
def tanh_(a, e):
    """a (N, K) in place -> tanh(a)."""
    N, K = a.shape
    for n in range(N):
        for j in range(K):
            e[n, j] = f32(-2.0) * a[n, j]
    vexp(e.reshape(-1))
    for n in range(N):
        for j in range(K):
            a[n, j] = f32(2.0) / (f32(1.0) + e[n, j]) - f32(1.0)

@njit(**_OPTS)
def gru_backward(a, h_prev, hn, dh, dA, dhw, dh_direct):
    """GRU (reset after) gates r, z, n = a; from dh write dA (d/dxw), dhw (d/dhw) and
    the direct term dh * z of dh_prev."""
    N, G = a.shape
    H = G // 3
    for n in range(N):
        for j in range(H):
            r, z, nn = a[n, j], a[n, H + j], a[n, 2 * H + j]
            d = dh[n, j]
            dz = d * (h_prev[n, j] - nn) * z * (f32(1.0) - z)
            dn = d * (f32(1.0) - z) * (f32(1.0) - nn * nn)
            dr = dn * hn[n, j] * r * (f32(1.0) - r)
            dA[n, j] = dr
            dA[n, H + j] = dz
            dA[n, 2 * H + j] = dn
            dhw[n, j] = dr
            dhw[n, H + j] = dz
            dhw[n, 2 * H + j] = dn * r
            dh_direct[n, j] = d * z


@njit(**_OPTS)
def scatter_add_rows(target, ids, rows):  # target (V, D) += rows (n, D) at rows ids (n,)
    D = rows.shape[1]
    for k in range(ids.shape[0]):
        r = ids[k]
        for j in range(D):
            target[r, j] += rows[k, j]


# Without fastmath: the update must round exactly as NumPy's ``p -= f32(scale) * g`` does
# (no fused multiply-add, no flushing of subnormals), so that both paths give the same bits.
@njit(nogil=True, boundscheck=False, cache=True)
def sub_scaled(p, g, scale):  # p (n,) -= float32(scale) * g (n,), float32, in place
    s = f32(scale)
    for i in range(p.shape[0]):
        p[i] = p[i] - g[i] * s


# ------------------------------------------------------------- whole time loops
# A scan whose per-step products run on one thread goes through one of these calls instead
# of a Python loop (``rnnlab.nn.scan``): the same step kernels and packed products
# (``rnnlab.fast.numba_gemm.matmul_panels``), without the Python of each step.
# ``panels`` holds W_hh^T packed for the forward loops and W_hh for the backward ones;
# a reverse scan runs t = T-1 .. 0 and keeps its states in rows t + 1 -> t.

@njit(**_OPTS, inline="always")
def _step_rows(T, s, reverse):
    """``(t, prev, cur)`` of the ``s``-th step of a forward loop over ``T`` steps: the
    time step, and the rows of the state it starts from and of the one it writes."""
    t = T - 1 - s if reverse else s
    return (t, t + 1, t) if reverse else (t, t, t + 1)


@njit(**_OPTS, inline="always")
def _upstream(dh, dH, t, has_dH, dh_next):
    """dh = dH[t] + dh_next, the gradient into a step's output (dH[t] only when given)."""
    N, H = dh.shape
    for n in range(N):
        for j in range(H):
            dh[n, j] = dH[t, n, j] + dh_next[n, j] if has_dH else dh_next[n, j]


@njit(**_OPTS)
def lstm_scan(xw, h, c, acts, tanh_c, panels, e, reverse):
    """LSTM forward loop: acts[t] = h[prev] W_hh^T + xw[t], then :func:`lstm_forward`."""
    T = xw.shape[0]
    P = panels.shape[0]
    for s in range(T):
        t, prev, cur = _step_rows(T, s, reverse)
        gemm.matmul_panels(h[prev], panels, acts[t], xw[t], True, 0, P)
        lstm_forward(acts[t], c[prev], c[cur], tanh_c[t], h[cur], e)


@njit(**_OPTS)
def lstm_scan_back(acts, tanh_c, c, dH, has_dH, dh, dh_next, dc, dA, panels, reverse):
    """LSTM backward loop: dh = dH[t] + dh_next (dH[t] only when ``has_dH``), then
    :func:`lstm_backward` into dA[t] and dc, and dh_next = dA[t] W_hh."""
    T = acts.shape[0]
    P = panels.shape[0]
    for s in range(T):
        t, prev, _ = _step_rows(T, T - 1 - s, reverse)
        _upstream(dh, dH, t, has_dH, dh_next)
        lstm_backward(acts[t], tanh_c[t], c[prev], dh, dc, dA[t])
        gemm.matmul_panels(dA[t], panels, dh_next, dh_next, False, 0, P)


@njit(**_OPTS)
def rnn_scan(xw, h, panels, e, relu, reverse):
    """Elman forward loop: h[cur] = act(h[prev] W_hh^T + xw[t]), act tanh or relu."""
    T = xw.shape[0]
    P = panels.shape[0]
    for s in range(T):
        t, prev, cur = _step_rows(T, s, reverse)
        gemm.matmul_panels(h[prev], panels, h[cur], xw[t], True, 0, P)
        if relu:
            hc = h[cur]
            N, H = hc.shape
            for n in range(N):
                for j in range(H):
                    hc[n, j] = max(hc[n, j], f32(0.0))
        else:
            tanh_(h[cur], e)


@njit(**_OPTS)
def rnn_scan_back(h, dH, has_dH, dh_next, dA, panels, relu, reverse):
    """Elman backward loop: dA[t] = act'(h[cur]) (dH[t] + dh_next), then
    dh_next = dA[t] W_hh; act' is 1 - h^2 (tanh) or [h > 0] (relu)."""
    T = dA.shape[0]
    P = panels.shape[0]
    N, H = dh_next.shape
    for s in range(T):
        t, _, cur = _step_rows(T, T - 1 - s, reverse)
        da = dA[t]
        for n in range(N):
            for j in range(H):
                d = dH[t, n, j] + dh_next[n, j] if has_dH else dh_next[n, j]
                v = h[cur, n, j]
                if relu:
                    da[n, j] = (f32(1.0) if v > f32(0.0) else f32(0.0)) * d
                else:
                    da[n, j] = (f32(1.0) - v * v) * d
        gemm.matmul_panels(da, panels, dh_next, dh_next, False, 0, P)


@njit(**_OPTS)
def gru_scan(xw, h, acts, hn, hw, panels, b_rest, has_rest, e2, e1, reverse):
    """GRU (reset after) forward loop, gates r, z, n: hw = h[prev] W_hh^T; r, z =
    sigmoid(xw[t] + hw) over the first 2H columns; hn[t] = hw[:, 2H:] (+ b_rest);
    n = tanh(r hn[t] + xw[t][:, 2H:]); h[cur] = (h[prev] - n) z + n. ``hw`` (N, 3H),
    ``e2`` (N, 2H) and ``e1`` (N, H) are scratch."""
    T = xw.shape[0]
    P = panels.shape[0]
    N, H = e1.shape
    for s in range(T):
        t, prev, cur = _step_rows(T, s, reverse)
        gemm.matmul_panels(h[prev], panels, hw, hw, False, 0, P)
        a, x = acts[t], xw[t]
        for n in range(N):
            for j in range(2 * H):
                a[n, j] = x[n, j] + hw[n, j]
        sigmoid_(a[:, : 2 * H], e2)
        g = hn[t]
        for n in range(N):
            for j in range(H):
                g[n, j] = hw[n, 2 * H + j] + b_rest[j] if has_rest else hw[n, 2 * H + j]
                a[n, 2 * H + j] = a[n, j] * g[n, j] + x[n, 2 * H + j]
        tanh_(a[:, 2 * H :], e1)
        hp, hc = h[prev], h[cur]
        for n in range(N):
            for j in range(H):
                nn = a[n, 2 * H + j]
                hc[n, j] = (hp[n, j] - nn) * a[n, H + j] + nn


@njit(**_OPTS)
def gru_scan_back(acts, h, hn, dH, has_dH, dh, dh_next, direct, dA, dhw, panels, reverse):
    """GRU (reset after) backward loop: dh = dH[t] + dh_next, :func:`gru_backward` into
    dA[t], dhw[t] and the direct term, then dh_next = dhw[t] W_hh + direct."""
    T = acts.shape[0]
    P = panels.shape[0]
    for s in range(T):
        t, prev, _ = _step_rows(T, T - 1 - s, reverse)
        _upstream(dh, dH, t, has_dH, dh_next)
        gru_backward(acts[t], h[prev], hn[t], dh, dA[t], dhw[t], direct)
        gemm.matmul_panels(dhw[t], panels, dh_next, direct, True, 0, P)
