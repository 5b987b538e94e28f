"""``ReduceOnPlateau``: cut the learning rate when a validation metric stops improving.

Call ``step(metric)`` **once per epoch**, after evaluating on the validation set, with
that epoch's metric (e.g. perplexity). With the defaults (``factor=0.25``,
``patience=0``, ``threshold=0``, ``mode="min"``) it is exactly the textbook's rule::

    best = inf
    after each epoch:  if metric < best: best = metric   else: lr /= 4

(``lr · 0.25`` and ``lr / 4`` are the same float). In general, as PyTorch's
``ReduceLROnPlateau`` (without its ``eps``): the metric improves when
``metric < best · (1 − threshold)`` (``"rel"``) or ``metric < best − threshold``
(``"abs"``), reversed for ``mode="max"``; NaN never improves. After more than
``patience`` epochs in a row without improvement ``lr ← max(lr · factor, min_lr)``, the
count restarts, and the next ``cooldown`` epochs count no bad epochs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real
from typing import Any, ClassVar

from rnnlab.optim._checks import check_choice, check_int, check_keys, check_real
from rnnlab.optim.schedules import HasLR, check_optimizer


class ReduceOnPlateau:
    """Divide the rate by ``1/factor`` when the per-epoch validation metric stalls.

    ``step(metric)`` returns ``True`` when ``metric`` is a new best (e.g. to save the
    model then). Attributes ``best`` (``None`` until a first improvement),
    ``num_bad_epochs`` and ``step_count`` (epochs seen) are public. It changes
    ``optimizer.lr`` only when it cuts it (it does not own the rate).
    """

    _config_names: ClassVar[tuple[str, ...]] = (
        "factor", "patience", "threshold", "mode", "threshold_mode", "cooldown", "min_lr")
    _status_names: ClassVar[tuple[str, ...]] = (
        "best", "num_bad_epochs", "cooldown_counter", "step_count")
    factor: float
    patience: int
    threshold: float
    mode: str
    threshold_mode: str
    cooldown: int
    min_lr: float

    def __init__(self, optimizer: HasLR, factor: float = 0.25, patience: int = 0,
                 threshold: float = 0.0, mode: str = "min", threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float = 0.0) -> None:
        owner = type(self).__name__
        check_optimizer(optimizer, owner)
        config = self._check_config(
            {"factor": factor, "patience": patience, "threshold": threshold, "mode": mode,
             "threshold_mode": threshold_mode, "cooldown": cooldown, "min_lr": min_lr},
            owner)
        for key, value in config.items():
            setattr(self, key, value)
        self.optimizer = optimizer
        self.best: float | None = None
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.step_count = 0

    @classmethod
    def _check_config(cls, c: Mapping[str, Any], owner: str) -> dict[str, Any]:
        return {
            "factor": check_real(c["factor"], owner, "factor", low=0.0, high=1.0,
                                 low_open=True, high_open=True),
            "patience": check_int(c["patience"], owner, "patience", low=0),
            "threshold": check_real(c["threshold"], owner, "threshold", low=0.0),
            "mode": check_choice(c["mode"], owner, "mode", ("min", "max")),
            "threshold_mode": check_choice(c["threshold_mode"], owner, "threshold_mode",
                                           ("rel", "abs")),
            "cooldown": check_int(c["cooldown"], owner, "cooldown", low=0),
            "min_lr": check_real(c["min_lr"], owner, "min_lr", low=0.0),
        }

    def is_better(self, metric: float) -> bool:
        """Whether ``metric`` improves on ``best`` (always, for a non-NaN first metric
        other than the worst infinity)."""
        if self.best is None:
            best = math.inf if self.mode == "min" else -math.inf
        else:
            best = self.best
        t, rel = self.threshold, self.threshold_mode == "rel"
        if self.mode == "min":
            return metric < (best * (1.0 - t) if rel else best - t)
        return metric > (best * (1.0 + t) if rel else best + t)

    def step(self, metric: float) -> bool:
        """Record one epoch's validation ``metric``; cut ``optimizer.lr`` if it stalled.

        Returns whether ``metric`` was a new best.
        """
        if isinstance(metric, bool) or not isinstance(metric, Real):
            try:
                metric = float(metric)  # numpy / CuPy 0-d arrays
            except (TypeError, ValueError):
                raise TypeError(f"{type(self).__name__}.step: metric expected a number, "
                                f"got {type(metric).__name__}") from None
        metric = float(metric)
        self.step_count += 1
        improved = self.is_better(metric)
        if improved:
            self.best = metric
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self.optimizer.lr = max(self.optimizer.lr * self.factor, self.min_lr)
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        return improved

    def state_dict(self) -> dict[str, Any]:
        """Configuration and progress, all JSON-able (``best`` is ``None`` or a float)."""
        out: dict[str, Any] = {"type": type(self).__name__}
        out.update({k: getattr(self, k) for k in self._config_names + self._status_names})
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore configuration and progress (not ``optimizer.lr``: the optimizer's own
        state dict holds it). Validated first; on error nothing changes."""
        cls = type(self).__name__
        owner = f"{cls}.load_state_dict"
        check_keys(state, owner, "state", ("type", *self._config_names,
                                           *self._status_names))
        if state["type"] != cls:
            raise ValueError(f"{owner}: type expected {cls!r}, got {state['type']!r}")
        config = self._check_config(state, owner)
        best = state["best"]
        if best is not None:
            best = check_real(best, owner, "best")
        status = {
            "best": best,
            "num_bad_epochs": check_int(state["num_bad_epochs"], owner, "num_bad_epochs"),
            "cooldown_counter": check_int(state["cooldown_counter"], owner,
                                          "cooldown_counter"),
            "step_count": check_int(state["step_count"], owner, "step_count"),
        }
        for key, value in {**config, **status}.items():
            setattr(self, key, value)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._config_names)
        return f"{type(self).__name__}({args})"
