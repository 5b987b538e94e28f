"""Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), as ``torch.optim``.

With ``t`` the step count (1 at the first step), ``β₁, β₂`` the betas::

    AdamW only:  θ ← θ (1 − η λ)               (decoupled weight decay λ)
    Adam only:   g ← g + λθ                     (L2 weight decay λ)
    m ← β₁ m + (1 − β₁) g
    v ← β₂ v + (1 − β₂) g²
    amsgrad:     v̂ ← max(v̂, v), else v̂ = v
    θ ← θ − (η / (1 − β₁ᵗ)) · m / (√v̂ / √(1 − β₂ᵗ) + ε)

``m``, ``v`` (and ``v̂``) start at zero; ``t`` is the optimizer's ``step_count``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from rnnlab.backend import Array, xp_of
from rnnlab.optim._checks import ParamSource, check_bool, check_real
from rnnlab.optim.optimizer import Optimizer, check_lr


def check_betas(value: Any, owner: str) -> tuple[float, float]:
    """A pair of numbers in [0, 1)."""
    if isinstance(value, str) or not hasattr(value, "__len__") or len(value) != 2:
        raise TypeError(f"{owner}: betas expected a pair of numbers in [0, 1), got "
                        f"{value!r}")
    b1 = check_real(value[0], owner, "betas[0]", low=0.0, high=1.0, high_open=True)
    b2 = check_real(value[1], owner, "betas[1]", low=0.0, high=1.0, high_open=True)
    return (b1, b2)


class Adam(Optimizer):
    """Adam with PyTorch's defaults (η = 1e-3, betas (0.9, 0.999), ε = 1e-8), L2 decay.

    State: ``exp_avg``, ``exp_avg_sq`` and, with ``amsgrad``, ``max_exp_avg_sq``.
    """

    _hyper_names: ClassVar[tuple[str, ...]] = (
        "lr", "betas", "eps", "weight_decay", "amsgrad")
    betas: tuple[float, float]
    eps: float
    weight_decay: float
    amsgrad: bool
    _nonnegative_buffers: ClassVar[frozenset[str]] = frozenset({"exp_avg_sq", "max_exp_avg_sq"})
    _decoupled: ClassVar[bool] = False

    def __init__(self, params: ParamSource, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)

    @classmethod
    def _check_hyper(cls, hyper: Mapping[str, Any], owner: str) -> dict[str, Any]:
        return {
            "lr": check_lr(hyper["lr"], owner),
            "betas": check_betas(hyper["betas"], owner),
            "eps": check_real(hyper["eps"], owner, "eps", low=0.0),
            "weight_decay": check_real(hyper["weight_decay"], owner, "weight_decay",
                                       low=0.0),
            "amsgrad": check_bool(hyper["amsgrad"], owner, "amsgrad"),
        }

    @classmethod
    def _buffer_names(cls, hyper: Mapping[str, Any]) -> tuple[str, ...]:
        if hyper["amsgrad"]:
            return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
        return ("exp_avg", "exp_avg_sq")

    def _update(self, i: int, param: Array, grad: Array, state: dict[str, Any]) -> None:
        xp = xp_of(param)
        lr, (b1, b2), wd = self.lr, self.betas, self.weight_decay
        t = self._step_count
        if wd != 0 and self._decoupled:
            param *= 1.0 - lr * wd
        if wd != 0 and not self._decoupled:
            d = self._work(i, 0)
            xp.multiply(param, wd, out=d)
            d += grad
            work = self._work(i, 1)
        else:
            d = grad
            work = self._work(i, 0)
        m = self._buffer(state, "exp_avg", param)
        v = self._buffer(state, "exp_avg_sq", param)
        m *= b1
        xp.multiply(d, 1.0 - b1, out=work)
        m += work
        v *= b2
        xp.multiply(d, d, out=work)
        work *= 1.0 - b2
        v += work
        if self.amsgrad:
            vmax = self._buffer(state, "max_exp_avg_sq", param)
            xp.maximum(vmax, v, out=vmax)
            v = vmax
        step_size = lr / (1.0 - b1 ** t)
        xp.sqrt(v, out=work)
        work /= (1.0 - b2 ** t) ** 0.5
        work += self.eps
        xp.divide(m, work, out=work)
        work *= step_size
        param -= work


class AdamW(Adam):
    """Adam with decoupled weight decay (default λ = 0.01): ``θ ← θ (1 − η λ)`` first.

    Same state as :class:`Adam`.
    """

    _decoupled: ClassVar[bool] = True

    def __init__(self, params: ParamSource, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)
