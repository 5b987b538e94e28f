"""Text generation from a language model: greedy, temperature, top-k, top-p (nucleus), beam.

With a trained ``model`` and its ``vocab``::

    text = generate(model, vocab, prime="def ", length=200, temperature=0.8, seed=0)
    for piece in generate_stream(model, vocab, prime="def ", length=10**6, seed=0):
        print(piece, end="", flush=True)

The prime text is tokenised with the model's vocabulary and fed through the model to set
its state; then one token at a time is chosen and fed back. Symbols of the prime that
are not in the vocabulary are an error that lists them, or, with ``unknown="unk"`` and a
vocabulary that has ``<unk>``, are replaced by it with a warning. A character model never
generates a special token (``<unk>``, ``<eos>``: they stand for no text,
:func:`not_text_ids`). The same ``seed`` gives
the same text, whether it is taken whole (:func:`generate`, :func:`generate_ids`) or as
it is made (:func:`generate_stream`, :func:`generate_ids_iter`, ``chunk`` tokens at a
time; a beam search is decided only at its end, so it comes as one piece).

Sizes and counts accept Python and NumPy integers (not bools); temperature and top-p
accept Python and NumPy real numbers.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from rnnlab.backend import make_rng, to_numpy
from rnnlab.fast import blas_threads

STRATEGIES = ("sample", "greedy", "beam")
#: Tokens per piece of :func:`generate_stream` unless told otherwise.
DEFAULT_CHUNK = 32
#: Longest continuation a beam search makes: it is decided only at its end, so nothing
#: is shown while it runs (sampling and greedy decoding stream, and have no limit).
MAX_BEAM_LENGTH = 10_000


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and \
        not isinstance(value, bool)


def _shown(value: Any) -> str:
    """``repr`` of a value, NumPy scalars shown as the Python number they hold."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _check_options(owner: str, length: Any, strategy: Any, temperature: Any, top_k: Any,
                   top_p: Any, beam_width: Any, chunk: Any = 1) -> dict[str, Any]:
    """The options checked (``ValueError`` naming the argument) and made plain Python
    numbers (NumPy integers and floats accepted)."""
    if not _is_int(length) or length < 0:
        raise ValueError(f"{owner}: length expected an int >= 0, got {_shown(length)}")
    if strategy not in STRATEGIES:
        raise ValueError(f"{owner}: strategy expected one of {STRATEGIES}, "
                         f"got {_shown(strategy)}")
    if not (_is_real(temperature) and np.isfinite(temperature) and temperature > 0):
        raise ValueError(f"{owner}: temperature expected a float > 0, "
                         f"got {_shown(temperature)}")
    if top_k is not None and (not _is_int(top_k) or top_k < 1):
        raise ValueError(f"{owner}: top_k expected an int >= 1, got {_shown(top_k)}")
    if top_p is not None and not (_is_real(top_p) and 0 < top_p <= 1):
        raise ValueError(f"{owner}: top_p expected a float in (0, 1], got {_shown(top_p)}")
    if not _is_int(beam_width) or beam_width < 1:
        raise ValueError(f"{owner}: beam_width expected an int >= 1, "
                         f"got {_shown(beam_width)}")
    if not _is_int(chunk) or chunk < 1:
        raise ValueError(f"{owner}: chunk expected an int >= 1, got {_shown(chunk)}")
    if strategy == "beam" and length > MAX_BEAM_LENGTH:
        raise ValueError(f"{owner}: length expected at most {MAX_BEAM_LENGTH:,} tokens with "
                         f"strategy 'beam' (a beam search shows nothing until it ends), got "
                         f"{_shown(length)}; sample or decode greedily for longer texts")
    return {"length": int(length), "strategy": strategy, "temperature": float(temperature),
            "top_k": None if top_k is None else int(top_k),
            "top_p": None if top_p is None else float(top_p),
            "beam_width": int(beam_width), "chunk": int(chunk)}


def _check_seed(owner: str, seed: Any) -> None:
    """A seed is None, an int >= 0 or a numpy Generator (``ValueError`` naming it)."""
    if seed is None or isinstance(seed, np.random.Generator):
        return
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"{owner}: seed expected an int >= 0 or None, got {_shown(seed)}")


def _check_unknown(owner: str, unknown: Any) -> None:
    if unknown not in ("error", "unk"):
        raise ValueError(f"{owner}: unknown expected 'error' or 'unk', got {unknown!r}")


class UnknownSymbolsError(ValueError):
    """The prime holds symbols that are not in the vocabulary (``missing``: them, sorted;
    ``can_map``: whether the vocabulary has ``<unk>`` to map them to)."""

    def __init__(self, message: str, missing: list[str], can_map: bool) -> None:
        super().__init__(message)
        self.missing, self.can_map = missing, can_map


class UnknownSymbolsWarning(UserWarning):
    """Prime symbols not in the vocabulary were replaced by ``<unk>`` (``missing``)."""

    def __init__(self, message: str, missing: list[str]) -> None:
        super().__init__(message)
        self.missing = missing


def shown_symbols(missing: list[str]) -> str:
    """The first ten of ``missing``, quoted, for a message."""
    return ", ".join(repr(t) for t in missing[:10]) + (" ..." if len(missing) > 10 else "")


def encode_prime(vocab: Any, prime: str, unknown: str = "error") -> list[int]:
    """Token ids of ``prime``; unknown symbols raise :class:`UnknownSymbolsError` (or
    become ``<unk>`` with an :class:`UnknownSymbolsWarning`)."""
    if not isinstance(prime, str):
        raise TypeError(f"generate: prime expected a str, got {type(prime).__name__}")
    tokens = vocab.tokenize(prime)
    missing = sorted({t for t in tokens if t not in vocab.stoi})
    if missing:
        shown = shown_symbols(missing)
        if unknown == "unk" and vocab.unk_id is not None:
            warnings.warn(UnknownSymbolsWarning(
                f"generate: prime symbols not in the vocabulary replaced by <unk>: {shown}",
                missing), stacklevel=3)
        else:
            hint = " (pass unknown='unk' to map them to <unk>)" if vocab.unk_id is not None \
                else ""
            raise UnknownSymbolsError(f"generate: prime has {len(missing)} symbol(s) not in "
                                      f"the vocabulary: {shown}{hint}", missing,
                                      vocab.unk_id is not None)
    unk = vocab.unk_id
    return [vocab.stoi.get(t, unk) for t in tokens]


def not_text_ids(vocab: Any) -> tuple[int, ...]:
    """Ids a model of ``vocab`` must never generate because they stand for no text: at
    character level, the special tokens (``<unk>``, ``<eos>``: a character corpus keeps
    its newlines as characters), unless nothing else is left. Word-level specials are
    text (``<eos>`` is a line end; ``<unk>`` is printed as is, as corpora like PTB do)."""
    if getattr(vocab, "level", None) != "char":
        return ()
    ids = tuple(sorted(vocab.stoi[s] for s in getattr(vocab, "specials", ()) if s in vocab.stoi))
    return ids if len(ids) < len(vocab) else ()


def _mask(logits: np.ndarray, banned: tuple[int, ...]) -> np.ndarray:
    """``logits`` (host float64, a copy) with the ``banned`` ids made impossible."""
    if banned:
        logits[..., list(banned)] = -np.inf
    return logits


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


def _check_prime_ids(owner: str, model: Any, prime_ids: Any) -> list[int]:
    try:
        ids = list(prime_ids)
    except TypeError:
        raise TypeError(f"{owner}: prime_ids expected a sequence of token ids, got "
                        f"{type(prime_ids).__name__}") from None
    if not ids:
        raise ValueError(f"{owner}: prime_ids expected at least one token id")
    V = getattr(getattr(model, "config", None), "vocab_size", None)
    bad = next((t for t in ids if not _is_int(t)
                or (V is not None and not 0 <= t < V)), None)
    if bad is not None:  # the one-step runner would index (or wrap around) its tables
        raise ValueError(f"{owner}: prime_ids expected token ids in [0, {V}), got {bad!r}")
    return [int(t) for t in ids]


def generate_ids_iter(model: Any, prime_ids: list[int], length: int, *,
                      strategy: str = "sample", temperature: float = 1.0,
                      top_k: int | None = None, top_p: float | None = None,
                      beam_width: int = 5, rng: Any = None,
                      chunk: int = DEFAULT_CHUNK) -> Iterator[list[int]]:
    """:func:`generate_ids` as it is made: lists of at most ``chunk`` new token ids, in
    order (a beam search: one list at the end). The options are checked at the call;
    stopping early (``close()`` or leaving the loop) is safe at any point."""
    o = _check_options("generate_ids_iter", length, strategy, temperature, top_k, top_p,
                       beam_width, chunk)
    prime_ids = _check_prime_ids("generate_ids_iter", model, prime_ids)
    _check_seed("generate_ids_iter", rng)
    return _id_chunks(model, prime_ids, make_rng(rng), **o)


def _id_chunks(model: Any, prime_ids: list[int], rng: np.random.Generator, *, length: int,
               strategy: str, temperature: float, top_k: int | None, top_p: float | None,
               beam_width: int, chunk: int, banned: tuple[int, ...] = ()
               ) -> Iterator[list[int]]:
    """The generation loop (options already checked); one BLAS thread while it computes
    (the products of a single row are too small to share), none held between chunks.
    ``banned`` ids are never chosen."""
    if length == 0:
        return
    if strategy == "beam":
        with blas_threads(1):
            best = _beam(model, prime_ids, length, beam_width, banned)
        yield best
        return
    stepper, xp = model.stepper(1), model.xp
    with blas_threads(1):
        logits = _mask(_feed(stepper, xp, prime_ids)[0], banned)
    token_buf = xp.empty((1,), dtype=xp.int64)
    made = 0
    while made < length:
        out: list[int] = []
        with blas_threads(1):
            for _ in range(min(chunk, length - made)):
                if strategy == "greedy":
                    token = int(np.argmax(logits))
                else:
                    token = _sample(filter_distribution(logits, temperature, top_k, top_p), rng)
                out.append(token)
                made += 1
                if made < length:
                    token_buf[0] = token
                    logits = _mask(to_numpy(stepper.step(token_buf))[0].astype(np.float64),
                                   banned)
        yield out


def generate_ids(model: Any, prime_ids: list[int], length: int, *, strategy: str = "sample",
                 temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 beam_width: int = 5, rng: Any = None) -> list[int]:
    """``length`` new token ids after ``prime_ids`` (the prime itself is not returned).

    Runs on the model's :meth:`~rnnlab.models.RNNLM.stepper` (its own state; the model's
    carried state and mode are not changed), with one BLAS thread.
    """
    o = _check_options("generate_ids", length, strategy, temperature, top_k, top_p,
                       beam_width)
    prime_ids = _check_prime_ids("generate_ids", model, prime_ids)
    _check_seed("generate_ids", rng)
    o["chunk"] = max(1, o["length"])
    return [t for part in _id_chunks(model, prime_ids, make_rng(rng), **o) for t in part]


def _beam(model: Any, prime_ids: list[int], length: int, width: int,
          banned: tuple[int, ...] = ()) -> list[int]:
    """Beam search: the most probable continuation of ``length`` tokens among ``width`` beams."""
    if length == 0:
        return []
    xp = model.xp
    first_logp = _log_softmax(_mask(_feed(model.stepper(1), xp, prime_ids), banned))[0]
    V = first_logp.size
    width = min(width, V - len(banned))
    stepper = model.stepper(width)
    _feed(stepper, xp, prime_ids, batch=width)  # every beam starts from the prime's state
    first = np.argsort(-first_logp, kind="stable")[:width]
    # the beams as back-pointers: tokens[k][b] is beam b's k-th token, parents[k][b] the
    # beam it extends at step k - 1 (memory O(length * width), no sequence copied)
    tokens = [first.astype(np.int64)]
    parents: list[np.ndarray] = []
    scores = first_logp[first]
    for _ in range(length - 1):
        step_logp = _log_softmax(_mask(to_numpy(stepper.step(xp.asarray(tokens[-1])))
                                       .astype(np.float64), banned))  # (B, V)
        total = (scores[:, None] + step_logp).ravel()
        best = np.argsort(-total, kind="stable")[:width]
        parent = best // V
        stepper.reorder(xp.asarray(parent))
        parents.append(parent)
        tokens.append((best % V).astype(np.int64))
        scores = total[best]
    beam = int(np.argmax(scores))
    out = [0] * length
    for k in range(length - 1, -1, -1):
        out[k] = int(tokens[k][beam])
        if k:
            beam = int(parents[k - 1][beam])
    return out


def generate_stream(model: Any, vocab: Any, prime: str = "", length: int = 200, *,
                    strategy: str = "sample", temperature: float = 1.0,
                    top_k: int | None = None, top_p: float | None = None,
                    beam_width: int = 5, seed: Any = None, unknown: str = "error",
                    chunk: int = DEFAULT_CHUNK) -> Iterator[str]:
    """:func:`generate` as it is made: the prime's text first (when there is one), then
    the text of each ``chunk`` new tokens. ``"".join`` of the pieces is exactly what
    :func:`generate` returns for the same arguments. The options and the prime are
    checked at the call; stopping early is safe at any point."""
    o = _check_options("generate", length, strategy, temperature, top_k, top_p, beam_width,
                       chunk)
    _check_unknown("generate", unknown)
    _check_seed("generate", seed)
    prime_ids = encode_prime(vocab, prime, unknown) if prime else []
    rng = make_rng(seed)
    return _text_pieces(vocab, prime_ids, _id_chunks(model, prime_ids or _start_ids(vocab),
                                                     rng, **o, banned=not_text_ids(vocab)))


def _text_pieces(vocab: Any, prime_ids: list[int], chunks: Iterator[list[int]]
                 ) -> Iterator[str]:
    """The text of the prime, then of each chunk, such that the pieces join to
    ``vocab.detokenize(vocab.decode(prime_ids + all ids))``: each chunk is detokenised
    after the token before it, whose own text is then cut off (at word level that
    decides between a space and nothing)."""
    last: list[str] = []
    if prime_ids:
        tokens = vocab.decode(prime_ids)
        yield vocab.detokenize(tokens)
        last = tokens[-1:]
    for ids in chunks:
        tokens = vocab.decode(ids)
        head = vocab.detokenize(last) if last else ""
        yield vocab.detokenize(last + tokens)[len(head):]
        last = tokens[-1:]


def generate(model: Any, vocab: Any, prime: str = "", length: int = 200, *,
             strategy: str = "sample", temperature: float = 1.0, top_k: int | None = None,
             top_p: float | None = None, beam_width: int = 5, seed: Any = None,
             unknown: str = "error") -> str:
    """Continue ``prime`` by ``length`` tokens; return prime and continuation as text
    (:func:`generate_stream` gives the same text as it is made)."""
    o = _check_options("generate", length, strategy, temperature, top_k, top_p, beam_width)
    _check_unknown("generate", unknown)
    _check_seed("generate", seed)
    prime_ids = encode_prime(vocab, prime, unknown) if prime else []
    start = prime_ids or _start_ids(vocab)
    o["chunk"] = max(1, o["length"])
    new = [t for part in _id_chunks(model, start, make_rng(seed), **o,
                                    banned=not_text_ids(vocab)) for t in part]
    return vocab.detokenize(vocab.decode(prime_ids + new))
