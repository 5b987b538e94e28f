"""What single hidden units respond to: nameable properties of a text, one value per
token, and each unit ranked by how strongly its activation follows one of them.

A *feature* is an array over the tokens of a text: 1 where the token is, say, inside a
string literal and 0 elsewhere, or a count such as the bracket nesting depth. A unit's
score for a feature is the Pearson correlation ``r`` between its activation and the
feature over the text (for a 0/1 feature: the point-biserial correlation); a unit is
ranked by its largest ``|r|``. Features that do not vary over the text are left out.

Character-level features follow the text as a reader would, left to right: quotes open
and close strings (``'`` between two letters is an apostrophe; triple quotes span
lines), ``#`` starts a comment to the end of the line outside strings, brackets nest.
A token that is not one character (``<unk>`` for a symbol outside the vocabulary) is no
quote, bracket or punctuation: it only moves the column on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

FeatureFn = Callable[[Sequence[str]], np.ndarray]


def _one_of(ch: str, chars: str) -> bool:
    """Whether the character ``ch`` is one of ``chars`` (never for the ``""`` that stands
    for a token longer than one character: ``"" in "([{"`` is true in Python)."""
    return len(ch) == 1 and ch in chars


def _scan_code(tokens: Sequence[str]) -> dict[str, np.ndarray]:
    """One left-to-right pass over characters: strings, comments, brackets, lines."""
    n = len(tokens)
    in_string = np.zeros(n, dtype=np.float64)
    in_double = np.zeros(n, dtype=np.float64)
    in_triple = np.zeros(n, dtype=np.float64)
    in_comment = np.zeros(n, dtype=np.float64)
    depth = np.zeros(n, dtype=np.float64)
    column = np.zeros(n, dtype=np.float64)
    indent = np.zeros(n, dtype=np.float64)
    quote: str | None = None  # the open string's quote ("'", '"', "'''" or '"""')
    comment = False
    level = 0
    col = 0
    leading = True
    i = 0
    text = ["" if len(t) != 1 else t for t in tokens]
    while i < n:
        ch = text[i]
        prev = text[i - 1] if i > 0 else ""
        nxt = text[i + 1] if i + 1 < n else ""
        column[i] = col
        if leading and ch in (" ", "\t"):
            indent[i] = 1.0
        else:
            leading = False
        if quote is None and not comment:
            if ch == "#":
                comment = True
            elif _one_of(ch, "\"'") and not (ch == "'" and prev.isalpha() and nxt.isalpha()):
                triple = "".join(text[i:i + 3]) == ch * 3
                quote = ch * 3 if triple else ch
                span = 3 if triple else 1
                for j in range(i, min(n, i + span)):  # the opening quote belongs inside
                    in_string[j] = 1.0
                    in_double[j] = float(ch == '"')
                    in_triple[j] = float(triple)
                    column[j] = col + (j - i)
                    depth[j] = level
                col += span
                i += span
                continue
            elif _one_of(ch, "([{"):
                level += 1
            elif _one_of(ch, ")]}"):
                level = max(0, level - 1)
        elif quote is not None:
            in_string[i] = 1.0
            in_double[i] = float(quote[0] == '"')
            in_triple[i] = float(len(quote) == 3)
            if len(quote) == 3 and "".join(text[i:i + 3]) == quote:
                for j in range(i, min(n, i + 3)):
                    in_string[j], in_double[j], in_triple[j] = 1.0, float(quote[0] == '"'), 1.0
                    column[j] = col + (j - i)
                    depth[j] = level
                quote = None
                col += 3
                i += 3
                continue
            if len(quote) == 1 and ch == quote and prev != "\\":
                quote = None
            elif len(quote) == 1 and ch == "\n":
                quote = None  # an unterminated one-line string ends with its line
        if comment:
            in_comment[i] = 1.0
        depth[i] = level
        if ch == "\n":
            comment = False
            col = 0
            leading = True
        else:
            col += 1
        i += 1
    return {"string": in_string, "double": in_double, "triple": in_triple,
            "comment": in_comment, "depth": depth, "column": column, "indent": indent}


@dataclass(frozen=True)
class Feature:
    """A named property of the tokens of a text."""

    name: str
    description: str
    values: np.ndarray  # (T,) float
    binary: bool = True


def char_features(tokens: Sequence[str]) -> list[Feature]:
    """The character-level features of ``tokens``."""
    scan = _scan_code(tokens)
    chars = ["" if len(t) != 1 else t for t in tokens]
    n = len(chars)

    def mask(pred: Callable[[int, str], bool]) -> np.ndarray:
        return np.array([float(pred(i, c)) for i, c in enumerate(chars)], dtype=np.float64)

    def prev(i: int) -> str:
        return chars[i - 1] if i > 0 else "\n"

    def nxt(i: int) -> str:
        return chars[i + 1] if i + 1 < n else "\n"

    return [
        Feature("inside a string", "between opening and closing quotes (', \", ''' or \"\"\")",
                scan["string"]),
        Feature("inside double quotes", "in a string opened with \"", scan["double"]),
        Feature("inside triple quotes", "in a ''' or \"\"\" string (docstrings), across lines",
                scan["triple"]),
        Feature("inside a comment", "from # to the end of the line, outside strings",
                scan["comment"]),
        Feature("inside brackets", "nested in (), [] or {} at least once",
                (scan["depth"] > 0).astype(np.float64)),
        Feature("bracket depth", "how many (, [ or { are open", scan["depth"], binary=False),
        Feature("line start", "the first character of a line", (scan["column"] == 0)
                .astype(np.float64)),
        Feature("position in line", "the column: characters since the last newline",
                scan["column"], binary=False),
        Feature("indentation", "the spaces or tabs that begin a line", scan["indent"]),
        Feature("newline", "the newline character itself", mask(lambda i, c: c == "\n")),
        Feature("space", "a space", mask(lambda i, c: c == " ")),
        Feature("word start", "a letter that follows a non-letter",
                mask(lambda i, c: c.isalpha() and not prev(i).isalpha())),
        Feature("inside a word", "a letter that follows a letter",
                mask(lambda i, c: c.isalpha() and prev(i).isalpha())),
        Feature("word end", "a letter followed by a non-letter",
                mask(lambda i, c: c.isalpha() and not nxt(i).isalpha())),
        Feature("vowel", "a, e, i, o, u (either case)", mask(lambda i, c: c.lower() in "aeiou"
                                                             and c != "")),
        Feature("uppercase", "an uppercase letter", mask(lambda i, c: c.isupper())),
        Feature("digit", "a digit", mask(lambda i, c: c.isdigit())),
        Feature("after a dot", "the token after '.' (attribute names, sentence starts)",
                mask(lambda i, c: prev(i) == ".")),
        Feature("punctuation", "a character that is neither letter, digit nor space",
                mask(lambda i, c: c != "" and not c.isalnum() and not c.isspace())),
    ]


def word_features(tokens: Sequence[str]) -> list[Feature]:
    """The word-level features of ``tokens`` (``<eos>`` ends a line)."""
    n = len(tokens)
    pos = np.zeros(n, dtype=np.float64)
    paren = np.zeros(n, dtype=np.float64)
    quoted = np.zeros(n, dtype=np.float64)
    col, depth, inside = 0, 0, False
    for i, t in enumerate(tokens):
        pos[i] = col
        if t in ("(", "-lrb-", "[", "{"):
            depth += 1
        paren[i] = float(depth > 0)
        if t in (")", "-rrb-", "]", "}"):
            depth = max(0, depth - 1)
        if t in ('"', "``", "''"):
            if t == "``":
                inside = True
            elif t == "''":
                inside = False
            else:
                inside = not inside
            quoted[i] = 1.0
        elif inside:
            quoted[i] = 1.0
        col = 0 if t == "<eos>" else col + 1
        if t == "<eos>":
            inside = False

    def mask(pred: Callable[[str], bool]) -> np.ndarray:
        return np.array([float(pred(t)) for t in tokens], dtype=np.float64)

    return [
        Feature("end of line", "the <eos> token", mask(lambda t: t == "<eos>")),
        Feature("line start", "the first word of a line", (pos == 0).astype(np.float64)),
        Feature("position in line", "words since the last <eos>", pos, binary=False),
        Feature("inside brackets", "between ( and ) (also -lrb- / -rrb-)", paren),
        Feature("inside quotes", "between quotes (\", `` and '')", quoted),
        Feature("number", "a number (N in PTB)", mask(lambda t: t == "N" or t.replace(
            ".", "", 1).replace(",", "").isdigit())),
        Feature("unknown word", "<unk>", mask(lambda t: t == "<unk>")),
        Feature("punctuation", "a token of punctuation only",
                mask(lambda t: t != "" and not any(ch.isalnum() for ch in t)
                     and not t.startswith("<"))),
        Feature("capitalised", "a word that starts with an uppercase letter",
                mask(lambda t: t[:1].isupper())),
        Feature("possessive / clitic", "'s, n't, 're ...",
                mask(lambda t: (t.startswith("'") and t[1:].isalpha()) or t == "n't")),
    ]


def text_features(tokens: Sequence[str], level: str = "char") -> list[Feature]:
    """The features of ``tokens`` at ``level`` that vary over this text (a feature equal
    to an earlier one over this text, e.g. every string a docstring, is left out)."""
    found = char_features(tokens) if level == "char" else word_features(tokens)
    kept: list[Feature] = []
    for f in found:
        if f.values.size < 2 or float(f.values.std()) == 0:
            continue
        if any(np.array_equal(f.values, k.values) for k in kept):
            continue
        kept.append(f)
    return kept


@dataclass(frozen=True)
class UnitScore:
    """A unit's best-matching feature: ``r`` is the correlation (its sign tells whether
    the unit turns up or down on the feature)."""

    unit: int
    feature: str
    r: float


def correlations(acts: np.ndarray, features: Sequence[Feature]) -> np.ndarray:
    """Pearson ``r`` ``(units, features)`` between activations ``(T, units)`` and each
    feature (0 where a unit is constant)."""
    a = np.asarray(acts, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"correlations: acts expected (T, units), got shape {a.shape}")
    if not features:
        return np.zeros((a.shape[1], 0))
    f = np.stack([ft.values for ft in features], axis=1)  # (T, F)
    if f.shape[0] != a.shape[0]:
        raise ValueError(f"correlations: {a.shape[0]} activations but {f.shape[0]} feature "
                         f"values")
    a = a - a.mean(axis=0)
    f = f - f.mean(axis=0)
    sa = np.sqrt((a * a).sum(axis=0))
    sf = np.sqrt((f * f).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a.T @ f) / np.outer(sa, sf)
    r[~np.isfinite(r)] = 0.0
    return np.clip(r, -1.0, 1.0)


def rank_units(acts: np.ndarray, features: Sequence[Feature]) -> list[UnitScore]:
    """Every unit with its best feature by ``|r|``, strongest first."""
    r = correlations(acts, features)
    if r.shape[1] == 0:
        return [UnitScore(u, "", 0.0) for u in range(r.shape[0])]
    best = np.abs(r).argmax(axis=1)
    scores = [UnitScore(u, features[b].name, float(r[u, b])) for u, b in enumerate(best)]
    return sorted(scores, key=lambda s: (-abs(s.r), s.unit))


def best_units(acts: np.ndarray, features: Sequence[Feature], per_feature: int = 3
               ) -> dict[str, list[tuple[int, float]]]:
    """For each feature, the ``per_feature`` units that follow it most closely."""
    r = correlations(acts, features)
    out: dict[str, list[tuple[int, float]]] = {}
    for j, ft in enumerate(features):
        order = np.argsort(-np.abs(r[:, j]), kind="stable")[:per_feature]
        out[ft.name] = [(int(u), float(r[u, j])) for u in order]
    return out
