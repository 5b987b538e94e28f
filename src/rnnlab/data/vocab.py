"""The :class:`Vocab`: tokens to integer ids and back (tokenisation in :mod:`rnnlab.data.tokens`).

A vocabulary puts its special tokens first (default ``("<unk>", "<eos>")``, ids 0 and 1),
then the other tokens by frequency, descending, ties broken by the token itself (code
point order), so that the same counts always give the same ids. ``max_size`` (specials
included) and ``min_freq`` cut the tail; tokens cut off, or never seen, encode to
``<unk>``, or raise :class:`~rnnlab.data.DataError` when the vocabulary has no ``<unk>``.

Ids are ``int32`` (a vocabulary may hold at most ``2**31`` tokens). Character-level
encoding of a ``str`` is vectorised (code points through a lookup table), so tens of
millions of characters encode in well under a second.

>>> v = Vocab.build("hello", level="char")
>>> v.itos
['<unk>', '<eos>', 'l', 'e', 'h', 'o']
>>> v.encode("hole").tolist()
[4, 5, 2, 3]
>>> v.decode_text([4, 3, 2, 2, 5])
'hello'
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from rnnlab.data.errors import DataError
from rnnlab.data.tokens import (
    DEFAULT_SPECIALS,
    EOS,
    ID_DTYPE,
    UNK,
    check_level,
    codepoints,
    count_tokens,
    detokenize,
    tokenize,
)

#: Largest vocabulary whose ids fit in ``ID_DTYPE`` (ids ``0 .. 2**31 - 1``).
MAX_VOCAB_SIZE = int(np.iinfo(np.int32).max) + 1
_FORMAT = "rnnlab.data.Vocab"
_VERSION = 1


class Vocab:
    """An ordered token list ``itos`` with its inverse ``stoi``.

    Parameters
    ----------
    itos : sequence of str
        The tokens; token ``itos[i]`` has id ``i``. Must be unique and contain ``specials``.
    level : {"char", "word"}
        How text is tokenised; at char level every non-special token is one character.
    specials : sequence of str
        The special tokens; ``"<unk>"`` and ``"<eos>"`` among them set ``unk_id``/``eos_id``.

    Attributes
    ----------
    itos : list of str
        Id to token (do not mutate). ``stoi`` : dict, token to id.
    unk_id, eos_id : int or None
        Ids of ``<unk>`` and ``<eos>``, None when the vocabulary has no such special.
    """

    def __init__(self, itos: Sequence[str], level: str = "char",
                 specials: Sequence[str] = DEFAULT_SPECIALS) -> None:
        self.level = check_level(level)
        self.specials = _check_specials(specials)
        if isinstance(itos, str) or not isinstance(itos, Sequence):
            raise TypeError(f"Vocab: itos expected a list of str, got {type(itos).__name__}")
        self.itos: list[str] = list(itos)
        bad = next((t for t in self.itos if not isinstance(t, str) or not t), None)
        if bad is not None:
            raise DataError(f"Vocab: itos expected non-empty str tokens, got {bad!r}")
        if not self.itos:
            raise DataError("Vocab: the vocabulary is empty (no tokens and no specials)")
        if len(self.itos) > MAX_VOCAB_SIZE:
            raise DataError(f"Vocab: {len(self.itos):,} tokens do not fit in int32 ids "
                            f"(at most {MAX_VOCAB_SIZE:,}); use max_size or min_freq")
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            dup = next(t for t, n in Counter(self.itos).items() if n > 1)
            raise DataError(f"Vocab: itos holds the token {dup!r} more than once")
        missing = [s for s in self.specials if s not in self.stoi]
        if missing:
            raise DataError(f"Vocab: specials {missing} are not in itos")
        if self.level == "char":
            long = next((t for t in self.itos if len(t) != 1 and t not in self.specials), None)
            if long is not None:
                raise DataError(f"Vocab: a char-level vocabulary holds single characters "
                                f"(and specials), got the token {long!r}")
        self.unk_id: int | None = self.stoi[UNK] if UNK in self.specials else None
        self.eos_id: int | None = self.stoi[EOS] if EOS in self.specials else None
        self._table: np.ndarray | None = None

    # ----------------------------------------------------------------- building
    @classmethod
    def build(cls, tokens: Iterable[str], level: str = "char", max_size: int | None = None,
              min_freq: int = 1, specials: Sequence[str] = DEFAULT_SPECIALS) -> Vocab:
        """Count ``tokens`` and keep the most frequent (see :meth:`from_counts`).

        ``tokens`` is any iterable of str; at char level a whole ``str`` is counted fast.
        """
        check_level(level)
        if isinstance(tokens, str):
            if level == "word":
                raise TypeError("Vocab.build: tokens expected an iterable of words at word "
                                "level, got a str; split it with tokenize(text, 'word')")
            counts = count_tokens([tokens], "char")
        else:
            counts = Counter(tokens)
        return cls.from_counts(counts, level, max_size=max_size, min_freq=min_freq,
                               specials=specials)

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], level: str = "char",
                    max_size: int | None = None, min_freq: int = 1,
                    specials: Sequence[str] = DEFAULT_SPECIALS) -> Vocab:
        """Specials first, then tokens with count ``>= min_freq`` by (-count, token).

        ``max_size`` bounds the whole vocabulary, specials included; specials are kept
        whatever their count.
        """
        check_level(level)
        specials = _check_specials(specials)
        if max_size is not None:
            if isinstance(max_size, bool) or not isinstance(max_size, int | np.integer):
                raise TypeError(f"max_size: expected an int or None, "
                                f"got {type(max_size).__name__}")
            if max_size < max(len(specials), 1):
                raise DataError(f"max_size: expected at least {max(len(specials), 1)} (the "
                                f"special tokens {list(specials)} come first), got {max_size}")
        if isinstance(min_freq, bool) or not isinstance(min_freq, int | np.integer):
            raise TypeError(f"min_freq: expected an int >= 1, got {type(min_freq).__name__}")
        if min_freq < 1:
            raise ValueError(f"min_freq: expected an int >= 1, got {min_freq}")
        bad = next((t for t in counts if not isinstance(t, str) or not t), None)
        if bad is not None:
            raise TypeError(f"Vocab: tokens expected non-empty str, got {bad!r}")
        kept = [(t, int(n)) for t, n in counts.items() if n >= min_freq and t not in specials]
        kept.sort(key=lambda item: (-item[1], item[0]))
        if max_size is not None:
            kept = kept[: int(max_size) - len(specials)]
        return cls(list(specials) + [t for t, _ in kept], level, specials)

    # ------------------------------------------------------------ (de)serialising
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (``json.dumps`` it next to a model's weights)."""
        return {"format": _FORMAT, "version": _VERSION, "level": self.level,
                "specials": list(self.specials), "itos": list(self.itos)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Vocab:
        """Rebuild a vocabulary from :meth:`to_dict` output (checked)."""
        if not isinstance(d, Mapping):
            raise TypeError(f"Vocab.from_dict: d expected a dict, got {type(d).__name__}")
        if d.get("format") != _FORMAT:
            raise DataError(f"Vocab.from_dict: expected format {_FORMAT!r}, "
                            f"got {d.get('format')!r}")
        if d.get("version") != _VERSION:
            raise DataError(f"Vocab.from_dict: expected version {_VERSION}, "
                            f"got {d.get('version')!r}")
        for key in ("level", "specials", "itos"):
            if key not in d:
                raise DataError(f"Vocab.from_dict: missing key {key!r}")
        if not isinstance(d["itos"], list):
            raise DataError(f"Vocab.from_dict: itos expected a list, "
                            f"got {type(d['itos']).__name__}")
        try:
            return cls(d["itos"], d["level"], d["specials"])
        except (TypeError, ValueError) as exc:
            raise DataError(f"Vocab.from_dict: {exc}") from exc

    # ------------------------------------------------------------- tokens <-> ids
    def tokenize(self, text: str) -> list[str]:
        """Tokens of ``text`` at this level (newline -> ``<eos>`` at word level)."""
        return tokenize(text, self.level, eos=EOS if self.eos_id is not None else None)

    def detokenize(self, tokens: Iterable[str]) -> str:
        """Text of ``tokens``: ``"".join`` (char) or words and newlines (word)."""
        return detokenize(tokens, self.level, eos=EOS if self.eos_id is not None else None)

    def encode(self, tokens: Iterable[str] | str) -> np.ndarray:
        """Ids ``(len(tokens),)`` int32; unknown tokens map to ``<unk>``.

        At char level a ``str`` is accepted (vectorised). Raises ``DataError`` when a token
        is unknown and the vocabulary has no ``<unk>``.
        """
        if isinstance(tokens, str):
            if self.level == "word":
                raise TypeError("Vocab.encode: tokens expected a list of words at word level, "
                                "got a str; use encode_text(text) or tokenize(text) first")
            cps = codepoints(tokens)
            if cps is not None:
                return self.encode_codepoints(cps)
        if isinstance(tokens, np.ndarray):
            tokens = tokens.tolist()
        seq = tokens if isinstance(tokens, list) else list(tokens)
        get = self.stoi.get
        ids = np.array([get(t, -1) for t in seq], dtype=ID_DTYPE)
        return self._fill_unknown(ids, lambda mask: [seq[i] for i in np.flatnonzero(mask)])

    def encode_text(self, text: str) -> np.ndarray:
        """``encode(tokenize(text))``, fast at char level. Returns int32 ``(n_tokens,)``."""
        if self.level == "char":
            return self.encode(text)
        return self.encode(self.tokenize(text))

    def decode(self, ids: Any) -> list[str]:
        """Tokens of integer ids ``(n,)`` (a list, numpy or CuPy array, or an int)."""
        arr = np.asarray(ids.get() if type(ids).__module__.startswith("cupy") else ids)
        if arr.ndim > 1:
            raise ValueError(f"Vocab.decode: ids expected a 1-D sequence, got shape {arr.shape}")
        arr = arr.reshape(-1)
        if arr.size == 0:
            return []
        if arr.dtype.kind not in "iu":
            raise TypeError(f"Vocab.decode: ids expected integers, got dtype {arr.dtype}")
        low, high = int(arr.min()), int(arr.max())
        if low < 0 or high >= len(self.itos):
            raise DataError(f"Vocab.decode: ids expected in [0, {len(self.itos)}), "
                            f"got {low if low < 0 else high}")
        itos = self.itos
        return [itos[i] for i in arr.tolist()]

    def decode_text(self, ids: Any) -> str:
        """``detokenize(decode(ids))``: the text of a sequence of ids."""
        return self.detokenize(self.decode(ids))

    def encode_codepoints(self, cps: np.ndarray) -> np.ndarray:
        """Ids int32 ``(n,)`` of characters given as code points ``(n,)`` (char level)."""
        if self.level != "char":
            raise TypeError("Vocab.encode_codepoints: needs a char-level vocabulary, "
                            "this one is word-level")
        table = self._char_table()
        if cps.size == 0:
            return np.zeros(0, dtype=ID_DTYPE)
        if int(cps.max()) < table.size:
            ids = table[cps]
        else:
            ids = np.full(cps.shape, -1, dtype=ID_DTYPE)
            inside = cps < table.size
            ids[inside] = table[cps[inside]]
        return self._fill_unknown(ids, lambda mask: [chr(c) for c in cps[mask].tolist()])

    # ---------------------------------------------------------------- internals
    def _char_table(self) -> np.ndarray:
        """Code point -> id (``-1`` when absent) for the single-character tokens."""
        if self._table is None:
            singles = [(ord(t), i) for i, t in enumerate(self.itos) if len(t) == 1]
            size = max((c for c, _ in singles), default=-1) + 1
            table = np.full(size, -1, dtype=ID_DTYPE)
            for c, i in singles:
                table[c] = i
            self._table = table
        return self._table

    def _fill_unknown(self, ids: np.ndarray, unknown_tokens: Any) -> np.ndarray:
        mask = ids < 0
        if not mask.any():
            return ids
        if self.unk_id is None:
            unknown = list(dict.fromkeys(unknown_tokens(mask)))
            raise DataError(f"Vocab.encode: {int(mask.sum()):,} tokens are not in the "
                            f"vocabulary and it has no {UNK!r} token to stand for them; "
                            f"first unknown: {unknown[:5]}")
        ids[mask] = self.unk_id
        return ids

    # ------------------------------------------------------------------ dunders
    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocab):
            return NotImplemented
        return (self.level, self.itos, self.specials) == (other.level, other.itos,
                                                          other.specials)

    def __hash__(self) -> int:
        return hash((self.level, tuple(self.itos), self.specials))

    def __repr__(self) -> str:
        head = ", ".join(repr(t) for t in self.itos[:8])
        more = ", ..." if len(self.itos) > 8 else ""
        return f"Vocab(level={self.level!r}, size={len(self)}, itos=[{head}{more}])"


def _check_specials(specials: Any) -> tuple[str, ...]:
    if isinstance(specials, str) or not isinstance(specials, Iterable):
        raise TypeError(f"specials: expected a sequence of str, got {type(specials).__name__}")
    out = tuple(specials)
    if any(not isinstance(s, str) or not s for s in out):
        raise TypeError(f"specials: expected non-empty str, got {out!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"specials: expected distinct tokens, got {out!r}")
    return out
