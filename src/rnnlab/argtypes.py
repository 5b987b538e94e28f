"""Argument types for the command lines (``argparse`` ``type=`` callables).

Each parses one option value and raises ``argparse.ArgumentTypeError`` with the expected
and the actual value, which argparse turns into a one-line usage error (exit status 2).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _number(kind: type, minimum: float, strict: bool) -> Callable[[str], float | int]:
    word = "an integer" if kind is int else "a finite number"
    bound = f"> {minimum:g}" if strict else f">= {minimum:g}"

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}"
            ) from None
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(f"expected {word} {bound}, got {text}")
        return value

    parse.__name__ = f"{kind.__name__} {bound}"
    return parse


positive_int = _number(int, 1, strict=False)
nonneg_int = _number(int, 0, strict=False)
positive_float = _number(float, 0.0, strict=True)
nonneg_float = _number(float, 0.0, strict=False)
