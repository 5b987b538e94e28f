r"""``MinGRU`` and ``MinLSTM``: recurrent layers whose gates read the input only, so that
the recurrence is linear in the state and can run as a scan (Feng et al. 2024, "Were
RNNs All We Needed?"; the log-space scan of Heinsen 2023). Batch-first arrays, PyTorch
conventions as :class:`~rnnlab.nn.RNN`, explicit backward, stateful truncated BPTT,
padded batches.

Forward, per layer and direction, with ``g(x) = x + 1/2`` for ``x >= 0`` and
``sigmoid(x)`` for ``x < 0`` (positive, so the scan can run in log space)::

    P_t  = W x_t + b                                   one product for all steps
    minGRU:   z_t = sigmoid(k_t)   h~_t = g(u_t)       P_t = [k_t; u_t]
              a_t = 1 - z_t        b_t = z_t h~_t
    minLSTM:  f_t = sigmoid(kf_t)  i_t = sigmoid(ki_t) h~_t = g(u_t)   P_t = [kf; ki; u]
              f'_t = f_t / (f_t + i_t)   i'_t = i_t / (f_t + i_t)
              a_t = f'_t           b_t = i'_t h~_t
    h_t  = a_t h_{t-1} + b_t                          h_{-1} = h0

``mode="sequential"`` runs the last line as a loop over t. ``mode="parallel"`` (default)
runs it in log space: ``log h_t = a*_t + logcumsumexp(log b - a*)_t`` with
``a*_t = cumsum(log a)_t``, using ``log sigmoid(x) = -softplus(-x)``,
``log g(x) = log(x + 1/2)`` (``x >= 0``) or ``-softplus(-x)``, ``log f' = log_sigmoid(log f
- log i)`` and ``log i' = log_sigmoid(log i - log f)`` (no ``log 0`` is ever taken). It
runs in blocks of :data:`~rnnlab.nn.minrnn_math.SCAN_BLOCK` steps, and the term of the
initial state, ``exp(a*_t) h0``, is added in linear space: any real initial state works
(``log h0`` is never taken), and ``h_t`` stays positive when ``h0 >= 0``.

Backward, from ``dy_t`` (gradient of output ``t``) and ``dh_n`` (of the final state)::

    dh_t  = dy_t + a_{t+1} dh_{t+1}        from dh_{T-1} = dy_{T-1} + dh_n (a reverse scan;
                                           "parallel": the same log-space scan, the
                                           positive and negative parts of dy apart)
    dh0   = a_0 dh_0
    da_t  = dh_t h_{t-1}                   db_t = dh_t
    minGRU:   dz = db h~ - da              dh~ = db z
              dk = dz z (1 - z)            du  = dh~ g'(u)
    minLSTM:  df' = da                     di' = db h~           dh~ = db i'
              df = (df' - di') i' / (f + i)        di = (di' - df') f' / (f + i)
              dkf = df f (1 - f) = (df' - di') f' i' (1 - f)
              dki = di i (1 - i) = (di' - df') f' i' (1 - i)   du = dh~ g'(u)
    g'(x) = 1 for x >= 0, sigmoid(x) (1 - sigmoid(x)) for x < 0
    dW += dP^T X      db += sum_t dP_t      dX = dP W      (one product each, all steps)

Shapes (``L`` layers, ``K`` = 2 if bidirectional else 1, ``G`` = 2 minGRU, 3 minLSTM)::

    xs      (N, T, D)           forward input
    state   (L*K, N, H)         h0; zeros when None
    hs      (N, T, K*H)         forward output (zero at padded steps)
    h_n     (L*K, N, H)         final state (attribute after forward)
    dhs     (N, T, K*H)         backward input (may be None)
    dstate  (L*K, N, H)         gradient of h_n (optional)
    dxs     (N, T, D)           backward output; dh0 (L*K, N, H) becomes an attribute

Parameters ``weight_ih_l{k}{_reverse}`` ``(G*H, D_k)`` with rows ``[z; h~]`` (minGRU) or
``[f; i; h~]`` (minLSTM), ``bias_ih_l{k}{_reverse}`` ``(G*H,)``; there are no recurrent
weights. ``D_0 = input_size``, ``D_k = K*H`` above. Initialised uniformly in
``[-1/sqrt(H), 1/sqrt(H)]``. With ``lengths``, steps at and past each sequence's end
have ``a = 1, b = 0`` (the state is carried unchanged, in both directions, as
PyTorch's packed sequences and :class:`~rnnlab.nn.GRU` with lengths).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from rnnlab.backend import Array, RNGLike, make_rng, random_uniform
from rnnlab.fast import engine_for
from rnnlab.nn.checks import (
    check_float_array,
    check_lengths,
    check_positive_int,
    check_probability,
    check_shape,
)
from rnnlab.nn.init import uniform_init
from rnnlab.nn.minrnn_math import (
    CELLS,
    LOG_ZERO,
    grad_scan_log,
    grad_scan_sequential,
    scan_log,
    scan_sequential,
)
from rnnlab.nn.module import Module, require_cache
from rnnlab.nn.stack import CELL_KINDS, CellKind, refuse_defer, refuse_tokens

MODES = ("parallel", "sequential")


class MinRecurrent(Module):
    """Shared implementation of :class:`MinGRU` and :class:`MinLSTM` (a
    :class:`~rnnlab.nn.stack.RecurrentStack`)."""

    cell = "mingru"
    has_cell = False  # one state array, as RNN and GRU
    #: No token table (the gates read the input only) and no deferred weight gradients.
    token_input = False
    defers_grads = False

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, dropout: float = 0.0, bidirectional: bool = False,
                 stateful: bool = False, *, mode: str = "parallel", rng: RNGLike = None,
                 device: str | None = None, dtype: DTypeLike | None = None,
                 check_finite: bool = False) -> None:
        super().__init__(device=device, dtype=dtype, check_finite=check_finite)
        name = self.name
        self.input_size = check_positive_int(input_size, name, "input_size")
        self.hidden_size = check_positive_int(hidden_size, name, "hidden_size")
        self.num_layers = check_positive_int(num_layers, name, "num_layers")
        self.dropout = check_probability(dropout, name, "dropout")
        if mode not in MODES:
            raise ValueError(f"{name}: mode expected 'parallel' or 'sequential', got {mode!r}")
        self.mode = mode
        self.bias, self.bidirectional = bool(bias), bool(bidirectional)
        self.num_directions = 2 if self.bidirectional else 1
        self.stateful = bool(stateful)
        self.rng = make_rng(rng)
        self.n_gates, self._gates, self._gate_grads = CELLS[self.cell]
        H, G = self.hidden_size, self.n_gates
        bound = 1.0 / np.sqrt(H)
        for layer in range(self.num_layers):
            D = self.input_size if layer == 0 else H * self.num_directions
            for direction in range(self.num_directions):
                sfx = self.suffix(layer, direction)
                self.add_param(f"weight_ih{sfx}",
                               uniform_init(self.rng, (G * H, D), bound, self.dtype, self.xp))
                if self.bias:
                    self.add_param(f"bias_ih{sfx}",
                                   uniform_init(self.rng, (G * H,), bound, self.dtype, self.xp))
        self._state: Any = None
        self._cache: dict[str, Any] | None = None
        self.h_n: Any = None
        self.dh0: Any = None
        self.dh_states: list[Any] | None = None
        self._record: list[Any] | None = None

    @staticmethod
    def suffix(layer: int, direction: int) -> str:
        """PyTorch's parameter suffix: ``_l0``, ``_l1_reverse``..."""
        return f"_l{layer}" + ("_reverse" if direction else "")

    def extra_repr(self) -> str:
        extra = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            extra += f", num_layers={self.num_layers}"
        for flag in ("bidirectional", "stateful"):
            if getattr(self, flag):
                extra += f", {flag}=True"
        if self.dropout:
            extra += f", dropout={self.dropout}"
        return extra + f", mode={self.mode!r}"

    @property
    def cell_kind(self) -> CellKind:
        """The facts of this layer's cell (:data:`~rnnlab.nn.stack.CELL_KINDS`)."""
        return CELL_KINDS[self.cell]

    def _on_device_change(self) -> None:
        self._cache, self._state = None, None

    def stepper(self, batch: int) -> MinStepper:
        """A :class:`MinStepper` over this layer for ``batch`` rows (generation)."""
        return MinStepper(self, batch)

    # -------------------------------------------------------------------- state
    def reset_state(self) -> None:
        """Forget the carried state: the next forward of a stateful layer starts from zeros."""
        self._state = None

    def get_state(self) -> tuple[Any, None] | None:
        """A copy of the carried state ``(L*K, N, H)`` of a stateful layer and ``None``
        (no cell state; the form of :meth:`Recurrent.get_state`), or None when there is
        none."""
        return None if self._state is None else (self._state.copy(), None)

    def set_state(self, state: Any) -> None:
        """Set the state ``(L*K, N, H)`` the next forward starts from."""
        N = state.shape[1] if getattr(state, "ndim", 0) == 3 else 1
        check_shape(state, f"{self.name}.set_state", "state", self._state_shape(N),
                    xp=self.xp, dtype=self.dtype, check_finite=self.check_finite)
        self._state = state.copy()

    def _state_shape(self, N: int) -> tuple[int, int, int]:
        return (self.num_layers * self.num_directions, N, self.hidden_size)

    def _initial_state(self, state: Any, N: int) -> Any:
        if state is None and self.stateful and self._state is not None:
            if self._state.shape[1] != N:
                raise ValueError(
                    f"{self.name}.forward: the stateful layer carries a state for batch size "
                    f"{self._state.shape[1]}, got batch size {N}; call reset_state() first")
            return self._state
        if state is None:
            return self.xp.zeros(self._state_shape(N), dtype=self.dtype)
        check_shape(state, f"{self.name}.forward", "state", self._state_shape(N), xp=self.xp,
                    dtype=self.dtype, check_finite=self.check_finite)
        return state

    # ------------------------------------------------------------------ forward
    def forward(self, xs: Array, state: Any = None, lengths: Any = None) -> Any:
        """Run all layers and directions over ``xs`` ``(N, T, D)``; return ``hs``."""
        xp, owner = self.xp, f"{self.name}.forward"
        check_float_array(xs, owner, "xs", xp=xp, dtype=self.dtype, ndims=(3,),
                          last=self.input_size, check_finite=self.check_finite)
        N, T, _ = xs.shape
        if N < 1 or T < 1:
            raise ValueError(f"{owner}: xs expected N >= 1 and T >= 1, got shape "
                             f"{tuple(xs.shape)}")
        h0 = self._initial_state(state, N)
        valid = None
        if lengths is not None:
            host = check_lengths(lengths, owner, batch=N, steps=T)
            valid = xp.asarray(np.arange(T)[:, None, None] < host[None, :, None])  # (T, N, 1)
        X = xp.ascontiguousarray(xs.transpose(1, 0, 2))  # (T, N, D)
        K = self.num_directions
        layers, h_n = [], []
        for layer in range(self.num_layers):
            runs = [self._run(X, layer, d, h0[layer * K + d], valid) for d in range(K)]
            h_n += [run["h"][-1] for run in runs]
            out = runs[0]["out"] if K == 1 else \
                xp.concatenate([run["out"] for run in runs], axis=2)  # (T, N, K*H)
            drop = None
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                keep = 1.0 - self.dropout
                drop = random_uniform(self.rng, out.shape, self.dtype, xp) < keep
                drop = drop.astype(self.dtype) / self.dtype.type(keep)
                out = out * drop
            layers.append({"X": X, "runs": runs, "drop": drop})
            X = out
        self.h_n = xp.stack(h_n)
        if self.stateful:
            self._state = self.h_n.copy()
        self._cache = {"N": N, "T": T, "valid": valid, "layers": layers}
        return X.transpose(1, 0, 2).copy()

    def forward_tokens(self, ids: Array, weight: Array, grad: Array | None = None,
                       state: Any = None) -> Any:
        """Not supported (:attr:`token_input` is False): a TypeError."""
        raise refuse_tokens(f"{self.name}.forward_tokens")

    def _run(self, X: Array, layer: int, direction: int, h0: Array, valid: Array) -> dict[str, Any]:
        """One direction of one layer over ``X`` ``(T, N, D)``: its output ``(T, N, H)``
        (zero at padded steps) and what the backward needs, in processing order."""
        xp, (T, N, D) = self.xp, X.shape
        sfx = self.suffix(layer, direction)
        P = xp.matmul(X.reshape(T * N, D), self.params[f"weight_ih{sfx}"].T)
        if self.bias:
            P += self.params[f"bias_ih{sfx}"]
        P = P.reshape(T, N, -1)
        engine = engine_for(xp, self.dtype)
        h = engine.min_forward(self.cell, P, h0, valid, bool(direction))
        if h is not None:  # the engine ran gates and recurrence in one pass
            if direction and valid is not None:
                valid = valid[::-1]
            out = h[1:] if valid is None else h[1:] * valid
            return {"out": out[::-1] if direction else out, "h": h, "engine": engine, "P": P}
        if direction:  # the backward direction runs in reversed time
            P = P[::-1]
            valid = None if valid is None else valid[::-1]
        parallel = self.mode == "parallel"
        a, b, saved = self._gates(xp, P, parallel)
        if valid is not None:  # past a sequence's end: a = 1, b = 0, the state is carried
            a = xp.where(valid, a, 1)
            if parallel:
                saved["la"] = xp.where(valid, saved["la"], 0)
                saved["lb"] = xp.where(valid, saved["lb"], LOG_ZERO)
            else:
                b = xp.where(valid, b, 0)
        if parallel:
            h = scan_log(xp, saved["la"], saved.pop("lb"), h0)
        else:
            h = scan_sequential(xp, a, b, h0)
        out = h[1:] if valid is None else h[1:] * valid
        return {"out": out[::-1] if direction else out, "h": h, "a": a, "saved": saved,
                "valid": valid, "parallel": parallel}

    # ----------------------------------------------------------------- backward
    def backward(self, dhs: Array, dstate: Any = None, *, record: bool = False,
                 defer: Any = None) -> Any:
        """Backward of the last forward; return ``dxs`` ``(N, T, D)`` and set ``dh0``.

        ``dhs`` may be ``None`` when only the final state receives a gradient. With
        ``record`` the gradient of every state ``h_t`` (through the outputs and the
        recurrence, the ``dh_t`` of the reverse scan) is kept in :attr:`dh_states`, one
        ``(N, T, H)`` array per layer and direction (index ``layer * K + direction``,
        time in the input's order): the gradient flow through time. ``defer`` must be
        None (:attr:`defers_grads` is False)."""
        refuse_defer(f"{self.name}.backward", defer)
        cache = require_cache(self, self._cache)
        xp, N, T, H, K = self.xp, cache["N"], cache["T"], self.hidden_size, self.num_directions
        owner = f"{self.name}.backward"
        if dhs is not None:
            check_shape(dhs, owner, "dhs", (N, T, K * H), xp=xp, dtype=self.dtype,
                        check_finite=self.check_finite)
        if dstate is not None:
            check_shape(dstate, owner, "dstate", self._state_shape(N), xp=xp,
                        dtype=self.dtype, check_finite=self.check_finite)
        dY = None if dhs is None else dhs.transpose(1, 0, 2)  # (T, N, K*H) view
        dh0 = [None] * (self.num_layers * K)
        self._record = [None] * (self.num_layers * K) if record else None
        for layer in range(self.num_layers - 1, -1, -1):
            X = cache["layers"][layer]["X"]
            dX = xp.zeros(X.shape, dtype=self.dtype)
            for d, run in enumerate(cache["layers"][layer]["runs"]):
                idx = layer * K + d
                dy = None if dY is None else dY[:, :, d * H : (d + 1) * H]
                dh_n = xp.zeros((N, H), self.dtype) if dstate is None else dstate[idx]
                dh0[idx] = self._back(run, X, layer, d, dy, dh_n, dX)
            dY = dX
            if layer > 0 and cache["layers"][layer - 1]["drop"] is not None:
                dY = dY * cache["layers"][layer - 1]["drop"]
        self.dh0 = xp.stack(dh0)
        self.dh_states = self._record
        self._record = None
        return dX.transpose(1, 0, 2).copy()  # layer 0's: the gradient of xs

    def _back(self, run: dict[str, Any], X: Array, layer: int, direction: int, dy: Array,
              dh_n: Array, dX: Array) -> Any:
        """Backward through one :meth:`_run`: add into the parameter gradients and ``dX``
        ``(T, N, D)``; return ``dh0`` ``(N, H)``."""
        xp, (T, N) = self.xp, X.shape[:2]
        if "engine" in run:
            dP, dh0 = self._back_engine(run, layer, direction, dy, dh_n)
            self._weight_grads(X, layer, direction, dP.reshape(T * N, -1), dX)
            return dh0
        valid, h = run["valid"], run["h"]
        if dy is None:
            dy = xp.zeros(h[1:].shape, dtype=self.dtype)
        elif direction:
            dy = dy[::-1]  # processing order
        if valid is not None:
            dy = dy * valid  # padded outputs were set to zero
        if run["parallel"]:
            dh, dh0 = grad_scan_log(xp, run["saved"]["la"], dy, dh_n)
        else:
            dh, dh0 = grad_scan_sequential(xp, run["a"], dy, dh_n)
        if self._record is not None:
            seen = dh[::-1] if direction else dh
            self._record[layer * self.num_directions + direction] = \
                seen.transpose(1, 0, 2).copy()
        dP = self._gate_grads(xp, run["saved"], dh * h[:-1], dh)  # da = dh h_{t-1}, db = dh
        if valid is not None:
            dP *= valid
        if direction:
            dP = dP[::-1]
        self._weight_grads(X, layer, direction, xp.ascontiguousarray(dP).reshape(T * N, -1), dX)
        return dh0

    def _weight_grads(self, X: Array, layer: int, direction: int, dP: Array, dX: Array) -> None:
        """``dW += dP^T X``, ``db += sum dP``, ``dX += dP W`` for ``dP`` ``(T*N, G*H)``
        in time order."""
        (T, N, D), sfx = X.shape, self.suffix(layer, direction)
        self.matmul_into_grad(self.grads[f"weight_ih{sfx}"], dP.T, X.reshape(T * N, D))
        if self.bias:
            self.matmul_into_grad(self.grads[f"bias_ih{sfx}"], self.ones(T * N), dP)
        dX += self.xp.matmul(dP, self.params[f"weight_ih{sfx}"]).reshape(T, N, D)

    def _back_engine(self, run: dict[str, Any], layer: int, direction: int, dy: Array,
                     dh_n: Array) -> tuple[Any, Any]:
        """:meth:`_back` when the engine ran the forward: ``(dP, dh0)``, ``dP`` in time
        order; records ``dh`` when asked."""
        cache = require_cache(self, self._cache)
        got = run["engine"].min_backward(self.cell, run["P"], run["h"], dy, dh_n,
                                         cache["valid"], bool(direction),
                                         self._record is not None)
        if got is None:
            raise RuntimeError(f"{self.name}.backward: the engine ran the forward and "
                               f"declined the backward")
        if self._record is not None:
            seen = got[2][::-1] if direction else got[2]
            self._record[layer * self.num_directions + direction] = \
                seen.transpose(1, 0, 2).copy()
        return got[0], got[1]


class MinGRU(MinRecurrent):
    """minGRU: ``h_t = (1 - z_t) h_{t-1} + z_t g(W_h x_t + b_h)``,
    ``z_t = sigmoid(W_z x_t + b_z)``; rows of ``weight_ih_l{k}`` ``[z; h~]``."""

    cell = "mingru"


class MinLSTM(MinRecurrent):
    """minLSTM: ``h_t = f'_t h_{t-1} + i'_t g(W_h x_t + b_h)`` with ``f'``, ``i'`` the
    forget and input gates normalised to sum to one; rows ``[f; i; h~]``."""

    cell = "minlstm"


class MinStepper:
    """A unidirectional :class:`MinRecurrent` run one step at a time (generation,
    inference only: no dropout, no backward).

    The same gate maths as the layer::

        stepper = layer.stepper(batch=1)
        h = stepper.step(x)            # x (N, D) -> top layer's new state (N, H)
    """

    #: Layer 0's input projection may come from :meth:`input_table` (``step(rows=ids)``).
    takes_rows = True

    def __init__(self, layer: MinRecurrent, batch: int) -> None:
        if layer.bidirectional:
            raise ValueError(f"MinStepper: {layer.name} is bidirectional; a stepper runs "
                             f"forward only")
        self.layer, self.xp = layer, layer.xp
        self.batch = check_positive_int(batch, "MinStepper", "batch")
        self.table: Any = None
        self.reset()

    def reset(self) -> None:
        """Zero state."""
        self.h = self.xp.zeros(self.layer._state_shape(self.batch), dtype=self.layer.dtype)

    def set_state(self, h: Array, c: Array | None = None) -> None:
        """State ``(L, N, H)``, as the layer's ``h_n`` (``c`` is accepted and ignored, as
        the state of RNN and GRU steppers)."""
        check_shape(h, "MinStepper.set_state", "h", self.layer._state_shape(self.batch),
                    xp=self.xp, dtype=self.layer.dtype)
        self.h = h.copy()

    def get_state(self) -> tuple[Any, None]:
        """A copy of the state ``(L, N, H)``, and ``None`` (no cell state)."""
        return self.h.copy(), None

    def reorder(self, index: Array) -> None:
        """Keep the rows ``index`` (N,) of the state, in that order (beam search)."""
        self.h = self.h[:, index]

    def input_table(self, embedding_weight: Array) -> Any:
        """``embedding_weight (V, D) @ W_ih^T + bias`` of layer 0: ``(V, G*H)``, for
        ``step(rows=ids)``."""
        table = self.xp.matmul(embedding_weight, self.layer.params["weight_ih_l0"].T)
        return table + self.layer.params["bias_ih_l0"] if self.layer.bias else table

    def step(self, x: Array | None = None, rows: Array | None = None) -> Any:
        """One time step from inputs ``x`` (N, D), or rows ``rows`` (N,) of
        :attr:`table`; returns the top layer's new state (N, H)."""
        layer, xp = self.layer, self.xp
        for k in range(layer.num_layers):
            if k == 0 and rows is not None:
                p = self.table[rows]
            else:
                p = xp.matmul(x, layer.params[f"weight_ih_l{k}"].T)
                if layer.bias:
                    p += layer.params[f"bias_ih_l{k}"]
            a, b, _ = layer._gates(xp, p, False)
            self.h[k] = a * self.h[k] + b
            x = self.h[k]
        return self.h[-1].copy()  # the top layer's new state
