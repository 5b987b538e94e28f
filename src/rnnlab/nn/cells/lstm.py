"""The LSTM cell, gates in PyTorch's order ``i, f, g, o``.

Forward, one step (``N`` rows, hidden size ``H``; ``xw_t`` holds ``x_t W_ih^T`` and
both biases)::

    a_t = xw_t + h_{t-1} W_hh^T                                   (N, 4H) = [a_i a_f a_g a_o]
    i = sigmoid(a_i)     f = sigmoid(a_f)     g = tanh(a_g)     o = sigmoid(a_o)
    c_t = f * c_{t-1} + i * g                                     (N, H)
    h_t = o * tanh(c_t)                                           (N, H)

Backward, one step, from ``dh = dL/dh_t`` and ``dc_next = dL/dc_t`` as sent back by
step ``t + 1``::

    do = dh * tanh(c_t)
    ds = dc_next + dh * o * (1 - tanh(c_t)^2)        the total gradient of c_t
    di = ds * g          df = ds * c_{t-1}          dg = ds * i
    dc_{t-1} = ds * f
    da_i = di * i (1 - i)     da_f = df * f (1 - f)     da_g = dg * (1 - g^2)
    da_o = do * o (1 - o)
    dh_{t-1} = da_t W_hh                               da_t = [da_i da_f da_g da_o]

Parameters: ``W_ih`` ``(4H, D)``, ``W_hh`` ``(4H, H)``, ``b_ih``, ``b_hh`` ``(4H,)``,
rows in gate order. The forward keeps the gate values ``acts`` ``(T, N, 4H)`` and
``tanh_c`` ``(T, N, H)`` for the backward.
"""

from __future__ import annotations

from typing import Any

from rnnlab.nn.cells import CellMath, sigmoid
from rnnlab.nn.trace import BackTrace, Trace


class LSTMMath(CellMath):
    """Long short-term memory (Hochreiter and Schmidhuber), PyTorch's form."""

    kind = "lstm"
    n_gates = 4
    has_cell = True

    def step(self, tr: Trace, t: int, W_hh: Any, b_hh_rest: Any) -> None:
        xp, H = tr.xp, tr.H
        prev, cur = tr.rows(t)
        a = tr.xw[t] + tr.h[prev] @ W_hh.T
        i = sigmoid(xp, a[:, :H])  # eq: lstm.i
        f = sigmoid(xp, a[:, H : 2 * H])  # eq: lstm.f
        g = xp.tanh(a[:, 2 * H : 3 * H])  # eq: lstm.g
        o = sigmoid(xp, a[:, 3 * H :])  # eq: lstm.o
        c = f * tr.c[prev] + i * g  # eq: lstm.c
        tanh_c = xp.tanh(c)
        tr.c[cur] = c
        tr.h[cur] = o * tanh_c  # eq: lstm.h
        tr.buffer("acts", (tr.T, tr.N, 4 * H))[t] = xp.concatenate([i, f, g, o], axis=1)
        tr.buffer("tanh_c", (tr.T, tr.N, H))[t] = tanh_c

    def step_back(self, tr: Trace, bw: BackTrace, t: int, W_hh: Any) -> None:
        xp, H = tr.xp, tr.H
        prev, _ = tr.rows(t)
        acts = tr.buffers["acts"][t]
        i, f, g, o = acts[:, :H], acts[:, H : 2 * H], acts[:, 2 * H : 3 * H], acts[:, 3 * H :]
        tanh_c = tr.buffers["tanh_c"][t]
        c_prev = tr.c[prev]
        dh = bw.dh
        do = dh * tanh_c  # eq: lstm.do
        ds = bw.dc_next + dh * o * (1 - tanh_c * tanh_c)  # eq: lstm.ds
        di, df, dg = ds * g, ds * c_prev, ds * i  # eq: lstm.dgates
        da = xp.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g * g),  # eq: lstm.da
                             do * o * (1 - o)], axis=1)
        bw.dc_next[...] = ds * f  # eq: lstm.dc_prev
        bw.dxw[t] = da
        bw.dh_next[...] = da @ W_hh  # eq: lstm.dh_prev
