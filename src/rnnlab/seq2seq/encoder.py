"""The encoder: embedding + LSTM/GRU (optionally bidirectional) over a padded source.

::

    src (N, S) ids  --reverse?-->  Embedding (N, S, E)  -->  RNN  -->  hs (N, S, K*H)
                                                                 \\->  h, c (N, K*H)

``K`` = 2 for a bidirectional encoder, whose summary concatenates the final states of
both directions (the decoder then has ``K*H`` units). With ``reverse`` the source is
read backwards (Sutskever et al. 2014): in a padded batch only the real characters of
each row are reversed, the padding stays at the end. ``hs`` is in the order the RNN
read the source; :func:`reverse_index` maps positions back (it is its own inverse).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnlab.backend import make_rng
from rnnlab.nn import GRU, LSTM, Embedding, Module
from rnnlab.nn.module import require_cache

CELLS = {"lstm": LSTM, "gru": GRU}


def reverse_index(N: int, S: int, lengths: Any = None) -> np.ndarray:
    """``(N, S)`` positions: ``L_i - 1 - s`` for ``s < L_i``, else ``s`` (pads stay put)."""
    s = np.arange(S)[None, :]
    L = np.full((N, 1), S) if lengths is None else np.asarray(lengths).reshape(N, 1)
    return np.where(s < L, L - 1 - s, s)


@dataclass
class EncoderOutput:
    """What the decoder reads: ``hs`` ``(N, S, K*H)``, the summary ``h`` (and ``c`` for an
    LSTM) ``(N, K*H)``, ``mask`` ``(N, S)`` bool or None, and ``order`` ``(N, S)``, the
    source position of each step of ``hs`` (or None when it is the identity)."""

    hs: Any
    h: Any
    c: Any
    mask: Any
    order: np.ndarray | None


class Encoder(Module):
    """Embedding and one recurrent layer over the source.

    Parameters
    ----------
    vocab_size, embedding_dim, hidden_size : int
    cell : {"lstm", "gru"}
    bidirectional : bool
        Read the source both ways; the summary has ``2 * hidden_size`` units.
    reverse : bool
        Feed the source reversed.
    """

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int,
                 cell: str = "lstm", bidirectional: bool = False, reverse: bool = False, *,
                 rng: Any = None, device: str | None = None, dtype: Any = None) -> None:
        super().__init__(device=device, dtype=dtype)
        if cell not in CELLS:
            raise ValueError(f"Encoder: cell expected one of {sorted(CELLS)}, got {cell!r}")
        rng = make_rng(rng)
        common = {"rng": rng, "device": device, "dtype": self.dtype}
        self.embedding = Embedding(vocab_size, embedding_dim, **common)
        self.rnn = CELLS[cell](embedding_dim, hidden_size, bidirectional=bidirectional, **common)
        self.reverse = bool(reverse)
        self.hidden_size = hidden_size
        self.num_directions = 2 if bidirectional else 1
        self.output_size = hidden_size * self.num_directions
        self._cache: Any = None

    @property
    def has_cell(self) -> bool:
        return self.rnn.has_cell

    def forward(self, src: Any, lengths: Any = None) -> EncoderOutput:
        """Encode ids ``src`` ``(N, S)`` whose rows have ``lengths`` (None: all ``S``)."""
        xp = self.xp
        N, S = src.shape
        order = None
        if self.reverse:
            order = reverse_index(N, S, lengths)
            src = np.take_along_axis(np.asarray(src), order, axis=1) if xp is np else \
                xp.take_along_axis(src, xp.asarray(order), axis=1)
        mask = None
        if lengths is not None:
            mask = xp.asarray(np.arange(S)[None, :] < np.asarray(lengths)[:, None])
        hs = self.rnn(self.embedding(src), lengths=lengths)
        K, H = self.num_directions, self.hidden_size
        h = self.rnn.h_n.transpose(1, 0, 2).reshape(N, K * H)
        c = None if self.rnn.c_n is None else self.rnn.c_n.transpose(1, 0, 2).reshape(N, K * H)
        self._cache = (N,)
        return EncoderOutput(hs, h, c, mask, order)

    def backward(self, dhs: Any, dh: Any, dc: Any = None) -> None:
        """Add the gradients of ``hs`` (or None), ``h`` and ``c`` into the parameters."""
        (N,) = require_cache(self, self._cache)
        K, H = self.num_directions, self.hidden_size

        def split(d: Any) -> Any:
            return self.xp.ascontiguousarray(d.reshape(N, K, H).transpose(1, 0, 2))

        if self.has_cell:
            dc = self.xp.zeros_like(dh) if dc is None else dc
            dstate = (split(dh), split(dc))
        else:
            dstate = split(dh)
        dxs = self.rnn.backward(dhs, dstate=dstate)
        self.embedding.backward(dxs)
