"""``Trainer``: the training loop, read top to bottom.

``Trainer(task, config, out_dir).fit()`` trains a task (:class:`~rnnlab.train.task.Task`:
a model, its batches, its loss, built by the caller) for ``config.epochs`` epochs::

    for each epoch:
        for each batch:               zero_grad / forward and backward / clip / step
        validate, keep the best model, save ``last.safetensors``
    evaluate the best model on the test split

Each concern that is not the loop is a collaborator it calls: :class:`~.guard.Guard`
(a step that diverged is rolled back), :class:`~.stops.Stops` (stop signals, step and
time budgets), :class:`~.runstate.RunState` (the run's state, to memory and to disk) and
the :class:`~.distributed.World` (one process, or many under ``mpiexec``: then
``forward_backward`` also reduces the gradients, and the ranks agree on stops).

A run's folder holds ``last.safetensors`` (everything needed to resume bit-exactly),
``best.safetensors`` (the best model) and ``metrics.jsonl`` (one JSON event a line), and
while :meth:`Trainer.fit` runs, its lock (``rnnlab.lock``). A run stopped by a signal
saves its state and ends; one stopped by its budget (``max_steps``, ``max_time``) ends
like a finished one: its final validation replaces the best model when better, and the
test split is evaluated.

``Trainer(model, data, config, out_dir)`` (the older spelling) builds the task of the
model's family for you (:func:`~rnnlab.train.task.default_task`). ``distributed``: None
(detect ``mpiexec``), False (one process) or a :class:`~rnnlab.train.distributed.World`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab import optim
from rnnlab.train.checkpoint import remove_stale_temporaries
from rnnlab.train.config import DataConfig, TrainConfig
from rnnlab.train.distributed import world_of
from rnnlab.train.factory import build_optimizer, build_scheduler, trained_parameters
from rnnlab.train.guard import Guard
from rnnlab.train.metrics import (
    MetricsLog,
    ProgressBar,
    TrainWindow,
    describe,
    loss_fields,
    perplexity,
    shown,
)
from rnnlab.train.runstate import Progress, RunState
from rnnlab.train.stops import Stops
from rnnlab.train.task import Task, trainer_arguments


class Trainer:
    """Train a task with ``config``, writing into ``out_dir`` (see the module's docstring)."""

    def __init__(self, task_or_model: Any, *args: Any, task: Task | None = None,
                 data_config: DataConfig | None = None, echo: Any = None,
                 distributed: Any = None) -> None:
        task, config, out_dir = trainer_arguments(task_or_model, args, task)
        #: The processes training together (:mod:`rnnlab.train.distributed`).
        self.world = world = world_of(distributed)
        if config.check_every is not None:
            world.check_every = config.check_every
        world.join(task, config)  # the task checks the options and takes its share
        self.task, self.model, self.out_dir = task, task.model, Path(out_dir)
        self.trained = trained_parameters(self.model, config)  # all but config.freeze
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.batcher = task.data
        world.check_options(task, config)  # every process: the same options, the same data
        digest = task.digest()
        world.check_agree(digest, "training data (digest)")
        if world.is_root:
            remove_stale_temporaries(self.out_dir)  # left by a run killed while saving
        self.optimizer = build_optimizer(self.trained, config)
        self.scheduler = build_scheduler(self.optimizer, config, len(self.batcher))
        self.metrics = MetricsLog(self.out_dir / "metrics.jsonl", world_size=world.size,
                                  enabled=world.is_root)
        self.echo = (echo or ProgressBar.write) if world.is_root else (lambda *a, **k: None)
        self.state = RunState(task, self.optimizer, self.scheduler, config, digest=digest,
                              data_config=data_config, is_root=world.is_root,
                              log=self.metrics.log, echo=self.echo)
        self.guard = Guard(self.state, config, log=self.metrics.log, echo=self.echo)
        self.stops = Stops(config, agreed=world.agrees_stops, say=self.echo)
        self.config = config
        self._items = 0  # what the last step trained on (for the rate shown)

    @property
    def config(self) -> TrainConfig:
        return self._config

    @config.setter
    def config(self, config: TrainConfig) -> None:
        self._config = self.state.config = self.guard.config = self.stops.config = config

    @property
    def progress(self) -> Progress:
        """Where the run stands (:class:`~rnnlab.train.runstate.Progress`)."""
        return self.state.progress

    # ------------------------------------------------------------------ the loop
    def fit(self) -> dict[str, Any]:
        """Train until the configured epochs, a budget or a stop signal; return a summary.

        Raises :class:`~rnnlab.train.runfolder.RunFolderError` when another process
        trains in the same folder.
        """
        cfg = self.config
        self.state.check_size()  # a checkpoint safetensors cannot read back: say so now
        with self.world.running(self.out_dir), self.stops.watching():
            self.world.announce(cfg, self.echo)
            self.world.check_drift(self.model, self.progress.step, now=True)
            self.guard.remember()
            while self.progress.epoch < cfg.epochs and self.stops.reason is None:
                self.model.train()
                self._train_epoch()
                if self.stops.reason is None:
                    self._end_epoch()
            if self.stops.reason is None:  # the last epoch's end has just saved this state
                self.progress.finished = True
                return self._finish()
            improved = self._validate_stop() if self.stops.by_budget else False
            self.save(self.out_dir / "last.safetensors")
            self.metrics.log("stop", reason=self.stops.reason, step=self.progress.step)
            if self.stops.by_signal:
                last = self.out_dir / "last.safetensors"
                self.stops.say(f"{self.stops.reason}: state saved to {last}; continue with "
                               f"--resume {last}")
                return self.summary()
            if improved:  # after the save: a resumed run goes on as an uninterrupted one
                self._keep_best()
            return self._finish()

    def _train_epoch(self) -> None:
        cfg, task, data = self.config, self.task, self.task.data
        per_batch = cfg.batch_size * cfg.bptt if task.perplexity else cfg.batch_size
        bar = ProgressBar(len(data), data.position, f"epoch {self.progress.epoch + 1}",
                          tokens_per_batch=per_batch, enabled=cfg.progress and
                          self.world.is_root, unit="tok" if task.perplexity else "ex",
                          show_ppl=task.perplexity)
        window = TrainWindow()
        try:
            while data.position < len(data) and not self.stops.due(self.progress.step):
                batch = data.batch(data.position)
                data.position += 1
                loss = self._train_step(*batch)
                if loss is None:  # rolled back
                    bar.reset(data.position)
                    window = TrainWindow()
                    continue
                window.add(loss, self._items)
                bar.update(data.position, loss=loss, lr=self.optimizer.lr)
                step = self.progress.step  # read again after every step: a rollback replaces it
                if step % cfg.log_every == 0:
                    self.metrics.log("train", epoch=self.progress.epoch, step=step,
                                     **window.record(task.perplexity, self.optimizer.lr))
                    window = TrainWindow()
                self.world.check_drift(self.model, step)
                if step % cfg.snapshot_every == 0:
                    self.guard.remember()
                if step % cfg.checkpoint_every == 0:
                    self.save(self.out_dir / "last.safetensors")
        finally:
            bar.close()

    def _train_step(self, *batch: Any) -> float | None:
        """One optimizer step; None when the step diverged and the run rolled back.

        numpy's overflow and invalid-value warnings are silenced here: the guard checks
        the loss, the gradient norm and the parameters itself and reports a divergence.
        """
        cfg, prog, data = self.config, self.progress, self.task.data
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            self.model.zero_grad()
            loss, self._items = self.world.forward_backward(self.task, batch, self.trained,
                                                            self.stops)
            if cfg.clip_value is not None:
                optim.clip_grad_value(self.trained, cfg.clip_value)
            norm = optim.clip_grad_norm(self.trained, cfg.clip_norm or math.inf)
            reason = self.guard.diverged(loss, norm, prog, self.task.reference_loss())
            if reason is None:
                self.optimizer.step()
                if self.guard.checks_update(prog.step + 1, epoch_ends=data.position >= len(data),
                                            stopping=self.stops.reason is not None) \
                        and not self.guard.finite(self.model):
                    reason = "a parameter is NaN or infinite after the update"
        if reason is not None:
            self._rollback(reason)
            return None
        prog.step += 1
        if self.scheduler is not None and self.scheduler.per_step:
            self.scheduler.step()
        prog.running_loss = loss if prog.running_loss is None else \
            0.98 * prog.running_loss + 0.02 * loss
        return loss

    def _end_epoch(self) -> None:
        cfg, prog = self.config, self.progress
        valid = self.evaluate("valid")
        if valid is None or not math.isfinite(valid):  # finite parameters, outputs overflow
            self._rollback(f"validation loss {valid}")
            return
        prog.last_valid = valid
        improved = prog.best_valid is None or valid < prog.best_valid
        if improved:
            self._keep_best()
        else:
            prog.bad_epochs += 1
        self._report_valid(valid, improved, f"epoch {prog.epoch + 1}")
        if self.scheduler is not None and not self.scheduler.per_step:
            self.scheduler.step(valid)
        prog.epoch += 1
        self.task.data.reset()  # a new epoch starts with nothing carried over
        self.task.carried = None
        if cfg.patience is not None and prog.bad_epochs >= cfg.patience:
            epochs = "epoch" if prog.bad_epochs == 1 else "epochs"
            self.echo(f"early stopping: no improvement for {prog.bad_epochs} {epochs}")
            self.metrics.log("early_stop", epoch=prog.epoch, step=prog.step)
            prog.epoch = cfg.epochs
        self.save(self.out_dir / "last.safetensors")
        self.guard.remember()

    def _validate_stop(self) -> bool:
        """The validation of a run stopped by its budget; whether it beats the best."""
        prog = self.progress
        valid = prog.last_valid = self.evaluate("valid")
        improved = valid is not None and math.isfinite(valid) and \
            (prog.best_valid is None or valid < prog.best_valid)
        self._report_valid(valid, improved, f"step {prog.step} ({self.stops.reason})",
                           stopped=self.stops.reason)
        return improved

    def _keep_best(self) -> None:
        prog = self.progress
        prog.best_valid, prog.bad_epochs = prog.last_valid, 0
        self.state.keep_best()
        self.save(self.out_dir / "best.safetensors", training_state=False)

    def _report_valid(self, valid: float | None, improved: bool, when: str,
                      **extra: Any) -> None:
        finite = valid is not None and math.isfinite(valid)
        scores = self.task.scores("valid", self.config) if finite else {}
        self.metrics.log("valid", epoch=self.progress.epoch, step=self.progress.step,
                         loss=valid, **loss_fields(valid, self.task.perplexity),
                         lr=self.optimizer.lr,
                         best=improved, **scores, **extra)
        self.echo(f"{when}: valid {describe(valid, self.task.perplexity)}"
                  f"{' (best)' if improved else ''}{shown(scores)}, lr {self.optimizer.lr:.4g}")

    def _finish(self) -> dict[str, Any]:
        """Evaluate the best model on the test split (the model keeps the best parameters)."""
        if self.state.best_params is not None:
            self.state.load_params(self.state.best_params)
        test = self.evaluate("test")
        if test is not None:
            scores = self.task.scores("test", self.config)
            self.metrics.log("test", step=self.progress.step, loss=test,
                             **loss_fields(test, self.task.perplexity), **scores)
            self.echo(f"test {describe(test, self.task.perplexity)}{shown(scores)}")
            self.test_loss, self.test_scores = test, scores
        return self.summary()

    def summary(self) -> dict[str, Any]:
        prog = self.progress
        out: dict[str, Any] = {"steps": prog.step, "epochs": prog.epoch,
                               "stopped": self.stops.reason}
        for key, value in (("valid", prog.last_valid), ("best_valid", prog.best_valid),
                           ("test", getattr(self, "test_loss", None))):
            if value is not None:
                out[f"{key}_loss"] = value
                if self.task.perplexity:
                    out[f"{key}_ppl"] = perplexity(value)
        for name, value in getattr(self, "test_scores", {}).items():
            out[f"test_{name}"] = value
        return out

    def evaluate(self, split: str = "valid") -> float | None:
        """Mean loss over a whole split (nats per token for a language model, its state
        carried across windows); None when the task has no such split."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self.task.evaluate(split, self.config)

    def _rollback(self, reason: str) -> None:
        last = self.out_dir / "last.safetensors"
        self.guard.rollback(reason, lambda: self.save(last), str(last))

    # --------------------------------------------------------------- checkpoints
    def save(self, path: str | Path, *, training_state: bool = True) -> None:
        """Write a checkpoint (with the full training state unless ``training_state=False``)."""
        self.state.save(path, training_state=training_state)

    def restore(self, path: str | Path) -> None:
        """Load the full training state written by :meth:`save` (for ``--resume``); on any
        :class:`~rnnlab.train.checkpoint.CheckpointError` the trainer is left as it was."""
        self.state.restore(path, self.out_dir / "best.safetensors")
