"""The time loop, shared by every cell family (only the cell's equations differ).

A *scan* runs one direction of one layer over a time-major input ``X`` ``(T, N, D)``,
in the textbook's shape:

1. the input projection of all steps is one product, ``xw = X W_ih^T + b``;
2. a loop over ``t`` calls the cell's ``step`` (in reverse order for the backward
   direction); with per-sequence lengths, a ``keep`` mask carries the state unchanged
   past each sequence's end (PyTorch's packed-sequence semantics, both directions);
3. the backward walks the steps the other way with the cell's ``step_back``, then takes
   every weight gradient as one product over all steps::

       dW_ih += dxw^T X      dW_hh += dhw^T H_prev      db += sum_t dxw_t
       dX     = dxw W_ih

The speed engine (:mod:`rnnlab.fast`) may run step 2 of either direction in its own
way (fused kernels, other forms of the per-step product, a compiled loop): the scan
asks it once per pass, and the engine's loop fills the same buffers with the same
values up to rounding. With ``RNNLAB_FAST=0`` the loops below always run.

When the input is rows of an embedding matrix, ``X = E[ids]`` with ``E`` ``(V, D)``, and
the vocabulary is smaller than the number of tokens (a character model), a
:class:`TokenInput` replaces ``X``: the projection becomes a lookup in the table
``E W_ih^T + b`` ``(V, G*H)``, and the backward sums ``dxw`` per token id into ``dP``
``(V, G*H)`` and takes ``dW_ih += dP^T E`` and ``dE += dP W_ih``: the same sums in
another order, over ``V`` rows instead of ``T*N``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rnnlab.fast import engine_for
from rnnlab.nn.cells import Accumulate, CellMath
from rnnlab.nn.embedding import scatter_add_rows
from rnnlab.nn.trace import BackTrace, Trace


@dataclass
class TokenInput:
    """The input ``E[ids]`` of a scan, given as the embedding matrix and the token ids.

    ``ids`` ``(T * N,)`` int, time-major; ``E`` ``(V, D)``; the backward adds the
    gradient of ``E`` into ``dE`` (``None`` to skip it).
    """

    ids: Any
    E: Any
    dE: Any = None

    @staticmethod
    def pays(vocab_size: int, tokens: int) -> bool:
        """Whether the table is worth it: fewer vocabulary rows than tokens."""
        return vocab_size < tokens


@dataclass
class Weights:
    """The four parameters of one direction of one layer (biases may be ``None``)."""

    W_ih: Any
    W_hh: Any
    b_ih: Any = None
    b_hh: Any = None


def new_trace(cell: CellMath, xp: Any, T: int, N: int, D: int, H: int, dtype: Any,
              old: Trace | None = None) -> Trace:
    """A forward trace of the given size, reusing ``old`` when it fits."""
    if old is not None and old.fits(T, N, D, H, cell.n_gates, dtype):
        return old
    return Trace(xp, T, N, D, H, cell.n_gates, dtype, cell.has_cell)


def new_back_trace(cell: CellMath, tr: Trace, old: BackTrace | None = None) -> BackTrace:
    """A backward work area matching ``tr``, reusing ``old`` when it fits."""
    if old is not None and old.fits(tr.T, tr.N, tr.H, tr.G, tr.dtype):
        return old
    return BackTrace(tr.xp, tr.T, tr.N, tr.H, tr.G, tr.dtype, cell.separate_hidden)


def fold_bias(cell: CellMath, w: Weights, H: int) -> tuple[Any, Any]:
    """``(bias, b_rest)``: the bias added once to the input projection (``b_ih`` plus the
    foldable part of ``b_hh``) and the part of ``b_hh`` the step adds itself (or None)."""
    if w.b_ih is None:
        return None, None
    fold = cell.foldable_hh_bias(H)
    bias = w.b_ih.copy()
    bias[fold] += w.b_hh[fold]
    rest = w.b_hh[fold.stop :] if fold.stop < w.b_hh.shape[0] else None
    return bias, rest


def input_table(xp: Any, E: Any, W_ih: Any, bias: Any, out: Any = None) -> Any:
    """The input projection of every embedding row, ``E (V, D) @ W_ih^T + bias``,
    ``(V, G*H)`` (into ``out`` when given)."""
    table = xp.matmul(E, W_ih.T, out=out)
    if bias is not None:
        table += bias
    return table


def scan_forward(cell: CellMath, tr: Trace, X: Any, w: Weights, h0: Any, c0: Any = None, *,
                 reverse: bool = False, mask: Any = None, keep: Any = None) -> None:
    """Run one direction over ``X`` ``(T, N, D)`` (C-contiguous) or a :class:`TokenInput`,
    filling ``tr``.

    ``h0``/``c0`` are ``(N, H)``; ``mask`` is ``(T, N, 1)`` of 1.0 at real steps and
    ``keep`` its boolean complement (both ``None`` without lengths). After the call
    ``tr.outputs`` holds the states in time order (:func:`final_state` the last one).
    """
    xp, T, N, H = tr.xp, tr.T, tr.N, tr.H
    tr.X, tr.mask, tr.keep, tr.reverse = X, mask, keep, reverse
    # 1. the input projection of every step, one product
    xw = tr.xw.reshape(T * N, tr.G * H)
    bias, b_rest = fold_bias(cell, w, H)
    if isinstance(X, TokenInput):
        table = input_table(xp, X.E, w.W_ih, bias, tr.buffer("table", (X.E.shape[0], tr.G * H)))
        xp.take(table, X.ids, axis=0, out=xw)
    else:
        xp.matmul(X.reshape(T * N, tr.D), w.W_ih.T, out=xw)  # eq: scan.xw
        if bias is not None:
            xw += bias
    first = T if reverse else 0
    tr.h[first] = h0
    if tr.c is not None:
        tr.c[first] = c0
    # 2. the loop over time
    if engine_for(xp, tr.dtype).scan_forward(cell, tr, w.W_hh, b_rest):
        return
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        cell.step(tr, t, w.W_hh, b_rest)
        if keep is not None:  # past a sequence's end the state is carried over
            prev, cur = tr.rows(t)
            xp.copyto(tr.h[cur], tr.h[prev], where=keep[t])
            if tr.c is not None:
                xp.copyto(tr.c[cur], tr.c[prev], where=keep[t])


def final_state(tr: Trace) -> tuple[Any, Any]:
    """``(h_n, c_n)`` views of the final state of a scan (``c_n`` is ``None`` without a cell)."""
    row = 0 if tr.reverse else tr.T
    return tr.h[row], (tr.c[row] if tr.c is not None else None)


def scan_backward(cell: CellMath, tr: Trace, bw: BackTrace, w: Weights, grads: Weights,
                  acc: Accumulate, *, dH: Any = None, dh_n: Any = None, dc_n: Any = None,
                  dX: Any = None, dX_accumulate: bool = False,
                  defer: Callable[[Callable[[], None]], None] | None = None,
                  ) -> tuple[Any, Any]:
    """Backward through one scan.

    ``dH`` ``(T, N, H)`` is the upstream gradient of the outputs (``None`` for none),
    ``dh_n``/``dc_n`` ``(N, H)`` that of the final state. Parameter gradients are added
    into ``grads`` (same fields as ``w``) with ``acc(grad, a, b)``, ``grad += a @ b``.
    When ``dX`` ``(T * N, D)`` is given the input gradient is written (or, with
    ``dX_accumulate``, added) into it. Returns ``(dh0, dc0)`` as fresh arrays (``dc0``
    is ``None`` without a cell).

    With ``defer``, each product that only adds into a parameter gradient (nothing later
    in the backward reads it) is handed to ``defer`` as a callable instead of being run;
    the callables read this scan's buffers, which stay as they are until the next forward.
    """
    xp, T, N, H, G = tr.xp, tr.T, tr.N, tr.H, tr.G
    bw.dh_next[...] = 0 if dh_n is None else dh_n
    if tr.c is not None:
        bw.dc_next[...] = 0 if dc_n is None else dc_n
    # 2. the loop over time, backward
    if not engine_for(xp, tr.dtype).scan_backward(cell, tr, bw, w.W_hh, dH):
        _loop_backward(cell, tr, bw, w.W_hh, dH)
    # 3. the weight gradients, one product each
    da = bw.dxw.reshape(T * N, G * H)
    grad_acc = acc if defer is None else _deferred(acc, defer)
    cell.hidden_weight_grad(tr, bw, grad_acc, grads.W_hh)
    ones = xp.ones(T * N, dtype=da.dtype)  # ones @ m: the column sums of m
    if grads.b_hh is not None:
        grad_acc(grads.b_hh, ones, bw.dhw.reshape(T * N, G * H))
    if isinstance(tr.X, TokenInput):
        _token_input_backward(tr, da, w, grads, grad_acc)
    else:
        grad_acc(grads.W_ih, da.T, tr.X.reshape(T * N, tr.D))  # eq: scan.dW_ih
        if grads.b_ih is not None:
            grad_acc(grads.b_ih, ones, da)  # eq: scan.db
        if dX is not None:
            if dX_accumulate:
                acc(dX, da, w.W_ih)
            else:
                xp.matmul(da, w.W_ih, out=dX)  # eq: scan.dX
    dc0 = bw.dc_next.copy() if tr.c is not None else None
    return bw.dh_next.copy(), dc0


def _loop_backward(cell: CellMath, tr: Trace, bw: BackTrace, W_hh: Any, dH: Any) -> None:
    """The reference backward loop: ``step_back`` from the last step to the first."""
    mask, keep = tr.mask, tr.keep
    for t in (range(tr.T) if tr.reverse else range(tr.T - 1, -1, -1)):
        dh = bw.dh_next if dH is None else dH[t] + bw.dh_next  # eq: scan.dh
        if mask is None:
            bw.dh[...] = dh
            cell.step_back(tr, bw, t, W_hh)
            continue
        # past a sequence's end the state was carried over, and so is its gradient
        carried_h = bw.dh_next * keep[t]
        bw.dh[...] = dh * mask[t]
        if tr.c is not None:
            carried_c = bw.dc_next * keep[t]
            bw.dc_next *= mask[t]
        cell.step_back(tr, bw, t, W_hh)
        bw.dh_next += carried_h
        if tr.c is not None:
            bw.dc_next += carried_c


def _deferred(acc: Accumulate, defer: Callable[[Callable[[], None]], None]) -> Accumulate:
    def hand_over(grad: Any, a: Any, b: Any) -> None:
        defer(functools.partial(acc, grad, a, b))
    return hand_over


def _token_input_backward(tr: Trace, da: Any, w: Weights, grads: Weights,
                          acc: Accumulate) -> None:
    """The input-side gradients of a scan over a :class:`TokenInput`, through the
    per-token sums ``dP`` ``(V, G*H)`` of ``dxw``."""
    X, xp = tr.X, tr.xp
    dP = tr.buffer("dtable", (X.E.shape[0], da.shape[1]))
    dP.fill(0)
    scatter_add_rows(xp, dP, X.ids, da)
    acc(grads.W_ih, dP.T, X.E)
    if grads.b_ih is not None:
        acc(grads.b_ih, xp.ones(dP.shape[0], dtype=dP.dtype), dP)
    if X.dE is not None:
        acc(X.dE, dP, w.W_ih)
