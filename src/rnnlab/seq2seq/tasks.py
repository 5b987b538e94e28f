"""The project's own seeded toy tasks: integer addition and date-format conversion.

Both generators return a :class:`Pairs` of question and answer strings (the answer
without the ``"_"`` start marker) already padded to fixed widths, the layout of the
book's text files, so a generated set and a loaded file are interchangeable::

    addition   "16+75  " -> "91  "        question 2*d+1 chars, answer d+1 chars (d = 3)
    date       "Feb 23, 2005" (padded to 29) -> "2005-02-23"

and :func:`format_line` writes one pair in the book's one-line form
(``"16+75  _91  "``). The same ``seed`` always gives the same pairs.

>>> make_addition(3, seed=0).questions
['8+67   ', '52+6   ', '2+6    ']
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rnnlab.backend import make_rng

#: The character that starts every answer in the book's files (the decoder's first input).
START = "_"

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass
class Pairs:
    """Parallel lists of questions and answers (answers without the start marker)."""

    questions: list[str]
    answers: list[str]

    def __post_init__(self) -> None:
        if len(self.questions) != len(self.answers):
            raise ValueError(f"Pairs: questions and answers expected the same length, got "
                             f"{len(self.questions)} and {len(self.answers)}")

    def __len__(self) -> int:
        return len(self.questions)

    def subset(self, index: Sequence[int]) -> Pairs:
        """The pairs at the positions ``index`` (in that order)."""
        return Pairs([self.questions[i] for i in index], [self.answers[i] for i in index])


def _check_count(n: Any, owner: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{owner}: n expected an int >= 1, got {n!r}")
    return n


def format_line(question: str, answer: str) -> str:
    """The book's one-line form of a pair: ``question + "_" + answer``."""
    return f"{question}{START}{answer}"


# --------------------------------------------------------------------- addition
def make_addition(n: int = 50_000, seed: Any = 0, max_digits: int = 3,
                  unique: bool = True) -> Pairs:
    """``n`` additions ``a+b`` of non-negative integers with 1 to ``max_digits`` digits.

    Each operand gets a digit count drawn uniformly from ``1..max_digits`` and then
    uniform digits (leading zeros vanish, so short numbers are a little more common, as
    in the book's file). With ``unique`` no ordered pair ``(a, b)`` appears twice.

    Parameters
    ----------
    n : int
        Number of pairs.
    seed : int or numpy.random.Generator
        Randomness (nothing global is used).
    max_digits : int
        Largest operand width ``d``; questions are padded with spaces to ``2 d + 1``
        characters and answers (at most ``d + 1`` digits) to ``d + 1``.
    unique : bool
        Refuse repeated questions (``n`` must then be at most the number of pairs).

    Returns
    -------
    Pairs
        e.g. ``"16+75  "`` -> ``"91  "`` for ``d = 3``.
    """
    owner = "make_addition"
    n = _check_count(n, owner)
    if isinstance(max_digits, bool) or not isinstance(max_digits, int) or \
            not 1 <= max_digits <= 9:
        raise ValueError(f"{owner}: max_digits expected an int in [1, 9], got {max_digits!r}")
    if unique and n > 10 ** (2 * max_digits):
        raise ValueError(f"{owner}: n expected at most {10 ** (2 * max_digits):,} unique pairs "
                         f"for max_digits={max_digits}, got {n:,}")
    rng = make_rng(seed)
    q_width, a_width = 2 * max_digits + 1, max_digits + 1
    seen: set[tuple[int, int]] = set()
    questions: list[str] = []
    answers: list[str] = []
    while len(questions) < n:
        block = 2 * (n - len(questions)) + 16
        widths = rng.integers(1, max_digits + 1, size=(block, 2))
        values = rng.integers(0, 10 ** widths)
        for a, b in values.tolist():
            if unique:
                if (a, b) in seen:
                    continue
                seen.add((a, b))
            questions.append(f"{a}+{b}".ljust(q_width))
            answers.append(str(a + b).ljust(a_width))
            if len(questions) == n:
                break
    return Pairs(questions, answers)


# ------------------------------------------------------------------------ dates
def _cased(words: Callable[[_dt.date], str]) -> tuple[Callable[[_dt.date], str], ...]:
    return (lambda d: words(d), lambda d: words(d).lower(), lambda d: words(d).upper())


def _month(d: _dt.date) -> str:
    return _MONTHS[d.month - 1]


def _mon(d: _dt.date) -> str:
    return _MONTHS[d.month - 1][:3]


def _weekday(d: _dt.date) -> str:
    return _DAYS[d.weekday()]


#: Named human date formats; word formats come in Title, lower and UPPER case.
DATE_FORMATS: dict[str, tuple[Callable[[_dt.date], str], ...]] = {
    "month d, yyyy": _cased(lambda d: f"{_month(d)} {d.day}, {d.year}"),
    "mon d, yyyy": _cased(lambda d: f"{_mon(d)} {d.day}, {d.year}"),
    "weekday, month d, yyyy": _cased(lambda d: f"{_weekday(d)}, {_month(d)} {d.day}, {d.year}"),
    "d month yyyy": _cased(lambda d: f"{d.day} {_month(d)} {d.year}"),
    "d mon yyyy": _cased(lambda d: f"{d.day} {_mon(d)} {d.year}"),
    "wkd, d mon yyyy": _cased(lambda d: f"{_weekday(d)[:3]}, {d.day} {_mon(d)} {d.year}"),
    "m/d/yy": (lambda d: f"{d.month}/{d.day}/{d.year % 100:02d}",),
    "mm/dd/yyyy": (lambda d: f"{d.month:02d}/{d.day:02d}/{d.year}",),
    "dd.mm.yyyy": (lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",),
    "yyyy/mm/dd": (lambda d: f"{d.year}/{d.month:02d}/{d.day:02d}",),
    "yyyymmdd": (lambda d: f"{d.year}{d.month:02d}{d.day:02d}",),
}
#: The formats found in the book's ``date.txt``.
BOOK_DATE_FORMATS = ("month d, yyyy", "mon d, yyyy", "weekday, month d, yyyy", "m/d/yy")
#: Two-digit years ``yy`` mean ``1900 + yy`` when ``yy >= 70``, else ``2000 + yy``.
YEAR_PIVOT = 70
DATE_WIDTH = 29


def make_dates(n: int = 50_000, seed: Any = 0, formats: Sequence[str] | None = None,
               years: tuple[int, int] = (1970, 2017), width: int = DATE_WIDTH) -> Pairs:
    """``n`` dates written in human formats, with their ISO form ``YYYY-MM-DD`` as answers.

    Dates are uniform over the days of ``years`` (inclusive); each gets a format drawn
    uniformly from ``formats`` (default: all of :data:`DATE_FORMATS`), then a case
    variant uniformly. Every format is unambiguous: slashed month-first forms are US
    style, dotted ones day-first, and two-digit years pivot at :data:`YEAR_PIVOT`.

    Parameters
    ----------
    n : int
        Number of pairs.
    seed : int or numpy.random.Generator
        Randomness.
    formats : sequence of str, optional
        Keys of :data:`DATE_FORMATS` (:data:`BOOK_DATE_FORMATS` gives the book's mix).
    years : (int, int)
        First and last year, within ``[1970, 2069]`` (so two-digit years are exact).
    width : int
        Questions are padded with spaces to this many characters (29 as in the book).

    Returns
    -------
    Pairs
        e.g. ``"Feb 23, 2005" + 17 spaces`` -> ``"2005-02-23"``.
    """
    owner = "make_dates"
    n = _check_count(n, owner)
    names = tuple(DATE_FORMATS) if formats is None else tuple(formats)
    unknown = [f for f in names if f not in DATE_FORMATS]
    if not names or unknown:
        raise ValueError(f"{owner}: formats expected names from {sorted(DATE_FORMATS)}, "
                         f"got {list(names)!r}")
    if (not isinstance(years, tuple | list) or len(years) != 2
            or not all(isinstance(y, int) and not isinstance(y, bool) for y in years)
            or not 1970 <= years[0] <= years[1] <= 2069):
        raise ValueError(f"{owner}: years expected (first, last) with 1970 <= first <= last "
                         f"<= 2069, got {years!r}")
    first = _dt.date(years[0], 1, 1).toordinal()
    last = _dt.date(years[1], 12, 31).toordinal()
    rng = make_rng(seed)
    days = rng.integers(first, last + 1, size=n).tolist()
    which = rng.integers(0, len(names), size=n).tolist()
    case = rng.random(n).tolist()
    questions, answers = [], []
    for ordinal, k, u in zip(days, which, case, strict=True):
        d = _dt.date.fromordinal(ordinal)
        variants = DATE_FORMATS[names[k]]
        text = variants[int(u * len(variants))](d)
        if len(text) > width:
            raise ValueError(f"{owner}: width expected at least {len(text)} (the date "
                             f"{text!r}), got {width}")
        questions.append(text.ljust(width))
        answers.append(d.isoformat())
    return Pairs(questions, answers)


def parse_two_digit_year(yy: int) -> int:
    """The full year a two-digit year stands for in :func:`make_dates`."""
    return 1900 + yy if yy >= YEAR_PIVOT else 2000 + yy


#: Task name -> generator; ``seq2seq train --task NAME`` falls back to these.
GENERATORS: dict[str, Callable[..., Pairs]] = {"addition": make_addition, "date": make_dates}
