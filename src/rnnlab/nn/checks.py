"""Input validation shared by the layers: clear errors that name the layer and argument.

Every message has the form ``"<Layer>.<method>: <argument> expected <X>, got <Y>"`` so
that a wrong call is fixed from the message alone, never from a numpy traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from rnnlab.backend import Array, is_array, xp_of


def _where(owner: str, arg: str) -> str:
    return f"{owner}: {arg}"


def check_float_array(
    x: Array,
    owner: str,
    arg: str,
    *,
    xp: ModuleType,
    dtype: np.dtype,
    ndims: Sequence[int],
    last: int | None = None,
    check_finite: bool = False,
) -> None:
    """Check a floating input: array type, device, rank, last dimension, dtype, finiteness."""
    where = _where(owner, arg)
    if not is_array(x):
        raise TypeError(f"{where} expected an array, got {type(x).__name__}")
    if xp_of(x) is not xp:
        raise TypeError(
            f"{where} expected an array on the layer's device ({xp.__name__}), "
            f"got a {xp_of(x).__name__} array"
        )
    if x.ndim not in ndims:
        ranks = " or ".join(f"{n}-D" for n in ndims)
        raise ValueError(f"{where} expected a {ranks} array, got shape {tuple(x.shape)}")
    if last is not None and x.shape[-1] != last:
        raise ValueError(
            f"{where} expected last dimension {last}, got shape {tuple(x.shape)}"
        )
    if x.dtype != dtype:
        raise TypeError(
            f"{where} expected dtype {dtype} (the layer's dtype), got {x.dtype}; "
            f"cast with .astype({dtype.name}) or build the layer with dtype={x.dtype.name}"
            if x.dtype.kind == "f"
            else f"{where} expected dtype {dtype}, got {x.dtype}"
        )
    if check_finite and not bool(xp.isfinite(x).all()):
        raise ValueError(f"{where} contains NaN or infinity (check_finite is on)")


def check_shape(x: Array, owner: str, arg: str, expected: tuple[int, ...], *,
                xp: ModuleType, dtype: np.dtype, check_finite: bool = False) -> None:
    """Check an array of an exact shape and dtype (states, upstream gradients)."""
    where = _where(owner, arg)
    if not is_array(x):
        raise TypeError(f"{where} expected an array of shape {expected}, got {type(x).__name__}")
    if xp_of(x) is not xp:
        raise TypeError(
            f"{where} expected an array on the layer's device ({xp.__name__}), "
            f"got a {xp_of(x).__name__} array"
        )
    if tuple(x.shape) != tuple(expected):
        raise ValueError(f"{where} expected shape {tuple(expected)}, got {tuple(x.shape)}")
    if x.dtype != dtype:
        raise TypeError(f"{where} expected dtype {dtype} (the layer's dtype), got {x.dtype}")
    if check_finite and not bool(xp.isfinite(x).all()):
        raise ValueError(f"{where} contains NaN or infinity (check_finite is on)")


def check_token_ids(ids: Array, owner: str, arg: str, *, num: int, xp: ModuleType,
                    ndims: Sequence[int] = (1, 2)) -> None:
    """Check integer token ids: integer dtype, rank, every id in ``[0, num)``."""
    where = _where(owner, arg)
    if not is_array(ids):
        raise TypeError(f"{where} expected an integer array, got {type(ids).__name__}")
    if xp_of(ids) is not xp:
        raise TypeError(
            f"{where} expected an array on the layer's device ({xp.__name__}), "
            f"got a {xp_of(ids).__name__} array"
        )
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{where} expected an integer dtype, got {ids.dtype}")
    if ids.ndim not in ndims:
        ranks = " or ".join(f"{n}-D" for n in ndims)
        raise ValueError(f"{where} expected a {ranks} array, got shape {tuple(ids.shape)}")
    if ids.size:
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= num:
            bad = low if low < 0 else high
            raise ValueError(f"{where} expected ids in [0, {num}), got {bad}")


def check_lengths(lengths: Any, owner: str, *, batch: int, steps: int) -> np.ndarray:
    """Check per-sequence lengths ``(N,)`` with values in ``[0, T]``; return them as host ints."""
    where = _where(owner, "lengths")
    host = np.asarray(lengths.get() if hasattr(lengths, "get") else lengths)
    if host.dtype.kind not in "iu":
        raise TypeError(f"{where} expected integers, got dtype {host.dtype}")
    if host.shape != (batch,):
        raise ValueError(f"{where} expected shape ({batch},), got {host.shape}")
    if host.size and (host.min() < 0 or host.max() > steps):
        raise ValueError(f"{where} expected values in [0, {steps}], got {host.min()}..{host.max()}")
    return host.astype(np.int64)


def check_positive_int(value: Any, owner: str, arg: str, *, minimum: int = 1) -> int:
    """Check a size argument (an int, not a bool, at least ``minimum``)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{owner}: {arg} expected an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{owner}: {arg} expected an int >= {minimum}, got {value}")
    return int(value)


def check_probability(value: Any, owner: str, arg: str) -> float:
    """Check a dropout probability in ``[0, 1)``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{owner}: {arg} expected a float in [0, 1), got {type(value).__name__}")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{owner}: {arg} expected a float in [0, 1), got {value}")
    return float(value)
