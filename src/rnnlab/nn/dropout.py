"""Inverted dropout: ``Dropout`` (a fresh mask per element) and ``LockedDropout`` (one mask
per sequence and feature, shared by all time steps, as in AWD-LSTM). Both scale kept
values by ``1 / (1 - p)`` in training and are the identity in ``eval()``.
"""

from __future__ import annotations

from typing import Any

from numpy.typing import DTypeLike

from rnnlab.backend import Array, RNGLike, make_rng, random_uniform
from rnnlab.nn.checks import check_float_array, check_probability, check_shape
from rnnlab.nn.module import Module, require_cache


class Dropout(Module):
    """Zero each element with probability ``p`` in training; identity in ``eval()``."""

    def __init__(self, p: float = 0.5, *, rng: RNGLike = None, device: str | None = None,
                 dtype: DTypeLike | None = None) -> None:
        super().__init__(device=device, dtype=dtype)
        self.p = check_probability(p, self.name, "p")
        self.rng = make_rng(rng)
        self._mask: Any = None
        self._shape: Any = None

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def _mask_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return shape

    def forward(self, x: Array) -> Any:
        check_float_array(x, f"{self.name}.forward", "x", xp=self.xp, dtype=self.dtype,
                          ndims=(1, 2, 3, 4))
        self._shape = tuple(x.shape)
        if not self.training or self.p == 0.0:
            self._mask = None
            return x  # as in PyTorch: inactive dropout hands its input through
        keep = 1.0 - self.p
        u = random_uniform(self.rng, self._mask_shape(tuple(x.shape)), self.dtype, self.xp)
        mask = (u < keep).astype(self.dtype)
        mask *= self.dtype.type(1.0 / keep)
        self._mask = mask
        return x * mask

    def backward(self, dout: Array) -> Any:
        shape = require_cache(self, self._shape)
        check_shape(dout, f"{self.name}.backward", "dout", shape, xp=self.xp, dtype=self.dtype)
        return dout if self._mask is None else dout * self._mask


class LockedDropout(Dropout):
    """Dropout on ``(N, T, D)`` with one mask per ``(n, d)`` shared across all ``T`` steps."""

    def forward(self, x: Array) -> Any:
        check_float_array(x, f"{self.name}.forward", "x", xp=self.xp, dtype=self.dtype,
                          ndims=(3,))
        return super().forward(x)

    def _mask_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return (shape[0], 1, shape[2])
