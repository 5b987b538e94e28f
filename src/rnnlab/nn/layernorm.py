r"""``LayerNorm``: normalisation over the last axis (Ba, Kiros & Hinton 2016), PyTorch's
``torch.nn.LayerNorm(normalized_shape=D)`` with an element-wise affine map.

Forward, for each row ``x`` of ``D`` features (every leading axis is a row)::

    mu    = mean(x)                      var = mean((x - mu)^2)      (biased, as PyTorch)
    r     = 1 / sqrt(var + eps)
    x^    = (x - mu) r
    y     = weight * x^ + bias

Backward, from ``dy`` (same shape as ``y``)::

    dweight = sum over rows of dy * x^        dbias = sum over rows of dy
    g       = dy * weight                     (the gradient of x^)
    dx      = r (g - mean(g) - x^ mean(g * x^))

(the last line is the chain rule through ``mu`` and ``r``: ``dx^/dx`` subtracts the
mean, and the part along ``x^`` that a change of the variance removes).

Parameters ``weight`` ``(D,)`` (ones) and ``bias`` ``(D,)`` (zeros), PyTorch's names and
initialisation; ``elementwise_affine=False`` leaves both out.
"""

from __future__ import annotations

import math
from typing import Any

from numpy.typing import DTypeLike

from rnnlab.backend import Array
from rnnlab.nn.checks import check_float_array, check_positive_int, check_shape
from rnnlab.nn.module import Module, require_cache


class LayerNorm(Module):
    """``forward(x (..., D)) -> y (..., D)``, ``backward(dy) -> dx``."""

    def __init__(self, normalized_shape: int, eps: float = 1e-5,
                 elementwise_affine: bool = True, *, device: str | None = None,
                 dtype: DTypeLike | None = None, check_finite: bool = False) -> None:
        super().__init__(device=device, dtype=dtype, check_finite=check_finite)
        self.normalized_shape = check_positive_int(normalized_shape, self.name,
                                                   "normalized_shape")
        if isinstance(eps, bool) or not isinstance(eps, int | float) \
                or not math.isfinite(eps) or eps <= 0:
            raise ValueError(f"{self.name}: eps expected a positive finite float, got {eps!r}")
        if not isinstance(elementwise_affine, bool):
            raise TypeError(f"{self.name}: elementwise_affine expected a bool, got "
                            f"{elementwise_affine!r}")
        self.eps = float(eps)
        self.elementwise_affine = elementwise_affine
        D = self.normalized_shape
        if elementwise_affine:
            self.add_param("weight", self.xp.ones(D, dtype=self.dtype))
            self.add_param("bias", self.xp.zeros(D, dtype=self.dtype))
        self._cache: tuple[Any, Any] | None = None

    def extra_repr(self) -> str:
        extra = f"{self.normalized_shape}, eps={self.eps}"
        return extra if self.elementwise_affine else extra + ", elementwise_affine=False"

    def reset_parameters(self) -> None:
        """Weight to ones, bias to zeros (PyTorch's initialisation)."""
        if self.elementwise_affine:
            self.params["weight"].fill(1)
            self.params["bias"].fill(0)

    def forward(self, x: Array) -> Any:
        check_float_array(x, f"{self.name}.forward", "x", xp=self.xp, dtype=self.dtype,
                          ndims=(1, 2, 3, 4), last=self.normalized_shape,
                          check_finite=self.check_finite)
        mu = x.mean(axis=-1, keepdims=True)
        xc = x - mu
        var = (xc * xc).mean(axis=-1, keepdims=True)
        r = 1.0 / self.xp.sqrt(var + self.dtype.type(self.eps))
        xhat = xc * r
        self._cache = (xhat, r)
        if not self.elementwise_affine:
            return xhat.copy()
        return xhat * self.params["weight"] + self.params["bias"]

    def backward(self, dy: Array) -> Any:
        xhat, r = require_cache(self, self._cache)
        check_shape(dy, f"{self.name}.backward", "dy", tuple(xhat.shape), xp=self.xp,
                    dtype=self.dtype, check_finite=self.check_finite)
        D = self.normalized_shape
        if self.elementwise_affine:
            dy2, xh2 = dy.reshape(-1, D), xhat.reshape(-1, D)
            self.grads["weight"] += (dy2 * xh2).sum(axis=0)
            self.grads["bias"] += dy2.sum(axis=0)
            g = dy * self.params["weight"]
        else:
            g = dy
        mean_g = g.mean(axis=-1, keepdims=True)
        mean_gx = (g * xhat).mean(axis=-1, keepdims=True)
        return r * (g - mean_g - xhat * mean_gx)
