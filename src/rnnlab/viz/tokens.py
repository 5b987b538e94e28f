"""How tokens are shown in figures, and the classes points are coloured by."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import numpy as np

_VISIBLE = {"\n": "⏎", " ": "␣", "\t": "⇥", "\r": "␍"}
SPECIALS = ("<unk>", "<eos>", "<pad>", "<bos>", "<sos>")

#: Character classes in drawing order, with their colours (Okabe-Ito, then greys).
CHAR_CLASSES: dict[str, str] = {
    "lowercase": "#0072B2",
    "uppercase": "#56B4E9",
    "digit": "#E69F00",
    "space": "#999999",
    "newline": "#000000",
    "quote": "#D55E00",
    "bracket": "#009E73",
    "punctuation": "#CC79A7",
    "special": "#F0E442",
    "other": "#8C564B",
}
WORD_CLASSES: dict[str, str] = {
    "word": "#0072B2",
    "capitalised": "#56B4E9",
    "number": "#E69F00",
    "punctuation": "#CC79A7",
    "end of line": "#000000",
    "unknown": "#D55E00",
    "other": "#8C564B",
}
QUOTES = "\"'`«»“”‘’"
BRACKETS = "()[]{}<>"


def display_token(token: str, level: str = "char") -> str:
    """``token`` made visible: space ``␣``, newline ``⏎``, tab ``⇥``, other control
    characters as escapes; ``<eos>`` at word level as ``⏎``."""
    if token in _VISIBLE:
        return _VISIBLE[token]
    if level == "word" and token == "<eos>":
        return "⏎"
    if len(token) == 1 and not token.isprintable():
        return token.encode("unicode_escape").decode("ascii")
    return token


def char_class(token: str) -> str:
    """The class of a character token (see :data:`CHAR_CLASSES`)."""
    if token in SPECIALS or len(token) != 1:
        return "special"
    if token == "\n":
        return "newline"
    if token.isspace():
        return "space"
    if token.isalpha():
        return "uppercase" if token.isupper() else "lowercase"
    if token.isdigit():
        return "digit"
    if token in QUOTES:
        return "quote"
    if token in BRACKETS:
        return "bracket"
    if unicodedata.category(token)[0] in "PS":
        return "punctuation"
    return "other"


def word_class(token: str) -> str:
    """The class of a word token (see :data:`WORD_CLASSES`)."""
    if token == "<eos>":
        return "end of line"
    if token == "<unk>":
        return "unknown"
    if token == "N" or token.replace(".", "", 1).replace(",", "").isdigit():
        return "number"
    if token.isalpha() or token.replace("'", "").replace("-", "").isalpha():
        return "capitalised" if token[:1].isupper() else "word"
    if all(unicodedata.category(ch)[0] in "PS" for ch in token):
        return "punctuation"
    return "other"


def token_classes(tokens: Sequence[str], level: str = "char") -> tuple[list[str], dict[str, str]]:
    """The class of each token and the ``{class: colour}`` table for ``level``."""
    if level == "char":
        return [char_class(t) for t in tokens], CHAR_CLASSES
    return [word_class(t) for t in tokens], WORD_CLASSES


def column_in_line(tokens: Sequence[str], level: str = "char") -> np.ndarray:
    """For each token, how many tokens came before it on its line (0 at a line start)."""
    out = np.zeros(len(tokens), dtype=np.int64)
    col = 0
    end = "\n" if level == "char" else "<eos>"
    for i, t in enumerate(tokens):
        out[i] = col
        col = 0 if t == end else col + 1
    return out


def context_label(tokens: Sequence[str], index: int, level: str = "char",
                  width: int = 4) -> str:
    """The tokens up to and including ``index`` (the last ``width`` characters, or the
    last two words), made visible: the text a hidden state has just read."""
    if level == "char":
        start = max(0, index - width + 1)
        return "".join(display_token(t, level) for t in tokens[start:index + 1])
    start = max(0, index - 1)
    return " ".join(display_token(t, level) for t in tokens[start:index + 1])
