"""Every speed switch of rnnlab, read from the environment in one place, with one vocabulary.

==========================  =======================================================  =======
variable                    what it switches                                         default
==========================  =======================================================  =======
``RNNLAB_FAST``             the whole engine; ``0`` runs the plain NumPy reference    on
``RNNLAB_KERNELS``          numba's (CPU, float32) and CuPy's fused kernels           on
``RNNLAB_PACKED``           per-step products through packed weights                  auto
``RNNLAB_LOOP_TRANSPOSED``  per-step products computed as ``(W h^T)^T``               auto
``RNNLAB_LOOP_THREADS``     BLAS threads inside a time loop (a number, or ``all``)    auto
``RNNLAB_BESIDE``           weight gradients on a second core during backward         auto
``RNNLAB_RELEASE_BLAS``     ending OpenBLAS's idle workers before rnnlab's threads    on
``RNNLAB_CPU_WORKERS``      host threads of the row sweeps (1 to 64)                  cores
==========================  =======================================================  =======

Switches take ``1/0``, ``on/off``, ``true/false``, ``yes/no`` (any case) and ``auto``
(or empty: the default). An unknown word is a :class:`ValueError` naming the
variable. :func:`switch` reads one variable and parses each value it takes once;
:func:`rnnlab.fast.set_enabled` overrides ``RNNLAB_FAST`` from Python.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

_TRUE = ("1", "on", "true", "yes")
_FALSE = ("0", "off", "false", "no")
#: the most host threads ``RNNLAB_CPU_WORKERS`` may ask for
MAX_CPU_WORKERS = 64

_NAMES = ("RNNLAB_FAST", "RNNLAB_KERNELS", "RNNLAB_PACKED", "RNNLAB_LOOP_TRANSPOSED",
          "RNNLAB_LOOP_THREADS", "RNNLAB_BESIDE", "RNNLAB_RELEASE_BLAS", "RNNLAB_CPU_WORKERS")


@dataclass(frozen=True)
class Settings:
    """The parsed switches; ``None`` means ``auto`` (the engine decides by size)."""

    fast: bool = True
    kernels: bool = True
    packed: bool | None = None
    loop_transposed: bool | None = None
    loop_threads: int | str | None = None  # a count, "all", or None (auto)
    beside: bool | None = None
    release_blas: bool = True
    cpu_workers: int | None = None  # None: the cores this process may use, at most 8


def _switch(name: str, raw: str, auto: bool) -> bool | None:
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    if word in ("", "auto"):
        return None
    allowed = "0/1/off/on/false/true/no/yes/auto"
    raise ValueError(f"{name}: expected one of {allowed}, got {raw!r}")


def _count(name: str, raw: str, words: tuple[str, ...]) -> int | str | None:
    word = raw.strip().lower()
    if word in ("", "auto"):
        return None
    if word in words:
        return word
    try:
        value = int(word)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_CPU_WORKERS:
        extra = "".join(f", {w!r}" for w in words)
        raise ValueError(f"{name}: expected an integer from 1 to {MAX_CPU_WORKERS}, "
                         f"'auto'{extra}, got {raw!r}")
    return value


_PARSERS = {
    "RNNLAB_FAST": lambda name, raw: _on(name, raw, True),
    "RNNLAB_KERNELS": lambda name, raw: _on(name, raw, True),
    "RNNLAB_PACKED": lambda name, raw: _switch(name, raw, auto=True),
    "RNNLAB_LOOP_TRANSPOSED": lambda name, raw: _switch(name, raw, auto=True),
    "RNNLAB_LOOP_THREADS": lambda name, raw: _count(name, raw, ("all",)),
    "RNNLAB_BESIDE": lambda name, raw: _switch(name, raw, auto=True),
    "RNNLAB_RELEASE_BLAS": lambda name, raw: _on(name, raw, True),
    "RNNLAB_CPU_WORKERS": lambda name, raw: _count(name, raw, ()),
}


def _on(name: str, raw: str, default: bool) -> bool:
    value = _switch(name, raw, auto=False)
    return default if value is None else value


def parse(env: dict[str, str]) -> Settings:
    """The :class:`Settings` of the environment ``env`` (a mapping like ``os.environ``)."""
    values: list[Any] = [_PARSERS[name](name, env.get(name, "")) for name in _NAMES]
    return Settings(*values)  # each parser gives its field's type


_CACHE: dict[tuple[str, str | None], object] = {}
_ENABLED: bool | None = None  # set_enabled's override of RNNLAB_FAST


def switch(name: str) -> object:
    """One switch's value now (``name`` one of the variables above): its variable is read
    at each call and parsed once for each value it takes."""
    raw = os.environ.get(name)
    key = (name, raw)
    try:
        return _CACHE[key]
    except KeyError:
        value = _CACHE[key] = _PARSERS[name](name, raw or "")
        return value


def flag(name: str) -> bool | None:
    """:func:`switch` of an on/off variable (``None``: ``auto``)."""
    value = switch(name)
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"flag: {name} is not an on/off switch")
    return value


def count(name: str) -> int | str | None:
    """:func:`switch` of a count variable: a number, a word it allows, or ``None``."""
    value = switch(name)
    if value is not None and not isinstance(value, (int, str)):
        raise TypeError(f"count: {name} is not a count")
    return value


def settings() -> Settings:
    """All the switches now."""
    values: list[Any] = [switch(name) for name in _NAMES]
    return Settings(*values)


def set_enabled(enabled: bool | None) -> None:
    """Run the engine (``True``), the reference alone (``False``), or follow
    ``RNNLAB_FAST`` again (``None``); for the whole process."""
    global _ENABLED
    if enabled is not None and not isinstance(enabled, bool):
        raise TypeError(f"set_enabled: enabled expected True, False or None, got {enabled!r}")
    _ENABLED = enabled


def enabled() -> bool:
    """Whether the engine runs (``set_enabled``, else ``RNNLAB_FAST``)."""
    return bool(flag("RNNLAB_FAST")) if _ENABLED is None else _ENABLED
