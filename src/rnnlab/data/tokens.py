"""Tokenisation: text to character or word tokens and back, and fast character counts.

* ``"char"``: every character is a token (``list(text)``); a newline is an ordinary
  character and :func:`detokenize` is ``"".join``.
* ``"word"``: the whitespace-separated words of the text, every newline becoming the
  ``<eos>`` token (as in Mikolov's Penn Treebank), so a file of ``L`` lines gives
  ``words + L`` tokens; :func:`detokenize` joins the words of a line with one space and
  turns ``<eos>`` back into a newline, so ``tokenize(detokenize(t)) == t`` for tokens
  without whitespace.

Characters are also handled as numpy code points (:func:`codepoints`), which makes
counting (``bincount``) and encoding (a lookup table) vectorised.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import numpy as np

#: Default special tokens: ``<unk>`` for unknown tokens, ``<eos>`` for end of line.
UNK = "<unk>"
EOS = "<eos>"
DEFAULT_SPECIALS: tuple[str, ...] = (UNK, EOS)
#: The dtype of every id array made by :mod:`rnnlab.data`.
ID_DTYPE = np.dtype(np.int32)
LEVELS = ("char", "word")


def check_level(level: Any, arg: str = "level") -> str:
    """Return ``level`` if it is ``"char"`` or ``"word"``, else raise ``ValueError``."""
    if level not in LEVELS:
        raise ValueError(f"{arg}: expected 'char' or 'word', got {level!r}")
    return level


def tokenize(text: str, level: str, *, eos: str | None = EOS) -> list[str]:
    """Split ``text`` into tokens.

    ``"char"``: ``list(text)``. ``"word"``: whitespace-separated words, each newline
    replaced by ``eos`` (omitted when ``eos`` is None); text after the last newline gives
    its words and no ``eos``.
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize: text expected a str, got {type(text).__name__}")
    if check_level(level) == "char":
        return list(text)
    if eos is None:
        return text.split()
    lines = text.split("\n")
    out: list[str] = []
    for line in lines[:-1]:
        out.extend(line.split())
        out.append(eos)
    out.extend(lines[-1].split())
    return out


def detokenize(tokens: Iterable[str], level: str, *, eos: str | None = EOS) -> str:
    """Inverse of :func:`tokenize` up to whitespace: ``"".join`` or words and newlines."""
    if check_level(level) == "char":
        return "".join(tokens)
    lines: list[str] = []
    line: list[str] = []
    for token in tokens:
        if token == eos:
            lines.append(" ".join(line))
            line = []
        else:
            line.append(token)
    lines.append(" ".join(line))
    return "\n".join(lines)


def codepoints(text: str) -> np.ndarray | None:
    """The code points of ``text`` as ``uint32`` ``(len(text),)``, None if it holds surrogates."""
    try:
        return np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    except UnicodeEncodeError:
        return None


def count_tokens(pieces: Iterable[str], level: str, *, eos: str | None = EOS) -> Counter:
    """Token counts of a stream of text pieces (each piece tokenised on its own).

    Pieces should end at line boundaries for word-level text (as those of
    :func:`rnnlab.data.textio.iter_text` do). Characters are counted with ``bincount``.
    """
    check_level(level)
    counts: Counter = Counter()
    for piece in pieces:
        cps = codepoints(piece) if level == "char" else None
        if cps is None:
            counts.update(tokenize(piece, level, eos=eos))
            continue
        counts.update(count_codepoints(cps))
    return counts


def count_codepoints(cps: np.ndarray) -> dict[str, int]:
    """Character counts of code points ``(n,)`` (from :func:`codepoints`), via ``bincount``."""
    if cps.size == 0:
        return {}
    hist = np.bincount(cps)
    nonzero = np.flatnonzero(hist)
    return {chr(c): n for c, n in zip(nonzero.tolist(), hist[nonzero].tolist(), strict=True)}
