"""The Elman RNN cell (PyTorch's ``RNN``), with ``tanh`` or ``relu``.

Forward, one step (``N`` rows, hidden size ``H``)::

    a_t = xw_t + h_{t-1} W_hh^T          xw_t = x_t W_ih^T + b_ih + b_hh     (N, H)
    h_t = act(a_t)                        act = tanh or relu                 (N, H)

Backward, one step, from ``dh = dL/dh_t`` (the upstream gradient plus what step
``t + 1`` sent back)::

    da_t     = dh * act'(a_t)             tanh: 1 - h_t^2;  relu: [h_t > 0]  (N, H)
    dh_{t-1} = da_t W_hh                                                     (N, H)

Parameters: ``W_ih`` ``(H, D)``, ``W_hh`` ``(H, H)``, ``b_ih``, ``b_hh`` ``(H,)``. Both
biases are added once, into ``xw``. The backward needs only ``h_t`` itself.
"""

from __future__ import annotations

from typing import Any

from rnnlab.nn.cells import CellMath
from rnnlab.nn.trace import BackTrace, Trace


class RNNMath(CellMath):
    """``h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``."""

    kind = "rnn"
    n_gates = 1

    def __init__(self, nonlinearity: str = "tanh") -> None:
        self.nonlinearity = nonlinearity

    def step(self, tr: Trace, t: int, W_hh: Any, b_hh_rest: Any) -> None:
        xp = tr.xp
        prev, cur = tr.rows(t)
        a = tr.xw[t] + tr.h[prev] @ W_hh.T  # eq: rnn.a
        tr.h[cur] = xp.tanh(a) if self.nonlinearity == "tanh" else xp.maximum(a, 0)  # eq: rnn.h

    def step_back(self, tr: Trace, bw: BackTrace, t: int, W_hh: Any) -> None:
        h = tr.h[tr.rows(t)[1]]
        dh = bw.dh
        if self.nonlinearity == "tanh":
            da = dh * (1 - h * h)  # eq: rnn.da_tanh
        else:
            da = dh * (h > 0)  # eq: rnn.da_relu
        bw.dxw[t] = da
        bw.dh_next[...] = da @ W_hh  # eq: rnn.dh_prev
