"""The GRU cell, gates in PyTorch's order ``r, z, n``, in both of its forms.

Forward, one step (``N`` rows, hidden size ``H``; ``xw_t = x_t W_ih^T + b_ih`` plus the
biases of ``b_hh`` that can be added once)::

    r = sigmoid(xw_r + h_{t-1} W_hr^T)            reset gate                (N, H)
    z = sigmoid(xw_z + h_{t-1} W_hz^T)            update gate               (N, H)

    reset after the product (``reset_after=True``: PyTorch, cuDNN)::
        hn = h_{t-1} W_hn^T + b_hn                                          (N, H)
        n  = tanh(xw_n + r * hn)
    reset before the product (``reset_after=False``: the textbook form)::
        rh = r * h_{t-1}                                                    (N, H)
        n  = tanh(xw_n + rh W_hn^T)               (b_hn is added into xw_n)

    h_t = (1 - z) * n + z * h_{t-1}

Backward, one step, from ``dh = dL/dh_t``::

    dn = dh * (1 - z) * (1 - n^2)                 gradient of n's pre-activation
    dz = dh * (h_{t-1} - n) * z (1 - z)
    reset after:   dr = dn * hn * r (1 - r)
                   dhw_t = [dr, dz, dn * r]       gradient of h_{t-1} W_hh^T + b_hh
                   dh_{t-1} = dhw_t W_hh + dh * z
    reset before:  drh = dn W_hn
                   dr = drh * h_{t-1} * r (1 - r)
                   dh_{t-1} = [dr, dz] W_h(r,z) + drh * r + dh * z
    da_t = [dr, dz, dn]                           gradient of xw_t

With the reset after the product the hidden-side gradient differs from ``da_t`` in its
``n`` block, so it has its own buffer (``dhw``), and ``dW_hh = sum_t dhw_t^T h_{t-1}``.
With the reset before, ``dW_hn = sum_t dn_t^T (r * h_{t-1})``.

Parameters: ``W_ih`` ``(3H, D)``, ``W_hh`` ``(3H, H)``, ``b_ih``, ``b_hh`` ``(3H,)``, rows
in gate order. The forward keeps the gate values ``acts`` ``(T, N, 3H)`` and ``hn`` (reset
after) or ``rh`` (reset before) ``(T, N, H)``.
"""

from __future__ import annotations

from typing import Any

from rnnlab.nn.cells import Accumulate, CellMath, sigmoid
from rnnlab.nn.trace import BackTrace, Trace


class GRUMath(CellMath):
    """Gated recurrent unit (Cho et al.); ``reset_after`` picks the form."""

    kind = "gru"
    n_gates = 3

    def __init__(self, reset_after: bool = True) -> None:
        self.reset_after = reset_after
        self.separate_hidden = reset_after

    def foldable_hh_bias(self, H: int) -> slice:
        # with the reset after the product, b_hn is multiplied by r: it stays in the step
        return slice(0, 2 * H) if self.reset_after else slice(0, 3 * H)

    def step(self, tr: Trace, t: int, W_hh: Any, b_hh_rest: Any) -> None:
        xp, H = tr.xp, tr.H
        prev, cur = tr.rows(t)
        h_prev, xw = tr.h[prev], tr.xw[t]
        rz = sigmoid(xp, xw[:, : 2 * H] + h_prev @ W_hh[: 2 * H].T)  # eq: gru.rz
        r, z = rz[:, :H], rz[:, H:]
        if self.reset_after:
            hn = h_prev @ W_hh[2 * H :].T
            if b_hh_rest is not None:
                hn = hn + b_hh_rest
            n = xp.tanh(xw[:, 2 * H :] + r * hn)  # eq: gru.n_after
            tr.buffer("hn", (tr.T, tr.N, H))[t] = hn
        else:
            rh = r * h_prev  # eq: gru.rh
            n = xp.tanh(xw[:, 2 * H :] + rh @ W_hh[2 * H :].T)  # eq: gru.n_before
            tr.buffer("rh", (tr.T, tr.N, H))[t] = rh
        tr.h[cur] = (1 - z) * n + z * h_prev  # eq: gru.h
        tr.buffer("acts", (tr.T, tr.N, 3 * H))[t] = xp.concatenate([rz, n], axis=1)

    def step_back(self, tr: Trace, bw: BackTrace, t: int, W_hh: Any) -> None:
        xp, H = tr.xp, tr.H
        prev, _ = tr.rows(t)
        h_prev = tr.h[prev]
        acts = tr.buffers["acts"][t]
        r, z, n = acts[:, :H], acts[:, H : 2 * H], acts[:, 2 * H :]
        dh = bw.dh
        dn = dh * (1 - z) * (1 - n * n)  # eq: gru.dn
        dz = dh * (h_prev - n) * z * (1 - z)  # eq: gru.dz
        if self.reset_after:
            hn = tr.buffers["hn"][t]
            dr = dn * hn * r * (1 - r)  # eq: gru.dr_after
            dhw = xp.concatenate([dr, dz, dn * r], axis=1)  # eq: gru.dhw
            bw.dhw[t] = dhw
            dh_prev = dhw @ W_hh + dh * z  # eq: gru.dh_prev_after
        else:
            drh = dn @ W_hh[2 * H :]  # eq: gru.drh
            dr = drh * h_prev * r * (1 - r)  # eq: gru.dr_before
            dh_prev = xp.concatenate([dr, dz], axis=1) @ W_hh[: 2 * H] + drh * r + dh * z
        bw.dxw[t] = xp.concatenate([dr, dz, dn], axis=1)  # eq: gru.da
        bw.dh_next[...] = dh_prev  # eq: gru.dh_prev

    def hidden_weight_grad(self, tr: Trace, bw: BackTrace, acc: Accumulate,
                           g_hh: Any) -> None:
        if self.reset_after:
            super().hidden_weight_grad(tr, bw, acc, g_hh)
            return
        T, N, H = tr.T, tr.N, tr.H
        da = bw.dxw.reshape(T * N, 3 * H)
        acc(g_hh[: 2 * H], da[:, : 2 * H].T, tr.previous.reshape(T * N, H))
        acc(g_hh[2 * H :], da[:, 2 * H :].T, tr.buffers["rh"].reshape(T * N, H))
