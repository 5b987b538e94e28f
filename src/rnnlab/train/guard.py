"""The divergence guard: a step that blew up is not applied; the run rolls back.

A step whose loss or gradient norm is NaN/inf, or whose loss exceeds
``divergence_factor`` times the running mean (in the first 20 steps: times the task's
reference loss, log V for a language model), is not applied. The run rolls back to the
last in-memory snapshot (taken every ``snapshot_every`` steps and at every epoch's end),
multiplies the learning rate by ``divergence_lr_factor``, says so, and goes on; after
``max_divergences`` rollbacks it stops with :class:`DivergenceError` (``max_divergences=3``
allows three rollbacks; the fourth divergence ends the run), the rolled-back state saved.
An update that leaves a parameter NaN or infinite (a finite loss and gradient times a
huge learning rate) is a divergence too, caught before the state is snapshotted,
evaluated or saved (:meth:`Guard.checks_update`).

On many processes the guard decides from reduced numbers, so every rank rolls back, or
raises, at the same step.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

from rnnlab.train.config import TrainConfig
from rnnlab.train.distributed import AgreedError
from rnnlab.train.runstate import Progress, RunState, Snapshot


class DivergenceError(AgreedError):
    """Training diverged more often than ``max_divergences`` allows."""


class Guard:
    """Checks each step of the run ``state`` and rolls it back to its last snapshot."""

    def __init__(self, state: RunState, config: TrainConfig, *, log: Callable[..., Any],
                 echo: Callable[[str], None]) -> None:
        self.state, self.config, self._log, self._echo = state, config, log, echo
        self.snapshot: Snapshot | None = None

    def remember(self) -> None:
        """Take the snapshot a later rollback returns to."""
        self.snapshot = self.state.capture()

    def diverged(self, loss: float, norm: float, progress: Progress,
                 reference: float | None) -> str | None:
        """Why the step of ``loss`` and gradient norm ``norm`` must not be applied (None:
        it may)."""
        if not math.isfinite(loss):
            return f"loss {loss}"
        if not math.isfinite(norm):
            return f"gradient norm {norm}"
        yardstick = self._yardstick(progress, reference)
        if loss > self.config.divergence_factor * yardstick:
            return f"loss {loss:.4g} > {self.config.divergence_factor} x reference " \
                   f"{yardstick:.4g}"
        return None

    @staticmethod
    def _yardstick(progress: Progress, reference: float | None) -> float:
        """The running mean of the loss once 20 steps have passed, before that the loss of
        a uniform guess (infinity for a task without one: only NaN and infinity count)."""
        if progress.running_loss is not None and progress.step >= 20:
            return progress.running_loss
        return math.inf if reference is None else reference

    def checks_update(self, step: int, *, epoch_ends: bool, stopping: bool) -> bool:
        """Whether the parameters after ``step`` must be checked for NaN and infinity: when
        that state is snapshotted, saved or evaluated (elsewhere the next loss catches a
        blow-up)."""
        cfg = self.config
        return (step % cfg.snapshot_every == 0 or step % cfg.checkpoint_every == 0
                or epoch_ends or stopping or cfg.max_time is not None
                or (cfg.max_steps is not None and step >= cfg.max_steps))

    @staticmethod
    def finite(model: Any) -> bool:
        xp = model.xp
        return all(bool(xp.isfinite(p).all()) for _, p in model.named_parameters())

    def rollback(self, reason: str, save_last: Callable[[], None], last: str) -> None:
        """Return to the snapshot with a smaller learning rate, or, the rollbacks spent,
        save that state (``save_last``, to ``last``) and raise :class:`DivergenceError`."""
        state, cfg, snap = self.state, self.config, self.snapshot
        assert snap is not None
        failed_at = state.progress.step
        divergences = state.progress.divergences + 1
        state.apply(snap)
        state.progress.divergences = divergences
        optimizer, scheduler = state.optimizer, state.scheduler
        old_lr = optimizer.lr
        optimizer.lr = old_lr * cfg.divergence_lr_factor
        if scheduler is not None:
            scheduler.scale_base(cfg.divergence_lr_factor)
        self._log("divergence", step=failed_at + 1, reason=reason,
                  rolled_back_to=state.progress.step, lr=optimizer.lr)
        limit = cfg.max_divergences
        allowed = f"{limit} rollback{'' if limit == 1 else 's'}"
        if divergences > limit:
            self._echo(f"divergence at step {failed_at + 1} ({reason}): max_divergences "
                       f"allows {allowed}, all made; stopping")
            save_last()
            raise DivergenceError(f"training diverged {divergences} times (last: {reason}); "
                                  f"max_divergences allows {allowed}; the last good state "
                                  f"is in {last}")
        self._echo(f"divergence at step {failed_at + 1} ({reason}): rolled back to step "
                   f"{state.progress.step}, learning rate {old_lr:.4g} -> {optimizer.lr:.4g}"
                   f" (rollback {divergences} of at most {limit})")
        # the snapshot keeps the smaller rate and the count of rollbacks
        snap.optimizer = optimizer.state_dict()  # already a copy of every buffer
        if scheduler is not None:
            snap.scheduler = copy.deepcopy(scheduler.state_dict())
        snap.progress.divergences = divergences
