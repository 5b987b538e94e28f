"""The numba kernels behind :mod:`rnnlab._kernels` (imported only when numba is installed).

Module-level functions so that numba can cache their machine code on disk.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from rnnlab import _numba_gemm as gemm  # noqa: F401 - the packed per-step products

#: Every fast-math flag but ``arcp`` (division through a reciprocal). LLVM vectorises
#: these loops and keeps a scalar copy of each that it runs when two arrays lie close
#: together (it cannot prove they do not overlap), so which copy runs depends on where
#: the allocator put the arrays. With ``arcp`` the two copies of ``1 / (1 + e)`` rounded
#: differently, and identical runs could part in the last bit
#: (``tests/nn/test_kernel_placement.py``); without it they give the same bits.
_FASTMATH = {"nnan", "ninf", "nsz", "contract", "afn", "reassoc"}
_OPTS = {"nogil": True, "fastmath": _FASTMATH, "boundscheck": False, "cache": True,
         "error_model": "numpy"}
f32 = np.float32


@njit(**_OPTS)
def vexp(x, kk):  # x (n,) float32 in place; kk (n,) int32 scratch
    for i in range(x.size):
        v = min(max(x[i], f32(-80.0)), f32(80.0))
        k = np.floor(v * f32(1.4426950408889634) + f32(0.5))
        r = v - k * f32(0.693359375) - k * f32(-2.12194440e-4)
        p = f32(1.9875691500e-4)
        p = p * r + f32(1.3981999507e-3)
        p = p * r + f32(8.3334519073e-3)
        p = p * r + f32(4.1665795894e-2)
        p = p * r + f32(1.6666665459e-1)
        p = p * r + f32(5.0000001201e-1)
        x[i] = p * r * r + r + f32(1.0)
        kk[i] = np.int32(k) << 23
    bits = x.view(np.int32)
    for i in range(x.size):
        bits[i] += kk[i]

@njit(**_OPTS)
def xent_rows(z, t, valid, scale, e_k):
    """Rows z (B, V) -> scale * (softmax - onehot(t)); returns the summed loss of valid
    rows (ignored rows become zero and are never read)."""
    B, V = z.shape
    total = 0.0
    for n in range(B):
        row = z[n]
        if not valid[n]:
            row[:] = f32(0.0)
            continue
        m = row[0]
        for j in range(1, V):
            m = max(m, row[j])
        picked = row[t[n]] - m
        for j in range(V):
            row[j] = row[j] - m
        vexp(row, e_k)
        s = f32(0.0)
        for j in range(V):
            s += row[j]
        total += np.log(np.float64(s)) - np.float64(picked)
        factor = f32(scale) / s
        for j in range(V):
            row[j] *= factor
        row[t[n]] -= f32(scale)
    return total

@njit(**_OPTS)
def lstm_forward(a, c_prev, c, tc, h, e, kk):
    """a (N, 4H) pre-activations -> activations (i, f, g, o) in place; c, tanh(c), h.
    e (N, 4H) float32 and kk (N * 4H,) int32 are scratch."""
    N, G = a.shape
    H = G // 4
    for n in range(N):
        for j in range(2 * H):
            e[n, j] = -a[n, j]
        for j in range(2 * H, 3 * H):
            e[n, j] = f32(-2.0) * a[n, j]
        for j in range(3 * H, G):
            e[n, j] = -a[n, j]
    vexp(e.reshape(-1), kk)
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
    vexp(flat, kk)
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
def sigmoid_(a, e, kk):
    """a (N, K) in place -> sigmoid(a)."""
    N, K = a.shape
    for n in range(N):
        for j in range(K):
            e[n, j] = -a[n, j]
    vexp(e.reshape(-1), kk)
    for n in range(N):
        for j in range(K):
            a[n, j] = f32(1.0) / (f32(1.0) + e[n, j])

@njit(**_OPTS)
def tanh_(a, e, kk):
    """a (N, K) in place -> tanh(a)."""
    N, K = a.shape
    for n in range(N):
        for j in range(K):
            e[n, j] = f32(-2.0) * a[n, j]
    vexp(e.reshape(-1), kk)
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
