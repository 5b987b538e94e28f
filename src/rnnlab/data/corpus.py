"""The :class:`Corpus` (a vocabulary and three id arrays) and loading any UTF-8 text.

:func:`load_text` reads a file, or every text file under a folder (sorted, see
:mod:`rnnlab.data.textio`; each file ends with a newline so files never run together),
tokenises it at character or word level, splits the **token sequence** into contiguous
train / validation / test parts by fractions (boundaries ``f * n`` rounded half up,
nothing shuffled, so the same input always gives the same split) and builds the
vocabulary from the **training part only** (tokens first seen in validation or test
become ``<unk>``), unless an existing ``vocab=`` is given (e.g. a saved model's), which
then encodes all three parts.

A corpus can be saved to a folder (``corpus.json`` with the vocabulary, and
``train.npy``/``valid.npy``/``test.npy``) and opened again memory-mapped, so a corpus
is encoded once and larger-than-memory ones are never loaded whole.

:func:`load_corpus` picks a corpus by name (``"ptb"``, ``"tinyshakespeare"``,
``"stdlib"``) or path.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.data.errors import DataError
from rnnlab.data.ids import open_ids, save_ids
from rnnlab.data.textio import read_text, text_files
from rnnlab.data.tokens import ID_DTYPE, check_level, codepoints, count_codepoints, tokenize
from rnnlab.data.vocab import Vocab

DEFAULT_SPLIT = (0.9, 0.05, 0.05)
PART_NAMES = ("train", "valid", "test")
_FORMAT = "rnnlab.data.Corpus"


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

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v):,}" for k, v in self.parts.items())
        return (f"Corpus(name={self.name!r}, level={self.level!r}, vocab={len(self.vocab):,}, "
                f"{sizes})")

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the corpus to ``directory`` (created); return it. See :meth:`open`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for part, ids in self.parts.items():
            save_ids(directory / f"{part}.npy", ids)
        meta = {"format": _FORMAT, "version": 1, "name": self.name, "level": self.level,
                "description": self.description, "source": self.source,
                "vocab": self.vocab.to_dict()}
        (directory / "corpus.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1),
                                               encoding="utf-8")
        return directory

    @classmethod
    def open(cls, directory: str | os.PathLike, *, mmap: bool = True) -> Corpus:
        """Open a corpus written by :meth:`save`; ids memory-mapped unless ``mmap=False``."""
        directory = Path(directory)
        meta_path = directory / "corpus.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
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


def load_text(path: str | os.PathLike, level: str | None = None, *,
              split: Any = DEFAULT_SPLIT, max_size: int | None = None, min_freq: int = 1,
              vocab: Vocab | None = None, suffixes: Sequence[str] | None = None,
              name: str | None = None) -> Corpus:
    """Load a UTF-8 text file, or all text files under a folder, as a :class:`Corpus`.

    Parameters
    ----------
    path : path-like
        A file or a folder (walked recursively, sorted; binary files are skipped).
    level : {"char", "word"}, optional
        Default ``vocab.level`` when a vocabulary is given, else ``"char"``.
    split : (float, float, float)
        Train, validation, test fractions of the token sequence (contiguous, in order).
    max_size, min_freq : int
        Vocabulary cut-offs (see :meth:`Vocab.from_counts`); ignored with ``vocab=``.
    vocab : Vocab, optional
        Encode with this vocabulary instead of building one from the training part.
    suffixes : sequence of str, optional
        Only files with these endings (e.g. ``(".txt", ".md")``) in a folder.
    name : str, optional
        The corpus name (default: the file or folder name).
    """
    if vocab is not None and not isinstance(vocab, Vocab):
        raise TypeError(f"load_text: vocab expected a Vocab, got {type(vocab).__name__}")
    if level is None:
        level = vocab.level if vocab is not None else "char"
    check_level(level)
    root = Path(path)
    files, binary = text_files(root, suffixes=suffixes)
    pieces = []
    for file in files:
        text = read_text(file)
        pieces.append(text if not text or text.endswith("\n") else text + "\n")
    text = "".join(pieces)
    del pieces  # halves the peak memory of a large corpus
    what = (f"{root} ({len(files):,} text files" + (f", {len(binary):,} binary skipped)"
                                                    if binary else ")")
            if root.is_dir() else str(root))
    return corpus_from_text(text, level, name=name or root.name or str(root),
                            source=str(root.resolve()), origin=what, split=split,
                            max_size=max_size, min_freq=min_freq, vocab=vocab)


_NAMES = {"ptb": "ptb", "penn": "ptb", "penntreebank": "ptb",
          "tinyshakespeare": "tinyshakespeare", "shakespeare": "tinyshakespeare",
          "tiny-shakespeare": "tinyshakespeare", "tiny_shakespeare": "tinyshakespeare",
          "stdlib": "stdlib"}


def load_corpus(name_or_path: str | os.PathLike, **kw: Any) -> Corpus:
    """Load a corpus by name, or from a path (keyword arguments go to the loader).

    Names (case-insensitive): ``"ptb"`` -> :func:`load_ptb`, ``"tinyshakespeare"`` or
    ``"shakespeare"`` -> :func:`load_tinyshakespeare`, ``"stdlib"`` ->
    :func:`load_stdlib`; anything else is a path for :func:`load_text`, or a folder
    written by :meth:`Corpus.save` (it holds ``corpus.json``), opened memory-mapped.
    A name wins over a same-named path; write ``./ptb`` for the folder.
    """
    from rnnlab.data.remote import load_ptb, load_tinyshakespeare
    from rnnlab.data.stdlib import load_stdlib

    if isinstance(name_or_path, str) and name_or_path.strip().lower() in _NAMES:
        loader = {"ptb": load_ptb, "tinyshakespeare": load_tinyshakespeare,
                  "stdlib": load_stdlib}[_NAMES[name_or_path.strip().lower()]]
        return loader(**kw)
    if not isinstance(name_or_path, str | os.PathLike):
        raise TypeError(f"load_corpus: name_or_path expected a str or path, "
                        f"got {type(name_or_path).__name__}")
    path = Path(name_or_path)
    if (path / "corpus.json").is_file():
        return Corpus.open(path, **kw)
    if not path.exists():
        raise DataError(f"load_corpus: {str(name_or_path)!r} is neither a known corpus name "
                        f"(ptb, tinyshakespeare, stdlib) nor an existing file or folder")
    return load_text(path, **kw)
