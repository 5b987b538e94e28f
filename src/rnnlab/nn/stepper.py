"""``Stepper``: a unidirectional recurrent stack run one time step at a time.

Generation and decoding feed one token per call. :meth:`Recurrent.forward` would redo its
checks, transposes and allocations each time; a stepper sets up one-step traces once and
then only runs the cell's step (the same :class:`~rnnlab.nn.cells.CellMath` as the time
loop, or the engine's form of it)::

    stepper = Stepper(lstm, batch=1)
    h = stepper.step(x)             # x (N, D) -> top layer's new state (N, H)
    stepper.reorder(index)          # beam search: keep rows ``index`` of the state

The layer-0 input projection may come from a precomputed table instead of a product
(``step(rows=ids)`` with ``table = embedding @ W_ih^T + bias``, see :meth:`input_table`).
Inference only: no dropout, no backward.
"""

from __future__ import annotations

import functools
from typing import Any

from rnnlab.backend import Array
from rnnlab.fast import engine_for
from rnnlab.nn.scan import fold_bias, input_table
from rnnlab.nn.trace import Trace


class Stepper:
    """Step ``rnn`` (a :class:`~rnnlab.nn.Recurrent`, unidirectional) for ``batch`` rows
    (a :class:`~rnnlab.nn.stack.StackStepper`)."""

    #: Layer 0's input projection may come from :meth:`input_table` (``step(rows=ids)``).
    takes_rows = True

    def __init__(self, rnn: Any, batch: int, table: Any = None) -> None:
        if rnn.bidirectional:
            raise ValueError(f"Stepper: {rnn.name} is bidirectional; a stepper runs forward only")
        self.rnn, self.xp, self.batch = rnn, rnn.xp, int(batch)
        self.cell = rnn.cell
        engine = engine_for(self.xp, rnn.dtype)
        H, G = rnn.hidden_size, rnn.cell.n_gates
        self.layers = []
        for layer in range(rnn.num_layers):
            w = rnn.weights(layer, 0, rnn.params)
            bias, rest = fold_bias(self.cell, w, H)
            D = rnn.input_size if layer == 0 else H
            tr = Trace(self.xp, 1, self.batch, D, H, G, rnn.dtype, self.cell.has_cell)
            # step 0 of the one-step trace: the engine's form, or the cell's own
            step = engine.step_fn(self.cell, tr) or functools.partial(self.cell.step, tr, 0)
            self.layers.append((tr, w, bias, rest, step))
        self.table = table
        self.reset()

    def input_table(self, embedding_weight: Array) -> Any:
        """``embedding_weight (V, D) @ W_ih^T + bias`` for layer 0: ``(V, G*H)``."""
        tr, w, bias, *_ = self.layers[0]
        return input_table(tr.xp, embedding_weight, w.W_ih, bias)

    def reset(self) -> None:
        """Zero state."""
        for tr, *_ in self.layers:
            tr.h[0].fill(0)
            if tr.c is not None:
                tr.c[0].fill(0)

    def set_state(self, h: Array, c: Array | None = None) -> None:
        """State ``(L, N, H)`` (and ``c`` for LSTM), as ``Recurrent.h_n``/``c_n``."""
        if c is None and self.cell.has_cell:
            raise TypeError(f"Stepper.set_state: c expected the cell state (L, N, H) of "
                            f"{self.rnn.name}, got None")
        for k, (tr, *_) in enumerate(self.layers):
            tr.h[0] = h[k]
            if tr.c is not None and c is not None:
                tr.c[0] = c[k]

    def get_state(self) -> tuple[Any, Any]:
        """Copies ``(h, c)`` of the current state, ``(L, N, H)`` each (``c`` None if no cell)."""
        xp = self.xp
        h = xp.stack([tr.h[0] for tr, *_ in self.layers])
        has_c = self.layers[0][0].c is not None
        c = xp.stack([tr.cell_states[0] for tr, *_ in self.layers]) if has_c else None
        return h, c

    def reorder(self, index: Array) -> None:
        """Keep the rows ``index`` (N,) of the state, in that order (beam search)."""
        for tr, *_ in self.layers:
            tr.h[0] = tr.h[0][index]
            if tr.c is not None:
                tr.c[0] = tr.c[0][index]

    def step(self, x: Array | None = None, rows: Array | None = None) -> Any:
        """One time step from inputs ``x`` (N, D), or table rows ``rows`` (N,) of layer 0;
        returns the top layer's new state (a view, valid until the next step)."""
        xp, out = self.xp, None
        for k, (tr, w, bias, rest, step) in enumerate(self.layers):
            xw = tr.xw[0]
            if k == 0 and rows is not None:
                xp.take(self.table, rows, axis=0, out=xw)
            else:
                xp.matmul(x if k == 0 else out, w.W_ih.T, out=xw)
                if bias is not None:
                    xw += bias
            step(w.W_hh, rest)
            tr.h[0] = tr.h[1]
            if tr.c is not None:
                tr.c[0] = tr.c[1]
            out = tr.h[0]
        return out
