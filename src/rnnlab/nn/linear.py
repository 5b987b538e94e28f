"""``Linear``: an affine map on the last axis, for ``(N, D)`` and ``(N, T, D)`` inputs.

``y = x W^T + b`` with ``weight`` ``(out_features, in_features)`` and ``bias``
``(out_features,)`` as in PyTorch, initialised uniformly in ``[-1/sqrt(in), 1/sqrt(in)]``.
For ``(N, T, D)`` inputs all steps go through one product (the book's ``TimeAffine``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from rnnlab.backend import Array, RNGLike, make_rng
from rnnlab.nn.checks import check_float_array, check_positive_int, check_shape
from rnnlab.nn.init import uniform_init
from rnnlab.nn.module import Module, require_cache

#: multiply-adds in one part of the weight gradient of :meth:`Linear.backward_split`
PART_MACS = 32_000_000


class Linear(Module):
    """``y = x W^T + b``; ``forward(x (..., in)) -> (..., out)``, ``backward(dy) -> dx``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 rng: RNGLike = None, device: str | None = None, dtype: DTypeLike | None = None,
                 check_finite: bool = False) -> None:
        super().__init__(device=device, dtype=dtype, check_finite=check_finite)
        self.in_features = check_positive_int(in_features, self.name, "in_features")
        self.out_features = check_positive_int(out_features, self.name, "out_features")
        rng = make_rng(rng)
        bound = 1.0 / np.sqrt(self.in_features)
        self.add_param("weight", uniform_init(rng, (self.out_features, self.in_features), bound,
                                              self.dtype, self.xp))
        if bias:
            self.add_param("bias", uniform_init(rng, (self.out_features,), bound, self.dtype,
                                                self.xp))
        self._x: Any = None

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"

    def forward(self, x: Array, *, out: Any = None) -> Any:
        """``x (..., in) -> y (..., out)``; ``out`` (optional) is a C-contiguous array of
        ``x.size // in * out`` elements to write ``y`` into instead of a new array."""
        check_float_array(x, f"{self.name}.forward", "x", xp=self.xp, dtype=self.dtype,
                          ndims=(2, 3), last=self.in_features, check_finite=self.check_finite)
        x2 = x.reshape(-1, self.in_features)
        if out is None:
            y = x2 @ self.params["weight"].T
        else:
            y = out.reshape(x2.shape[0], self.out_features)
            self.xp.matmul(x2, self.params["weight"].T, out=y)
        if "bias" in self.params:
            y += self.params["bias"]
        self._x = x
        return y.reshape(*x.shape[:-1], self.out_features)

    def _backward_operands(self, dy: Array, owner: str) -> tuple[Any, Any]:
        """``(x2, dy2)``: the cached input and ``dy`` as ``(rows, features)`` matrices."""
        x = require_cache(self, self._x)
        shape = (*x.shape[:-1], self.out_features)
        check_shape(dy, f"{self.name}.{owner}", "dy", shape, xp=self.xp, dtype=self.dtype)
        return x.reshape(-1, self.in_features), dy.reshape(-1, self.out_features)

    def backward(self, dy: Array) -> Any:
        x2, dy2 = self._backward_operands(dy, "backward")
        self.matmul_into_grad(self.grads["weight"], dy2.T, x2)
        if "bias" in self.grads:
            self.matmul_into_grad(self.grads["bias"], self.ones(dy2.shape[0]), dy2)
        return (dy2 @ self.params["weight"]).reshape(self._x.shape)

    def backward_split(self, dy: Array) -> tuple[Any, list[Callable[[], None]]]:
        """:meth:`backward` in two: ``(dx, parts)``. ``dx`` is computed at once; the
        parameter gradients are left as ``parts``, callables that each add the gradient
        of a block of output rows (of ``weight`` and ``bias``) and may run in any order,
        on any thread, at the same time (:func:`rnnlab.fast.threads.run_beside`). Each part
        is about :data:`PART_MACS` multiply-adds; ``dy`` must stay unchanged until all
        of them have run."""
        x2, dy2 = self._backward_operands(dy, "backward_split")
        dx = (dy2 @ self.params["weight"]).reshape(self._x.shape)
        rows = max(16, PART_MACS // max(1, x2.shape[0] * x2.shape[1]) // 16 * 16)
        gw, gb = self.grads["weight"], self.grads.get("bias")
        ones = self.ones(dy2.shape[0]) if gb is not None else None

        def part(a: int, b: int) -> None:
            self.matmul_into_grad(gw[a:b], dy2[:, a:b].T, x2)
            if gb is not None:
                self.matmul_into_grad(gb[a:b], ones, dy2[:, a:b])

        return dx, [functools.partial(part, a, min(a + rows, self.out_features))
                    for a in range(0, self.out_features, rows)]
