"""An offline default corpus: the source of this Python's standard library.

Every Python installation carries a few tens of megabytes of UTF-8 source text written
by many people over decades, so :func:`load_stdlib` gives a character-level corpus
without any download. It reads the ``.py`` files under
``sysconfig.get_paths()["stdlib"]`` at run time, in sorted order (relative path,
component by component), skipping ``site-packages`` (installed third-party packages,
not the standard library), hidden folders, ``__pycache__``, and files that cannot be read
or are not UTF-8 (a few test fixtures on purpose). Each file ends with a newline; the
text is then split contiguously like :func:`~rnnlab.data.load_text` (so the validation
and test parts are the last files in that order).

The result depends on the Python version and build, but is identical on every run of
the same installation. ``max_chars`` keeps only the first characters of that text (the
last file cut), for quick experiments.
"""

from __future__ import annotations

import os
import platform
import sysconfig
from pathlib import Path
from typing import Any

from rnnlab.data.core import DEFAULT_SPLIT, Corpus, corpus_from_text
from rnnlab.data.errors import DataError
from rnnlab.data.textio import read_text, walk_files


def stdlib_root() -> Path:
    """The standard library folder of the running interpreter."""
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_files(root: str | os.PathLike | None = None) -> list[Path]:
    """The ``.py`` files of the standard library, sorted, without ``site-packages``."""
    return walk_files(stdlib_root() if root is None else Path(root), suffixes=(".py",),
                      skip_dirs=("site-packages", "dist-packages"))


def load_stdlib(max_chars: int | None = None, *, split: Any = DEFAULT_SPLIT,
                max_size: int | None = None, min_freq: int = 1,
                root: str | os.PathLike | None = None) -> Corpus:
    """The standard library's Python source as a character-level :class:`Corpus`.

    Parameters
    ----------
    max_chars : int, optional
        Keep at most this many characters (from the start, in file order).
    split : (float, float, float)
        Train, validation, test fractions.
    max_size, min_freq : int
        Vocabulary cut-offs (the source holds a long tail of rare Unicode characters).
    root : path-like, optional
        Another folder to read instead of this interpreter's standard library.

    Notes
    -----
    ``description`` states the files, characters and vocabulary size, e.g. for CPython
    3.11 on Linux about 1,800 files and 31.5 million characters.
    """
    if max_chars is not None:
        if isinstance(max_chars, bool) or not isinstance(max_chars, int):
            raise TypeError(f"load_stdlib: max_chars expected an int or None, "
                            f"got {type(max_chars).__name__}")
        if max_chars < 1:
            raise ValueError(f"load_stdlib: max_chars expected an int >= 1, got {max_chars}")
    folder = stdlib_root() if root is None else Path(root)
    if not folder.is_dir():
        raise DataError(f"load_stdlib: {folder}: no such folder")
    pieces: list[str] = []
    total = used = skipped = 0
    for file in stdlib_files(folder):
        try:
            text = read_text(file)
        except (DataError, OSError):
            skipped += 1
            continue
        if text and not text.endswith("\n"):
            text += "\n"
        if max_chars is not None and total + len(text) > max_chars:
            text = text[: max_chars - total]
        pieces.append(text)
        used += 1
        total += len(text)
        if max_chars is not None and total >= max_chars:
            break
    text = "".join(pieces)
    del pieces  # halves the peak memory
    origin = (f"Python {platform.python_version()} standard library source ({folder}): "
              f"{used:,} .py files"
              + (f" ({skipped:,} unreadable or non-UTF-8 skipped)" if skipped else "")
              + (f", cut at max_chars={max_chars:,}" if max_chars is not None else ""))
    return corpus_from_text(text, "char", name="stdlib", source=str(folder),
                            origin=origin, split=split, max_size=max_size, min_freq=min_freq)
