"""Learning-rate schedules that set an optimizer's ``lr`` from a closed form.

Each schedule remembers ``base_lr`` (the optimizer's ``lr`` when the schedule is built)
and counts its ``step()`` calls in ``step_count``; after ``n`` calls it sets
``optimizer.lr = lr_at(n)``. The closed form makes resuming exact: ``load_state_dict``
restores ``base_lr`` and ``step_count`` and sets ``optimizer.lr = lr_at(step_count)``
again, so the order in which optimizer and schedule are restored does not matter.

Call frequency:

* :class:`StepLR` and :class:`ExponentialDecay`: **once per epoch**, at the end of the
  epoch (after its last ``optimizer.step()``); the next epoch trains with the new rate.
* :class:`CosineAnnealing`: **once per batch**, after each ``optimizer.step()``; building
  it sets the rate of the first batch.
* :class:`~rnnlab.optim.plateau.ReduceOnPlateau`: once per epoch with that epoch's
  validation metric.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real
from typing import Any, ClassVar, Protocol

from rnnlab.optim._checks import check_int, check_keys, check_real


class HasLR(Protocol):
    """What a schedule drives: an optimizer's settable learning rate."""

    lr: float


def check_optimizer(optimizer: object, owner: str) -> None:
    """The optimizer must have a numeric, settable ``lr``."""
    lr = getattr(optimizer, "lr", None)
    if isinstance(lr, bool) or not isinstance(lr, Real):
        raise TypeError(f"{owner}: optimizer expected an optimizer with a numeric lr "
                        f"attribute (an rnnlab.optim optimizer), got "
                        f"{type(optimizer).__name__}")


class Schedule:
    """Base class of the closed-form schedules (subclasses define ``lr_at``)."""

    #: Names of the configuration values kept in ``state_dict``.
    _config_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, optimizer: HasLR, **config: Any) -> None:
        owner = type(self).__name__
        check_optimizer(optimizer, owner)
        for key, value in self._check_config(config, owner).items():
            setattr(self, key, value)
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.step_count = 0

    @classmethod
    def _check_config(cls, config: Mapping[str, Any], owner: str) -> dict[str, Any]:
        raise NotImplementedError

    def lr_at(self, n: int) -> float:
        """The learning rate after ``n`` calls of ``step()``."""
        raise NotImplementedError

    def step(self) -> float:
        """Advance one period (see the class for which) and set ``optimizer.lr``;
        returns the new rate."""
        self.step_count += 1
        self.optimizer.lr = lr = self.lr_at(self.step_count)
        return lr

    def state_dict(self) -> dict[str, Any]:
        """``{"type", "base_lr", "step_count", <config>}``, all JSON-able."""
        out: dict[str, Any] = {"type": type(self).__name__, "base_lr": self.base_lr,
                               "step_count": self.step_count}
        out.update({k: getattr(self, k) for k in self._config_names})
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the configuration and position, then set ``optimizer.lr`` to match.

        Validated first; on error nothing changes.
        """
        cls = type(self).__name__
        owner = f"{cls}.load_state_dict"
        check_keys(state, owner, "state", ("type", "base_lr", "step_count",
                                           *self._config_names))
        if state["type"] != cls:
            raise ValueError(f"{owner}: type expected {cls!r}, got {state['type']!r}")
        config = self._check_config({k: state[k] for k in self._config_names}, owner)
        base_lr = check_real(state["base_lr"], owner, "base_lr", low=0.0)
        count = check_int(state["step_count"], owner, "step_count", low=0)
        for key, value in config.items():
            setattr(self, key, value)
        self.base_lr, self.step_count = base_lr, count
        self.optimizer.lr = self.lr_at(count)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._config_names)
        return f"{type(self).__name__}({args}, base_lr={self.base_lr!r})"


class StepLR(Schedule):
    """Multiply the rate by ``gamma`` every ``step_size`` epochs (``torch``'s ``StepLR``).

    Call ``step()`` once at the end of every epoch. After ``n`` calls
    ``lr = base_lr · gamma ** (n // step_size)``, so epoch ``e`` (1-based) trains with
    ``base_lr · gamma ** ((e − 1) // step_size)``.
    """

    _config_names: ClassVar[tuple[str, ...]] = ("step_size", "gamma")
    step_size: int
    gamma: float

    def __init__(self, optimizer: HasLR, step_size: int, gamma: float = 0.1) -> None:
        super().__init__(optimizer, step_size=step_size, gamma=gamma)

    @classmethod
    def _check_config(cls, config: Mapping[str, Any], owner: str) -> dict[str, Any]:
        return {"step_size": check_int(config["step_size"], owner, "step_size", low=1),
                "gamma": check_real(config["gamma"], owner, "gamma", low=0.0,
                                    low_open=True)}

    def lr_at(self, n: int) -> float:
        return self.base_lr * self.gamma ** (n // self.step_size)


class ExponentialDecay(Schedule):
    """Multiply the rate by ``gamma`` after every epoch once ``epoch >= start_epoch``.

    Call ``step()`` once at the end of every epoch (the ``n``-th call ends epoch ``n``).
    Epoch ``e`` (1-based) trains with ``base_lr · gamma ** max(0, e − start_epoch)``;
    after ``n`` calls ``lr = base_lr · gamma ** max(0, n − start_epoch + 1)``.
    Zaremba et al. (2014), small model: ``lr=1``, ``gamma=0.5``, ``start_epoch=4`` gives
    1, 1, 1, 1, 0.5, 0.25, ... ``start_epoch=1`` is PyTorch's ``ExponentialLR``.
    """

    _config_names: ClassVar[tuple[str, ...]] = ("gamma", "start_epoch")
    gamma: float
    start_epoch: int

    def __init__(self, optimizer: HasLR, gamma: float, start_epoch: int = 1) -> None:
        super().__init__(optimizer, gamma=gamma, start_epoch=start_epoch)

    @classmethod
    def _check_config(cls, config: Mapping[str, Any], owner: str) -> dict[str, Any]:
        return {"gamma": check_real(config["gamma"], owner, "gamma", low=0.0,
                                    low_open=True),
                "start_epoch": check_int(config["start_epoch"], owner, "start_epoch",
                                         low=1)}

    def lr_at(self, n: int) -> float:
        return self.base_lr * self.gamma ** max(0, n - self.start_epoch + 1)


class CosineAnnealing(Schedule):
    """Linear warm-up, then a half cosine from ``base_lr`` down to ``eta_min``, per batch.

    Call ``step()`` once after every ``optimizer.step()``; building the schedule sets the
    rate of the first batch. Batch ``t`` (0-based, ``t`` = calls so far) trains with::

        t < W:          base_lr · (t + 1) / W                        (warmup_steps W)
        W ≤ t:          eta_min + (base_lr − eta_min) · (1 + cos(π k / K)) / 2,
                        k = min(t, T) − W,  K = T − W                 (total_steps T)

    so the rate reaches ``base_lr`` at batch ``W − 1`` and ``W``, and stays at ``eta_min``
    from batch ``T`` on. Without warm-up this is PyTorch's ``CosineAnnealingLR(T_max=T)``
    for ``t ≤ T``.
    """

    _config_names: ClassVar[tuple[str, ...]] = ("total_steps", "eta_min", "warmup_steps")
    total_steps: int
    eta_min: float
    warmup_steps: int

    def __init__(self, optimizer: HasLR, total_steps: int, eta_min: float = 0.0,
                 warmup_steps: int = 0) -> None:
        super().__init__(optimizer, total_steps=total_steps, eta_min=eta_min,
                         warmup_steps=warmup_steps)
        self.optimizer.lr = self.lr_at(0)

    @classmethod
    def _check_config(cls, config: Mapping[str, Any], owner: str) -> dict[str, Any]:
        total = check_int(config["total_steps"], owner, "total_steps", low=1)
        warmup = check_int(config["warmup_steps"], owner, "warmup_steps", low=0)
        if warmup >= total:
            raise ValueError(f"{owner}: warmup_steps expected < total_steps ({total}), "
                             f"got {warmup}")
        return {"total_steps": total,
                "eta_min": check_real(config["eta_min"], owner, "eta_min", low=0.0),
                "warmup_steps": warmup}

    def lr_at(self, n: int) -> float:
        w = self.warmup_steps
        if n < w:
            return self.base_lr * (n + 1) / w
        k, span = min(n, self.total_steps) - w, self.total_steps - w
        return self.eta_min + (self.base_lr - self.eta_min) * (
            1 + math.cos(math.pi * k / span)) / 2
