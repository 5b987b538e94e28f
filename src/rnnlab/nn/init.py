"""Parameter initialisation shared by the layers.

Numbers are drawn in float64 from the layer's ``numpy.random.Generator`` and written
straight into the weights, :data:`CHUNK` numbers at a time. The values are those of one
float64 draw of the whole shape cast to the weights' dtype (so float32 and float64 layers
built from the same seed hold the same values up to rounding, and seeded models keep the
initial weights they always had), but the memory an initialisation takes beyond the
weights themselves is one chunk, not a float64 copy and a cast copy of the largest matrix.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from rnnlab.backend import Array, is_array, xp_of

#: Numbers drawn at a time. Beyond the weights, an initialisation holds one chunk of
#: float64 on the host (plus its cast copy on the way to a GPU).
CHUNK = 1 << 18

Draw = Callable[[tuple[int, ...]], np.ndarray]


def _check_out(out: Any, owner: str) -> None:
    if not is_array(out):
        raise TypeError(f"{owner}: out expected an array, got {type(out).__name__}")
    if out.dtype.kind != "f":
        raise TypeError(f"{owner}: out expected a floating dtype, got {out.dtype}")


def _fill(out: Any, draw: Draw) -> Any:
    """Write ``draw(shape)`` float64 numbers into ``out`` in C order, at most about
    :data:`CHUNK` of them at a time; the same values as ``draw(out.shape)`` cast."""
    xp = xp_of(out)

    def put(target: Array, values: np.ndarray) -> None:
        target[...] = values if xp is np else xp.asarray(values.astype(out.dtype))

    if out.size <= CHUNK:
        put(out, draw(out.shape))
    elif out.flags.c_contiguous:
        flat = out.reshape(-1)  # a view; the generator fills C order, one number after another
        for start in range(0, flat.size, CHUNK):
            stop = min(start + CHUNK, flat.size)
            put(flat[start:stop], draw((stop - start,)))
    else:  # a strided view: blocks of whole rows of the first axis
        row = out.size // out.shape[0]
        if row > CHUNK:  # a row larger than a chunk: each row on its own, in chunks
            for i in range(out.shape[0]):
                _fill(out[i], draw)
            return out
        rows = CHUNK // row
        for start in range(0, out.shape[0], rows):
            stop = min(start + rows, out.shape[0])
            put(out[start:stop], draw((stop - start, *out.shape[1:])))
    return out


def fill_uniform(out: Any, rng: np.random.Generator, bound: float) -> Any:
    """Fill ``out`` (a float array, NumPy or CuPy) in place with numbers uniform in
    ``[-bound, bound]`` drawn from ``rng``; returns ``out``."""
    _check_out(out, "fill_uniform")
    return _fill(out, lambda shape: rng.uniform(-bound, bound, size=shape))


def fill_normal(out: Any, rng: np.random.Generator, *, divisor: float = 1.0) -> Any:
    """Fill ``out`` in place with standard normal numbers divided by ``divisor`` (the
    textbook's ``randn(...) / sqrt(fan_in)``); returns ``out``."""
    _check_out(out, "fill_normal")
    if isinstance(divisor, bool) or not isinstance(divisor, int | float | np.integer
                                                   | np.floating) \
            or not math.isfinite(divisor) or divisor <= 0:
        raise ValueError(f"fill_normal: divisor expected a finite float > 0, got {divisor!r}")
    return _fill(out, lambda shape: rng.standard_normal(shape) / divisor)


def uniform_init(rng: np.random.Generator, shape: tuple[int, ...], bound: float,
                 dtype: np.dtype, xp: ModuleType) -> Any:
    """A new array of ``shape`` and ``dtype`` on the device of ``xp``, uniform in
    ``[-bound, bound]`` (PyTorch's default for recurrent and linear layers)."""
    return fill_uniform(xp.empty(shape, dtype=dtype), rng, bound)


def normal_init(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype, xp: ModuleType,
                *, divisor: float = 1.0) -> Any:
    """A new array of ``shape`` and ``dtype`` on the device of ``xp``, standard normal
    divided by ``divisor`` (an embedding's default: ``divisor=1``)."""
    return fill_normal(xp.empty(shape, dtype=dtype), rng, divisor=divisor)
