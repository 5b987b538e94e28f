r"""``MinBlockStack``: the minGRU / minLSTM language-model block of Feng et al. (2024, "Were
RNNs All We Needed?"): per layer a normalisation, the min recurrent layer and a
position-wise feed-forward network, each with a residual connection (pre-norm), and one
normalisation after the last block. ``RNNLM(cell="mingru", block=True)`` uses it in place
of the plain stack.

Forward of block ``k`` on the residual stream ``x`` ``(N, T, H)``, then the output::

    a  = LayerNorm_1(x)
    r  = MinGRU / MinLSTM(a)                 one layer, stateful; its state is the block's
    x1 = x + Dropout(r)
    u  = FF_1(LayerNorm_2(x1))               Linear H -> F (F = ff_mult * H)
    x' = x1 + Dropout(FF_2(gelu(u)))         Linear F -> H
    out = LayerNorm_f(x after the last block)

with ``gelu(u) = u/2 (1 + tanh(c (u + 0.044715 u^3)))``, ``c = sqrt(2/pi)`` (the tanh
form). Backward, from ``dx'`` (each line the chain rule of the line above it)::

    dv  = FF_2.backward(Dropout.backward(dx'))          gradient of gelu(u)
    du  = dv gelu'(u)
          gelu'(u) = (1 + t)/2 + u/2 (1 - t^2) c (1 + 3 * 0.044715 u^2),
          t = tanh(c (u + 0.044715 u^3))
    dx1 = dx' + LayerNorm_2.backward(FF_1.backward(du))
    dx  = dx1 + LayerNorm_1.backward(MinRNN.backward(Dropout.backward(dx1), dh_n))

Parameter names, under the model's ``rnn.``: ``block{k}.norm1.weight``,
``block{k}.rnn.weight_ih_l0``, ``block{k}.ff1.weight``, ``block{k}.ff2.bias``, ...,
``norm.weight``. The carried state is that of each block's min layer, stacked as
``(L, N, H)``, as the plain stack's.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any, cast

from numpy.typing import DTypeLike

from rnnlab.backend import Array, RNGLike, make_rng
from rnnlab.nn import Dropout, Linear, MinGRU, MinLSTM, Module
from rnnlab.nn.checks import check_positive_int, check_probability, check_shape
from rnnlab.nn.layernorm import LayerNorm
from rnnlab.nn.minrnn import MODES
from rnnlab.nn.module import DeviceOptions, LayerOptions, require_cache
from rnnlab.nn.stack import CELL_KINDS, CellKind, refuse_defer, refuse_tokens

MIN_LAYERS = {"mingru": MinGRU, "minlstm": MinLSTM}
_C = math.sqrt(2.0 / math.pi)
_K = 0.044715


def gelu(xp: ModuleType, u: Array) -> tuple[Any, Any]:
    """``(gelu(u), t)`` in the tanh form; ``t`` is kept for :func:`gelu_grad`."""
    t = xp.tanh(_C * (u + _K * u * u * u))
    return 0.5 * u * (1 + t), t


def gelu_grad(u: Array, t: Any) -> Any:
    """``d gelu(u) / du`` from ``u`` and the ``t`` of :func:`gelu`."""
    return 0.5 * (1 + t) + 0.5 * u * (1 - t * t) * _C * (1 + 3 * _K * u * u)


class MinBlock(Module):
    """One pre-norm block: ``x + Dropout(MinRNN(LN(x)))``, then ``x + Dropout(FF(LN(x)))``."""

    def __init__(self, cell: str, hidden_size: int, ff_mult: int = 4, dropout: float = 0.0,
                 *, mode: str = "parallel", stateful: bool = True, rng: RNGLike = None,
                 device: str | None = None, dtype: DTypeLike | None = None) -> None:
        super().__init__(device=device, dtype=dtype)
        if cell not in MIN_LAYERS:
            raise ValueError(f"{self.name}: cell expected one of {sorted(MIN_LAYERS)}, got "
                             f"{cell!r}")
        H = check_positive_int(hidden_size, self.name, "hidden_size")
        F = H * check_positive_int(ff_mult, self.name, "ff_mult")
        rng = make_rng(rng)
        common: DeviceOptions = {"device": device, "dtype": self.dtype}
        self.norm1 = LayerNorm(H, **common)
        self.rnn = MIN_LAYERS[cell](H, H, 1, stateful=stateful, mode=mode, rng=rng, **common)
        self.drop1 = Dropout(dropout, rng=rng, **common)
        self.norm2 = LayerNorm(H, **common)
        self.ff1 = Linear(H, F, rng=rng, **common)
        self.ff2 = Linear(F, H, rng=rng, **common)
        self.drop2 = Dropout(dropout, rng=rng, **common)
        self._cache: tuple[Any, Any] | None = None

    def forward(self, x: Array, state: Any = None) -> Any:
        """``x`` ``(N, T, H)`` (and the min layer's initial state ``(1, N, H)``)."""
        x1 = x + self.drop1(self.rnn(self.norm1(x), state))
        u = self.ff1(self.norm2(x1))
        v, t = gelu(self.xp, u)
        self._cache = (u, t)
        return x1 + self.drop2(self.ff2(v))

    def backward(self, dy: Array, dstate: Any = None, *, record: bool = False) -> Any:
        u, t = require_cache(self, self._cache)
        du = self.ff2.backward(self.drop2.backward(dy)) * gelu_grad(u, t)
        dx1 = dy + self.norm2.backward(self.ff1.backward(du))
        da = self.rnn.backward(self.drop1.backward(dx1), dstate, record=record)
        return dx1 + self.norm1.backward(da)

    def step(self, x: Array, h: Array) -> Any:
        """One time step (inference): ``x`` ``(N, H)``, the min layer's state ``h``
        ``(N, H)`` updated in place; returns the block's output ``(N, H)``."""
        xp, rnn = self.xp, self.rnn
        p = xp.matmul(_norm(xp, self.norm1, x), rnn.params["weight_ih_l0"].T)
        if rnn.bias:
            p += rnn.params["bias_ih_l0"]
        a, b, _ = rnn._gates(xp, p, False)
        h[...] = a * h + b
        x1 = x + h
        u = _affine(xp, self.ff1, _norm(xp, self.norm2, x1))
        return x1 + _affine(xp, self.ff2, gelu(xp, u)[0])


def _norm(xp: ModuleType, ln: LayerNorm, x: Array) -> Any:
    """``ln``'s forward without touching its cache (for steppers)."""
    xc = x - x.mean(axis=-1, keepdims=True)
    xhat = xc / xp.sqrt((xc * xc).mean(axis=-1, keepdims=True) + ln.dtype.type(ln.eps))
    return xhat * ln.params["weight"] + ln.params["bias"]


def _affine(xp: ModuleType, lin: Linear, x: Array) -> Any:
    return xp.matmul(x, lin.params["weight"].T) + lin.params["bias"]


class MinBlockStack(Module):
    """``num_layers`` :class:`MinBlock` s of width ``hidden_size`` and a final
    :class:`~rnnlab.nn.layernorm.LayerNorm`; ``forward(xs (N, T, H)) -> (N, T, H)``,
    ``backward(dhs, dstate=None) -> dxs``, stateful as the recurrent layers of
    :class:`~rnnlab.models.RNNLM` (``reset_state``, ``get_state``, ``set_state``,
    ``h_n``, ``dh0``, ``stepper``): a :class:`~rnnlab.nn.stack.RecurrentStack` without
    token input or deferred weight gradients."""

    has_cell = False
    bidirectional = False
    bias = True
    token_input = False
    defers_grads = False

    def __init__(self, cell: str, hidden_size: int, num_layers: int = 1, dropout: float = 0.0,
                 *, ff_mult: int = 4, mode: str = "parallel", stateful: bool = True,
                 rng: RNGLike = None,
                 device: str | None = None, dtype: DTypeLike | None = None) -> None:
        super().__init__(device=device, dtype=dtype)
        if cell not in MIN_LAYERS:
            raise ValueError(f"{self.name}: cell expected one of {sorted(MIN_LAYERS)}, got "
                             f"{cell!r}")
        if mode not in MODES:
            raise ValueError(f"{self.name}: mode expected 'parallel' or 'sequential', got "
                             f"{mode!r}")
        self.cell, self.mode = cell, mode
        self.hidden_size = self.input_size = check_positive_int(hidden_size, self.name,
                                                                "hidden_size")
        self.num_layers = check_positive_int(num_layers, self.name, "num_layers")
        self.dropout = check_probability(dropout, self.name, "dropout")
        self.ff_mult = check_positive_int(ff_mult, self.name, "ff_mult")
        self.stateful = bool(stateful)
        self.rng = make_rng(rng)
        common: LayerOptions = {"rng": self.rng, "device": device, "dtype": self.dtype}
        for k in range(self.num_layers):
            setattr(self, f"block{k}", MinBlock(cell, self.hidden_size, self.ff_mult, dropout,
                                                mode=mode, stateful=stateful, **common))
        self.norm = LayerNorm(self.hidden_size, device=device, dtype=self.dtype)
        self.n_gates = self.blocks[0].rnn.n_gates
        self.h_n: Any = None
        self.dh0: Any = None
        self.dh_states: list[Any] | None = None

    @property
    def cell_kind(self) -> CellKind:
        """The facts of the blocks' min cell (:data:`~rnnlab.nn.stack.CELL_KINDS`)."""
        return CELL_KINDS[self.cell]

    @property
    def blocks(self) -> list[MinBlock]:
        return [getattr(self, f"block{k}") for k in range(self.num_layers)]

    def extra_repr(self) -> str:
        return (f"{self.cell}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"ff_mult={self.ff_mult}, dropout={self.dropout}")

    def reset_norms(self) -> None:
        """Every LayerNorm back to weight ones, bias zeros (after a model-wide init)."""
        for module in self.modules():
            if isinstance(module, LayerNorm):
                module.reset_parameters()

    # -------------------------------------------------------------------- state
    def _state_shape(self, N: int) -> tuple[int, int, int]:
        return (self.num_layers, N, self.hidden_size)

    def reset_state(self) -> None:
        for block in self.blocks:
            block.rnn.reset_state()

    def get_state(self) -> tuple[Any, None] | None:
        """Copies of the blocks' carried states stacked ``(L, N, H)``, and ``None``; or
        None when there is none."""
        held = [s[0] for s in (block.rnn.get_state() for block in self.blocks) if s is not None]
        if len(held) < self.num_layers:
            return None
        return self.xp.concatenate(held), None

    def set_state(self, state: Any) -> None:
        """Set the state ``(L, N, H)`` the next forward starts from."""
        N = state.shape[1] if getattr(state, "ndim", 0) == 3 else 1
        check_shape(state, f"{self.name}.set_state", "state", self._state_shape(N),
                    xp=self.xp, dtype=self.dtype)
        for k, block in enumerate(self.blocks):
            block.rnn.set_state(state[k : k + 1])

    # ------------------------------------------------------------------ running
    def forward(self, xs: Array, state: Any = None) -> Any:
        if state is not None:
            check_shape(state, f"{self.name}.forward", "state", self._state_shape(xs.shape[0]),
                        xp=self.xp, dtype=self.dtype)
        x = xs
        for k, block in enumerate(self.blocks):
            x = block(x, None if state is None else state[k : k + 1])
        self.h_n = self.xp.concatenate([block.rnn.h_n for block in self.blocks])
        return self.norm(x)

    def forward_tokens(self, ids: Array, weight: Array, grad: Array | None = None,
                       state: Any = None) -> Any:
        """Not supported (:attr:`token_input` is False): a TypeError."""
        raise refuse_tokens(f"{self.name}.forward_tokens")

    def backward(self, dhs: Array, dstate: Any = None, *, record: bool = False,
                 defer: Any = None) -> Any:
        """``dxs`` from ``dhs`` (and ``dstate``, the gradient of :attr:`h_n`); sets
        ``dh0``. With ``record``, :attr:`dh_states` holds each block's
        ``dL/dh_t`` ``(N, T, H)`` of its min layer (see :meth:`MinRecurrent.backward`).
        ``defer`` must be None (:attr:`defers_grads` is False)."""
        refuse_defer(f"{self.name}.backward", defer)
        if dstate is not None:
            check_shape(dstate, f"{self.name}.backward", "dstate",
                        self._state_shape(dstate.shape[1] if dstate.ndim == 3 else 1),
                        xp=self.xp, dtype=self.dtype)
        dx = self.norm.backward(dhs)
        for k in range(self.num_layers - 1, -1, -1):
            ds = None if dstate is None else dstate[k : k + 1]
            dx = self.blocks[k].backward(dx, ds, record=record)
        self.dh0 = self.xp.concatenate([block.rnn.dh0 for block in self.blocks])
        self.dh_states = [cast(list[Any], block.rnn.dh_states)[0]
                          for block in self.blocks] if record else None
        return dx

    def stepper(self, batch: int) -> BlockStepper:
        return BlockStepper(self, batch)


class BlockStepper:
    """A :class:`MinBlockStack` run one step at a time (generation, inference only), with
    its own state ``(L, N, H)``; the interface of :class:`~rnnlab.nn.minrnn.MinStepper`
    (no input table: a block starts with a normalisation)."""

    table = None
    takes_rows = False

    def __init__(self, stack: MinBlockStack, batch: int) -> None:
        self.stack, self.xp = stack, stack.xp
        self.batch = check_positive_int(batch, "BlockStepper", "batch")
        self.reset()

    def reset(self) -> None:
        self.h = self.xp.zeros(self.stack._state_shape(self.batch), dtype=self.stack.dtype)

    def set_state(self, h: Array, c: Array | None = None) -> None:
        check_shape(h, "BlockStepper.set_state", "h", self.stack._state_shape(self.batch),
                    xp=self.xp, dtype=self.stack.dtype)
        self.h = h.copy()

    def get_state(self) -> tuple[Any, None]:
        return self.h.copy(), None

    def reorder(self, index: Array) -> None:
        self.h = self.h[:, index]

    def input_table(self, embedding_weight: Array) -> Any:
        """Not supported (:attr:`takes_rows` is False): a TypeError."""
        raise TypeError("BlockStepper.input_table: an input table expected a stepper whose "
                        "first layer reads its input through a product (see takes_rows); a "
                        "block starts with a normalisation")

    def step(self, x: Array | None = None, rows: Array | None = None) -> Any:
        """One step from inputs ``x`` ``(N, H)``; returns the stack's output ``(N, H)``."""
        if rows is not None:
            raise ValueError("BlockStepper.step: rows expected None (no input table), got "
                             "token rows")
        for k, block in enumerate(self.stack.blocks):
            x = block.step(x, self.h[k])
        return _norm(self.xp, self.stack.norm, x)
