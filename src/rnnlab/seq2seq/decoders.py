"""Decoders: plain, "peeky", Luong-style attention, and Bahdanau (input-feeding) attention.

All start from the encoder summary ``s0 = (h, c)`` and read the answer shifted right
(teacher forcing): ``dec_in`` ``(N, U)`` -> logits ``(N, U, V)``. With ``y_t`` the
embedded input, ``s_t`` the decoder state and ``h`` the encoder summary::

    plain      s_t = RNN(y_t, s_{t-1});             logits_t = W s_t + b
    peeky      s_t = RNN([y_t; h], s_{t-1});        logits_t = W [s_t; h] + b
    attention  s_t = RNN(y_t, s_{t-1});  c_t = Attn(s_t, hs);   logits_t = W [s_t; c_t] + b
    bahdanau   c_t = Attn(s_{t-1}, hs);  s_t = RNN([y_t; c_t], s_{t-1});
                                                     logits_t = W [s_t; c_t] + b

The first three run the whole answer through one sequence layer (fast); ``bahdanau``
feeds each context back into the recurrence, so it steps through time with a cell.
``backward(dlogits)`` returns ``(dhs, dh, dc)`` for the encoder (``dhs`` None without
attention). For decoding, ``start(enc)`` gives a state and ``step(tokens, state)``
returns ``(logits (B, V), state, weights (B, S) or None)``.
"""

from __future__ import annotations

from typing import Any

from numpy.typing import DTypeLike

from rnnlab.backend import Array, RNGLike, make_rng
from rnnlab.nn import Embedding, GRUCell, Linear, LSTMCell, Module
from rnnlab.nn.module import LayerOptions, require_cache
from rnnlab.seq2seq.attention import Attention, Memory
from rnnlab.seq2seq.encoder import CELLS, EncoderOutput

STEP_CELLS = {"lstm": LSTMCell, "gru": GRUCell}


def select_state(state: dict[str, Any], index: Array) -> dict[str, Any]:
    """Rows ``index`` of every array (and memory) of a decoding state."""
    return {k: (v.take(index) if isinstance(v, Memory) else v[index])
            for k, v in state.items() if v is not None}


class Decoder(Module):
    """Plain or peeky decoder (the book's ``Decoder`` and ``PeekyDecoder``).

    Parameters
    ----------
    vocab_size, embedding_dim, hidden_size : int
        ``hidden_size`` must equal the encoder's summary size.
    cell : {"lstm", "gru"}
    peeky : bool
        Feed the encoder summary to every step and to the output layer.
    """

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int,
                 cell: str = "lstm", peeky: bool = False, *, rng: RNGLike = None,
                 device: str | None = None, dtype: DTypeLike | None = None) -> None:
        super().__init__(device=device, dtype=dtype)
        rng = make_rng(rng)
        common: LayerOptions = {"rng": rng, "device": device, "dtype": self.dtype}
        H = hidden_size
        self.peeky = bool(peeky)
        self.hidden_size = H
        self.embedding = Embedding(vocab_size, embedding_dim, **common)
        self.rnn = CELLS[cell](embedding_dim + (H if peeky else 0), H, **common)
        self.out = Linear(H + self._extra_out(), vocab_size, **common)
        self._cache: Any = None

    def _extra_out(self) -> int:
        return self.hidden_size if self.peeky else 0

    def _state0(self, enc: EncoderOutput) -> Any:
        if self.rnn.has_cell:
            return (enc.h[None], enc.c[None])
        return enc.h[None]

    def _run(self, y: Array, enc_h: Any, state: Any) -> Any:
        """Inputs ``y`` ``(N, U, E)`` -> the output layer's inputs ``(N, U, ...)``."""
        xp = self.xp
        N, U, _ = y.shape
        if self.peeky:
            y = xp.concatenate([y, xp.broadcast_to(enc_h[:, None], (N, U, enc_h.shape[1]))],
                               axis=2)
        s = self.rnn(y, state)
        if self.peeky:
            s = xp.concatenate([s, xp.broadcast_to(enc_h[:, None], s.shape)], axis=2)
        return s

    def forward(self, dec_in: Array, enc: EncoderOutput) -> Any:
        """Logits ``(N, U, V)`` of the next character after each of ``dec_in`` ``(N, U)``."""
        y = self.embedding(dec_in)
        self._cache = y.shape
        return self.out(self._run(y, enc.h, self._state0(enc)))

    def backward(self, dlogits: Array) -> tuple[Any, Any, Any]:
        """``(None, dh, dc)``: gradients of the encoder summary (``dc`` None for a GRU)."""
        _, _, E = require_cache(self, self._cache)
        H = self.hidden_size
        dout = self.out.backward(dlogits)
        ds, dpeek = dout[..., :H], None
        if self.peeky:
            dpeek = dout[..., H:].sum(axis=1)
        dy = self.rnn.backward(self.xp.ascontiguousarray(ds))
        if self.peeky:
            dpeek = dpeek + dy[..., E:].sum(axis=1)
            dy = self.xp.ascontiguousarray(dy[..., :E])
        self.embedding.backward(dy)
        dh = self.rnn.dh0[0]
        if dpeek is not None:
            dh = dh + dpeek
        return None, dh, (self.rnn.dc0[0] if self.rnn.has_cell else None)

    # ------------------------------------------------------------------ decoding
    def start(self, enc: EncoderOutput) -> dict[str, Any]:
        """The decoding state after the encoder (batch-first arrays)."""
        return {"h": enc.h, "c": enc.c, "peek": enc.h}

    def _rnn_step(self, y: Array, state: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        h0 = (state["h"][None], state["c"][None]) if self.rnn.has_cell else state["h"][None]
        s = self._run(y[:, None], state.get("peek"), h0)[:, 0]
        new = dict(state)
        new["h"] = self.rnn.h_n[0]
        new["c"] = self.rnn.c_n[0] if self.rnn.has_cell else None
        return s, new

    def step(self, tokens: Any, state: dict[str, Any]) -> tuple[Any, dict[str, Any], Any]:
        """One decoding step from input ids ``tokens`` ``(B,)``."""
        s, new = self._rnn_step(self.embedding(tokens), state)
        return self.out(s), new, None


class AttentionDecoder(Decoder):
    """Luong-style decoder: attend with the new state, predict from ``[s_t; c_t]``.

    ``score`` is ``"dot"`` (the book's ``AttentionDecoder``), ``"general"`` or
    ``"additive"``; ``key_size`` is the encoder's ``hs`` width.
    """

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int,
                 cell: str = "lstm", score: str = "dot", key_size: int | None = None, *,
                 rng: RNGLike = None,
                 device: str | None = None, dtype: DTypeLike | None = None) -> None:
        rng = make_rng(rng)
        self.key_size = hidden_size if key_size is None else key_size
        super().__init__(vocab_size, embedding_dim, hidden_size, cell, False, rng=rng,
                         device=device, dtype=dtype)
        self.attention = Attention(hidden_size, self.key_size, score, rng=rng, device=device,
                                   dtype=self.dtype)

    def _extra_out(self) -> int:
        return self.key_size

    def forward(self, dec_in: Array, enc: EncoderOutput) -> Any:
        y = self.embedding(dec_in)
        s = self.rnn(y, self._state0(enc))
        ctx = self.attention(s, enc.hs, enc.mask)
        self._cache = y.shape
        return self.out(self.xp.concatenate([s, ctx], axis=2))

    def backward(self, dlogits: Array) -> tuple[Any, Any, Any]:
        require_cache(self, self._cache)
        H, xp = self.hidden_size, self.xp
        dout = self.out.backward(dlogits)
        dq, dhs = self.attention.backward(xp.ascontiguousarray(dout[..., H:]))
        dy = self.rnn.backward(dout[..., :H] + dq)
        self.embedding.backward(dy)
        return dhs, self.rnn.dh0[0], (self.rnn.dc0[0] if self.rnn.has_cell else None)

    def start(self, enc: EncoderOutput) -> dict[str, Any]:
        return {"h": enc.h, "c": enc.c, "peek": None,
                "memory": self.attention.prepare(enc.hs, enc.mask)}

    def step(self, tokens: Any, state: dict[str, Any]) -> tuple[Any, dict[str, Any], Any]:
        s, new = self._rnn_step(self.embedding(tokens), state)
        ctx, a, _ = self.attention.attend(s[:, None], state["memory"])
        return self.out(self.xp.concatenate([s, ctx[:, 0]], axis=1)), new, a[:, 0]


class BahdanauDecoder(Module):
    """Bahdanau et al. (2015): the previous state queries the encoder and the context is
    fed into the recurrence with the input; ``score`` defaults to ``"additive"``."""

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int,
                 cell: str = "lstm", score: str = "additive", key_size: int | None = None, *,
                 rng: RNGLike = None,
                 device: str | None = None, dtype: DTypeLike | None = None) -> None:
        super().__init__(device=device, dtype=dtype)
        rng = make_rng(rng)
        common: LayerOptions = {"rng": rng, "device": device, "dtype": self.dtype}
        H = self.hidden_size = hidden_size
        K = self.key_size = hidden_size if key_size is None else key_size
        self.embedding = Embedding(vocab_size, embedding_dim, **common)
        self.attention = Attention(H, K, score, **common)
        self.cell = STEP_CELLS[cell](embedding_dim + K, H, **common)
        self.out = Linear(H + K, vocab_size, **common)
        self.has_cell = cell == "lstm"
        self._cache: Any = None

    def _step(self, y: Array, h: Array, c: Array, memory: Memory) -> tuple[Any, ...]:
        ctx, a, att_cache = self.attention.attend(h[:, None], memory)
        x = self.xp.concatenate([y, ctx[:, 0]], axis=1)
        if self.has_cell:
            h, c = self.cell(x, (h, c))
        else:
            h = self.cell(x, h)
        return h, c, ctx[:, 0], a[:, 0], (att_cache, self.cell.cache)

    def forward(self, dec_in: Array, enc: EncoderOutput) -> Any:
        xp = self.xp
        ys = self.embedding(dec_in)
        memory = self.attention.prepare(enc.hs, enc.mask)
        h, c = enc.h, enc.c
        outs, weights, caches = [], [], []
        for t in range(ys.shape[1]):
            h, c, ctx, a, cache = self._step(ys[:, t], h, c, memory)
            outs.append(xp.concatenate([h, ctx], axis=1))
            weights.append(a)
            caches.append(cache)
        self.attention.weights = xp.stack(weights, axis=1)
        self._cache = (memory, caches, ys.shape)
        return self.out(xp.stack(outs, axis=1))

    def backward(self, dlogits: Array) -> tuple[Any, Any, Any]:
        memory, caches, (N, U, E) = require_cache(self, self._cache)
        xp, H = self.xp, self.hidden_size
        dout = self.out.backward(dlogits)
        dys = xp.empty((N, U, E), dtype=self.dtype)
        dh = xp.zeros((N, H), dtype=self.dtype)
        dc = xp.zeros((N, H), dtype=self.dtype) if self.has_cell else None
        for t in range(U - 1, -1, -1):
            att_cache, cell_cache = caches[t]
            dh = dh + dout[:, t, :H]
            if self.has_cell:
                dx, dh, dc = self.cell.backward(dh, dc, cache=cell_cache)
            else:
                dx, dh = self.cell.backward(dh, cache=cell_cache)
            dys[:, t] = dx[:, :E]
            dctx = dx[:, E:] + dout[:, t, H:]
            dh = dh + self.attention.attend_backward(dctx[:, None], att_cache, memory)[:, 0]
        self.embedding.backward(dys)
        return self.attention.prepare_backward(memory), dh, dc

    def start(self, enc: EncoderOutput) -> dict[str, Any]:
        return {"h": enc.h, "c": enc.c, "memory": self.attention.prepare(enc.hs, enc.mask)}

    def step(self, tokens: Any, state: dict[str, Any]) -> tuple[Any, dict[str, Any], Any]:
        h, c, ctx, a, _ = self._step(self.embedding(tokens), state["h"], state.get("c"),
                                     state["memory"])
        logits = self.out(self.xp.concatenate([h, ctx], axis=1))
        return logits, {"h": h, "c": c, "memory": state["memory"]}, a
