"""``SequenceClassifier``: many-to-one classification of sequences.

::

    xs (N, T, D) -> RNN/LSTM/GRU -> hs (N, T, K*H)
        pooling="last":  z = the last layer's final hidden states   (N, K*H)
        pooling="mean":  z = mean of hs over each sequence's valid steps
    logits = Linear(z)                                               (N, C)
    loss   = mean over n of -log softmax(logits_n)[y_n]

``K`` is 2 for a bidirectional layer, else 1. With ``lengths`` ``(N,)`` each sequence is
read up to its own length: "last" takes the final state at its last valid step (the
reverse direction's after reading it backwards), "mean" averages ``hs[n, :lengths[n]]``.

Backward, written as the maths (``p = softmax(logits)``, ``Y`` the one-hot labels)::

    dlogits = (p - Y) / N
    dz      = dlogits W^T,  dW += z^T dlogits,  db += sum_n dlogits
    "last": dz is the gradient of the final states h_n of the last layer
    "mean": dhs[n, t] = dz[n] / L_n for t < L_n, else 0

The recurrent layer is not stateful: every call starts from zeros (or ``state``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from rnnlab.backend import Array, RNGLike, make_rng, to_numpy
from rnnlab.models.regressor import (
    CELLS,
    last_layer_state,
    last_layer_state_backward,
    valid_steps,
)
from rnnlab.nn import Linear, Module, SoftmaxCrossEntropy
from rnnlab.nn.checks import check_positive_int, check_probability
from rnnlab.nn.module import LayerOptions, require_cache

POOLINGS = ("last", "mean")


class SequenceClassifier(Module):
    """Recurrent layer + pooling + ``Linear`` head over ``num_classes``, with softmax
    cross-entropy.

    Parameters
    ----------
    input_size, hidden_size : int
        Features per step of ``xs`` and hidden units per direction.
    num_classes : int
        Classes ``C`` (at least 2).
    num_layers : int
    cell : {"lstm", "gru", "rnn"}
    pooling : {"last", "mean"}
        The summary of a sequence: the final hidden state of the last layer, or the mean
        of its outputs over the valid steps.
    bidirectional : bool
    dropout : float
        Dropout between stacked recurrent layers (as in PyTorch).
    nonlinearity : {"tanh", "relu"}
        For ``cell="rnn"`` only.
    rng : Generator or int, optional
        Drives the initialisation and the dropout masks.
    """

    def __init__(self, input_size: int, hidden_size: int, num_classes: int,
                 num_layers: int = 1, cell: str = "lstm", pooling: str = "last",
                 bidirectional: bool = False, dropout: float = 0.0, *,
                 nonlinearity: str = "tanh", rng: RNGLike = None, device: str | None = None,
                 dtype: DTypeLike | None = None) -> None:
        super().__init__(device=device, dtype=dtype)
        if cell not in CELLS:
            raise ValueError(f"SequenceClassifier: cell expected one of {sorted(CELLS)}, "
                             f"got {cell!r}")
        if pooling not in POOLINGS:
            raise ValueError(f"SequenceClassifier: pooling expected one of {list(POOLINGS)}, "
                             f"got {pooling!r}")
        self.num_classes = check_positive_int(num_classes, self.name, "num_classes")
        if self.num_classes < 2:
            raise ValueError(f"SequenceClassifier: num_classes expected an int >= 2, got "
                             f"{num_classes!r}")
        check_probability(dropout, self.name, "dropout")
        self.cell, self.pooling = cell, pooling
        self.rng = make_rng(rng)
        common: LayerOptions = {"rng": self.rng, "device": device, "dtype": self.dtype}
        extra = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        self.rnn = CELLS[cell](input_size, hidden_size, num_layers, dropout=dropout,
                               bidirectional=bidirectional, **extra, **common)
        K = self.rnn.num_directions
        self.head = Linear(K * self.rnn.hidden_size, self.num_classes, **common)
        self.criterion = SoftmaxCrossEntropy(device=device)
        self._cache: dict[str, Any] | None = None

    def extra_repr(self) -> str:
        return f"cell={self.cell}, pooling={self.pooling}, num_classes={self.num_classes}"

    def config_dict(self) -> dict[str, Any]:
        """The constructor's arguments (saved in checkpoints)."""
        rnn = self.rnn
        return {"input_size": int(rnn.input_size), "hidden_size": int(rnn.hidden_size),
                "num_classes": self.num_classes, "num_layers": int(rnn.num_layers),
                "cell": self.cell, "pooling": self.pooling,
                "bidirectional": rnn.num_directions == 2, "dropout": float(rnn.dropout),
                "nonlinearity": getattr(rnn, "nonlinearity", "tanh"),
                "dtype": np.dtype(self.dtype).name}

    # ------------------------------------------------------------------ forward
    def forward(self, xs: Array, lengths: Any = None, state: Any = None) -> Any:
        """Logits ``(N, C)`` of ``xs`` ``(N, T, D)``; ``lengths`` ``(N,)`` valid steps."""
        hs = self.rnn.forward(xs, state=state, lengths=lengths)  # (N, T, K*H)
        N, T, _ = hs.shape
        if self.pooling == "last":
            z = last_layer_state(self.rnn)  # (N, K*H)
            self._cache = {"T": T}
        else:
            mask, counts = valid_steps(self.xp, self.dtype, N, T, lengths)
            z = (hs * mask).sum(axis=1) / counts  # (N, K*H)
            self._cache = {"T": T, "mask": mask, "counts": counts}
        return self.head.forward(z)

    def forward_loss(self, xs: Array, labels: Any, lengths: Any = None,
                     state: Any = None) -> float:
        """Mean cross-entropy of the logits against ``labels`` ``(N,)`` (class ids)."""
        logits = self.forward(xs, lengths=lengths, state=state)
        labels = self.xp.asarray(labels)
        if labels.dtype.kind not in "iu":
            raise TypeError(f"{self.name}.forward_loss: labels expected integer class ids, "
                            f"got dtype {labels.dtype}")
        if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise ValueError(f"{self.name}.forward_loss: labels expected ids in [0, "
                             f"{self.num_classes}), got values in [{int(labels.min())}, "
                             f"{int(labels.max())}]")
        return self.criterion(logits, labels)

    def predict(self, xs: Array, lengths: Any = None) -> np.ndarray:
        """The most probable class of each sequence, ``(N,)`` (on the host)."""
        return to_numpy(self.forward(xs, lengths=lengths).argmax(axis=1))

    # ----------------------------------------------------------------- backward
    def backward(self, dloss: float = 1.0) -> Any:
        """Backward from the last :meth:`forward_loss`; returns ``dxs`` ``(N, T, D)``."""
        return self.backward_logits(self.criterion.backward(dloss))

    def backward_logits(self, dlogits: Array) -> Any:
        """Backward from ``dlogits`` ``(N, C)``, the gradient of the last forward's logits."""
        cache = require_cache(self, self._cache)
        dz = self.head.backward(dlogits)  # (N, K*H)
        if self.pooling == "mean":
            dhs = cache["mask"] * (dz / cache["counts"])[:, None, :]  # (N, T, K*H)
            return self.rnn.backward(dhs)
        return last_layer_state_backward(self.rnn, dz)
