"""The cell equations, one file per family, each with its forward and backward written out.

================  =====================  ===========================================
file              cells                  gates (rows of ``W_ih``, ``W_hh``, biases)
================  =====================  ===========================================
``rnn.py``        Elman RNN, tanh/relu   one block
``lstm.py``       LSTM                   i, f, g, o (PyTorch's order)
``gru.py``        GRU, both forms        r, z, n (PyTorch's order)
================  =====================  ===========================================

Every cell is a :class:`CellMath`: ``step`` computes step ``t`` of a :class:`Trace` from
the step before, ``step_back`` its gradient, and the time loop
(:mod:`rnnlab.nn.scan`) calls them. Notation shared by the files (row layout: one row
per sequence of the batch, ``N`` rows, hidden size ``H``, ``G`` gate blocks)::

    xw_t = x_t W_ih^T + b_ih (+ the part of b_hh that can be added once)   (N, G*H)
    hw_t = h_{t-1} W_hh^T (+ the rest of b_hh)                             (N, G*H)

The input projection ``xw`` of all steps is one product, made by the scan before its
loop; a step adds the hidden product ``hw_t`` and applies the gates. A step's backward
receives ``dh = dL/dh_t`` (and ``dc = dL/dc_t`` for the LSTM) and writes
``da = dL/d(xw_t)``, which the scan turns into every weight gradient with one product
per weight after the loop (``dW_ih = sum_t da_t^T x_t``, ``dW_hh = sum_t da_t^T h_{t-1}``,
``db = sum_t da_t``).
"""

from __future__ import annotations

from typing import Any

from rnnlab.nn.trace import BackTrace, Trace

#: ``acc(grad, a, b)`` performs ``grad += a @ b``.
Accumulate = Any


def sigmoid(xp: Any, x: Any) -> Any:
    """``1 / (1 + exp(-x))``, computed as ``(1 + tanh(x / 2)) / 2``: the same function,
    without the overflow of ``exp(-x)`` for large negative ``x``."""
    return 0.5 * (1.0 + xp.tanh(0.5 * x))


class CellMath:
    """One cell family's equations; subclasses set ``kind``, ``n_gates``, ``has_cell``."""

    kind = ""
    n_gates = 1
    has_cell = False
    #: True when dL/d(hw) differs from dL/d(xw) and needs its own buffer (the GRU with
    #: the reset after the product)
    separate_hidden = False

    def foldable_hh_bias(self, H: int) -> slice:
        """The part of ``b_hh`` that may be added once into ``xw`` instead of every step."""
        return slice(0, self.n_gates * H)

    def step(self, tr: Trace, t: int, W_hh: Any, b_hh_rest: Any) -> None:
        """Write the state after step ``t`` (``tr.h``, ``tr.c``) from the state before it
        and ``tr.xw[t]``, and keep what the backward needs."""
        raise NotImplementedError

    def step_back(self, tr: Trace, bw: BackTrace, t: int, W_hh: Any) -> None:
        """From ``bw.dh`` (and ``bw.dc_next``) write ``bw.dxw[t]`` (and ``bw.dhw[t]``) and
        the gradients of the state before step ``t`` into ``bw.dh_next`` (and
        ``bw.dc_next``)."""
        raise NotImplementedError

    def hidden_weight_grad(self, tr: Trace, bw: BackTrace, acc: Accumulate,
                           g_hh: Any) -> None:
        """``dW_hh += sum_t dhw_t^T h_{t-1}``, one product over all steps."""
        T, N, H = tr.T, tr.N, tr.H
        acc(g_hh, bw.dhw.reshape(T * N, -1).T, tr.previous.reshape(T * N, H))  # eq: cell.dW_hh


def make_cell(kind: str, *, nonlinearity: str = "tanh", reset_after: bool = True) -> CellMath:
    """The :class:`CellMath` for ``kind`` in ``{"rnn", "lstm", "gru"}``."""
    from rnnlab.nn.cells.gru import GRUMath
    from rnnlab.nn.cells.lstm import LSTMMath
    from rnnlab.nn.cells.rnn import RNNMath

    if kind == "rnn":
        return RNNMath(nonlinearity)
    if kind == "lstm":
        return LSTMMath()
    if kind == "gru":
        return GRUMath(reset_after)
    raise ValueError(f"cell: expected 'rnn', 'lstm' or 'gru', got {kind!r}")


__all__ = ["Accumulate", "CellMath", "make_cell", "sigmoid"]
