"""The :class:`Corpus` record and the core every loader shares: splitting a token
sequence, building the vocabulary from the training part, encoding, and the digest of
the ids that identifies a corpus's data.

:mod:`rnnlab.data.corpus` (files and folders, the :func:`load_corpus` dispatcher),
:mod:`rnnlab.data.remote` (PTB, tiny-shakespeare) and :mod:`rnnlab.data.stdlib` all
import from here and not from one another, so the package has no import cycle.
"""

from __future__ import annotations

import hashlib
import json
import math
import mmap
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.data.errors import DataError
from rnnlab.data.ids import open_ids, save_ids
from rnnlab.data.safefiles import write_atomic
from rnnlab.data.textio import read_limited
from rnnlab.data.tokens import ID_DTYPE, check_level, codepoints, count_codepoints, tokenize
from rnnlab.data.vocab import Vocab

DEFAULT_SPLIT = (0.9, 0.05, 0.05)
PART_NAMES = ("train", "valid", "test")
_FORMAT = "rnnlab.data.Corpus"
#: Largest ``corpus.json`` :meth:`Corpus.open` reads (its vocabulary; bytes).
_MAX_META_BYTES = 1 << 30


@dataclass(repr=False, eq=False)
class Corpus:
    """A tokenised corpus.

    Attributes
    ----------
    name : str
        Short name (``"ptb"``, ``"tinyshakespeare"``, ``"stdlib"`` or the file name).
    level : {"char", "word"}
    vocab : Vocab
    train, valid, test : ndarray ``(n_part,)`` int32
        Token ids (numpy arrays, or read-only memmaps after :meth:`open`).
    description : str
        One human-readable paragraph: origin, size, vocabulary, split sizes.
    source : str
        Where the text came from (a path or a URL).
    """

    name: str
    level: str
    vocab: Vocab
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    description: str = ""
    source: str = ""

    @property
    def parts(self) -> dict[str, np.ndarray]:
        """``{"train": ..., "valid": ..., "test": ...}``."""
        return {"train": self.train, "valid": self.valid, "test": self.test}

    def digest(self) -> str:
        """The :func:`ids_digest` of the three parts: equal for two corpora exactly when
        (but for a hash collision) they hold the same ids in the same parts."""
        return ids_digest(self.parts)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v):,}" for k, v in self.parts.items())
        return (f"Corpus(name={self.name!r}, level={self.level!r}, vocab={len(self.vocab):,}, "
                f"{sizes})")

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the corpus to ``directory`` (created); return it. See :meth:`open`.

        Every file is written atomically (a temporary renamed over it,
        :func:`~rnnlab.data.safefiles.write_atomic`): a symbolic or hard link planted at
        ``corpus.json`` or a ``.npy`` is replaced, its target never written."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for part, ids in self.parts.items():
            save_ids(directory / f"{part}.npy", ids)
        meta = {"format": _FORMAT, "version": 1, "name": self.name, "level": self.level,
                "description": self.description, "source": self.source,
                "vocab": self.vocab.to_dict()}
        # like the ids: a new file renamed over the old one, never written through a link
        write_atomic(directory / "corpus.json",
                     json.dumps(meta, ensure_ascii=False, indent=1).encode("utf-8"))
        return directory

    @classmethod
    def open(cls, directory: str | os.PathLike, *, mmap: bool = True) -> Corpus:
        """Open a corpus written by :meth:`save`; ids memory-mapped unless ``mmap=False``."""
        directory = Path(directory)
        meta_path = directory / "corpus.json"
        try:
            meta = json.loads(read_limited(meta_path, _MAX_META_BYTES).decode("utf-8"))
        except (OSError, ValueError, RecursionError) as exc:  # DataError is a ValueError
            raise DataError(f"Corpus.open: {meta_path}: cannot be read ({exc})") from exc
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            raise DataError(f"Corpus.open: {meta_path}: not an rnnlab corpus file")
        vocab = Vocab.from_dict(meta["vocab"])
        parts = {p: open_ids(directory / f"{p}.npy", mmap=mmap) for p in PART_NAMES}
        return cls(meta["name"], vocab.level, vocab, parts["train"], parts["valid"],
                   parts["test"], meta.get("description", ""), meta.get("source", ""))


def check_split(split: Any) -> tuple[float, float, float]:
    """Validate ``(train, valid, test)`` fractions: three numbers > 0 summing to 1."""
    if isinstance(split, str) or not isinstance(split, Sequence) or len(split) != 3:
        raise ValueError(f"split: expected three fractions (train, valid, test), got {split!r}")
    try:
        fracs = tuple(float(f) for f in split)
    except (TypeError, ValueError):
        raise ValueError(f"split: expected three numbers, got {split!r}") from None
    if any(not 0.0 < f < 1.0 for f in fracs) or abs(sum(fracs) - 1.0) > 1e-6:
        raise ValueError(f"split: expected three fractions in (0, 1) summing to 1, "
                         f"got {split!r}")
    return fracs  # type: ignore[return-value]


def split_bounds(n: int, split: Any) -> tuple[int, int]:
    """Boundaries ``(b1, b2)``: train ``[0, b1)``, valid ``[b1, b2)``, test ``[b2, n)``."""
    f_train, f_valid, _ = check_split(split)
    b1 = math.floor(n * f_train + 0.5)
    b2 = math.floor(n * (f_train + f_valid) + 0.5)
    for part, size in zip(PART_NAMES, (b1, b2 - b1, n - b2), strict=True):
        if size <= 0:
            raise DataError(f"split={tuple(split)} of {n:,} tokens leaves the {part} part "
                            f"empty; use a larger corpus or a larger {part} fraction")
    return b1, b2


def corpus_from_text(text: str, level: str, *, name: str, source: str, origin: str,
                     split: Any = DEFAULT_SPLIT, max_size: int | None = None,
                     min_freq: int = 1, vocab: Vocab | None = None) -> Corpus:
    """Tokenise, split and encode ``text`` (the shared core of the loaders).

    ``origin`` starts the description (e.g. ``"tiny-shakespeare (Karpathy)"``).
    """
    check_level(level)
    if not text.strip():
        raise DataError(f"{source}: empty corpus (no text, or only whitespace)")
    if vocab is not None and vocab.level != level:
        raise DataError(f"vocab: expected a {level}-level vocabulary, got a "
                        f"{vocab.level}-level one")
    if level == "char":
        b1, b2 = split_bounds(len(text), split)
        cps = codepoints(text)  # None only for text with lone surrogates (not from a file)
        if vocab is None:
            counts = count_codepoints(cps[:b1]) if cps is not None else Counter(text[:b1])
            vocab = Vocab.from_counts(counts, "char", max_size=max_size, min_freq=min_freq)
        ids = _encode(vocab, cps if cps is not None else list(text), source)
        del cps
    else:
        tokens = vocab.tokenize(text) if vocab is not None else tokenize(text, "word")
        b1, b2 = split_bounds(len(tokens), split)
        if vocab is None:
            vocab = Vocab.build(tokens[:b1], "word", max_size=max_size, min_freq=min_freq)
        ids = _encode(vocab, tokens, source)
    unit = "characters" if level == "char" else "tokens"
    sizes = f"train {b1:,} / valid {b2 - b1:,} / test {len(ids) - b2:,} {unit}"
    description = (f"{origin}: {level} level, {len(ids):,} {unit}, vocabulary "
                   f"{len(vocab):,}; {sizes}")
    return Corpus(name, level, vocab, ids[:b1], ids[b1:b2], ids[b2:], description, source)


def _encode(vocab: Vocab, tokens: Any, source: str) -> np.ndarray:
    try:
        if isinstance(tokens, np.ndarray):
            return vocab.encode_codepoints(tokens)
        return vocab.encode(tokens).astype(ID_DTYPE, copy=False)
    except DataError as exc:
        raise DataError(f"{source}: {exc}") from None


#: Ids hashed at a time by :func:`ids_digest` (4 MiB of int32).
_DIGEST_BLOCK = 1 << 20
DIGEST_ALGORITHM = "blake2b-128"


def ids_digest(parts: Mapping[str, Any]) -> str:
    """A digest of named id arrays, ``"blake2b-128:<32 hex digits>"``.

    Each part contributes its name, its length and its ids as little-endian int32 (so
    the dtype an array happens to have does not matter), read in blocks. Hashing runs at
    about 1 GB/s (0.15 s for the 31 million ids of the stdlib corpus). A part that is a
    read-only memory map (:func:`~rnnlab.data.open_ids`, or a slice of one) is read from
    its file instead of through the map, so that hashing a corpus larger than memory
    does not bring all its pages into the process (its resident size stays small).

    Parameters
    ----------
    parts : mapping of str to array ``(n_part,)``
        E.g. :attr:`Corpus.parts`; the order of the mapping is part of the digest.
    """
    h = hashlib.blake2b(digest_size=16, person=b"rnnlab-ids")
    for name, ids in parts.items():
        region = _file_region(ids)
        ids = np.asarray(ids)
        if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            raise TypeError(f"ids_digest: part {name!r} expected a 1-D integer array, got "
                            f"shape {ids.shape} dtype {ids.dtype}")
        h.update(f"{name}:{ids.shape[0]};".encode())
        for block in _blocks(ids, region):
            h.update(np.ascontiguousarray(block, dtype="<i4").data)
    return f"{DIGEST_ALGORITHM}:{h.hexdigest()}"


def _blocks(ids: np.ndarray, region: tuple[str, int] | None) -> Any:
    """``ids`` in blocks of :data:`_DIGEST_BLOCK`, read from ``region`` (file, offset)
    when given."""
    n = ids.shape[0]
    if region is None:
        for start in range(0, n, _DIGEST_BLOCK):
            yield ids[start:start + _DIGEST_BLOCK]
        return
    filename, offset = region
    item = ids.dtype.itemsize
    with open(filename, "rb", buffering=0) as fh:
        for start in range(0, n, _DIGEST_BLOCK):
            count = min(_DIGEST_BLOCK, n - start)
            data = os.pread(fh.fileno(), count * item, offset + start * item)
            if len(data) != count * item:
                raise DataError(f"ids_digest: {filename}: shorter than its memory map "
                                f"(changed while in use?)")
            yield np.frombuffer(data, dtype=ids.dtype)


def _file_region(ids: Any) -> tuple[str, int] | None:
    """``(file name, byte offset)`` of a contiguous read-only memory map's data, or None.

    Found from public attributes only: the memmap at the root of ``ids``'s ``base``
    chain (whose ``base`` is the ``mmap``) knows its file and the offset of its first
    element; a slice is that many bytes further on.
    """
    if not isinstance(ids, np.memmap) or getattr(ids, "mode", None) != "r" \
            or not ids.flags.c_contiguous or ids.ndim != 1:
        return None
    root = ids
    while isinstance(root.base, np.memmap):
        root = root.base
    if not isinstance(root.base, mmap.mmap) or not root.filename or root.offset is None:
        return None
    if not hasattr(os, "pread"):  # pragma: no cover - Windows
        return None
    return str(root.filename), int(root.offset) + (ids.ctypes.data - root.ctypes.data)
