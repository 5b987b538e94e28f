"""``SequenceRegressor``: a recurrent layer and a linear head for real-valued sequences.

::

    xs (N, T, D) -> RNN/LSTM/GRU -> hs (N, T, K*H)
        many-to-many:  Linear(hs)                        -> ys (N, T, out)
        many-to-one:   Linear(final state of last layer) -> y  (N, out)

``K`` is 2 for a bidirectional layer, else 1. Many-to-one reads the last layer's final
hidden state ``h_n`` (both directions side by side, forward first), so with ``lengths``
each sequence is summarised at its own last valid step, and a bidirectional layer's
reverse direction contributes its state after reading the whole sequence backwards.

The loss is the mean squared error over every predicted value; with ``lengths`` in
many-to-many mode, steps past a sequence's length are left out of the mean (their
predictions are not computed from data and get zero gradient).

The backward pass is explicit: :meth:`backward` (from the loss of the last
:meth:`forward_loss`) or :meth:`backward_pred` (from any gradient of the predictions)
adds into every parameter's gradient and returns the gradient of the inputs ``xs``.

The recurrent layer is not stateful: each call starts from ``state`` (zeros when None).
Pass :meth:`final_state` of one call as the ``state`` of the next to run a sequence
piece by piece, e.g. one step at a time for a free-running forecast.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from rnnlab.backend import Array, RNGLike, make_rng, to_numpy
from rnnlab.nn import GRU, LSTM, RNN, Linear, Module
from rnnlab.nn.checks import check_positive_int, check_probability, check_shape
from rnnlab.nn.module import LayerOptions, require_cache

CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


class SequenceRegressor(Module):
    """Recurrent layer + ``Linear`` head, many-to-one or many-to-many, with MSE loss.

    Parameters
    ----------
    input_size, hidden_size : int
        Features per step of ``xs`` and hidden units per direction.
    output_size : int
        Values predicted per sequence (many-to-one) or per step (many-to-many).
    num_layers : int
    cell : {"lstm", "gru", "rnn"}
    many_to_many : bool
        One prediction per step (``(N, T, out)``) instead of one per sequence (``(N, out)``).
    bidirectional : bool
    dropout : float
        Dropout between stacked recurrent layers (as in PyTorch).
    nonlinearity : {"tanh", "relu"}
        For ``cell="rnn"`` only.
    rng : Generator or int, optional
        Drives the initialisation and the dropout masks.
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int = 1,
                 num_layers: int = 1, cell: str = "lstm", many_to_many: bool = False,
                 bidirectional: bool = False, dropout: float = 0.0, *,
                 nonlinearity: str = "tanh", rng: RNGLike = None, device: str | None = None,
                 dtype: DTypeLike | None = None) -> None:
        super().__init__(device=device, dtype=dtype)
        if cell not in CELLS:
            raise ValueError(f"SequenceRegressor: cell expected one of {sorted(CELLS)}, "
                             f"got {cell!r}")
        self.output_size = check_positive_int(output_size, self.name, "output_size")
        check_probability(dropout, self.name, "dropout")
        self.cell = cell
        self.many_to_many = bool(many_to_many)
        self.rng = make_rng(rng)
        common: LayerOptions = {"rng": self.rng, "device": device, "dtype": self.dtype}
        extra = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        self.rnn = CELLS[cell](input_size, hidden_size, num_layers, dropout=dropout,
                               bidirectional=bidirectional, **extra, **common)
        K = self.rnn.num_directions
        self.head = Linear(K * self.rnn.hidden_size, self.output_size, **common)
        self._cache: dict[str, Any] | None = None
        self._loss_cache: tuple[Any, int] | None = None

    def extra_repr(self) -> str:
        mode = "many_to_many" if self.many_to_many else "many_to_one"
        return f"cell={self.cell}, {mode}, output_size={self.output_size}"

    # ------------------------------------------------------------------ forward
    def forward(self, xs: Array, state: Any = None, lengths: Any = None) -> Any:
        """Predictions for ``xs`` ``(N, T, D)``: ``(N, out)`` or, many-to-many, ``(N, T, out)``.

        ``state``: the recurrent layer's initial state (``h0``, or ``(h0, c0)`` for an
        LSTM; zeros when None). ``lengths`` ``(N,)``: valid steps of each sequence.
        """
        hs = self.rnn.forward(xs, state=state, lengths=lengths)
        self._cache = {"lengths": lengths, "T": hs.shape[1]}
        self._loss_cache = None  # a later backward() needs a forward_loss of this forward
        if self.many_to_many:
            return self.head.forward(hs)
        return self.head.forward(self._last_layer_state())

    def _last_layer_state(self) -> Any:
        return last_layer_state(self.rnn)

    def final_state(self) -> Any:
        """The state after the last forward, to pass as ``state`` to the next one."""
        require_cache(self, self._cache, "final_state")
        if self.rnn.has_cell:
            return self.rnn.h_n.copy(), self.rnn.c_n.copy()
        return self.rnn.h_n.copy()

    def _mask(self, N: int) -> Any:
        """``(N, T, 1)`` of 1.0 on valid steps (many-to-many with lengths), else None."""
        cache = require_cache(self, self._cache, "forward_loss")
        if not self.many_to_many or cache["lengths"] is None:
            return None
        return valid_steps(self.xp, self.dtype, N, cache["T"], cache["lengths"])[0]

    def forward_loss(self, xs: Array, targets: Array, state: Any = None,
                     lengths: Any = None) -> float:
        """Mean squared error of the predictions against ``targets`` (their shape)."""
        pred = self.forward(xs, state=state, lengths=lengths)
        check_shape(targets, f"{self.name}.forward_loss", "targets", tuple(pred.shape),
                    xp=self.xp, dtype=self.dtype)
        diff = pred - targets
        mask = self._mask(pred.shape[0])
        if mask is None:
            count = diff.size
        else:
            diff *= mask
            count = int(mask.sum()) * self.output_size
        self._loss_cache = (diff, count)
        return float((diff * diff).sum()) / count if count else 0.0

    # ----------------------------------------------------------------- backward
    def backward(self, dloss: float = 1.0) -> Any:
        """Backward from the last :meth:`forward_loss`; returns ``dxs`` ``(N, T, D)``."""
        if self._loss_cache is None:
            raise RuntimeError(f"{self.name}.backward: called before forward_loss (after a "
                               f"plain forward, pass the predictions' gradient to "
                               f"backward_pred)")
        diff, count = self._loss_cache
        scale = 2.0 * float(dloss) / count if count else 0.0
        return self.backward_pred(diff * diff.dtype.type(scale))

    def backward_pred(self, dpred: Any) -> Any:
        """Backward from ``dpred``, the gradient of the last forward's predictions."""
        require_cache(self, self._cache)
        dfeat = self.head.backward(dpred)
        if self.many_to_many:
            return self.rnn.backward(dfeat)
        return last_layer_state_backward(self.rnn, dfeat)


def last_layer_state(rnn: Any) -> Any:
    """The last layer's final hidden states of ``rnn``'s last forward as ``(N, K*H)``,
    forward direction first: a sequence summarised by where it ended."""
    K = rnn.num_directions
    return rnn.xp.concatenate(list(rnn.h_n[-K:]), axis=1)


def last_layer_state_backward(rnn: Any, dz: Any) -> Any:
    """Backward of :func:`last_layer_state`: ``dz`` ``(N, K*H)`` goes into the last layer's
    final states (none into ``c_n``); returns ``rnn``'s input gradient."""
    K, H = rnn.num_directions, rnn.hidden_size
    dh_n = rnn.xp.zeros(rnn.h_n.shape, dtype=rnn.dtype)
    for k in range(K):
        dh_n[dh_n.shape[0] - K + k] = dz[:, k * H : (k + 1) * H]
    return rnn.backward(None, dstate=(dh_n, None) if rnn.has_cell else dh_n)


def valid_steps(xp: ModuleType, dtype: DTypeLike, N: int, T: int, lengths: Any) -> tuple[Any, Any]:
    """``(mask (N, T, 1), counts (N, 1))`` of the valid steps of each sequence, in
    ``dtype`` on the device of ``xp`` (every step when ``lengths`` is None)."""
    counts = np.full((N, 1), T) if lengths is None else \
        np.asarray(to_numpy(lengths)).reshape(N, 1)
    mask = (np.arange(T)[None, :] < counts)[:, :, None]
    return xp.asarray(mask.astype(dtype)), xp.asarray(counts.astype(dtype))
