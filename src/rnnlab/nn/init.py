"""Parameter initialisation shared by the layers."""

from __future__ import annotations

from typing import Any

import numpy as np


def uniform_init(rng: np.random.Generator, shape: tuple[int, ...], bound: float,
                 dtype: np.dtype, xp: Any) -> Any:
    """Uniform in ``[-bound, bound]`` (PyTorch's default for recurrent and linear layers).

    Drawn in float64 and then cast, so float32 and float64 layers built from the same seed
    hold the same values up to rounding.
    """
    values = rng.uniform(-bound, bound, size=shape).astype(dtype)
    return values if xp is np else xp.asarray(values)
