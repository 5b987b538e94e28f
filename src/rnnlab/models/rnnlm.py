"""``RNNLM``: an embedding, a stack of recurrent layers and a softmax output over the vocabulary.

::

    ids (N, T) -> Embedding -> Dropout -> RNN/LSTM/GRU (stateful) -> Dropout -> Linear
        -> logits (N, T, V)

The recurrent layer is stateful: consecutive windows of the same streams continue from
the previous window's final state (truncated BPTT); call :meth:`RNNLM.reset_state` at the
start of an epoch or a new text. With ``tie_weights`` the output layer reuses the
embedding matrix (Press & Wolf 2017; the book's ``BetterRnnlm``), which needs
``embedding_dim == hidden_size``.

Initialisation (``init``): ``"pytorch"`` follows PyTorch's word-language-model example
(embedding and output weights uniform in [-0.1, 0.1], output bias zero, recurrent weights
PyTorch's default); ``"book"`` is the textbook's (embedding normal with standard
deviation 0.01, every other weight matrix normal with variance 1/fan-in, biases zero);
``init_range=r`` instead draws every parameter uniformly from [-r, r] (Zaremba et al.).
:meth:`RNNLM.init_output_bias` then sets the output bias from the training text's token
frequencies (``TrainConfig.unigram_bias``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from rnnlab._config import ConfigDict
from rnnlab.backend import Array, RNGLike, make_rng, to_numpy
from rnnlab.fast import engine_for
from rnnlab.models.minblock import MinBlockStack
from rnnlab.nn import (
    GRU,
    LSTM,
    RNN,
    Dropout,
    Embedding,
    Linear,
    MinGRU,
    MinLSTM,
    Module,
    SoftmaxCrossEntropy,
)
from rnnlab.nn.checks import check_positive_int, check_probability, check_token_ids
from rnnlab.nn.dropout import LockedDropout
from rnnlab.nn.init import fill_normal, fill_uniform
from rnnlab.nn.module import LayerOptions
from rnnlab.nn.scan import TokenInput
from rnnlab.nn.stack import CELL_KINDS, MIN_CELLS, RecurrentStack

CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN, "mingru": MinGRU, "minlstm": MinLSTM}
INITS = ("pytorch", "book")
_COUNT_CHUNK = 1 << 24  # token ids counted at a time by RNNLM.init_output_bias


#: ``dropout_kind`` -> the dropout layer on the embedding output and before the output layer.
DROPOUT_KINDS = {"step": Dropout, "locked": LockedDropout}


@dataclass
class RNNLMConfig(ConfigDict):
    """Everything needed to rebuild an :class:`RNNLM` (saved with every checkpoint)."""

    vocab_size: int
    embedding_dim: int = 128
    hidden_size: int = 256
    num_layers: int = 1
    cell: str = "lstm"  # "lstm", "gru", "rnn", "mingru" or "minlstm"
    dropout: float = 0.0  # on the embedding output, between layers and before the output
    tie_weights: bool = False  # share the embedding and output matrices
    nonlinearity: str = "tanh"  # for cell="rnn": "tanh" or "relu"
    init_range: float | None = None  # uniform [-r, r] for every parameter when set
    dtype: str = "float32"
    init: str = "pytorch"  # "pytorch" or "book" (ignored when init_range is set)
    # mingru/minlstm: the paper's block (norm, min layer, feed-forward, residuals;
    # rnnlab.models.minblock), needs embedding_dim == hidden_size
    block: bool = False
    # dropout on the embedding output and before the output layer: "step" draws a new mask
    # at every step, "locked" one mask per sequence shared by all its steps (LockedDropout)
    dropout_kind: str = "step"



class RNNLM(Module):
    """Word- or character-level recurrent language model.

    Parameters are those of :class:`RNNLMConfig`; ``rng`` (a Generator or seed) drives the
    initialisation and every dropout mask, so one seed fixes a whole run.
    """

    def __init__(self, vocab_size: int, embedding_dim: int = 128, hidden_size: int = 256,
                 num_layers: int = 1, cell: str = "lstm", dropout: float = 0.0,
                 tie_weights: bool = False, *, nonlinearity: str = "tanh",
                 init_range: float | None = None, init: str = "pytorch", rng: RNGLike = None,
                 device: str | None = None, dtype: DTypeLike | None = None, block: bool = False,
                 dropout_kind: str = "step") -> None:
        super().__init__(device=device, dtype=dtype)
        if cell not in CELLS:
            raise ValueError(f"RNNLM: cell expected one of {sorted(CELLS)}, got {cell!r}")
        kind = CELL_KINDS[cell]
        V = check_positive_int(vocab_size, "RNNLM", "vocab_size")
        E = check_positive_int(embedding_dim, "RNNLM", "embedding_dim")
        H = check_positive_int(hidden_size, "RNNLM", "hidden_size")
        num_layers = check_positive_int(num_layers, "RNNLM", "num_layers")
        check_probability(dropout, "RNNLM", "dropout")
        if not isinstance(tie_weights, bool):
            raise TypeError(f"RNNLM: tie_weights expected a bool, got {tie_weights!r}")
        if tie_weights and E != H:
            raise ValueError(f"RNNLM: tie_weights needs embedding_dim == hidden_size, "
                             f"got {E} and {H}")
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNLM: nonlinearity expected 'tanh' or 'relu', got "
                             f"{nonlinearity!r}")
        if init_range is not None and (
                isinstance(init_range, bool) or not isinstance(init_range, int | float)
                or not math.isfinite(init_range) or init_range <= 0):
            raise ValueError(f"RNNLM: init_range expected a positive finite float, got "
                             f"{init_range!r}")
        if init not in INITS:
            raise ValueError(f"RNNLM: init expected one of {list(INITS)}, got {init!r}")
        if init != "pytorch" and init_range is not None:
            raise ValueError(f"RNNLM: init={init!r} and init_range={init_range!r} both set; "
                             f"init_range replaces the whole initialisation, give one")
        if dropout_kind not in DROPOUT_KINDS:
            raise ValueError(f"RNNLM: dropout_kind expected one of {list(DROPOUT_KINDS)}, got "
                             f"{dropout_kind!r}")
        if not isinstance(block, bool):
            raise TypeError(f"RNNLM: block expected a bool, got {block!r}")
        if block and (kind.recurrent or E != H):
            raise ValueError(f"RNNLM: block=True needs cell in {list(MIN_CELLS)} and "
                             f"embedding_dim == hidden_size, got cell={cell!r}, {E} and {H}")
        self.config = RNNLMConfig(V, E, H, num_layers, cell, float(dropout), bool(tie_weights),
                                  nonlinearity, init_range, self.dtype.name, init, block=block,
                                  dropout_kind=dropout_kind)
        self.rng = make_rng(rng)
        common: LayerOptions = {"rng": self.rng, "device": device, "dtype": self.dtype}
        self.embedding = Embedding(V, E, **common)
        drop = DROPOUT_KINDS[dropout_kind]
        self.drop_in = drop(dropout, **common)
        rnn_kwargs = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        blocks = MinBlockStack(cell, H, num_layers, dropout, **common) if block else None
        self.rnn: RecurrentStack = blocks if blocks is not None else CELLS[cell](
            E, H, num_layers, dropout=dropout, stateful=True, **rnn_kwargs, **common)
        self.drop_out = drop(dropout, **common)
        self.decoder = Linear(H, V, **common)
        self.criterion = SoftmaxCrossEntropy(device=device)
        self._init_weights(init_range, init)
        if blocks is not None:  # the normalisations start as the identity, whatever the init
            blocks.reset_norms()
        self._tokens = False  # whether the last forward went through forward_tokens
        if tie_weights:
            self.decoder.tie("weight", self.embedding, "weight")

    @classmethod
    def from_config(cls, config: RNNLMConfig, *, rng: RNGLike = None,
                    device: str | None = None) -> RNNLM:
        c = config
        return cls(c.vocab_size, c.embedding_dim, c.hidden_size, c.num_layers, c.cell,
                   c.dropout, c.tie_weights, nonlinearity=c.nonlinearity,
                   init_range=c.init_range, init=c.init, rng=rng, device=device,
                   dtype=c.dtype, block=c.block, dropout_kind=c.dropout_kind)

    def _init_weights(self, init_range: float | None, init: str) -> None:
        # drawn in float64 a chunk at a time straight into the parameters: the values of one
        # float64 draw cast afterwards, without a float64 copy of the largest matrix
        if init_range is not None:
            for _, param in self.named_parameters():
                fill_uniform(param, self.rng, float(init_range))
        elif init == "book":
            # ch06 Rnnlm: randn(V, D) / 100, randn(fan_in, out) / sqrt(fan_in), zero biases
            fill_normal(self.embedding.params["weight"], self.rng, divisor=100)
            for name, param in self.named_parameters():
                if name == "embedding.weight":
                    continue
                if param.ndim == 1:
                    param.fill(0)
                else:
                    fill_normal(param, self.rng, divisor=math.sqrt(param.shape[1]))
        else:
            fill_uniform(self.embedding.params["weight"], self.rng, 0.1)
            fill_uniform(self.decoder.params["weight"], self.rng, 0.1)
            self.decoder.params["bias"].fill(0)

    def init_output_bias(self, ids: Array, *, smoothing: float = 1.0) -> None:
        """Set the output bias to the log unigram distribution of the token ids ``ids``
        (the training text): ``b_v = log((n_v + s) / (n + V s))`` with ``n_v`` the count of
        token ``v`` and ``s = smoothing``. The untrained model then predicts close to the
        corpus's token frequencies instead of a uniform guess (an initial loss near the
        text's cross-entropy under those frequencies, 6.53 on PTB, rather than
        ``log V``, 9.21). ``TrainConfig.unigram_bias`` calls it before the first step."""
        V = self.config.vocab_size
        if isinstance(smoothing, bool) or not isinstance(smoothing, int | float) \
                or not math.isfinite(smoothing) or smoothing <= 0:
            raise ValueError(f"RNNLM.init_output_bias: smoothing expected a positive finite "
                             f"float, got {smoothing!r}")
        flat = to_numpy(ids).reshape(-1)  # ids on the GPU are counted on the host
        if flat.size == 0:
            raise ValueError("RNNLM.init_output_bias: ids expected at least one token, got 0")
        counts = np.full(V, float(smoothing))
        for start in range(0, flat.size, _COUNT_CHUNK):  # a memmap is read part by part
            part = np.asarray(flat[start : start + _COUNT_CHUNK])
            check_token_ids(part, "RNNLM.init_output_bias", "ids", num=V, xp=np)
            counts += np.bincount(part, minlength=V)
        bias = np.log(counts / counts.sum()).astype(self.dtype)
        target = self.decoder.params["bias"]
        target[...] = bias if self.xp is np else self.xp.asarray(bias)

    # ------------------------------------------------------------------ running
    def forward(self, ids: Array) -> Any:
        """Logits ``(N, T, V)`` for token ids ``(N, T)``, continuing the carried state."""
        return self.decoder(self.drop_out(self._recurrent(ids)))

    def _recurrent(self, ids: Array) -> Any:
        """The recurrent outputs ``(N, T, H)``. When the vocabulary is smaller than the
        batch's token count and no dropout acts on the embeddings (a character model),
        the embedding and the first input projection run as one table lookup
        (:meth:`Recurrent.forward_tokens`); the result is the same."""
        emb = self.embedding
        inactive = not self.drop_in.training or self.drop_in.p == 0
        self._tokens = inactive and self.rnn.token_input \
            and TokenInput.pays(emb.num_embeddings, int(ids.size))
        if self._tokens:
            return self.rnn.forward_tokens(ids, emb.params["weight"], emb.grads["weight"])
        return self.rnn(self.drop_in(emb(ids)))

    def forward_loss(self, ids: Array, targets: Array) -> float:
        """Mean cross-entropy (nats per token) of next-token ``targets`` ``(N, T)``.

        The logits go into a buffer reused from step to step, and the loss overwrites them
        with their gradient (no copies of the large ``(N*T, V)`` array).
        """
        hs = self.drop_out(self._recurrent(ids))
        N, T = hs.shape[:2]
        logits = self.decoder(hs, out=self.scratch("logits", (N * T * self.config.vocab_size,)))
        return self.criterion.forward(logits, targets, inplace=True)

    def backward(self, dloss: float = 1.0) -> None:
        """Backward from the last :meth:`forward_loss`; adds into every gradient.

        The weight gradients (of the output layer, then of each recurrent layer as its
        loop ends) depend on nothing that comes after them, so the engine may compute them
        on a second core while this thread runs the chain that the input gradients need
        (:meth:`rnnlab.fast.engine.Engine.run_beside`), when the vocabulary is large
        against the recurrent layers and the weights are not tied; the sums are the same.
        """
        dlogits = self.criterion.backward(dloss)
        engine = engine_for(self.xp, self.dtype)
        if self.config.tie_weights or not self.rnn.defers_grads \
                or not engine.beside_pays(*self._backward_macs(dlogits)):
            self._backward_recurrent(self.decoder.backward(dlogits))
            return
        dh, parts = self.decoder.backward_split(dlogits)
        engine.run_beside(lambda add: self._backward_recurrent(dh, add), parts)

    def _backward_recurrent(self, dh: Array, defer: Any = None) -> None:
        # defer is None unless the stack defers its weight gradients (backward above)
        dxs = self.rnn.backward(self.drop_out.backward(dh), defer=defer)
        if not self._tokens:  # else the recurrent layer has added the embedding's gradient
            self.embedding.backward(self.drop_in.backward(dxs))

    def _backward_macs(self, dlogits: Array) -> tuple[int, int]:
        """Multiply-adds of the backward's weight gradients and of its input-gradient
        chain. Per layer the chain has the loop's products and the input gradient, the
        weight gradients two products: each rows x G*H x (input + hidden)."""
        cfg = self.config
        rows = dlogits.size // cfg.vocab_size
        G = self.rnn.n_gates
        rec = cfg.hidden_size if self.rnn.cell_kind.recurrent else 0  # min cells: no W_hh
        layers = sum(rows * G * cfg.hidden_size * (d + rec)
                     for d in [cfg.embedding_dim] + [cfg.hidden_size] * (cfg.num_layers - 1))
        return rows * cfg.hidden_size * cfg.vocab_size + layers, layers

    # -------------------------------------------------------------------- state
    def reset_state(self) -> None:
        """Start the next window from a zero state (new epoch, new text)."""
        self.rnn.reset_state()

    def get_state(self) -> tuple[Any, Any] | None:
        """The carried recurrent state ``(h, c)`` (``c`` is None for RNN/GRU), or None."""
        return self.rnn.get_state()

    def set_state(self, state: tuple[Any, Any] | None) -> None:
        """Restore a state from :meth:`get_state` (``None`` resets)."""
        if state is None:
            self.rnn.reset_state()
        elif self.rnn.has_cell:
            self.rnn.set_state(state)
        else:
            self.rnn.set_state(state[0])

    def stepper(self, batch: int = 1) -> LMStepper:
        """A one-token-at-a-time runner for generation (see :class:`LMStepper`)."""
        return LMStepper(self, batch)

    def extra_repr(self) -> str:
        c = self.config
        return (f"vocab={c.vocab_size}, cell={c.cell}, layers={c.num_layers}, "
                f"hidden={c.hidden_size}, tied={c.tie_weights}")


class LMStepper:
    """Feeds one token per row and returns next-token logits, for generation and beam search.

    Inference only (no dropout, no backward), with its own state (the model's carried
    state is not touched). For small vocabularies the embedding and the first input
    projection are folded into one table, so a step starts with a row lookup.
    """

    #: Largest ``V * G * H`` table built (elements); bigger models multiply per step.
    TABLE_LIMIT = 4_000_000

    def __init__(self, model: RNNLM, batch: int = 1) -> None:
        self.model, self.xp = model, model.xp
        rnn = model.rnn
        self.inner = rnn.stepper(batch)
        emb = model.embedding.params["weight"]
        if self.inner.takes_rows \
                and emb.shape[0] * rnn.n_gates * rnn.hidden_size <= self.TABLE_LIMIT:
            self.inner.table = self.inner.input_table(emb)
        self._w = model.decoder.params["weight"]
        self._b = model.decoder.params["bias"]
        self._logits = self.xp.empty((batch, self._w.shape[0]), dtype=model.dtype)

    def step(self, ids: Array) -> Any:
        """Next-token logits ``(N, V)`` after feeding token ids ``(N,)`` (a reused buffer)."""
        check_token_ids(ids, "LMStepper.step", "ids", num=self._w.shape[0], xp=self.xp,
                        ndims=(1,))
        inner = self.inner
        if inner.table is not None:
            h = inner.step(rows=ids)
        else:
            h = inner.step(self.model.embedding.params["weight"][ids])
        self.xp.matmul(h, self._w.T, out=self._logits)
        self._logits += self._b
        return self._logits

    def reorder(self, index: Array) -> None:
        """Keep state rows ``index`` (beam search)."""
        self.inner.reorder(index)

    def reset(self) -> None:
        self.inner.reset()
