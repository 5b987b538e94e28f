"""Losses: ``SoftmaxCrossEntropy`` (time-distributed, with an ignore index) and ``MSELoss``.

``SoftmaxCrossEntropy.forward(logits (N, [T,] V), targets (N, [T])) -> float``::

    loss = sum_{k not ignored} (logsumexp(logits_k) - logits_k[target_k]) / (#not ignored)

computed with a max-shifted log-sum-exp (finite for logits of +-1e4). ``backward(dloss)``
returns ``(softmax(logits) - onehot(target)) * dloss / count`` on real tokens and exactly
zero on ignored ones. The forward computes the gradient with the loss and keeps it;
``inplace=True`` writes it over the logits (the language model's output layer uses this
to avoid copying a large array).
Positions whose target is ``ignore_index`` never read any logit, so
garbage (even NaN) in padded positions cannot leak into the loss. With every token ignored
the loss is 0.0 and the gradient zero (PyTorch would return NaN).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlab.backend import is_array, xp_of
from rnnlab.fast import engine_for
from rnnlab.nn.checks import check_float_array, check_shape
from rnnlab.nn.module import Module, require_cache

_REDUCTIONS = ("mean", "sum")
FLOAT32 = np.dtype(np.float32)


def _check_reduction(owner: str, reduction: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{owner}: reduction expected 'mean' or 'sum', got {reduction!r}")
    return reduction


def _float_dtype(x: Any) -> Any:
    """The dtype a loss checks ``x`` against: its own when floating (losses hold no
    parameters, so they follow their input), float32 otherwise (to report the error)."""
    dtype = getattr(x, "dtype", None)
    return dtype if dtype is not None and dtype.kind == "f" and dtype.itemsize >= 4 else \
        FLOAT32


def _check_dloss(owner: str, dloss: Any) -> float:
    if isinstance(dloss, bool) or (not isinstance(dloss, int | float) and not (
        is_array(dloss) and dloss.ndim == 0
    )):
        raise TypeError(f"{owner}: dloss expected a float, got {type(dloss).__name__}")
    return float(dloss)


class SoftmaxCrossEntropy(Module):
    """Softmax + cross-entropy over the last axis, with ``ignore_index`` (default -100).

    Losses hold no parameters and work in the dtype of their input (float32 or float64).
    """

    def __init__(self, ignore_index: int = -100, reduction: str = "mean", *,
                 device: str | None = None, check_finite: bool = False) -> None:
        super().__init__(device=device, check_finite=check_finite)
        self.ignore_index = int(ignore_index)
        self.reduction = _check_reduction(self.name, reduction)
        self._cache: Any = None

    def extra_repr(self) -> str:
        return f"ignore_index={self.ignore_index}"

    def _check_targets(self, logits: Any, targets: Any) -> None:
        owner = f"{self.name}.forward"
        if not is_array(targets):
            raise TypeError(f"{owner}: targets expected an integer array, got "
                            f"{type(targets).__name__}")
        if xp_of(targets) is not self.xp:
            raise TypeError(f"{owner}: targets expected an array on the layer's device "
                            f"({self.xp.__name__}), got a {xp_of(targets).__name__} array")
        if targets.dtype.kind not in "iu":
            raise TypeError(f"{owner}: targets expected an integer dtype, got {targets.dtype}")
        if tuple(targets.shape) != tuple(logits.shape[:-1]):
            raise ValueError(f"{owner}: targets expected shape {tuple(logits.shape[:-1])} "
                             f"(logits without the class axis), got {tuple(targets.shape)}")

    def forward(self, logits: Any, targets: Any, *, inplace: bool = False) -> float:
        """Mean (or summed) cross-entropy of ``logits`` against integer ``targets``.

        The gradient is computed here, in one cache-friendly sweep over the rows, and kept
        for :meth:`backward`. With ``inplace=True`` the sweep overwrites ``logits`` itself
        (no copy of a large ``(N*T, V)`` array; the caller must not use ``logits`` again),
        and ``backward()`` returns that same array.
        """
        xp, owner = self.xp, f"{self.name}.forward"
        check_float_array(logits, owner, "logits", xp=xp, dtype=_float_dtype(logits),
                          ndims=(2, 3), check_finite=self.check_finite)
        self._check_targets(logits, targets)
        V = logits.shape[-1]
        t = targets.reshape(-1)
        valid = t != self.ignore_index
        real = t[valid]
        if real.size and (int(real.min()) < 0 or int(real.max()) >= V):
            bad = int(real.min()) if int(real.min()) < 0 else int(real.max())
            raise ValueError(f"{owner}: targets expected class ids in [0, {V}) or the ignore "
                             f"index {self.ignore_index}, got {bad}")
        if inplace:
            if not logits.flags.c_contiguous:
                raise ValueError(f"{owner}: inplace=True needs C-contiguous logits")
            grad = logits.reshape(-1, V)
        else:
            grad = self.scratch("grad", (t.size, V), logits.dtype)
            grad[...] = logits.reshape(-1, V)
        count = int(valid.sum())
        scale = 1.0 / count if (self.reduction == "mean" and count) else 1.0
        total = softmax_xent_(grad, xp.where(valid, t, 0), valid, scale)
        loss = total / count if (self.reduction == "mean" and count) else total
        self._cache = (grad, tuple(logits.shape), inplace)
        return loss if count else 0.0

    def backward(self, dloss: float = 1.0) -> Any:
        """Gradient of the loss with respect to the logits.

        A fresh array, except after ``forward(..., inplace=True)`` with ``dloss == 1``:
        then the overwritten logits array itself (do not modify it).
        """
        grad, shape, inplace = require_cache(self, self._cache)
        dloss = _check_dloss(f"{self.name}.backward", dloss)
        if inplace and dloss == 1.0:
            return grad.reshape(shape)
        return (grad * grad.dtype.type(dloss)).reshape(shape)


def _xent_block(z: Any, t: Any, valid: Any, scale: float, xp: Any) -> float:
    """Rows ``z`` (M, V) of logits become ``scale * (softmax(z) - onehot(t))``; returns the
    summed loss of the valid rows. Ignored rows become exactly zero and are never read."""
    all_valid = bool(valid.all())
    if not all_valid:
        z[~valid] = 0  # whatever they held (NaN, inf) is never computed with
    z -= z.max(axis=1, keepdims=True)
    rows = xp.arange(z.shape[0])
    picked = z[rows, t]  # shifted logit of the target: a copy (fancy indexing)
    xp.exp(z, out=z)
    total = z.sum(axis=1)
    losses = xp.log(total) - picked  # log sum exp(z - max) - (z_t - max)  # eq: xent.loss
    z *= (z.dtype.type(scale) / total)[:, None]  # eq: xent.softmax
    z[rows, t] -= z.dtype.type(scale)  # eq: xent.grad
    if not all_valid:
        z[~valid] = 0
        losses = xp.where(valid, losses, 0)
    return float(losses.sum(dtype=xp.float64))


def softmax_xent_(Z: Any, targets: Any, valid: Any, scale: float) -> float:
    """Softmax cross-entropy of the rows of ``Z`` (M, V), overwriting ``Z`` with the gradient
    of ``scale * sum(losses)``; returns the unscaled sum of the losses of valid rows.

    ``targets`` (M,) must hold a real class on every row (ignored rows may hold any). The
    engine may do the sweep (:mod:`rnnlab.fast.losses`).
    """
    xp = xp_of(Z)
    total = engine_for(xp, Z.dtype).softmax_xent(Z, targets, valid, scale)
    if total is not None:
        return total
    return _xent_block(Z, targets, valid, scale, xp)


class MSELoss(Module):
    """Mean (or summed) squared error over all elements, as PyTorch's ``MSELoss``."""

    def __init__(self, reduction: str = "mean", *, device: str | None = None,
                 check_finite: bool = False) -> None:
        super().__init__(device=device, check_finite=check_finite)
        self.reduction = _check_reduction(self.name, reduction)
        self._cache: Any = None

    def forward(self, pred: Any, target: Any) -> float:
        owner = f"{self.name}.forward"
        dtype = _float_dtype(pred)
        check_float_array(pred, owner, "pred", xp=self.xp, dtype=dtype,
                          ndims=(1, 2, 3), check_finite=self.check_finite)
        check_shape(target, owner, "target", tuple(pred.shape), xp=self.xp, dtype=dtype,
                    check_finite=self.check_finite)
        diff = pred - target
        total = float((diff * diff).sum())
        n = diff.size
        self._cache = (diff, n)
        return total / n if self.reduction == "mean" else total

    def backward(self, dloss: float = 1.0) -> Any:
        diff, n = require_cache(self, self._cache)
        dloss = _check_dloss(f"{self.name}.backward", dloss)
        scale = 2.0 * dloss / (n if self.reduction == "mean" else 1)
        return diff * diff.dtype.type(scale)
