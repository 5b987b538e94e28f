"""Text generation from a language model: greedy, temperature, top-k, top-p (nucleus), beam.

>>> text = generate(model, vocab, prime="def ", length=200, temperature=0.8, seed=0)

The prime text is tokenised with the model's vocabulary and fed through the model to set
its state; then one token at a time is chosen and fed back. Symbols of the prime that
are not in the vocabulary are an error that lists them, or, with ``unknown="unk"`` and a
vocabulary that has ``<unk>``, are replaced by it with a warning. The same ``seed`` gives
the same text.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from rnnlab.backend import blas_threads, make_rng, to_numpy

STRATEGIES = ("sample", "greedy", "beam")


def _check_options(length: int, strategy: str, temperature: float, top_k: int | None,
                   top_p: float | None, beam_width: int, unknown: str) -> None:
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise ValueError(f"generate: length expected an int >= 0, got {length!r}")
    if strategy not in STRATEGIES:
        raise ValueError(f"generate: strategy expected one of {STRATEGIES}, got {strategy!r}")
    if not (isinstance(temperature, int | float) and np.isfinite(temperature)
            and temperature > 0):
        raise ValueError(f"generate: temperature expected a float > 0, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)
                              or top_k < 1):
        raise ValueError(f"generate: top_k expected an int >= 1, got {top_k!r}")
    if top_p is not None and not (isinstance(top_p, int | float) and 0 < top_p <= 1):
        raise ValueError(f"generate: top_p expected a float in (0, 1], got {top_p!r}")
    if isinstance(beam_width, bool) or not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(f"generate: beam_width expected an int >= 1, got {beam_width!r}")
    if unknown not in ("error", "unk"):
        raise ValueError(f"generate: unknown expected 'error' or 'unk', got {unknown!r}")


def encode_prime(vocab: Any, prime: str, unknown: str = "error") -> list[int]:
    """Token ids of ``prime``; unknown symbols raise (or become ``<unk>`` with a warning)."""
    if not isinstance(prime, str):
        raise TypeError(f"generate: prime expected a str, got {type(prime).__name__}")
    tokens = vocab.tokenize(prime)
    missing = sorted({t for t in tokens if t not in vocab.stoi})
    if missing:
        shown = ", ".join(repr(t) for t in missing[:10]) + (" ..." if len(missing) > 10 else "")
        if unknown == "unk" and vocab.unk_id is not None:
            warnings.warn(f"generate: prime symbols not in the vocabulary replaced by <unk>: "
                          f"{shown}", stacklevel=3)
        else:
            hint = " (pass unknown='unk' to map them to <unk>)" if vocab.unk_id is not None \
                else ""
            raise ValueError(f"generate: prime has {len(missing)} symbol(s) not in the "
                             f"vocabulary: {shown}{hint}")
    unk = vocab.unk_id
    return [vocab.stoi.get(t, unk) for t in tokens]


def _start_ids(vocab: Any) -> list[int]:
    """What an empty prime starts from: end of line/sentence if the vocabulary has it."""
    for token in ("\n", "<eos>"):
        if token in vocab.stoi:
            return [vocab.stoi[token]]
    return [0]


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def filter_distribution(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                        top_p: float | None = None) -> np.ndarray:
    """Probabilities ``(V,)`` after temperature, top-k and top-p (nucleus) filtering."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    if top_k is not None and top_k < z.size:
        kth = np.partition(z, -top_k)[-top_k]
        z = np.where(z < kth, -np.inf, z)
    p = np.exp(z - z.max())
    p /= p.sum()
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-p, kind="stable")
        cumulative = np.cumsum(p[order])
        keep = order[: int(np.searchsorted(cumulative, top_p) + 1)]
        mask = np.zeros_like(p, dtype=bool)
        mask[keep] = True
        p = np.where(mask, p, 0.0)
        p /= p.sum()
    return p


def _sample(p: np.ndarray, rng: np.random.Generator) -> int:
    """Draw an index from probabilities ``p`` (inverse CDF; cheaper than ``rng.choice``)."""
    cdf = np.cumsum(p)
    return int(min(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"), p.size - 1))


def _feed(stepper: Any, xp: Any, ids: list[int], batch: int = 1) -> np.ndarray:
    """Feed ``ids`` one by one; host float64 logits after the last ``(batch, V)``."""
    logits = None
    for token in ids:
        logits = stepper.step(xp.full((batch,), token, dtype=xp.int64))
    return to_numpy(logits).astype(np.float64)


def generate_ids(model: Any, prime_ids: list[int], length: int, *, strategy: str = "sample",
                 temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 beam_width: int = 5, rng: Any = None) -> list[int]:
    """``length`` new token ids after ``prime_ids`` (the prime itself is not returned).

    Runs on the model's :meth:`~rnnlab.models.RNNLM.stepper` (its own state; the model's
    carried state and mode are not changed), with one BLAS thread (the products of a
    single row are too small to share).
    """
    rng = make_rng(rng)
    if not prime_ids:
        raise ValueError("generate_ids: prime_ids expected at least one token id")
    V = getattr(getattr(model, "config", None), "vocab_size", None)
    bad = next((t for t in prime_ids if isinstance(t, bool) or not isinstance(t, int | np.integer)
                or (V is not None and not 0 <= t < V)), None)
    if bad is not None:  # the one-step runner would index (or wrap around) its tables
        raise ValueError(f"generate_ids: prime_ids expected token ids in [0, {V}), got {bad!r}")
    with blas_threads(1):
        if strategy == "beam":
            return _beam(model, prime_ids, length, beam_width)
        stepper, xp = model.stepper(1), model.xp
        logits = _feed(stepper, xp, prime_ids)[0]
        out: list[int] = []
        token_buf = xp.empty((1,), dtype=xp.int64)
        for _ in range(length):
            if strategy == "greedy":
                token = int(np.argmax(logits))
            else:
                token = _sample(filter_distribution(logits, temperature, top_k, top_p), rng)
            out.append(token)
            if len(out) < length:
                token_buf[0] = token
                logits = to_numpy(stepper.step(token_buf))[0].astype(np.float64)
        return out


def _beam(model: Any, prime_ids: list[int], length: int, width: int) -> list[int]:
    """Beam search: the most probable continuation of ``length`` tokens among ``width`` beams."""
    if length == 0:
        return []
    xp = model.xp
    first_logp = _log_softmax(_feed(model.stepper(1), xp, prime_ids))[0]
    V = first_logp.size
    width = min(width, V)
    stepper = model.stepper(width)
    _feed(stepper, xp, prime_ids, batch=width)  # every beam starts from the prime's state
    first = np.argsort(-first_logp, kind="stable")[:width]
    seqs = [[int(t)] for t in first]
    scores = first_logp[first]
    for _ in range(length - 1):
        step_logp = _log_softmax(to_numpy(stepper.step(xp.asarray(np.array(
            [s[-1] for s in seqs], dtype=np.int64)))).astype(np.float64))  # (B, V)
        total = (scores[:, None] + step_logp).ravel()
        best = np.argsort(-total, kind="stable")[:width]
        parent = best // V
        stepper.reorder(xp.asarray(parent))
        seqs = [seqs[b] + [int(t)] for b, t in zip(parent, best % V, strict=True)]
        scores = total[best]
    return seqs[int(np.argmax(scores))]


def generate(model: Any, vocab: Any, prime: str = "", length: int = 200, *,
             strategy: str = "sample", temperature: float = 1.0, top_k: int | None = None,
             top_p: float | None = None, beam_width: int = 5, seed: Any = None,
             unknown: str = "error") -> str:
    """Continue ``prime`` by ``length`` tokens; return prime and continuation as text."""
    _check_options(length, strategy, temperature, top_k, top_p, beam_width, unknown)
    prime_ids = encode_prime(vocab, prime, unknown) if prime else []
    start = prime_ids or _start_ids(vocab)
    new = generate_ids(model, start, length, strategy=strategy, temperature=temperature,
                       top_k=top_k, top_p=top_p, beam_width=beam_width, rng=seed)
    return vocab.detokenize(vocab.decode(prime_ids + new))
