"""``Seq2Seq``: an :class:`~rnnlab.seq2seq.encoder.Encoder` and one of the decoders.

::

    src (N, S) --Encoder--> hs (N, S, K*H), s0 = (h, c)
    dec_in (N, U) --Decoder(s0, hs)--> logits (N, U, V) --SoftmaxCrossEntropy--> loss

Decoder kinds (:data:`DECODERS`): ``"plain"`` (Sutskever et al.), ``"peeky"`` (the
book's), ``"attention"`` (Luong et al. 2015; score ``"dot"`` by default, or
``"general"``/``"additive"``) and ``"bahdanau"`` (Bahdanau et al. 2015; score
``"additive"`` by default). The loss is the mean cross-entropy over the target
characters (``IGNORE_INDEX`` positions excluded).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnlab._config import ConfigDict
from rnnlab.backend import Array, RNGLike, make_rng, xp_of
from rnnlab.nn import Module, SoftmaxCrossEntropy
from rnnlab.nn.checks import check_positive_int
from rnnlab.nn.module import LayerOptions
from rnnlab.seq2seq.attention import check_score
from rnnlab.seq2seq.data import IGNORE_INDEX, Batch
from rnnlab.seq2seq.decoders import AttentionDecoder, BahdanauDecoder, Decoder
from rnnlab.seq2seq.encoder import CELLS, Encoder, EncoderOutput

DECODERS = ("plain", "peeky", "attention", "bahdanau")
_DEFAULT_SCORE = {"attention": "dot", "bahdanau": "additive"}


@dataclass
class Seq2SeqConfig(ConfigDict):
    """Everything needed to rebuild a :class:`Seq2Seq` (saved in every checkpoint)."""

    vocab_size: int
    embedding_dim: int = 16
    hidden_size: int = 128
    cell: str = "lstm"
    decoder: str = "peeky"
    score: str | None = None  # attention score; None: the decoder's default
    reverse: bool = False  # read the source backwards
    bidirectional: bool = False  # bidirectional encoder (decoder gets 2 * hidden_size)
    dtype: str = "float32"

    def __post_init__(self) -> None:
        owner = "Seq2SeqConfig"
        for name in ("vocab_size", "embedding_dim", "hidden_size"):
            check_positive_int(getattr(self, name), owner, name)
        if self.cell not in CELLS:
            raise ValueError(f"{owner}: cell expected one of {sorted(CELLS)}, got "
                             f"{self.cell!r}")
        if self.decoder not in DECODERS:
            raise ValueError(f"{owner}: decoder expected one of {DECODERS}, got "
                             f"{self.decoder!r}")
        if self.score is not None:
            if self.decoder not in _DEFAULT_SCORE:
                raise ValueError(f"{owner}: score expected None for decoder "
                                 f"{self.decoder!r} (no attention), got {self.score!r}")
            check_score(self.score, owner)
        for name in ("reverse", "bidirectional"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{owner}: {name} expected a bool, got "
                                f"{getattr(self, name)!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"{owner}: dtype expected 'float32' or 'float64', got "
                             f"{self.dtype!r}")

    @property
    def attention_score(self) -> str | None:
        """The score in use, or None for decoders without attention."""
        return self.score or _DEFAULT_SCORE.get(self.decoder)


class Seq2Seq(Module):
    """Encoder-decoder for character transduction.

    Parameters
    ----------
    config : Seq2SeqConfig
    rng : numpy.random.Generator or int
        Drives every initialisation.
    device : str, optional

    Attributes
    ----------
    attention_weights : array ``(N, U, S)`` or None
        After :meth:`forward`: the attention of each target step over the source
        positions, in the source's own order (also when read reversed).
    """

    def __init__(self, config: Seq2SeqConfig, *, rng: RNGLike = None,
                 device: str | None = None) -> None:
        if not isinstance(config, Seq2SeqConfig):
            raise TypeError(f"Seq2Seq: config expected a Seq2SeqConfig, got "
                            f"{type(config).__name__}")
        super().__init__(device=device, dtype=config.dtype)
        self.config = c = config
        rng = make_rng(rng)
        common: LayerOptions = {"rng": rng, "device": device, "dtype": self.dtype}
        self.encoder = Encoder(c.vocab_size, c.embedding_dim, c.hidden_size, c.cell,
                               c.bidirectional, c.reverse, **common)
        H = self.encoder.output_size
        self.decoder: Decoder | AttentionDecoder | BahdanauDecoder
        if c.decoder in ("plain", "peeky"):
            self.decoder = Decoder(c.vocab_size, c.embedding_dim, H, c.cell,
                                   peeky=c.decoder == "peeky", **common)
        else:
            kind = AttentionDecoder if c.decoder == "attention" else BahdanauDecoder
            self.decoder = kind(c.vocab_size, c.embedding_dim, H, c.cell,
                                score=c.score or _DEFAULT_SCORE[c.decoder], key_size=H,
                                **common)
        self.criterion = SoftmaxCrossEntropy(ignore_index=IGNORE_INDEX, device=device)
        self._enc: EncoderOutput | None = None

    def extra_repr(self) -> str:
        c = self.config
        return (f"cell={c.cell}, decoder={c.decoder}, score={c.attention_score}, "
                f"reverse={c.reverse}, bidirectional={c.bidirectional}")

    # ------------------------------------------------------------------- running
    def _ids(self, ids: Array) -> Any:
        return ids if self.xp is np else self.xp.asarray(ids)

    def encode(self, src: Array, src_lengths: Any = None) -> EncoderOutput:
        """Run the encoder over ids ``src`` ``(N, S)`` (rows of ``src_lengths``)."""
        return self.encoder(self._ids(src), src_lengths)

    def forward(self, src: Array, dec_in: Array, src_lengths: Any = None) -> Any:
        """Teacher-forced logits ``(N, U, V)``."""
        self._enc = self.encode(src, src_lengths)
        return self.decoder(self._ids(dec_in), self._enc)

    def forward_loss(self, batch: Batch) -> float:
        """Mean cross-entropy per target character of a :class:`Batch`."""
        logits = self.forward(batch.src, batch.dec_in, batch.src_lengths)
        return self.criterion(logits, self._ids(batch.targets))

    def backward(self, dloss: float = 1.0) -> None:
        """Backward from the last :meth:`forward_loss`; adds into every gradient."""
        dhs, dh, dc = self.decoder.backward(self.criterion.backward(dloss))
        self.encoder.backward(dhs, dh, dc)

    @property
    def attention_weights(self) -> Any:
        att = getattr(self.decoder, "attention", None)
        if att is None or att.weights is None or self._enc is None:
            return None
        return source_order(att.weights, self._enc.order)


def source_order(weights: Any, order: np.ndarray | None) -> Any:
    """Attention ``(N, U, S)`` over encoder steps -> over source positions."""
    if order is None:
        return weights
    xp = xp_of(weights)
    return xp.take_along_axis(weights, xp.asarray(order)[:, None, :], axis=2)
