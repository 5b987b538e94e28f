"""One-step cells ``RNNCell``, ``LSTMCell``, ``GRUCell`` (PyTorch's names and layouts).

A cell runs the same maths as the sequence layers for a single step::

    RNNCell.forward(x (N, D), h (N, H) | None)                -> h' (N, H)
    LSTMCell.forward(x (N, D), (h, c) | None)                 -> (h', c')
    GRUCell.forward(x (N, D), h | None)                       -> h'

    RNNCell.backward(dh')                  -> (dx, dh)
    LSTMCell.backward(dh', dc' | None)     -> (dx, dh, dc)

Each forward records its step in ``cell.cache``; ``backward`` uses the latest one unless
a ``cache=`` from an earlier call is given, so a hand-written loop over time can keep
the caches and walk them back in reverse order. Each backward leaves its work arrays
in ``cell.back_cache`` (a :class:`~rnnlab.nn.trace.BackTrace`): ``back_cache.dxw[0]``
is the gradient of the step's pre-activations ``dL/d(x W_ih^T + b)`` ``(N, G*H)``, and
for the GRU with the reset after the product ``back_cache.dhw[0]`` that of the hidden
side ``h W_hh^T + b_hh``. Parameters: ``weight_ih`` ``(G*H, D)``,
``weight_hh`` ``(G*H, H)``, ``bias_ih``, ``bias_hh`` ``(G*H,)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlab.backend import make_rng
from rnnlab.nn.cells import make_cell
from rnnlab.nn.checks import check_float_array, check_positive_int, check_shape
from rnnlab.nn.init import uniform_init
from rnnlab.nn.module import Module, require_cache
from rnnlab.nn.scan import (
    Weights,
    final_state,
    new_back_trace,
    new_trace,
    scan_backward,
    scan_forward,
)


class Cell(Module):
    """Shared implementation of the one-step cells."""

    kind = "rnn"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *,
                 nonlinearity: str = "tanh", reset_after: bool = True, rng: Any = None,
                 device: str | None = None, dtype: Any = None,
                 check_finite: bool = False) -> None:
        super().__init__(device=device, dtype=dtype, check_finite=check_finite)
        self.input_size = check_positive_int(input_size, self.name, "input_size")
        self.hidden_size = check_positive_int(hidden_size, self.name, "hidden_size")
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"{self.name}: nonlinearity expected 'tanh' or 'relu', "
                             f"got {nonlinearity!r}")
        if self.kind != "rnn" and nonlinearity != "tanh":
            raise TypeError(f"{self.name}: nonlinearity expected only for RNNCell (the "
                            f"{self.name}'s activations are fixed), got {nonlinearity!r}")
        if self.kind != "gru" and not reset_after:
            raise TypeError(f"{self.name}: reset_after expected only for GRUCell, got "
                            f"{reset_after!r}")
        self.nonlinearity = nonlinearity
        self.reset_after = bool(reset_after)
        self.bias = bool(bias)
        self.cell = make_cell(self.kind, nonlinearity=nonlinearity, reset_after=reset_after)
        rng = make_rng(rng)
        G, H, D = self.cell.n_gates, self.hidden_size, self.input_size
        bound = 1.0 / np.sqrt(H)
        self.add_param("weight_ih", uniform_init(rng, (G * H, D), bound, self.dtype, self.xp))
        self.add_param("weight_hh", uniform_init(rng, (G * H, H), bound, self.dtype, self.xp))
        if self.bias:
            self.add_param("bias_ih", uniform_init(rng, (G * H,), bound, self.dtype, self.xp))
            self.add_param("bias_hh", uniform_init(rng, (G * H,), bound, self.dtype, self.xp))
        self.cache: Any = None
        self.back_cache: Any = None

    def extra_repr(self) -> str:
        """The sizes, then every option that differs from its default."""
        from rnnlab.nn.recurrent import option_reprs

        return ", ".join([f"{self.input_size}, {self.hidden_size}",
                          *option_reprs(self, bias=True, nonlinearity="tanh",
                                        reset_after=True, check_finite=False)])

    def _weights(self, source: dict[str, Any]) -> Weights:
        return Weights(source["weight_ih"], source["weight_hh"], source.get("bias_ih"),
                       source.get("bias_hh"))

    def _step_forward(self, x: Any, h: Any, c: Any) -> tuple[Any, Any]:
        xp, owner = self.xp, f"{self.name}.forward"
        check_float_array(x, owner, "x", xp=xp, dtype=self.dtype, ndims=(2,),
                          last=self.input_size, check_finite=self.check_finite)
        N, H = x.shape[0], self.hidden_size
        names = ("state[0] (h)", "state[1] (c)") if self.cell.has_cell else ("h", "")
        if h is None:
            h = xp.zeros((N, H), dtype=self.dtype)
        else:
            check_shape(h, owner, names[0], (N, H), xp=xp, dtype=self.dtype,
                        check_finite=self.check_finite)
        if self.cell.has_cell:
            if c is None:
                c = xp.zeros((N, H), dtype=self.dtype)
            else:
                check_shape(c, owner, names[1], (N, H), xp=xp, dtype=self.dtype,
                            check_finite=self.check_finite)
        tr = new_trace(self.cell, xp, 1, N, self.input_size, H, self.dtype)
        scan_forward(self.cell, tr, xp.ascontiguousarray(x[None]), self._weights(self.params),
                     h, c)
        self.cache = tr
        h_new, c_new = final_state(tr)
        return h_new.copy(), (None if c_new is None else c_new.copy())

    def _step_backward(self, dh: Any, dc: Any, cache: Any) -> tuple[Any, Any, Any]:
        tr = require_cache(self, self.cache if cache is None else cache)
        owner, N, H = f"{self.name}.backward", tr.N, self.hidden_size
        check_shape(dh, owner, "dh", (N, H), xp=self.xp, dtype=self.dtype)
        if dc is not None:
            check_shape(dc, owner, "dc", (N, H), xp=self.xp, dtype=self.dtype)
        bw = self.back_cache = new_back_trace(self.cell, tr)
        dx = self.xp.empty((N, self.input_size), dtype=self.dtype)
        dh_prev, dc_prev = scan_backward(
            self.cell, tr, bw, self._weights(self.params), self._weights(self.grads),
            self.matmul_into_grad, dh_n=dh, dc_n=dc, dX=dx,
        )
        return dx, dh_prev, dc_prev


class RNNCell(Cell):
    """``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)``, act tanh or relu."""

    kind = "rnn"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", **kwargs: Any) -> None:
        super().__init__(input_size, hidden_size, bias, nonlinearity=nonlinearity, **kwargs)

    def forward(self, x: Any, h: Any = None) -> Any:
        return self._step_forward(x, h, None)[0]

    def backward(self, dh: Any, cache: Any = None) -> tuple[Any, Any]:
        dx, dh_prev, _ = self._step_backward(dh, None, cache)
        return dx, dh_prev


class GRUCell(RNNCell):
    """GRU step (gates r, z, n); ``reset_after=False`` gives the textbook form."""

    kind = "gru"

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 reset_after: bool = True, **kwargs: Any) -> None:
        Cell.__init__(self, input_size, hidden_size, bias, reset_after=reset_after, **kwargs)


class LSTMCell(Cell):
    """LSTM step (gates i, f, g, o); ``state`` is ``(h, c)``."""

    kind = "lstm"

    def forward(self, x: Any, state: Any = None) -> tuple[Any, Any]:
        if state is None:
            h = c = None
        elif isinstance(state, tuple | list) and len(state) == 2:
            h, c = state
        else:
            raise TypeError(f"{self.name}.forward: state expected a tuple (h, c), got "
                            f"{type(state).__name__}")
        return self._step_forward(x, h, c)

    def backward(self, dh: Any, dc: Any = None, cache: Any = None) -> tuple[Any, Any, Any]:
        return self._step_backward(dh, dc, cache)
