"""The engine's time loops: the reference loop of :mod:`rnnlab.nn.scan`, planned for speed.

The reference makes the input projection and takes the weight gradients; the engine
runs only the loop over ``t`` in between, when :class:`rnnlab.fast.engine.Engine` is
asked. A pass is *planned* once (:func:`plan_forward`, :func:`plan_backward`):

* BLAS threads: the per-step products ``(N, H) @ (H, G*H)`` run on one BLAS thread when
  they are small (below :data:`LOOP_SHARE_MACS`, or :data:`WIDE_LOOP_SHARE_MACS` for a
  loop that runs whole with the packed kernel's AVX-512 form; ``RNNLAB_LOOP_THREADS``
  overrides);
* their form: plain BLAS, BLAS transposed (``(W h^T)^T``, which splits the long side
  between BLAS's threads; with two or more threads, ``RNNLAB_LOOP_TRANSPOSED``
  overrides), or packed weights (:mod:`rnnlab.fast.packed`, numba float32);
* a loop on one thread without lengths, of a cell with a compiled loop, runs whole in
  one compiled call (no Python between steps); so does a backward beside a side job
  (:func:`rnnlab.fast.threads.run_beside`), which is on one thread anyway.

Every choice depends on sizes, switches and machine facts only (never on which threads
are alive), so a computation gives the same bits wherever it runs. Plans live beside
the traces, in weak dictionaries: the reference's buffers carry no engine state.
"""

from __future__ import annotations

import weakref
from typing import Any

from rnnlab.fast.cells import FastCell, _step_product
from rnnlab.fast.config import count, flag
from rnnlab.fast.packed import PackedProducts, packed_allowed, packed_plan, panel_width
from rnnlab.fast.threads import blas_thread_count, blas_threads, solo

#: per-step products from this many multiply-adds keep every BLAS thread (smaller ones
#: run on one: ``python benchmarks/bench_loop_products.py``)
LOOP_SHARE_MACS = 2_000_000
#: the same where the packed kernel has its AVX-512 form: below this a loop runs on one
#: thread, whole in one compiled call (D, ``(32, 256) @ (256, 1024)``: 1.04-1.16x the
#: step on two BLAS threads; ``benchmarks/RESULTS.md``)
WIDE_LOOP_SHARE_MACS = 16_000_000


def loop_threads(macs: int, wide: bool = False) -> int | None:
    """BLAS threads for a loop's per-step products of ``macs`` multiply-adds: one below
    :data:`LOOP_SHARE_MACS` (:data:`WIDE_LOOP_SHARE_MACS` when ``wide``, the packed
    kernel's AVX-512 form), all (``None``) from there; ``RNNLAB_LOOP_THREADS`` overrides."""
    chosen = count("RNNLAB_LOOP_THREADS")
    if chosen == "all":
        return None
    if isinstance(chosen, int):
        return chosen
    return None if macs >= (WIDE_LOOP_SHARE_MACS if wide else LOOP_SHARE_MACS) else 1


def _wide(steps: FastCell, kernels: Any) -> bool:
    """Whether a loop of ``steps`` would run whole with the packed kernel's AVX-512 form."""
    return (steps.compiled_loop() and packed_allowed(kernels)
            and panel_width(kernels.gemm) == kernels.gemm.NR_WIDE)


def loop_transposed(limit: int | None) -> bool:
    """Whether a loop under ``blas_threads(limit)`` computes its per-step products
    transposed: with two or more BLAS threads; ``RNNLAB_LOOP_TRANSPOSED`` overrides."""
    forced = flag("RNNLAB_LOOP_TRANSPOSED")
    if forced is not None:
        return forced
    return (limit if limit is not None else blas_thread_count()) > 1


class Plan:
    """How one forward pass runs, and its scratch (kept from pass to pass)."""

    def __init__(self, tr: Any) -> None:
        self.xp, self.N, self.dtype = tr.xp, tr.N, tr.dtype
        self.kernels: Any = None
        self.limit: int | None = None
        self.transposed = False
        self.packed: PackedProducts | None = None
        self.whole = False
        self._width = tr.G * tr.H
        self._scratch: dict[Any, Any] = {}

    def scratch(self, key: Any, shape: tuple[int, ...]) -> Any:
        buf = self._scratch.get(key)
        if buf is None or tuple(buf.shape) != shape:
            buf = self._scratch[key] = self.xp.empty(shape, dtype=self.dtype)
        return buf

    def kernel_scratch(self, width: int) -> Any:
        """``(N, width)`` scratch of the compiled kernels, one per width (a GRU step has
        two widths, which must not take turns reallocating one buffer)."""
        return self.scratch(("k_e", width), (self.N, width))

    @property
    def tmp(self) -> Any:
        return self.scratch("tmp", (self.N, self._width))

    def times_wt(self, v: Any, W: Any, out: Any, add: Any = None) -> None:
        """``out = v @ W^T (+ add)``, a forward step's product, in the planned form."""
        if self.packed is not None:
            self.packed.matmul(v, W.T, out, add)
            return
        tmp = self.scratch(("wt", W.shape[0]), (W.shape[0], v.shape[0])) \
            if self.transposed else None
        _step_product(self.xp, v, W.T, out, tmp, add)


class BackPlan:
    """How one backward pass runs, and its work arrays."""

    def __init__(self, bw: Any) -> None:
        xp, N, H, G, dtype = bw.xp, bw.N, bw.H, bw.G, bw.dtype
        self.xp, self.dtype = xp, dtype
        self.t1 = xp.empty((N, H), dtype=dtype)
        self.t2 = xp.empty((N, H), dtype=dtype)
        self.tg = xp.empty((N, G * H), dtype=dtype)
        self.transposed = False
        self.packed: PackedProducts | None = None
        self.whole = False
        self._scratch: dict[tuple[int, int], Any] = {}

    def times_w(self, d: Any, W: Any, out: Any) -> None:
        """``out = d @ W``, a backward step's product, in the planned form."""
        if self.packed is not None:
            self.packed.matmul(d, W, out)
            return
        tmp = None
        if self.transposed:
            shape = (W.shape[1], d.shape[0])
            tmp = self._scratch.get(shape)
            if tmp is None:
                tmp = self._scratch[shape] = self.xp.empty(shape, dtype=self.dtype)
        _step_product(self.xp, d, W, out, tmp)


_PLANS: weakref.WeakKeyDictionary[Any, Plan] = weakref.WeakKeyDictionary()
_BACK_PLANS: weakref.WeakKeyDictionary[Any, BackPlan] = weakref.WeakKeyDictionary()


def _whole_loop(steps: FastCell, rec: Plan, lengths: Any) -> bool:
    """Whether a loop on one thread runs whole in one compiled call: no lengths, a cell
    with a compiled loop, and packed products allowed."""
    return lengths is None and steps.compiled_loop() and packed_allowed(rec.kernels)


def plan_forward(steps: FastCell, tr: Any, kernels: Any) -> Plan:
    """The plan of a forward pass over ``tr`` (see the module docstring)."""
    rec = _PLANS.get(tr)
    if rec is None:
        rec = _PLANS[tr] = Plan(tr)
    rec.kernels = kernels
    numpy = tr.xp.__name__ == "numpy"
    macs = tr.N * tr.H * tr.G * tr.H
    rec.limit = loop_threads(macs, numpy and tr.keep is None and _wide(steps, kernels)) \
        if numpy else None
    n_threads = blas_thread_count() if rec.limit is None else rec.limit
    rec.whole = n_threads <= 1 and _whole_loop(steps, rec, tr.keep)
    threads = 1 if rec.whole else packed_plan(kernels, macs, n_threads)
    if threads:
        if rec.packed is None:
            rec.packed = PackedProducts(kernels.gemm, threads)
        rec.packed.begin(threads)
        rec.transposed = False
    else:
        rec.packed = None
        rec.transposed = numpy and loop_transposed(rec.limit)
    return rec


def forward_loop(steps: FastCell, tr: Any, W_hh: Any, b_rest: Any, kernels: Any) -> None:
    """The loop over ``t`` of a forward scan (the reference's step 2)."""
    rec = plan_forward(steps, tr, kernels)
    if rec.whole:
        assert rec.packed is not None  # a whole loop runs its products packed
        steps.scan(tr, rec, rec.packed.panels(W_hh.T), b_rest)
        return
    xp, keep = tr.xp, tr.keep
    with blas_threads(rec.limit):
        for t in (range(tr.T - 1, -1, -1) if tr.reverse else range(tr.T)):
            steps.step(tr, rec, t, W_hh, b_rest)
            if keep is not None:
                prev, cur = tr.rows(t)
                xp.copyto(tr.h[cur], tr.h[prev], where=keep[t])
                if tr.c is not None:
                    xp.copyto(tr.c[cur], tr.c[prev], where=keep[t])


def plan_backward(steps: FastCell, tr: Any, bw: Any, kernels: Any) -> tuple[Plan, BackPlan]:
    """The plan of a backward pass: as its forward's, except beside a side job, where
    the loop is on one thread and runs whole when it can."""
    rec = _PLANS.get(tr)
    if rec is None or rec.kernels is not kernels:  # the reference ran the forward
        rec = plan_forward(steps, tr, kernels)
    brec = _BACK_PLANS.get(bw)
    if brec is None:
        brec = _BACK_PLANS[bw] = BackPlan(bw)
    macs = tr.N * tr.H * tr.G * tr.H
    brec.whole = rec.whole or (solo() and _whole_loop(steps, rec, tr.mask))
    if brec.whole:
        threads, brec.transposed = 1, False
    elif solo():  # a side job has the other core, and run_beside holds BLAS at one thread
        threads = packed_plan(kernels, macs, 1)
        brec.transposed = not threads and loop_transposed(1)
    else:
        threads = 0 if rec.packed is None else rec.packed.threads
        brec.transposed = rec.transposed
    if not threads:
        brec.packed = None
    else:
        if brec.packed is None:
            brec.packed = PackedProducts(kernels.gemm, threads)
        brec.packed.begin(threads)
    return rec, brec


def backward_loop(steps: FastCell, tr: Any, bw: Any, W_hh: Any, dH: Any, kernels: Any) -> None:
    """The loop over ``t`` of a backward scan (the reference's backward loop)."""
    rec, brec = plan_backward(steps, tr, bw, kernels)
    if brec.whole:
        assert brec.packed is not None  # a whole loop runs its products packed
        steps.scan_back(tr, rec, bw, brec, dH, brec.packed.panels(W_hh))
        return
    xp, mask, keep = tr.xp, tr.mask, tr.keep
    if mask is not None:
        pass_h = xp.empty_like(bw.dh_next)
        pass_c = xp.empty_like(bw.dh_next) if tr.c is not None else None
    with blas_threads(rec.limit):
        for t in (range(tr.T) if tr.reverse else range(tr.T - 1, -1, -1)):
            if mask is not None:
                # past a sequence's end the state was carried over: its gradient passes on
                xp.multiply(bw.dh_next, keep[t], out=pass_h)
                if pass_c is not None:
                    xp.multiply(bw.dc_next, keep[t], out=pass_c)
                    bw.dc_next *= mask[t]
            if dH is None:
                bw.dh, bw.dh_next = bw.dh_next, bw.dh  # no upstream term: swap, don't copy
            else:
                xp.add(dH[t], bw.dh_next, out=bw.dh)
            if mask is not None:
                bw.dh *= mask[t]
            steps.step_back(tr, rec, bw, brec, t, W_hh)
            if mask is not None:
                bw.dh_next += pass_h
                if pass_c is not None:
                    bw.dc_next += pass_c


def step_plan(tr: Any, kernels_for: Any) -> Plan:
    """The plan of a one-step trace run again and again (a stepper): the kernels, BLAS as
    it is, plain products; made on the first step."""
    rec = _PLANS.get(tr)
    if rec is None:
        rec = _PLANS[tr] = Plan(tr)
        rec.kernels = kernels_for(tr.xp, tr.dtype)
    return rec


def plan_of(trace: Any) -> Plan | BackPlan | None:
    """The engine's last plan for a reference ``Trace`` or ``BackTrace`` (for tests and
    benchmarks), or None when the engine has not run it."""
    return _PLANS.get(trace) or _BACK_PLANS.get(trace)
