"""Fused CUDA kernels (CuPy) for the cell steps and the softmax cross-entropy on a GPU.

The same call signatures as :mod:`rnnlab.fast.numba_kernels` (the scratch arguments are
accepted and ignored), so the engine's steps (:mod:`rnnlab.fast.cells`) and loss use
either. Each LSTM/GRU step's gate maths is one kernel instead of
a dozen ufunc launches; the cross-entropy is a max, a fused exp-and-sum reduction and one
elementwise kernel that writes the gradient in place.

Arrays must be C-contiguous where the kernels index them by hand (``raw``): the trace
buffers are. Templates work for float32 and float64. Built lazily on first use.

Written for CuPy >= 13; ``tests/gpu`` compares them with the reference on a CUDA
machine (``-m gpu``) and against a fake CuPy module everywhere else.
``RNNLAB_KERNELS=0`` turns them off.
"""

from __future__ import annotations

from typing import Any

import cupy

_LSTM_FORWARD = cupy.ElementwiseKernel(
    "raw T a, T c_prev, int32 H",
    "raw T acts, T c, T tc, T h",
    """
    const int n = i / H, j = i % H;
    const int base = n * 4 * H + j;
    const T ig = 1 / (1 + exp(-a[base]));
    const T fg = 1 / (1 + exp(-a[base + H]));
    const T gg = tanh(a[base + 2 * H]);
    const T og = 1 / (1 + exp(-a[base + 3 * H]));
    acts[base] = ig;
    acts[base + H] = fg;
    acts[base + 2 * H] = gg;
    acts[base + 3 * H] = og;
    c = fg * c_prev + ig * gg;
    tc = tanh(c);
    h = og * tc;
    """,
    "rnnlab_lstm_forward",
)

_LSTM_BACKWARD = cupy.ElementwiseKernel(
    "raw T a, T tc, T c_prev, T dh, int32 H",
    "raw T dA, T dc",
    """
    const int n = i / H, j = i % H;
    const int base = n * 4 * H + j;
    const T ig = a[base], fg = a[base + H], gg = a[base + 2 * H], og = a[base + 3 * H];
    const T dct = dc + dh * og * (1 - tc * tc);
    dA[base] = dct * gg * ig * (1 - ig);
    dA[base + H] = dct * c_prev * fg * (1 - fg);
    dA[base + 2 * H] = dct * ig * (1 - gg * gg);
    dA[base + 3 * H] = dh * tc * og * (1 - og);
    dc = dct * fg;
    """,
    "rnnlab_lstm_backward",
)

_GRU_BACKWARD = cupy.ElementwiseKernel(
    "raw T a, T h_prev, T hn, T dh, int32 H",
    "raw T dA, raw T dhw, T dh_direct",
    """
    const int n = i / H, j = i % H;
    const int base = n * 3 * H + j;
    const T r = a[base], z = a[base + H], nn = a[base + 2 * H];
    const T dz = dh * (h_prev - nn) * z * (1 - z);
    const T dn = dh * (1 - z) * (1 - nn * nn);
    const T dr = dn * hn * r * (1 - r);
    dA[base] = dr;
    dA[base + H] = dz;
    dA[base + 2 * H] = dn;
    dhw[base] = dr;
    dhw[base + H] = dz;
    dhw[base + 2 * H] = dn * r;
    dh_direct = dh * z;
    """,
    "rnnlab_gru_backward",
)

_SIGMOID = cupy.ElementwiseKernel("T x", "T y", "y = 1 / (1 + exp(-x))", "rnnlab_sigmoid")

_SUM_EXP = cupy.ReductionKernel(
    "T z, T m", "T s", "exp(z - m)", "a + b", "s = a", "0", "rnnlab_sum_exp")

_XENT_GRAD = cupy.ElementwiseKernel(
    "T z, raw T m, raw T s, raw int64 t, raw bool valid, T scale, int32 V",
    "T g",
    """
    const int row = i / V, col = i % V;
    if (!valid[row]) { g = 0; }
    else {
        T p = exp(z - m[row]) / s[row] * scale;
        g = (col == t[row]) ? p - scale : p;
    }
    """,
    "rnnlab_xent_grad",
)


def _H(a: Any, gates: int) -> Any:
    return cupy.int32(a.shape[1] // gates)


def tanh_(a: Any, *scratch: Any) -> None:
    cupy.tanh(a, out=a)


def sigmoid_(a: Any, *scratch: Any) -> None:
    _SIGMOID(a, a)


def lstm_forward(a: Any, c_prev: Any, c: Any, tc: Any, h: Any, *scratch: Any) -> None:
    _LSTM_FORWARD(a, c_prev, _H(a, 4), a, c, tc, h)


def lstm_backward(a: Any, tc: Any, c_prev: Any, dh: Any, dc: Any, dA: Any) -> None:
    _LSTM_BACKWARD(a, tc, c_prev, dh, _H(a, 4), dA, dc)


def gru_backward(a: Any, h_prev: Any, hn: Any, dh: Any, dA: Any, dhw: Any,
                 dh_direct: Any) -> None:
    _GRU_BACKWARD(a, h_prev, hn, dh, _H(a, 3), dA, dhw, dh_direct)


def xent_rows(z: Any, t: Any, valid: Any, scale: float, scratch: Any = None) -> float:
    """Rows z (B, V) -> scale * (softmax - onehot(t)); returns the summed loss (a float)."""
    B, V = z.shape
    safe = cupy.where(valid[:, None], z, z.dtype.type(0))
    m = safe.max(axis=1)
    s = _SUM_EXP(safe, m[:, None], axis=1)
    rows = cupy.arange(B)
    losses = cupy.where(valid, cupy.log(s) - (safe[rows, t] - m), 0)
    _XENT_GRAD(safe, m, s, t.astype(cupy.int64), valid, z.dtype.type(scale),
               cupy.int32(V), z)
    return float(losses.sum(dtype=cupy.float64))
