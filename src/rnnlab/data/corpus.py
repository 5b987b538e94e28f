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

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rnnlab.data.core import (
    DEFAULT_SPLIT,
    PART_NAMES,
    Corpus,
    check_split,
    corpus_from_text,
    ids_digest,
    split_bounds,
)
from rnnlab.data.errors import DataError
from rnnlab.data.remote import load_ptb, load_tinyshakespeare
from rnnlab.data.stdlib import load_stdlib
from rnnlab.data.textio import read_text, text_files
from rnnlab.data.tokens import check_level
from rnnlab.data.vocab import Vocab

# the record and the split helpers live in rnnlab.data.core (shared with the PTB,
# tiny-shakespeare and stdlib loaders); they stay importable from here
__all__ = ["DEFAULT_SPLIT", "PART_NAMES", "Corpus", "check_split", "corpus_from_text",
           "ids_digest", "load_corpus", "load_text", "split_bounds"]


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
    if isinstance(name_or_path, str) and name_or_path.strip().lower() in _NAMES:
        loaders: dict[str, Callable[..., Corpus]] = {
            "ptb": load_ptb, "tinyshakespeare": load_tinyshakespeare, "stdlib": load_stdlib}
        return loaders[_NAMES[name_or_path.strip().lower()]](**kw)
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
