"""Look inside a trained :class:`~rnnlab.models.RNNLM`: every layer's hidden state (and
LSTM cell state) at every step of a text, and the predicted next-token distributions.

NumPy only (no plotting extra needed). The model is not changed: its weights are copied
to the host and run through one-step cells (:class:`~rnnlab.nn.RNNCell`,
:class:`~rnnlab.nn.LSTMCell`, :class:`~rnnlab.nn.GRUCell`), so the carried state,
gradients and device of the model stay as they were.

With a trained ``model`` and its ``vocab``::

    states = collect_states(model, vocab.encode_text("def f(x):\\n"), vocab=vocab)
    states.h[-1].shape          # top layer: (T, hidden_size)
    states.probs().shape        # (T, V): p(token t+1 | tokens 0..t)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rnnlab.backend import Array, to_numpy
from rnnlab.models.minblock import MinBlockStack
from rnnlab.nn import GRUCell, LSTMCell, RNNCell

#: The one-step cell of each kind with recurrent weights (the min cells run through
#: their own layer and stepper instead: ``not rnn.cell_kind.recurrent``).
_CELL_CLASSES = {cls.kind: cls for cls in (RNNCell, LSTMCell, GRUCell)}


def host_min_layer(rnn: Any) -> Any:
    """A host (NumPy), non-stateful copy of a :class:`~rnnlab.nn.MinGRU` /
    :class:`~rnnlab.nn.MinLSTM` or a :class:`~rnnlab.models.minblock.MinBlockStack`,
    in eval mode with zero gradients (the model's own layer is left as it was)."""
    if isinstance(rnn, MinBlockStack):
        copy = MinBlockStack(rnn.cell, rnn.hidden_size, rnn.num_layers, ff_mult=rnn.ff_mult,
                             mode=rnn.mode, stateful=False, device="cpu", dtype=rnn.dtype)
    else:
        copy = type(rnn)(rnn.input_size, rnn.hidden_size, rnn.num_layers, bias=rnn.bias,
                         mode=rnn.mode, device="cpu", dtype=rnn.dtype)
    own = {name: param for name, param in rnn.named_parameters()}
    for name, param in copy.named_parameters():
        param[...] = to_numpy(own[name])
    return copy.eval()


def run_min(model: Any, ids: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Run a min-cell model's stepper over token ids ``(N, T)`` from a zero state:
    each layer's state ``(N, T, H)`` (for blocks, each block's min layer) and the stack's
    output ``(N, T, H)`` (what the decoder reads)."""
    xp, rnn = model.xp, model.rnn
    emb = model.embedding.params["weight"]
    ids_dev = xp.asarray(np.asarray(ids))
    N, T = ids.shape
    stepper = rnn.stepper(N)
    hs = [np.empty((N, T, rnn.hidden_size), dtype=rnn.dtype) for _ in range(rnn.num_layers)]
    top = np.empty((N, T, rnn.hidden_size), dtype=rnn.dtype)
    for t in range(T):
        top[:, t] = to_numpy(stepper.step(emb[ids_dev[:, t]]))
        for k in range(rnn.num_layers):
            hs[k][:, t] = to_numpy(stepper.h[k])
    return hs, top


def layer_cells(rnn: Any) -> list[Any]:
    """One-step host (NumPy) cells holding copies of each layer's weights of ``rnn``.

    ``rnn`` is an :class:`~rnnlab.nn.RNN`, :class:`~rnnlab.nn.LSTM` or
    :class:`~rnnlab.nn.GRU` (unidirectional). Cell ``k`` computes layer ``k``.
    """
    kind = getattr(rnn, "kind", None)
    if kind not in _CELL_CLASSES:
        raise TypeError(f"layer_cells: expected an RNN, LSTM or GRU layer, got "
                        f"{type(rnn).__name__}")
    if getattr(rnn, "bidirectional", False):
        raise ValueError("layer_cells: bidirectional layers are not supported (a language "
                         "model reads left to right)")
    cells = []
    for layer in range(rnn.num_layers):
        sfx = rnn.suffix(layer, 0)
        w_ih = to_numpy(rnn.params[f"weight_ih{sfx}"])
        kwargs: dict[str, Any] = {"bias": rnn.bias, "device": "cpu", "dtype": rnn.dtype}
        if kind == "rnn":
            kwargs["nonlinearity"] = rnn.nonlinearity
        if kind == "gru":
            kwargs["reset_after"] = rnn.reset_after
        cell = _CELL_CLASSES[kind](w_ih.shape[1], rnn.hidden_size, **kwargs)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            if name in cell.params:
                cell.params[name][...] = to_numpy(rnn.params[f"{name}{sfx}"])
        cells.append(cell)
    return cells


def _embed(model: Any, ids: np.ndarray) -> np.ndarray:
    weight = to_numpy(model.embedding.params["weight"])
    return np.ascontiguousarray(weight[ids])


def _decode(model: Any, h: np.ndarray) -> np.ndarray:
    params = model.decoder.params
    logits = h @ to_numpy(params["weight"]).T
    if "bias" in params:
        logits = logits + to_numpy(params["bias"])
    return logits


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically safe softmax in float64."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


@dataclass
class States:
    """What a model computed over one text, step by step.

    Attributes
    ----------
    ids : ndarray ``(T,)``
        The input token ids.
    tokens : list of str
        The input tokens (``vocab.itos`` of ``ids``; ids as text when no vocabulary).
    h : list of ndarray ``(T, H)``
        Hidden state of each layer after reading each token (index ``-1``: top layer).
    c : list of ndarray ``(T, H)`` or None
        LSTM cell states (None for RNN and GRU).
    logits : ndarray ``(T, V)``
        Scores of the next token after each input token.
    cell : str
        ``"rnn"``, ``"lstm"`` or ``"gru"`` (``"rnn-tanh"``/``"rnn-relu"`` spelled out in
        :attr:`label`).
    """

    ids: np.ndarray
    tokens: list[str]
    h: list[np.ndarray]
    c: list[np.ndarray] | None
    logits: np.ndarray
    cell: str
    label: str = ""
    level: str = "char"
    itos: list[str] = field(default_factory=list)

    def states(self, layer: int = -1, kind: str = "h") -> np.ndarray:
        """``(T, H)`` states of one layer: ``kind="h"`` hidden, ``"c"`` LSTM cell."""
        if kind not in ("h", "c"):
            raise ValueError(f"States.states: kind expected 'h' or 'c', got {kind!r}")
        if kind == "c":
            if self.c is None:
                raise ValueError(f"States.states: kind 'c' needs an LSTM, this model is "
                                 f"{self.label or self.cell}")
            source = self.c
        else:
            source = self.h
        if not -len(source) <= layer < len(source):
            raise ValueError(f"States.states: layer expected in [{-len(source)}, "
                             f"{len(source) - 1}], got {layer}")
        return source[layer]

    def probs(self) -> np.ndarray:
        """``(T, V)`` next-token probabilities (float64)."""
        return softmax(self.logits)

    def loss(self) -> float:
        """Mean next-token cross-entropy (nats) over the text's own continuation."""
        if len(self.ids) < 2:
            raise ValueError("States.loss: needs at least 2 tokens")
        logp = np.log(self.probs()[:-1] + 1e-300)
        return float(-logp[np.arange(len(self.ids) - 1), self.ids[1:]].mean())


def model_label(model: Any) -> str:
    """``"lstm"``, ``"gru"``, ``"rnn-tanh"``, ``"rnn-relu"``, ``"mingru"``, ``"minlstm"``
    (``"mingru-block"`` ... with the paper's block)."""
    cfg = model.config
    if cfg.cell == "rnn":
        return f"rnn-{cfg.nonlinearity}"
    return f"{cfg.cell}-block" if getattr(cfg, "block", False) else cfg.cell


def run_cells(cells: list[Any], xs: np.ndarray, *, keep_caches: bool = False
              ) -> tuple[list[np.ndarray], list[np.ndarray] | None, list[list[Any]]]:
    """Run a stack of cells over ``xs`` ``(N, T, D)`` from zero state.

    Returns per-layer hidden states ``(N, T, H)``, per-layer LSTM cell states (or None)
    and, with ``keep_caches``, each layer's per-step caches for ``cell.backward``.
    """
    N, T, _ = xs.shape
    lstm = cells[0].cell.has_cell
    hs = [np.empty((N, T, c.hidden_size), dtype=c.dtype) for c in cells]
    cs = [np.empty((N, T, c.hidden_size), dtype=c.dtype) for c in cells] if lstm else None
    caches: list[list[Any]] = [[] for _ in cells]
    state: list[Any] = [None] * len(cells)
    for t in range(T):
        x = np.ascontiguousarray(xs[:, t])
        for k, cell in enumerate(cells):
            if lstm:
                h, c = cell.forward(x, state[k])
                state[k] = (h, c)
                cs[k][:, t] = c  # type: ignore[index]
            else:
                h = cell.forward(x, state[k])
                state[k] = h
            hs[k][:, t] = h
            if keep_caches:
                caches[k].append(cell.cache)
            x = h
    return hs, cs, caches


def collect_states(model: Any, ids: Array, *, vocab: Any = None) -> States:
    """Run ``model`` over token ``ids`` ``(T,)`` (or a ``str``, encoded with ``vocab``;
    symbols it lacks become ``<unk>``) from a zero state and keep everything.

    The model itself is not run (its carried state and gradients are untouched): its
    weights are copied into host cells.
    """
    if isinstance(ids, str):
        if vocab is None:
            raise TypeError("collect_states: a text needs vocab= to be encoded")
        ids = encode_text(vocab, ids)
    ids = np.asarray(to_numpy(ids)).reshape(-1)
    if ids.size < 1:
        raise ValueError("collect_states: ids expected at least one token")
    if ids.dtype.kind not in "iu":
        raise TypeError(f"collect_states: ids expected integers, got dtype {ids.dtype}")
    V = model.config.vocab_size
    if int(ids.min()) < 0 or int(ids.max()) >= V:
        raise ValueError(f"collect_states: ids expected in [0, {V})")
    if not model.rnn.cell_kind.recurrent:
        hs, top = run_min(model, ids[None])
        h, c = [a[0] for a in hs], None
        logits = _decode(model, top[0])
    else:
        cells = layer_cells(model.rnn)
        xs = _embed(model, ids)[None]
        hs, cs, _ = run_cells(cells, xs)
        h = [a[0] for a in hs]
        c = None if cs is None else [a[0] for a in cs]
        logits = _decode(model, h[-1])
    itos = list(vocab.itos) if vocab is not None else [str(i) for i in range(V)]
    tokens = [itos[i] for i in ids.tolist()]
    level = getattr(vocab, "level", "char") if vocab is not None else "word"
    return States(ids=ids, tokens=tokens, h=h, c=c, logits=logits, cell=model.config.cell,
                  label=model_label(model), level=level, itos=itos)


def encode_text(vocab: Any, text: str) -> np.ndarray:
    """Ids of ``text`` in ``vocab`` (unknown symbols become ``<unk>``)."""
    if not isinstance(text, str):
        raise TypeError(f"encode_text: text expected a str, got {type(text).__name__}")
    ids = vocab.encode_text(text)
    if ids.size == 0:
        raise ValueError("encode_text: the text has no tokens")
    return ids
