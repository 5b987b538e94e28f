"""Optimizers and learning-rate schedules built from a :class:`TrainConfig`."""

from __future__ import annotations

import fnmatch
from typing import Any

from rnnlab import optim
from rnnlab.train.config import TrainConfig


def trained_parameters(model: Any, cfg: TrainConfig) -> list[tuple[str, Any, Any]]:
    """``(name, param, grad)`` of every parameter the run trains: all but those matching a
    pattern of ``cfg.freeze`` (each pattern must match one at least)."""
    named = list(model.named_parameters_and_grads())
    names = [n for n, _, _ in named]
    for pattern in cfg.freeze:
        if not fnmatch.filter(names, pattern):
            raise ValueError(f"TrainConfig: freeze pattern {pattern!r} expected to match a "
                             f"parameter name, the model has {names}")
    trained = [t for t in named if not any(fnmatch.fnmatchcase(t[0], p) for p in cfg.freeze)]
    if not trained:
        raise ValueError(f"TrainConfig: freeze={list(cfg.freeze)} leaves no parameter to train")
    return trained


def build_optimizer(model: Any, cfg: TrainConfig) -> Any:
    """The optimizer ``cfg.optimizer`` over ``model`` (a Module, or the ``(name, param,
    grad)`` triples of :func:`trained_parameters`)."""
    wd = cfg.weight_decay
    if cfg.optimizer == "sgd":
        return optim.SGD(model, lr=cfg.lr, momentum=cfg.momentum, weight_decay=wd)
    if cfg.optimizer in ("momentum", "nesterov"):
        cls = optim.Momentum if cfg.optimizer == "momentum" else optim.Nesterov
        return cls(model, lr=cfg.lr, momentum=cfg.momentum or 0.9)
    if cfg.optimizer == "adagrad":
        return optim.AdaGrad(model, lr=cfg.lr, weight_decay=wd)
    if cfg.optimizer == "rmsprop":
        return optim.RMSprop(model, lr=cfg.lr, momentum=cfg.momentum, weight_decay=wd)
    if cfg.optimizer == "adam":
        return optim.Adam(model, lr=cfg.lr, weight_decay=wd)
    return optim.AdamW(model, lr=cfg.lr, weight_decay=wd)


class Schedule:
    """A schedule with the trainer's protocol: ``per_step``, ``step(metric)``,
    ``scale_base(factor)`` (after a divergence rollback), state dicts."""

    def __init__(self, inner: Any, *, per_step: bool, takes_metric: bool) -> None:
        self.inner, self.per_step, self.takes_metric = inner, per_step, takes_metric

    def step(self, metric: float | None = None) -> None:
        if self.takes_metric:
            self.inner.step(metric)
        else:
            self.inner.step()

    def scale_base(self, factor: float) -> None:
        """Scale the rate a closed-form schedule computes from (plateau owns none)."""
        if hasattr(self.inner, "base_lr"):
            self.inner.base_lr *= factor

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state)


def build_scheduler(optimizer: Any, cfg: TrainConfig, steps_per_epoch: int) -> Schedule | None:
    """The schedule ``cfg.schedule`` (``None`` for ``"none"``).

    ``step``: multiply by ``lr_decay`` every ``decay_start`` epochs; ``exp``: epochs
    ``1..decay_start`` train with ``lr``, every later epoch with ``lr_decay`` times the one
    before (Zaremba et al.: ``decay_start=4``, ``lr_decay=0.5``);
    ``plateau``: multiply by ``lr_decay`` when the validation loss did not improve (0.25 is
    the book's divide-by-4); ``cosine``: per batch over all epochs, with warm-up.
    """
    inner: Any
    if cfg.schedule == "none":
        return None
    if cfg.schedule == "step":
        inner = optim.StepLR(optimizer, step_size=max(1, cfg.decay_start), gamma=cfg.lr_decay)
        return Schedule(inner, per_step=False, takes_metric=False)
    if cfg.schedule == "exp":
        inner = optim.ExponentialDecay(optimizer, gamma=cfg.lr_decay,
                                       start_epoch=max(1, cfg.decay_start))
        return Schedule(inner, per_step=False, takes_metric=False)
    if cfg.schedule == "plateau":
        return Schedule(optim.ReduceOnPlateau(optimizer, factor=cfg.lr_decay), per_step=False,
                        takes_metric=True)
    total = max(cfg.warmup_steps + 1, cfg.epochs * steps_per_epoch)
    inner = optim.CosineAnnealing(optimizer, total_steps=total, warmup_steps=cfg.warmup_steps)
    return Schedule(inner, per_step=True, takes_metric=False)
