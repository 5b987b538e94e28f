"""The interface between the reference and the speed engine.

The reference (the layers, losses and optimizers) asks :func:`rnnlab.fast.engine_for`
for an engine and offers it a few operations; each method either does the operation and
says so (True, or a result), or declines (False, None) and the reference does it in its
own plain form. :class:`ReferenceEngine` declines everything: it is what ``RNNLAB_FAST=0``
gives. :class:`Engine` is the engine proper.

==========================  ===============================================================
operation                   asked by
==========================  ===============================================================
``scan_forward``            :func:`rnnlab.nn.scan.scan_forward`: the loop over ``t``
``scan_backward``           :func:`rnnlab.nn.scan.scan_backward`: the loop back over ``t``
``step_fn``                 :class:`rnnlab.nn.stepper.Stepper`: one step, inference only
``softmax_xent``            :class:`rnnlab.nn.SoftmaxCrossEntropy`: loss and gradient rows
``scatter_add_rows``        :func:`rnnlab.nn.embedding.scatter_add_rows`
``add_matmul``              :meth:`rnnlab.nn.Module.matmul_into_grad`: ``grad += a @ b``
``sub_scaled``              SGD's update ``param -= scale * grad``
``beside_pays``,            :meth:`rnnlab.models.RNNLM.backward`: weight gradients on a
``run_beside``              second core while the input-gradient chain runs
``min_forward``,            :class:`rnnlab.nn.MinGRU` / :class:`~rnnlab.nn.MinLSTM`: gates
``min_backward``            and recurrence of one layer direction, forward and backward
==========================  ===============================================================
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from rnnlab.fast import kernels as _kernels
from rnnlab.fast import loop, losses, threads
from rnnlab.fast.cells import FastCell, fast_cell

#: elements per block of :meth:`Engine.sub_scaled` (1 MiB of float32, which stays in the
#: cache between the two passes of a block)
UPDATE_BLOCK = 1 << 18


class ReferenceEngine:
    """Declines every operation: the reference runs alone."""


    def scan_forward(self, cell: Any, tr: Any, W_hh: Any, b_rest: Any) -> bool:
        """Run the forward loop over ``t`` of a scan into ``tr``; False to decline."""
        return False

    def scan_backward(self, cell: Any, tr: Any, bw: Any, W_hh: Any, dH: Any) -> bool:
        """Run the backward loop of a scan into ``bw``; False to decline."""
        return False

    def step_fn(self, cell: Any, tr: Any) -> Callable[[Any, Any], None] | None:
        """A function ``(W_hh, b_rest)`` that runs step 0 of the one-step trace ``tr``
        again and again (a stepper's layer), or None to decline."""
        return None

    def softmax_xent(self, Z: Any, targets: Any, valid: Any, scale: float) -> float | None:
        """Overwrite ``Z`` with the gradient, return the summed loss; None to decline."""
        return None

    def scatter_add_rows(self, target: Any, ids: Any, rows: Any) -> bool:
        """``target[ids[k]] += rows[k]``; False to decline."""
        return False

    def add_matmul(self, grad: Any, a: Any, b: Any,
                   work: Callable[[Any, tuple[int, ...], Any], Any]) -> bool:
        """``grad += a @ b`` (``work(key, shape, dtype)`` gives reusable arrays); False
        to decline."""
        return False

    def sub_scaled(self, param: Any, grad: Any, scale: float) -> bool:
        """``param -= float32(scale) * grad`` with the reference's roundings; False to
        decline."""
        return False

    def beside_pays(self, side_macs: int, main_macs: int) -> bool:
        """Whether :meth:`run_beside` would run side work on a second core."""
        return False

    def run_beside(self, main: Callable[[Callable[[Callable[[], None]], None]], Any],
                   parts: Any = ()) -> Any:
        """``main(add)``, then every part and every part handed to ``add``, in order."""
        pending = list(parts)
        result = main(pending.append)
        for part in pending:
            part()
        return result

    def min_forward(self, cell: str, P: Any, h0: Any, valid: Any, reverse: bool) -> Any:
        """The states ``h`` ``(T+1, N, H)`` (processing order, ``h[0] = h0``) of one
        direction of a minGRU / minLSTM layer (``cell``) from its pre-activations ``P``
        ``(T, N, G*H)`` and ``valid`` ``(T, N, 1)`` bool or None, both in time order;
        ``reverse`` runs ``t = T-1 .. 0``. None to decline."""
        return None

    def min_backward(self, cell: str, P: Any, h: Any, dy: Any, dh_n: Any, valid: Any,
                     reverse: bool, record: bool) -> tuple[Any, Any, Any] | None:
        """Backward of :meth:`min_forward` (asked only after it ran): from ``dy``
        ``(T, N, H)`` (time order, or None) and ``dh_n`` ``(N, H)``, return ``(dP, dh0,
        dh)``: ``dP`` ``(T, N, G*H)`` in time order (zero at padded steps), ``dh0``
        ``(N, H)`` and, with ``record``, the total gradient of each state ``(T, N, H)``
        in processing order (else None). None to decline."""
        return None



class Engine(ReferenceEngine):
    """The engine for one array module and dtype (see the module docstring)."""


    def __init__(self, xp: Any, dtype: Any) -> None:
        self.xp, self.dtype = xp, np.dtype(dtype)
        self.numpy = xp is np
        self._steps: dict[tuple[Any, ...], FastCell] = {}

    def _steps_for(self, cell: Any) -> FastCell:
        key = (cell.kind, getattr(cell, "nonlinearity", None), getattr(cell, "reset_after", None))
        steps = self._steps.get(key)
        if steps is None:
            steps = self._steps[key] = fast_cell(cell)
        return steps

    def scan_forward(self, cell: Any, tr: Any, W_hh: Any, b_rest: Any) -> bool:
        loop.forward_loop(self._steps_for(cell), tr, W_hh, b_rest,
                          _kernels.for_arrays(self.xp, self.dtype))
        return True

    def scan_backward(self, cell: Any, tr: Any, bw: Any, W_hh: Any, dH: Any) -> bool:
        loop.backward_loop(self._steps_for(cell), tr, bw, W_hh, dH,
                           _kernels.for_arrays(self.xp, self.dtype))
        return True

    def step_fn(self, cell: Any, tr: Any) -> Callable[[Any, Any], None] | None:
        return functools.partial(self._steps_for(cell).step, tr,
                                 loop.step_plan(tr, _kernels.for_arrays), 0)

    def softmax_xent(self, Z: Any, targets: Any, valid: Any, scale: float) -> float | None:
        return losses.softmax_xent(Z, targets, valid, scale)

    def scatter_add_rows(self, target: Any, ids: Any, rows: Any) -> bool:
        kernels = _kernels.for_arrays(self.xp, target.dtype) if self.numpy else None
        if kernels is None or not target.flags.c_contiguous:
            return False
        kernels.scatter_add_rows(target, np.ascontiguousarray(ids),
                                 np.ascontiguousarray(rows, dtype=target.dtype))
        return True

    def add_matmul(self, grad: Any, a: Any, b: Any,
                   work: Callable[[Any, tuple[int, ...], Any], Any]) -> bool:
        # A gradient that is all zeros (as after zero_grad) receives the product directly:
        # 0 + x is x exactly, and the test (one integer max over the bits) costs a sixth
        # of the add. Beside a side job, where two threads may add into different
        # gradients of one shape at once, each gradient has its own work array.
        xp = self.xp
        if self.numpy and grad.flags.c_contiguous and grad.dtype.kind == "f" and grad.size:
            if not grad.view(f"u{grad.dtype.itemsize}").max():
                xp.matmul(a, b, out=grad)
                return True
        key = grad.ctypes.data if self.numpy and threads.solo() else None
        out = work(("acc", tuple(grad.shape), key), tuple(grad.shape), grad.dtype)
        xp.matmul(a, b, out=out)
        grad += out
        return True

    def sub_scaled(self, param: Any, grad: Any, scale: float) -> bool:
        # One compiled sweep; or, for arrays larger than a block, block by block through a
        # scratch that stays in the cache (one pass over the parameter and the gradient
        # instead of writing and reading back a parameter-sized work array). Each element
        # gets the reference's roundings: scale rounded to the dtype, the product rounded,
        # then subtracted.
        if not (self.numpy and param.flags.c_contiguous and grad.flags.c_contiguous
                and grad.dtype == param.dtype):
            return False
        kernels = _kernels.for_arrays(np, param.dtype)
        if kernels is not None and type(scale) is float:
            kernels.sub_scaled(param.reshape(-1), grad.reshape(-1), scale)
            return True
        if param.size <= UPDATE_BLOCK:
            return False
        p, g = param.reshape(-1), grad.reshape(-1)
        scratch = threads.scratch(("update", param.dtype.str), (UPDATE_BLOCK,), param.dtype)
        for start in range(0, p.size, UPDATE_BLOCK):
            stop = min(start + UPDATE_BLOCK, p.size)
            t = scratch[: stop - start]
            np.multiply(g[start:stop], scale, out=t)
            np.subtract(p[start:stop], t, out=p[start:stop])
        return True

    def beside_pays(self, side_macs: int, main_macs: int) -> bool:
        return self.numpy and threads.beside_pays(side_macs, main_macs)

    def _min_kernels(self, cell: str, P: Any, ran: bool = False) -> Any:
        # the backward (``ran``) follows a forward that ran here, whatever the switches
        # say now: the module is loaded
        if not (self.numpy and P.dtype == self.dtype and cell in ("mingru", "minlstm")):
            return None
        kernels = _kernels.minrnn(ran)
        return None if kernels is None else kernels.KERNELS[cell]

    @staticmethod
    def _valid_rows(valid: Any, T: int, N: int) -> Any:
        if valid is None:
            return np.ones((T, N), np.uint8)
        return np.ascontiguousarray(valid[..., 0]).view(np.uint8)

    @staticmethod
    def _by_rows(fn: Callable[[int, int], None], T: int, N: int, H: int) -> None:
        # rows are independent: parts of at least 2^16 elements on the engine's threads
        threads.parallel_chunks(fn, N, min_chunk=max(1, -(-(1 << 16) // (T * H))))

    def min_forward(self, cell: str, P: Any, h0: Any, valid: Any, reverse: bool) -> Any:
        kernels = self._min_kernels(cell, P)
        if kernels is None:
            return None
        (T, N, _), H = P.shape, h0.shape[1]
        P, h0 = np.ascontiguousarray(P), np.ascontiguousarray(h0)
        rows = self._valid_rows(valid, T, N)
        h = np.empty((T + 1, N, H), dtype=P.dtype)
        self._by_rows(lambda n0, n1: kernels[0](P, h0, rows, reverse, h, n0, n1), T, N, H)
        return h

    def min_backward(self, cell: str, P: Any, h: Any, dy: Any, dh_n: Any, valid: Any,
                     reverse: bool, record: bool) -> tuple[Any, Any, Any] | None:
        kernels = self._min_kernels(cell, P, ran=True)
        if kernels is None:
            return None
        (T, N, _), H = P.shape, h.shape[2]
        P = np.ascontiguousarray(P)
        dy = np.zeros((T, N, H), P.dtype) if dy is None else np.ascontiguousarray(dy)
        dh_n = np.ascontiguousarray(dh_n)
        rows = self._valid_rows(valid, T, N)
        dP, dh0 = np.empty_like(P), np.empty((N, H), P.dtype)
        dh = np.empty((T, N, H) if record else (0, 0, 0), P.dtype)
        self._by_rows(lambda n0, n1: kernels[1](P, h, dy, dh_n, rows, reverse, dP, dh0, dh,
                                                record, n0, n1), T, N, H)
        return dP, dh0, (dh if record else None)

    def run_beside(self, main: Callable[[Callable[[Callable[[], None]], None]], Any],
                   parts: Any = ()) -> Any:
        return threads.run_beside(main, parts)
