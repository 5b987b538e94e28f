"""The one time loop, shared by RNN, LSTM and GRU (only the cell maths differ).

A *scan* runs one direction of one layer over a time-major input ``X`` of shape
``(T, N, D)``:

1. the input projection of all steps is one product, ``xw = X W_ih^T + b``, outside the loop;
2. the loop calls the cell's ``step`` for each ``t`` (reversed for the backward direction);
3. with per-sequence lengths, a ``keep`` mask carries the state unchanged past each end,
   which is exactly PyTorch's packed-sequence semantics for both directions.

Its backward walks the steps in the opposite order, then computes every weight gradient
with one product over all steps (``dW_ih += dxw^T X``, ``dW_hh += dhw^T H_prev``) and the
input gradient with one more (``dX = dxw W_ih``).

When the compiled kernels are on, the loop runs on one thread and there are no lengths,
a scan (LSTM, Elman RNN, GRU with the reset after the product) runs its whole loop,
forward and backward, in one compiled call (:meth:`CellMath.scan`): the same step
kernels, with every per-step product through the packed weight, and none of the
30-40 us of Python a step otherwise costs (the book's LSTM 100 at batch 20: 4.0-4.6
against 5.1-5.8 ms for the recurrent layer's part of a training step,
``benchmarks/RESULTS.md``). A backward that runs beside a side job
(:func:`rnnlab.backend.run_beside`) is on one thread too, and runs whole after any
forward.

When the input is rows of an embedding matrix, ``X = E[ids]`` with ``E`` ``(V, D)``, and
the vocabulary is smaller than the number of tokens (a character model), a
:class:`TokenInput` replaces ``X``: the projection becomes a lookup in the table
``E W_ih^T + b`` ``(V, G*H)``, and the backward sums ``dxw`` per token id into
``dP`` ``(V, G*H)`` and takes ``dW_ih += dP^T E`` and ``dE += dP W_ih``. Three products
over all ``T*N`` tokens become three over the ``V`` vocabulary rows; the result is the
same sums in another order.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rnnlab._kernels import for_arrays as kernels_for
from rnnlab.backend import blas_thread_count, blas_threads, loop_threads, loop_transposed, solo
from rnnlab.nn._cellmath import BackTrace, CellMath, Trace
from rnnlab.nn._packed import PackedProducts, packed_allowed, packed_plan
from rnnlab.nn.embedding import scatter_add_rows

#: ``acc(grad, a, b)`` performs ``grad += a @ b`` without per-call allocation.
Accumulate = Callable[[Any, Any, Any], None]


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


def new_trace(math: CellMath, xp: Any, T: int, N: int, D: int, H: int, dtype: Any,
              old: Trace | None = None) -> Trace:
    """A forward trace of the given size, reusing ``old`` when it fits."""
    if old is not None and old.fits(T, N, D, H, math.n_gates, dtype):
        return old
    return Trace(xp, T, N, D, H, math.n_gates, dtype, math.has_cell)


def new_back_trace(math: CellMath, tr: Trace, old: BackTrace | None = None) -> BackTrace:
    """A backward work area matching ``tr``, reusing ``old`` when it fits."""
    if old is not None and old.fits(tr.T, tr.N, tr.H, tr.G, tr.dtype):
        return old
    return BackTrace(tr.xp, tr.T, tr.N, tr.H, tr.G, tr.dtype, math.separate_hidden)


def _loop_limit(tr: Trace) -> int | None:
    """BLAS threads for the loop's per-step product ``(N, H) @ (H, G*H)`` (CPU only)."""
    if tr.xp.__name__ != "numpy":
        return None
    return loop_threads(tr.N * tr.H * tr.G * tr.H)


def fold_bias(math: CellMath, w: Weights, H: int) -> tuple[Any, Any]:
    """``(bias, b_rest)``: the bias added once to the input projection (``b_ih`` plus the
    foldable part of ``b_hh``) and the part of ``b_hh`` the step adds itself (or None)."""
    if w.b_ih is None:
        return None, None
    fold = math.foldable_hh_bias(H)
    bias = w.b_ih.copy()
    bias[fold] += w.b_hh[fold]
    rest = w.b_hh[fold.stop :] if fold.stop < w.b_hh.shape[0] else None
    return bias, rest


def input_table(xp: Any, E: Any, W_ih: Any, bias: Any, out: Any = None) -> Any:
    """The input projection of every embedding row, ``E (V, D) @ W_ih^T + bias``, ``(V, G*H)``
    (into ``out`` when given)."""
    table = xp.matmul(E, W_ih.T, out=out)
    if bias is not None:
        table += bias
    return table


def scan_forward(math: CellMath, tr: Trace, X: Any, w: Weights, h0: Any, c0: Any = None, *,
                 reverse: bool = False, mask: Any = None, keep: Any = None) -> None:
    """Run one direction over ``X`` ``(T, N, D)`` (C-contiguous), filling ``tr``.

    ``h0``/``c0`` are ``(N, H)``; ``mask`` is ``(T, N, 1)`` of 1.0 at real steps and
    ``keep`` its boolean complement (both ``None`` without lengths). After the call,
    ``tr.outputs`` holds the states in time order and the final state is
    ``tr.h[0]`` (reverse) or ``tr.h[T]`` (forward).
    """
    xp, T, N, H = tr.xp, tr.T, tr.N, tr.H
    tr.X, tr.mask, tr.keep, tr.reverse = X, mask, keep, reverse
    tr.kernels = kernels_for(xp, tr.dtype)
    xw2d = tr.xw.reshape(T * N, tr.G * H)
    bias, b_rest = fold_bias(math, w, H)
    if isinstance(X, TokenInput):
        table = input_table(xp, X.E, w.W_ih, bias, tr.buffer("table", (X.E.shape[0], tr.G * H)))
        xp.take(table, X.ids, axis=0, out=xw2d)
    else:
        xp.matmul(X.reshape(T * N, tr.D), w.W_ih.T, out=xw2d)
        if bias is not None:
            xw2d += bias
    init = T if reverse else 0
    tr.h[init] = h0
    if tr.c is not None:
        tr.c[init] = c0
    steps = range(T - 1, -1, -1) if reverse else range(T)
    limit = _loop_limit(tr)
    n_threads = blas_thread_count() if limit is None else limit
    tr.whole = n_threads <= 1 and _whole_loop(math, tr, keep)
    threads = 1 if tr.whole else packed_plan(tr.kernels, tr.N * tr.H * tr.G * tr.H,
                                             n_threads)
    if threads:
        if tr.packed is None:
            tr.packed = PackedProducts(tr.kernels.gemm, threads)
        tr.packed.begin(threads)
        tr.transposed = False
    else:
        tr.packed = None
        tr.transposed = xp.__name__ == "numpy" and loop_transposed(limit)
    if tr.whole:
        math.scan(tr, tr.packed.panels(w.W_hh.T), b_rest)
        return
    with blas_threads(limit):
        for t in steps:
            math.step(tr, t, w.W_hh, b_rest)
            if keep is not None:
                prev, cur = tr.rows(t)
                xp.copyto(tr.h[cur], tr.h[prev], where=keep[t])
                if tr.c is not None:
                    xp.copyto(tr.c[cur], tr.c[prev], where=keep[t])


def _whole_loop(math: CellMath, tr: Trace, lengths: Any) -> bool:
    """Whether a loop on one thread runs whole in one compiled call: no lengths
    (``lengths``, the scan's mask or keep, is None), a cell with a compiled loop, and the
    packed products allowed."""
    return lengths is None and math.compiled_loop() and packed_allowed(tr.kernels)


def final_state(tr: Trace) -> tuple[Any, Any]:
    """``(h_n, c_n)`` views of the final state of a scan (``c_n`` is ``None`` without a cell)."""
    row = 0 if tr.reverse else tr.T
    return tr.h[row], (tr.c[row] if tr.c is not None else None)


def scan_backward(math: CellMath, tr: Trace, bw: BackTrace, w: Weights, grads: Weights,
                  acc: Accumulate, *, dH: Any = None, dh_n: Any = None, dc_n: Any = None,
                  dX: Any = None, dX_accumulate: bool = False,
                  defer: Callable[[Callable[[], None]], None] | None = None,
                  ) -> tuple[Any, Any]:
    """Backward through one scan.

    ``dH`` ``(T, N, H)`` is the upstream gradient of the outputs (``None`` for none),
    ``dh_n``/``dc_n`` ``(N, H)`` that of the final state. Parameter gradients are added
    into ``grads`` (same fields as ``w``). When ``dX`` ``(T * N, D)`` is given the input
    gradient is written (or, with ``dX_accumulate``, added) into it. Returns
    ``(dh0, dc0)`` as fresh arrays (``dc0`` is ``None`` without a cell).

    With ``defer``, the products that only add into parameter gradients (nothing later
    in the backward reads them) are handed to it as callables instead of being run
    (:func:`rnnlab.backend.run_beside`); they read this scan's buffers, which stay as
    they are until the next forward pass.
    """
    xp, T, N, H, G = tr.xp, tr.T, tr.N, tr.H, tr.G
    mask, keep = tr.mask, tr.keep
    if dh_n is None:
        bw.dh_next.fill(0)
    else:
        bw.dh_next[...] = dh_n
    if tr.c is not None:
        if dc_n is None:
            bw.dc_next.fill(0)
        else:
            bw.dc_next[...] = dc_n
    if mask is not None:
        pass_h = xp.empty_like(bw.dh_next)
        pass_c = xp.empty_like(bw.dh_next) if tr.c is not None else None
    steps = range(T) if tr.reverse else range(T - 1, -1, -1)
    # the whole loop in one compiled call when the forward's was, or when a side job has
    # the other core (run_beside) and this loop is on one thread anyway
    bw.whole = tr.whole or (solo() and _whole_loop(math, tr, mask))
    if bw.whole:
        threads, bw.transposed = 1, False
    elif solo():  # a side job has the other core, and run_beside holds BLAS at one thread
        threads = packed_plan(tr.kernels, N * H * G * H, 1)
        bw.transposed = not threads and loop_transposed(1)
    else:  # as the forward pass planned
        threads = 0 if tr.packed is None else tr.packed.threads
        bw.transposed = tr.transposed
    if not threads:
        bw.packed = None
    else:
        if bw.packed is None:
            bw.packed = PackedProducts(tr.kernels.gemm, threads)
        bw.packed.begin(threads)
    if bw.whole:
        math.scan_back(tr, bw, dH, bw.packed.panels(w.W_hh))
    else:
        with blas_threads(_loop_limit(tr)):
            for t in steps:
                if mask is not None:
                    # past a sequence's end the state was carried over: its gradient passes on
                    xp.multiply(bw.dh_next, keep[t], out=pass_h)
                    if pass_c is not None:
                        xp.multiply(bw.dc_next, keep[t], out=pass_c)
                        bw.dc_next *= mask[t]
                if dH is None:
                    bw.dh, bw.dh_next = bw.dh_next, bw.dh  # no upstream term: reuse, don't copy
                else:
                    xp.add(dH[t], bw.dh_next, out=bw.dh)
                if mask is not None:
                    bw.dh *= mask[t]
                math.step_back(tr, bw, t, w.W_hh)
                if mask is not None:
                    bw.dh_next += pass_h
                    if pass_c is not None:
                        bw.dc_next += pass_c
    dxw2d = bw.dxw.reshape(T * N, G * H)
    if defer is None:
        grad_acc = acc
    else:
        def grad_acc(grad: Any, a: Any, b: Any) -> None:
            defer(functools.partial(acc, grad, a, b))
    math.hidden_weight_grad(tr, bw, grad_acc, grads.W_hh)
    if grads.b_hh is not None:
        ones = xp.ones(T * N, dtype=dxw2d.dtype)  # row sums through BLAS (see Module.ones)
        grad_acc(grads.b_hh, ones, bw.dhw.reshape(T * N, G * H))
    if isinstance(tr.X, TokenInput):
        _token_input_backward(tr, dxw2d, w, grads, grad_acc)
    else:
        grad_acc(grads.W_ih, dxw2d.T, tr.X.reshape(T * N, tr.D))
        if grads.b_ih is not None:
            grad_acc(grads.b_ih, ones, dxw2d)
        if dX is not None:
            if dX_accumulate:
                acc(dX, dxw2d, w.W_ih)
            else:
                xp.matmul(dxw2d, w.W_ih, out=dX)
    dh0 = bw.dh_next.copy()
    dc0 = bw.dc_next.copy() if tr.c is not None else None
    return dh0, dc0


def _token_input_backward(tr: Trace, dxw2d: Any, w: Weights, grads: Weights,
                          acc: Accumulate) -> None:
    """The input-side gradients of a scan over a :class:`TokenInput`, through the
    per-token sums ``dP`` ``(V, G*H)`` of ``dxw``."""
    X, xp = tr.X, tr.xp
    dP = tr.buffer("dtable", (X.E.shape[0], dxw2d.shape[1]))
    dP.fill(0)
    scatter_add_rows(xp, dP, X.ids, dxw2d)
    acc(grads.W_ih, dP.T, X.E)
    if grads.b_ih is not None:
        acc(grads.b_ih, xp.ones(dP.shape[0], dtype=dP.dtype), dP)
    if X.dE is not None:
        acc(X.dE, dP, w.W_ih)
