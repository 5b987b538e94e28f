"""Sequence layers ``RNN``, ``LSTM``, ``GRU``: PyTorch's arguments and parameter layout,
batch-first arrays, explicit backward, stateful truncated BPTT, padded batches.

Shapes (``L`` layers, ``K`` = 2 if bidirectional else 1)::

    xs      (N, T, D)           forward input
    state   (L*K, N, H)         h0, or (h0, c0) for LSTM; zeros when None
    hs      (N, T, K*H)         forward output
    h_n     (L*K, N, H)         final state (attribute after forward; c_n for LSTM)
    dhs     (N, T, K*H)         backward input
    dstate  like state          gradient of the final state (optional)
    dxs     (N, T, D)           backward output; dh0 (and dc0) become attributes

Parameters ``weight_ih_l{k}{_reverse}`` ``(G*H, D_k)``, ``weight_hh_l{k}{_reverse}``
``(G*H, H)``, ``bias_ih_l{k}{_reverse}``, ``bias_hh_l{k}{_reverse}`` ``(G*H,)`` with
``G`` = 1 (RNN), 4 (LSTM, gates i, f, g, o) or 3 (GRU, gates r, z, n), initialised
uniformly in ``[-1/sqrt(H), 1/sqrt(H)]`` as in PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rnnlab.backend import make_rng, random_uniform
from rnnlab.nn.cells import make_cell
from rnnlab.nn.checks import (
    check_float_array,
    check_lengths,
    check_positive_int,
    check_probability,
    check_shape,
    check_token_ids,
)
from rnnlab.nn.init import uniform_init
from rnnlab.nn.module import Module, require_cache
from rnnlab.nn.scan import (
    TokenInput,
    Weights,
    final_state,
    new_back_trace,
    new_trace,
    scan_backward,
    scan_forward,
)


def option_reprs(module: Any, **defaults: Any) -> list[str]:
    """``name=value`` for each attribute of ``module`` named in ``defaults`` whose value
    differs from the default given there (for ``extra_repr``)."""
    return [f"{name}={getattr(module, name)!r}" for name, default in defaults.items()
            if getattr(module, name) != default]


class Recurrent(Module):
    """Shared implementation of :class:`RNN`, :class:`LSTM` and :class:`GRU`."""

    kind = "rnn"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, dropout: float = 0.0, bidirectional: bool = False,
                 stateful: bool = False, *, nonlinearity: str = "tanh",
                 reset_after: bool = True, rng: Any = None, device: str | None = None,
                 dtype: Any = None, check_finite: bool = False) -> None:
        super().__init__(device=device, dtype=dtype, check_finite=check_finite)
        name = type(self).__name__
        self.input_size = check_positive_int(input_size, name, "input_size")
        self.hidden_size = check_positive_int(hidden_size, name, "hidden_size")
        self.num_layers = check_positive_int(num_layers, name, "num_layers")
        self.dropout = check_probability(dropout, name, "dropout")
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"{name}: nonlinearity expected 'tanh' or 'relu', "
                             f"got {nonlinearity!r}")
        if self.kind != "rnn" and nonlinearity != "tanh":
            raise TypeError(f"{name}: nonlinearity expected only for RNN (the {name}'s "
                            f"activations are fixed), got {nonlinearity!r}")
        if self.kind != "gru" and not reset_after:
            raise TypeError(f"{name}: reset_after expected only for GRU, got {reset_after!r}")
        self.nonlinearity = nonlinearity
        self.reset_after = bool(reset_after)
        self.bias = bool(bias)
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if self.bidirectional else 1
        self.stateful = bool(stateful)
        self.rng = make_rng(rng)
        self.cell = make_cell(self.kind, nonlinearity=nonlinearity, reset_after=reset_after)
        H, G = self.hidden_size, self.cell.n_gates
        bound = 1.0 / np.sqrt(H)
        for layer in range(self.num_layers):
            in_size = self.input_size if layer == 0 else H * self.num_directions
            for direction in range(self.num_directions):
                sfx = self.suffix(layer, direction)
                self.add_param(f"weight_ih{sfx}",
                               uniform_init(self.rng, (G * H, in_size), bound, self.dtype, self.xp))
                self.add_param(f"weight_hh{sfx}",
                               uniform_init(self.rng, (G * H, H), bound, self.dtype, self.xp))
                if self.bias:
                    self.add_param(f"bias_ih{sfx}",
                                   uniform_init(self.rng, (G * H,), bound, self.dtype, self.xp))
                    self.add_param(f"bias_hh{sfx}",
                                   uniform_init(self.rng, (G * H,), bound, self.dtype, self.xp))
        self._state: tuple[Any, Any] | None = None
        self._traces: dict[tuple[int, int], Any] = {}
        self._back_traces: dict[tuple[int, int], Any] = {}
        self._cache: dict[str, Any] | None = None
        self.h_n: Any = None
        self.c_n: Any = None
        self.dh0: Any = None
        self.dc0: Any = None

    # ---------------------------------------------------------------- structure
    @staticmethod
    def suffix(layer: int, direction: int) -> str:
        """PyTorch's parameter suffix: ``_l0``, ``_l1_reverse``..."""
        return f"_l{layer}" + ("_reverse" if direction else "")

    def weights(self, layer: int, direction: int, source: dict[str, Any]) -> Weights:
        sfx = self.suffix(layer, direction)
        return Weights(source[f"weight_ih{sfx}"], source[f"weight_hh{sfx}"],
                       source.get(f"bias_ih{sfx}"), source.get(f"bias_hh{sfx}"))

    def extra_repr(self) -> str:
        """The sizes, then every option that differs from its default."""
        return ", ".join([f"{self.input_size}, {self.hidden_size}",
                          *option_reprs(self, num_layers=1, nonlinearity="tanh", bias=True,
                                        dropout=0.0, bidirectional=False, stateful=False,
                                        reset_after=True, check_finite=False)])

    @property
    def has_cell(self) -> bool:
        return self.cell.has_cell

    def _on_device_change(self) -> None:
        self._traces, self._back_traces, self._cache, self._state = {}, {}, None, None

    # -------------------------------------------------------------------- state
    def reset_state(self) -> None:
        """Forget the carried state: the next forward of a stateful layer starts from zeros."""
        self._state = None

    def set_state(self, state: Any) -> None:
        """Set the state the next forward starts from (``h``, or ``(h, c)`` for LSTM)."""
        h, c = self._split_state(state, "set_state", "state")
        shape = getattr(h, "shape", ())
        if len(shape) != 3:
            raise ValueError(f"{self.name}.set_state: state expected shape "
                             f"({self.num_layers * self.num_directions}, N, "
                             f"{self.hidden_size}), got {tuple(shape)}")
        self._check_state_arrays(h, c, shape[1], "set_state", "state")
        self._state = (h.copy(), None if c is None else c.copy())

    def get_state(self) -> tuple[Any, Any] | None:
        """Copies of the carried state ``(h, c)`` of a stateful layer (``c`` is None
        without a cell), or None when there is none."""
        if self._state is None:
            return None
        h, c = self._state
        return h.copy(), (None if c is None else c.copy())

    def _split_state(self, state: Any, method: str, arg: str) -> tuple[Any, Any]:
        where = f"{self.name}.{method}: {arg}"
        if self.has_cell:
            if not isinstance(state, tuple | list) or len(state) != 2:
                raise TypeError(f"{where} expected a tuple (h, c), got {type(state).__name__}")
            return state[0], state[1]
        if isinstance(state, tuple | list):
            raise TypeError(f"{where} expected an array h, got a {type(state).__name__}")
        return state, None

    def _state_shape(self, N: int) -> tuple[int, int, int]:
        return (self.num_layers * self.num_directions, N, self.hidden_size)

    def _check_state_arrays(self, h: Any, c: Any, N: int, method: str, arg: str) -> None:
        shape = self._state_shape(N)
        owner = f"{self.name}.{method}"
        names = ("[0] (h)", "[1] (c)") if self.has_cell else ("", "")
        check_shape(h, owner, arg + names[0], shape, xp=self.xp, dtype=self.dtype,
                    check_finite=self.check_finite)
        if c is not None:
            check_shape(c, owner, arg + names[1], shape, xp=self.xp, dtype=self.dtype,
                        check_finite=self.check_finite)

    def _initial_state(self, state: Any, N: int) -> tuple[Any, Any]:
        xp, shape = self.xp, self._state_shape(N)
        if state is None and self.stateful and self._state is not None:
            h, c = self._state
            if h.shape[1] != N:
                raise ValueError(
                    f"{self.name}.forward: the stateful layer carries a state for batch size "
                    f"{h.shape[1]}, got batch size {N}; call reset_state() first"
                )
            return h, c
        if state is None:
            zeros_c = xp.zeros(shape, dtype=self.dtype) if self.has_cell else None
            return xp.zeros(shape, dtype=self.dtype), zeros_c
        h, c = self._split_state(state, "forward", "state")
        self._check_state_arrays(h, c, N, "forward", "state")
        return h, c

    # ------------------------------------------------------------------ forward
    def forward(self, xs: Any, state: Any = None, lengths: Any = None) -> Any:
        """Run all layers and directions over ``xs`` ``(N, T, D)``; return ``hs``."""
        xp = self.xp
        check_float_array(xs, f"{self.name}.forward", "xs", xp=xp, dtype=self.dtype,
                          ndims=(3,), last=self.input_size, check_finite=self.check_finite)
        N, T, _ = xs.shape
        if N < 1 or T < 1:
            raise ValueError(f"{self.name}.forward: xs expected N >= 1 and T >= 1, "
                             f"got shape {tuple(xs.shape)}")
        return self._run(xp.ascontiguousarray(xs.transpose(1, 0, 2)), N, T, state, lengths)

    def forward_tokens(self, ids: Any, weight: Any, grad: Any = None, state: Any = None) -> Any:
        """``forward(weight[ids], state)`` for token ids ``(N, T)`` into an embedding matrix
        ``weight`` ``(V, input_size)``, without building ``weight[ids]``.

        The first layer's input projection is looked up in a ``(V, G*H)`` table (see
        :class:`rnnlab.nn.scan.TokenInput`), which pays when ``V`` is smaller than
        ``N * T``. The following :meth:`backward` adds the gradient of ``weight`` into
        ``grad`` (when given) and returns ``None``.
        """
        xp, owner = self.xp, f"{self.name}.forward_tokens"
        check_float_array(weight, owner, "weight", xp=xp, dtype=self.dtype, ndims=(2,),
                          last=self.input_size)
        if grad is not None:
            check_shape(grad, owner, "grad", tuple(weight.shape), xp=xp, dtype=self.dtype)
        check_token_ids(ids, owner, "ids", num=weight.shape[0], xp=xp, ndims=(2,))
        N, T = ids.shape
        if N < 1 or T < 1:
            raise ValueError(f"{owner}: ids expected N >= 1 and T >= 1, got shape "
                             f"{tuple(ids.shape)}")
        tokens = TokenInput(xp.ascontiguousarray(ids.T).reshape(-1), weight, grad)
        return self._run(tokens, N, T, state, None)

    def _run(self, X: Any, N: int, T: int, state: Any, lengths: Any) -> Any:
        """All layers over the time-major input ``X`` ``(T, N, D)`` (or a TokenInput)."""
        xp = self.xp
        h0, c0 = self._initial_state(state, N)
        mask = keep = None
        if lengths is not None:
            host = check_lengths(lengths, f"{self.name}.forward", batch=N, steps=T)
            valid = np.arange(T)[:, None] < host[None, :]  # (T, N)
            keep = xp.asarray(~valid[:, :, None])
            mask = xp.asarray(valid[:, :, None].astype(self.dtype))
        H, K = self.hidden_size, self.num_directions
        tokens = isinstance(X, TokenInput)
        h_last, c_last, drop_masks = [], [], []
        for layer in range(self.num_layers):
            outs = []
            for direction in range(K):
                idx = layer * K + direction
                key = (layer, direction)
                D = self.input_size if layer == 0 else H * K
                tr = new_trace(self.cell, xp, T, N, D, H, self.dtype, self._traces.get(key))
                self._traces[key] = tr
                scan_forward(self.cell, tr, X, self.weights(layer, direction, self.params),
                             h0[idx], None if c0 is None else c0[idx],
                             reverse=bool(direction), mask=mask, keep=keep)
                hn, cn = final_state(tr)
                h_last.append(hn)
                c_last.append(cn)
                outs.append(tr.outputs)
            out = outs[0] if K == 1 else xp.concatenate(outs, axis=2)
            if mask is not None:
                out = out * mask
            drop = None
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                keep_prob = 1.0 - self.dropout
                drop = random_uniform(self.rng, out.shape, self.dtype, xp) < keep_prob
                drop = drop.astype(self.dtype) / self.dtype.type(keep_prob)
                out = out * drop
            drop_masks.append(drop)
            X = xp.ascontiguousarray(out)
        self.h_n = xp.stack(h_last)
        self.c_n = xp.stack(c_last) if self.has_cell else None
        if self.stateful:
            self._state = (self.h_n.copy(), None if self.c_n is None else self.c_n.copy())
        self._cache = {"N": N, "T": T, "drop": drop_masks, "mask": mask, "tokens": tokens}
        return X.transpose(1, 0, 2).copy()

    # ----------------------------------------------------------------- backward
    def backward(self, dhs: Any, dstate: Any = None, *,
                 defer: Callable[[Callable[[], None]], None] | None = None) -> Any:
        """Backward of the last forward; return ``dxs`` and set ``dh0`` (and ``dc0``).

        ``dhs`` may be ``None`` when only the final state receives a gradient. After
        :meth:`forward_tokens` the input gradient goes into its ``grad`` and ``None`` is
        returned. With ``defer``, the products that only add into the parameter
        gradients are handed to it instead of being run (see
        :func:`rnnlab.nn.scan.scan_backward`); they must all have run before the
        gradients are read or the layer runs forward again.
        """
        cache = require_cache(self, self._cache)
        xp, N, T, H, K = self.xp, cache["N"], cache["T"], self.hidden_size, self.num_directions
        owner = f"{self.name}.backward"
        if dhs is not None:
            check_shape(dhs, owner, "dhs", (N, T, K * H), xp=xp, dtype=self.dtype,
                        check_finite=self.check_finite)
        dh_n = dc_n = None
        if dstate is not None:
            dh_n, dc_n = self._split_state(dstate, "backward", "dstate")
            self._check_state_arrays(dh_n, dc_n, N, "backward", "dstate")
        dY = None if dhs is None else dhs.transpose(1, 0, 2)  # (T, N, K*H) view
        dh0 = [None] * (self.num_layers * K)
        dc0 = [None] * (self.num_layers * K)
        for layer in range(self.num_layers - 1, -1, -1):
            D = self.input_size if layer == 0 else H * K
            into_tokens = layer == 0 and cache["tokens"]
            dX = None if into_tokens else self.scratch(("dX", layer), (T * N, D))
            for direction in range(K):
                idx = layer * K + direction
                key = (layer, direction)
                tr = self._traces[key]
                bw = new_back_trace(self.cell, tr, self._back_traces.get(key))
                self._back_traces[key] = bw
                dH = None if dY is None else dY[:, :, direction * H : (direction + 1) * H]
                dh0[idx], dc0[idx] = scan_backward(
                    self.cell, tr, bw, self.weights(layer, direction, self.params),
                    self.weights(layer, direction, self.grads), self.matmul_into_grad,
                    dH=dH, dh_n=None if dh_n is None else dh_n[idx],
                    dc_n=None if dc_n is None else dc_n[idx],
                    dX=dX, dX_accumulate=direction > 0, defer=defer,
                )
            if into_tokens:
                dY = None
                break
            dY = dX.reshape(T, N, D)
            if layer > 0 and cache["drop"][layer - 1] is not None:
                dY = dY * cache["drop"][layer - 1]
        self.dh0 = xp.stack(dh0)
        self.dc0 = xp.stack(dc0) if self.has_cell else None
        return None if dY is None else dY.transpose(1, 0, 2).copy()

    def step_gradients(self, layer: int = 0, direction: int = 0) -> Any:
        """The gradient of every step's pre-activations in the last :meth:`backward`.

        ``dL/d(xw_t)`` with ``xw_t = x_t W_ih^T + b_ih (+ b_hh)``, batch-first, a copy of
        shape ``(N, T, G*H)`` for ``layer`` and ``direction`` (0 forward, 1 reverse):
        for the tanh RNN ``da_t = dh_t * (1 - h_t^2)``, where ``dh_t`` is the upstream
        gradient plus what step ``t + 1`` sent back. The weight gradients are products
        of these rows (``dW_ih = sum_t da_t^T x_t``, ``dW_hh = sum_t da_t^T h_{t-1}``).
        Raises ``RuntimeError`` before any backward.
        """
        owner = f"{self.name}.step_gradients"
        if not -self.num_layers <= layer < self.num_layers:
            raise ValueError(f"{owner}: layer expected in [{-self.num_layers}, "
                             f"{self.num_layers - 1}], got {layer!r}")
        if direction not in range(self.num_directions):
            raise ValueError(f"{owner}: direction expected in "
                             f"{list(range(self.num_directions))}, got {direction!r}")
        bw = self._back_traces.get((layer % self.num_layers, direction))
        if bw is None:
            raise RuntimeError(f"{owner}: no backward has run yet")
        return bw.dxw.transpose(1, 0, 2).copy()


class RNN(Recurrent):
    """Elman RNN, ``h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``, act tanh or relu."""

    kind = "rnn"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, dropout: float = 0.0,
                 bidirectional: bool = False, stateful: bool = False, **kwargs: Any) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, dropout, bidirectional,
                         stateful, nonlinearity=nonlinearity, **kwargs)


class LSTM(Recurrent):
    """LSTM (gates i, f, g, o); ``state`` is ``(h0, c0)``, final states ``h_n``, ``c_n``."""

    kind = "lstm"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, dropout: float = 0.0, bidirectional: bool = False,
                 stateful: bool = False, **kwargs: Any) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, dropout, bidirectional,
                         stateful, **kwargs)


class GRU(Recurrent):
    """GRU (gates r, z, n); ``reset_after=True`` is PyTorch's form, ``False`` the textbook's."""

    kind = "gru"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, dropout: float = 0.0, bidirectional: bool = False,
                 stateful: bool = False, reset_after: bool = True, **kwargs: Any) -> None:
        super().__init__(input_size, hidden_size, num_layers, bias, dropout, bidirectional,
                         stateful, reset_after=reset_after, **kwargs)
