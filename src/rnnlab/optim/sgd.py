"""Stochastic gradient descent: ``SGD`` (PyTorch's rule), ``Momentum`` and ``Nesterov``
(the velocity form of the textbook).

With ``g`` the gradient, ``θ`` the parameter, ``η`` the learning rate, ``μ`` the momentum:

* ``SGD`` (``torch.optim.SGD``): ``g ← g + λθ``; with momentum ``b ← g`` on the first
  step, ``b ← μ b + (1 − τ) g`` afterwards; ``d ← g + μ b`` (Nesterov) or ``d ← b``;
  ``θ ← θ − η d``.
* ``Momentum``: ``v ← μ v − η g``, ``θ ← θ + v`` (``v`` starts at zero).
* ``Nesterov``: ``v ← μ v − η g``, ``θ ← θ + μ v − η g`` (Sutskever et al. 2013 / Bengio et
  al. 2013 form; the same as ``θ ← θ + μ² v_old − (1 + μ) η g``).

At a constant learning rate ``Momentum`` and ``Nesterov`` follow exactly the trajectory of
``SGD(momentum=μ)`` and ``SGD(momentum=μ, nesterov=True)`` (``v = −η b``); they differ when
``η`` changes: the velocity form keeps past steps at the learning rate they were taken
with, PyTorch's form rescales the whole buffer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from rnnlab.backend import Array, xp_of
from rnnlab.optim._checks import ParamSource, check_bool, check_real
from rnnlab.optim.optimizer import Optimizer, check_lr


class SGD(Optimizer):
    """``torch.optim.SGD``: plain, momentum, dampened and Nesterov SGD with L2 decay.

    ``g ← g + λθ`` (``weight_decay`` λ); if ``momentum`` μ > 0: ``b ← g`` at the first step,
    else ``b ← μ b + (1 − τ) g`` (``dampening`` τ); ``g ← g + μ b`` if ``nesterov`` else
    ``g ← b``; ``θ ← θ − η g``. Nesterov needs μ > 0 and τ = 0. State: ``momentum_buffer``
    (only with μ > 0), created by the first step as a copy of ``g``.
    """

    _hyper_names: ClassVar[tuple[str, ...]] = (
        "lr", "momentum", "dampening", "weight_decay", "nesterov")
    momentum: float
    dampening: float
    weight_decay: float
    nesterov: bool

    def __init__(self, params: ParamSource, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False) -> None:
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=nesterov)

    @classmethod
    def _check_hyper(cls, hyper: Mapping[str, Any], owner: str) -> dict[str, Any]:
        out = {
            "lr": check_lr(hyper["lr"], owner),
            "momentum": check_real(hyper["momentum"], owner, "momentum", low=0.0, high=1.0,
                                   high_open=True),
            "dampening": check_real(hyper["dampening"], owner, "dampening", low=0.0,
                                    high=1.0),
            "weight_decay": check_real(hyper["weight_decay"], owner, "weight_decay",
                                       low=0.0),
            "nesterov": check_bool(hyper["nesterov"], owner, "nesterov"),
        }
        if out["nesterov"] and (out["momentum"] == 0 or out["dampening"] != 0):
            raise ValueError(f"{owner}: nesterov=True expected momentum > 0 and dampening "
                             f"== 0, got momentum={out['momentum']} and "
                             f"dampening={out['dampening']}")
        return out

    @classmethod
    def _buffer_names(cls, hyper: Mapping[str, Any]) -> tuple[str, ...]:
        return ("momentum_buffer",) if hyper["momentum"] > 0 else ()

    def _update(self, i: int, param: Array, grad: Array, state: dict[str, Any]) -> None:
        xp = xp_of(param)
        lr, mu, wd = self.lr, self.momentum, self.weight_decay
        if wd != 0:
            d = self._work(i)
            xp.multiply(param, wd, out=d)
            d += grad
        else:
            d = grad
        if mu == 0:
            self._sub_scaled(i, param, d, lr)
            return
        buf = state.get("momentum_buffer")
        if buf is None:
            state["momentum_buffer"] = buf = d.copy()
        else:
            buf *= mu
            if self.dampening != 0:  # never with nesterov, so d may be overwritten
                work = self._work(i)
                xp.multiply(d, 1.0 - self.dampening, out=work)
                buf += work
            else:
                buf += d
        if self.nesterov:
            self._sub_scaled(i, param, d, lr)  # may use d's array as its work: d is done
            self._sub_scaled(i, param, buf, lr * mu)
        else:
            self._sub_scaled(i, param, buf, lr)


class _Velocity(Optimizer):
    """Shared parts of the velocity-form optimizers."""

    _hyper_names: ClassVar[tuple[str, ...]] = ("lr", "momentum", "weight_decay")
    momentum: float
    weight_decay: float

    def __init__(self, params: ParamSource, lr: float = 0.01, momentum: float = 0.9,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay)

    @classmethod
    def _check_hyper(cls, hyper: Mapping[str, Any], owner: str) -> dict[str, Any]:
        return {
            "lr": check_lr(hyper["lr"], owner),
            "momentum": check_real(hyper["momentum"], owner, "momentum", low=0.0, high=1.0,
                                   high_open=True),
            "weight_decay": check_real(hyper["weight_decay"], owner, "weight_decay",
                                       low=0.0),
        }

    @classmethod
    def _buffer_names(cls, hyper: Mapping[str, Any]) -> tuple[str, ...]:
        return ("velocity",)

    def _scaled_grad(self, i: int, param: Array, grad: Array) -> Array:
        """``η (g + λθ)`` in scratch 0."""
        xp = xp_of(param)
        work = self._work(i)
        if self.weight_decay != 0:
            xp.multiply(param, self.weight_decay, out=work)
            work += grad
            work *= self.lr
        else:
            xp.multiply(grad, self.lr, out=work)
        return work


class Momentum(_Velocity):
    """Momentum SGD in the textbook's velocity form (default μ = 0.9, η = 0.01).

    ``g ← g + λθ``; ``v ← μ v − η g``; ``θ ← θ + v``. State: ``velocity`` (zeros at the
    first step). Equals ``SGD(momentum=μ)`` while ``η`` is constant.
    """

    def _update(self, i: int, param: Array, grad: Array, state: dict[str, Any]) -> None:
        step = self._scaled_grad(i, param, grad)
        v = self._buffer(state, "velocity", param)
        v *= self.momentum
        v -= step
        param += v


class Nesterov(_Velocity):
    """Nesterov's accelerated gradient in velocity form (default μ = 0.9, η = 0.01).

    ``g ← g + λθ``; ``v ← μ v − η g``; ``θ ← θ + μ v − η g``, i.e.
    ``θ ← θ + μ² v_old − (1 + μ) η g``. State: ``velocity`` (zeros at the first step).
    Equals ``SGD(momentum=μ, nesterov=True)`` while ``η`` is constant.
    """

    def _update(self, i: int, param: Array, grad: Array, state: dict[str, Any]) -> None:
        xp = xp_of(param)
        step = self._scaled_grad(i, param, grad)
        v = self._buffer(state, "velocity", param)
        v *= self.momentum
        v -= step
        param -= step
        xp.multiply(v, self.momentum, out=step)
        param += step
