"""Decoding: greedy and beam search, string predictions, exact-match accuracy.

Both searches feed the decoder its own previous output, starting from the start id,
for ``max_len`` steps (the fixed answer width) or until every row has produced
``eos_id``. ``banned`` ids (padding, the start marker) get probability 0.

Beam search keeps the ``beam_width`` best partial answers of every row by total
log-probability ``sum_t log p(y_t | y_<t, x)`` (no length normalisation: answers of a
fixed width, or ended by ``<eos>`` whose probability is part of the score); finished
beams are carried with their score. With ``beam_width=1`` it picks exactly the greedy
answer (ties go to the lower id in both).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rnnlab.backend import Array, to_numpy
from rnnlab.seq2seq.data import Codec
from rnnlab.seq2seq.decoders import select_state
from rnnlab.seq2seq.model import Seq2Seq, source_order
from rnnlab.seq2seq.tasks import Pairs


def _log_softmax(logits: Array, banned: Sequence[int]) -> np.ndarray:
    z = to_numpy(logits).astype(np.float64)
    if banned:
        z[:, list(banned)] = -np.inf
    z -= z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _check(max_len: Any, beam_width: Any = 1) -> None:
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"decode: max_len expected an int >= 1, got {max_len!r}")
    if isinstance(beam_width, bool) or not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(f"decode: beam_width expected an int >= 1, got {beam_width!r}")


def greedy_decode(model: Seq2Seq, src: Array, src_lengths: Any, max_len: int, start_id: int,
                  eos_id: int | None = None, banned: Sequence[int] = ()
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """Most likely next character at every step.

    Returns ``ids`` ``(N, L)`` (``L <= max_len``; after ``<eos>`` a row repeats it) and the
    attention ``(N, L, S)`` over source positions, or None without attention.
    """
    _check(max_len)
    enc = model.encode(src, src_lengths)
    state = model.decoder.start(enc)
    N = src.shape[0]
    tokens = np.full(N, start_id, dtype=np.int64)
    done = np.zeros(N, dtype=bool)
    out, weights = [], []
    for _ in range(max_len):
        logits, state, a = model.decoder.step(model._ids(tokens), state)
        logp = _log_softmax(logits, banned)
        tokens = logp.argmax(axis=1)
        if eos_id is not None:
            tokens[done] = eos_id
            done |= tokens == eos_id
        out.append(tokens)
        if a is not None:
            weights.append(to_numpy(a))
        if eos_id is not None and done.all():
            break
    att = None
    if weights:
        att = to_numpy(source_order(np.stack(weights, axis=1), enc.order))
    return np.stack(out, axis=1), att


def beam_search(model: Seq2Seq, src: Array, src_lengths: Any, max_len: int, start_id: int,
                eos_id: int | None = None, banned: Sequence[int] = (), beam_width: int = 5
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The best of ``beam_width`` hypotheses per row.

    Returns ``ids`` ``(N, L)``, their log-probabilities ``(N,)`` and the attention
    ``(N, L, S)`` (or None) of the chosen hypotheses.
    """
    _check(max_len, beam_width)
    W = beam_width
    enc = model.encode(src, src_lengths)
    N = src.shape[0]
    rows = np.repeat(np.arange(N), W)
    state = select_state(model.decoder.start(enc), model._ids(rows))
    scores = np.full((N, W), -np.inf)
    scores[:, 0] = 0.0
    finished = np.zeros((N, W), dtype=bool)
    history = np.zeros((N, W, 0), dtype=np.int64)
    att_hist: np.ndarray | None = None
    tokens = np.full(N * W, start_id, dtype=np.int64)
    for _ in range(max_len):
        logits, state, a = model.decoder.step(model._ids(tokens), state)
        logp = _log_softmax(logits, banned)
        V = logp.shape[1]
        logp = logp.reshape(N, W, V)
        if eos_id is not None and finished.any():
            logp[finished] = -np.inf
            logp[finished, eos_id] = 0.0
        flat = (scores[:, :, None] + logp).reshape(N, W * V)
        top = np.argsort(-flat, axis=1, kind="stable")[:, :W]
        parent, tokens2 = top // V, top % V
        scores = np.take_along_axis(flat, top, axis=1)
        pick = (np.arange(N)[:, None] * W + parent).reshape(-1)
        state = select_state(state, model._ids(pick))
        history = np.concatenate([np.take_along_axis(history, parent[:, :, None], axis=1),
                                  tokens2[:, :, None]], axis=2)
        if a is not None:  # the attention of this step, then reordered with its beams
            a = to_numpy(a).reshape(N, W, 1, -1)
            cur = a if att_hist is None else np.concatenate([att_hist, a], axis=2)
            att_hist = np.take_along_axis(cur, parent[:, :, None, None], axis=1)
        finished = np.take_along_axis(finished, parent, axis=1)
        if eos_id is not None:
            finished |= tokens2 == eos_id
        tokens = tokens2.reshape(-1)
        if eos_id is not None and finished.all():
            break
    best = scores.argmax(axis=1)
    ids = history[np.arange(N), best]
    att = None
    if att_hist is not None:
        att = to_numpy(source_order(att_hist[np.arange(N), best], enc.order))
    return ids, scores[np.arange(N), best], att


def predict(model: Seq2Seq, codec: Codec, questions: Sequence[str], beam_width: int = 1,
            batch_size: int = 1000, max_len: int | None = None,
            return_attention: bool = False) -> Any:
    """Answers (str) to ``questions``; with ``return_attention`` also a list of
    ``(answer_len, question_len)`` arrays (None without attention)."""
    if isinstance(questions, str):
        raise TypeError("predict: questions expected a list of str, got a str")
    if max_len is None:
        max_len = codec.max_answer_len
    was_training = model.training
    model.eval()
    answers: list[str] = []
    attention: list[Any] = []
    try:
        for start in range(0, len(questions), batch_size):
            part = list(questions[start: start + batch_size])
            src, lengths = codec.encode_questions(part)
            args = (model, src, lengths, max_len, codec.start_id,
                    codec.eos_id if codec.use_eos else None, codec.banned_ids())
            if beam_width == 1:
                ids, att = greedy_decode(*args)
            else:
                ids, _, att = beam_search(*args, beam_width=beam_width)
            for i in range(len(part)):
                text = codec.decode_answer(ids[i])
                answers.append(text)
                if return_attention:
                    q_len = len(codec.prepare_question(part[i]))
                    attention.append(None if att is None else att[i, : len(text), :q_len])
    finally:
        model.train(was_training)
    return (answers, attention) if return_attention else answers


def exact_match(model: Seq2Seq, codec: Codec, pairs: Pairs, beam_width: int = 1,
                batch_size: int = 1000) -> float:
    """Fraction of ``pairs`` whose whole predicted answer equals the reference.

    For fixed-width data (the book's files) the padding spaces are part of the answer,
    as in the book's evaluation.
    """
    if len(pairs) == 0:
        raise ValueError("exact_match: pairs expected at least one pair, got none")
    answers = predict(model, codec, pairs.questions, beam_width, batch_size)
    return float(np.mean([p == a for p, a in zip(answers, pairs.answers, strict=True)]))

