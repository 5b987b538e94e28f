"""AdaGrad (Duchi et al. 2011), as ``torch.optim.Adagrad``.

With ``t`` the step count (1 at the first step)::

    g   ← g + λθ                      (weight_decay λ)
    η_t = η / (1 + (t − 1) δ)         (lr_decay δ)
    s   ← s + g²                      (s starts at initial_accumulator_value)
    θ   ← θ − η_t g / (√s + ε)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from rnnlab.backend import Array, xp_of
from rnnlab.optim._checks import ParamSource, check_real
from rnnlab.optim.optimizer import Optimizer, check_lr


class AdaGrad(Optimizer):
    """AdaGrad with PyTorch's defaults (η = 0.01, ε = 1e-10). State: ``sum``."""

    _hyper_names: ClassVar[tuple[str, ...]] = (
        "lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")
    lr_decay: float
    weight_decay: float
    initial_accumulator_value: float
    eps: float
    _nonnegative_buffers: ClassVar[frozenset[str]] = frozenset({"sum"})

    def __init__(self, params: ParamSource, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10) -> None:
        super().__init__(params, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                         initial_accumulator_value=initial_accumulator_value, eps=eps)

    @classmethod
    def _check_hyper(cls, hyper: Mapping[str, Any], owner: str) -> dict[str, Any]:
        return {
            "lr": check_lr(hyper["lr"], owner),
            "lr_decay": check_real(hyper["lr_decay"], owner, "lr_decay", low=0.0),
            "weight_decay": check_real(hyper["weight_decay"], owner, "weight_decay",
                                       low=0.0),
            "initial_accumulator_value": check_real(
                hyper["initial_accumulator_value"], owner, "initial_accumulator_value",
                low=0.0),
            "eps": check_real(hyper["eps"], owner, "eps", low=0.0),
        }

    @classmethod
    def _buffer_names(cls, hyper: Mapping[str, Any]) -> tuple[str, ...]:
        return ("sum",)

    def _update(self, i: int, param: Array, grad: Array, state: dict[str, Any]) -> None:
        xp = xp_of(param)
        clr = self.lr / (1 + (self._step_count - 1) * self.lr_decay)
        if self.weight_decay != 0:
            d = self._work(i, 0)
            xp.multiply(param, self.weight_decay, out=d)
            d += grad
            work = self._work(i, 1)
        else:
            d = grad
            work = self._work(i, 0)
        acc = self._buffer(state, "sum", param, self.initial_accumulator_value)
        xp.multiply(d, d, out=work)
        acc += work
        xp.sqrt(acc, out=work)
        work += self.eps
        xp.divide(d, work, out=work)
        work *= clr
        param -= work
