"""RMSprop (Hinton's lecture 6e), as ``torch.optim.RMSprop``::

    g ← g + λθ                                  (weight_decay λ)
    s ← α s + (1 − α) g²                        (alpha α)
    centered:  m ← α m + (1 − α) g;   r ← √(s − m²) + ε
    otherwise:                        r ← √s + ε
    momentum μ > 0:  b ← μ b + g / r;  θ ← θ − η b
    otherwise:       θ ← θ − η g / r

``s``, ``m`` and ``b`` start at zero. With ``centered`` the difference ``s − m²`` (never
negative in exact arithmetic) is clamped at zero before the square root.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from rnnlab.backend import Array, xp_of
from rnnlab.optim._checks import ParamSource, check_bool, check_real
from rnnlab.optim.optimizer import Optimizer, check_lr


class RMSprop(Optimizer):
    """RMSprop with PyTorch's defaults (η = 0.01, α = 0.99, ε = 1e-8).

    State: ``square_avg``, plus ``grad_avg`` (centered) and ``momentum_buffer`` (μ > 0).
    """

    _hyper_names: ClassVar[tuple[str, ...]] = (
        "lr", "alpha", "eps", "weight_decay", "momentum", "centered")
    alpha: float
    eps: float
    weight_decay: float
    momentum: float
    centered: bool
    _nonnegative_buffers: ClassVar[frozenset[str]] = frozenset({"square_avg"})

    def __init__(self, params: ParamSource, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False) -> None:
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                         momentum=momentum, centered=centered)

    @classmethod
    def _check_hyper(cls, hyper: Mapping[str, Any], owner: str) -> dict[str, Any]:
        return {
            "lr": check_lr(hyper["lr"], owner),
            "alpha": check_real(hyper["alpha"], owner, "alpha", low=0.0, high=1.0),
            "eps": check_real(hyper["eps"], owner, "eps", low=0.0),
            "weight_decay": check_real(hyper["weight_decay"], owner, "weight_decay",
                                       low=0.0),
            "momentum": check_real(hyper["momentum"], owner, "momentum", low=0.0, high=1.0,
                                   high_open=True),
            "centered": check_bool(hyper["centered"], owner, "centered"),
        }

    @classmethod
    def _buffer_names(cls, hyper: Mapping[str, Any]) -> tuple[str, ...]:
        names = ["square_avg"]
        if hyper["centered"]:
            names.append("grad_avg")
        if hyper["momentum"] > 0:
            names.append("momentum_buffer")
        return tuple(names)

    def _update(self, i: int, param: Array, grad: Array, state: dict[str, Any]) -> None:
        xp = xp_of(param)
        alpha = self.alpha
        if self.weight_decay != 0:
            d = self._work(i, 0)
            xp.multiply(param, self.weight_decay, out=d)
            d += grad
            work = self._work(i, 1)
        else:
            d = grad
            work = self._work(i, 0)
        sq = self._buffer(state, "square_avg", param)
        sq *= alpha
        xp.multiply(d, d, out=work)
        work *= 1.0 - alpha
        sq += work
        if self.centered:
            avg = self._buffer(state, "grad_avg", param)
            avg *= alpha
            xp.multiply(d, 1.0 - alpha, out=work)
            avg += work
            xp.multiply(avg, avg, out=work)
            xp.subtract(sq, work, out=work)
            xp.maximum(work, 0.0, out=work)
            xp.sqrt(work, out=work)
        else:
            xp.sqrt(sq, out=work)
        work += self.eps
        xp.divide(d, work, out=work)
        if self.momentum > 0:
            buf = self._buffer(state, "momentum_buffer", param)
            buf *= self.momentum
            buf += work
            xp.multiply(buf, self.lr, out=work)
        else:
            work *= self.lr
        param -= work
