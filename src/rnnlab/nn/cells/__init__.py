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

from rnnlab.nn.cells.base import Accumulate, CellMath, sigmoid
from rnnlab.nn.cells.gru import GRUMath
from rnnlab.nn.cells.lstm import LSTMMath
from rnnlab.nn.cells.rnn import RNNMath


def make_cell(kind: str, *, nonlinearity: str = "tanh", reset_after: bool = True) -> CellMath:
    """The :class:`CellMath` for ``kind`` in ``{"rnn", "lstm", "gru"}``."""
    if kind == "rnn":
        return RNNMath(nonlinearity)
    if kind == "lstm":
        return LSTMMath()
    if kind == "gru":
        return GRUMath(reset_after)
    raise ValueError(f"cell: expected 'rnn', 'lstm' or 'gru', got {kind!r}")


__all__ = ["Accumulate", "CellMath", "make_cell", "sigmoid"]
