"""What every cell family is: :class:`CellMath` (the protocol the time loop calls),
the ``sigmoid`` the gates share and the ``Accumulate`` callback of the weight gradients
(see :mod:`rnnlab.nn.cells` for the notation)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from rnnlab.backend import Array
from rnnlab.nn.trace import BackTrace, Trace

#: ``acc(grad, a, b)`` performs ``grad += a @ b``.
Accumulate = Any


def sigmoid(xp: ModuleType, x: Array) -> Any:
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

    def step(self, tr: Trace, t: int, W_hh: Array, b_hh_rest: Array) -> None:
        """Write the state after step ``t`` (``tr.h``, ``tr.c``) from the state before it
        and ``tr.xw[t]``, and keep what the backward needs."""
        raise NotImplementedError

    def step_back(self, tr: Trace, bw: BackTrace, t: int, W_hh: Array) -> None:
        """From ``bw.dh`` (and ``bw.dc_next``) write ``bw.dxw[t]`` (and ``bw.dhw[t]``) and
        the gradients of the state before step ``t`` into ``bw.dh_next`` (and
        ``bw.dc_next``)."""
        raise NotImplementedError

    def hidden_weight_grad(self, tr: Trace, bw: BackTrace, acc: Accumulate,
                           g_hh: Array) -> None:
        """``dW_hh += sum_t dhw_t^T h_{t-1}``, one product over all steps."""
        T, N, H = tr.T, tr.N, tr.H
        acc(g_hh, bw.dhw.reshape(T * N, -1).T, tr.previous.reshape(T * N, H))  # eq: cell.dW_hh
