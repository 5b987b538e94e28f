"""``Trainer``: training of any model that follows one small protocol, with validation
each epoch, the best model kept, early stopping, JSON-lines metrics, atomic checkpoints
with exact resume, a divergence guard and a clean stop on Ctrl-C, SIGTERM or SIGHUP.

The protocol. The trainer trains a *task* (:mod:`rnnlab.train.tasks`), a small adapter
around a model and its data:

* the model: ``named_parameters()`` (``(name, param)`` pairs, as PyTorch's) and
  ``named_parameters_and_grads()`` (``(name, param, grad)`` triples), ``zero_grad()``,
  ``train()`` / ``eval()``, ``xp``, and optionally ``rng`` (a generator, saved exactly);
* ``task.forward_loss(batch) -> float`` (the mean loss of a batch) and
  ``task.backward()`` (its gradients, added into the parameters' gradients);
* ``task.data``, the training batches: ``len(data)`` per epoch, ``data.position``,
  ``data.batch(index)``, ``data.reset()`` (the next epoch), ``data.state_dict()`` /
  ``data.load_state_dict()`` (the position, restored exactly);
* ``task.evaluate(split, config) -> float`` (mean loss over ``"valid"`` or ``"test"``),
  ``task.scores(split, config) -> dict`` (accuracy ...), ``task.has_split(split)``;
* ``task.meta()`` / ``task.check_meta(meta, where)``: what a checkpoint says about the
  model (kind, configuration, vocabulary) and the check that one fits; and
  ``task.state_arrays()`` / ``task.restore_state(...)`` for state carried between
  batches (the language model's recurrent state).

``Trainer(model, data, config, out_dir)`` picks the task for an
:class:`~rnnlab.models.RNNLM` (``data``: a corpus; truncated BPTT), a
:class:`~rnnlab.models.SequenceRegressor` or a :class:`~rnnlab.models.SequenceClassifier`
(``data``: ``{"train": ..., "valid": ..., "test": ...}`` of
:class:`~rnnlab.train.tasks.Examples`); ``Trainer(model, None, config, out_dir,
task=Seq2SeqTask(...))`` trains any other (a seq2seq model, or a model of your own with a
task written for it).

A run's folder holds ``last.safetensors`` (everything needed to resume bit-exactly: model,
optimizer, schedule, random state, data position, carried state, progress),
``best.safetensors`` (the model with the best validation perplexity) and
``metrics.jsonl`` (one JSON object per line: ``train``, ``valid``, ``test``,
``divergence``, ``checkpoint``, ``stop`` events). While :meth:`Trainer.fit` runs it holds
the folder's lock (``rnnlab.lock``, :mod:`rnnlab.train.runfolder`): a second trainer in
another process is refused.

Every checkpoint records the digest of the training data (``corpus_digest``: for a
corpus, of its token ids, see :func:`rnnlab.data.core.ids_digest`), computed once when
the trainer is built; :meth:`Trainer.restore` refuses a checkpoint whose digest differs
(data edited in place, with the same vocabulary and length, would otherwise resume
silently on other text). Checkpoints written before digests were recorded have none and
are resumed as before.

Stopping: Ctrl-C (SIGINT), SIGTERM (``kill``, ``timeout``, ``docker stop``, Slurm) and
SIGHUP (the terminal closed) finish the current step, save ``last.safetensors`` and end
:meth:`Trainer.fit` with ``stopped`` set to ``"interrupted"``, ``"terminated"`` or
``"hangup"``; the same signal again aborts at once (:class:`Aborted`, a
``KeyboardInterrupt``). A signal whose handler is "ignore" when training starts (``nohup``,
a background job) stays ignored. Handlers are installed only in the main thread.

Divergence guard: a step whose loss or gradient norm is NaN/inf, or whose loss exceeds
``divergence_factor`` times the running mean (in the first 20 steps: times log V, the
loss of a uniform guess), is not applied. The run rolls back to the last in-memory
snapshot (taken every ``snapshot_every`` steps), multiplies the learning rate by
``divergence_lr_factor``, says so, and goes on; after ``max_divergences`` rollbacks it
stops with :class:`DivergenceError` (``max_divergences=3`` allows three rollbacks; the
fourth divergence ends the run). An update that leaves a parameter NaN or infinite
(a finite loss and gradient times a huge learning rate) is a divergence too, caught before
the state is snapshotted, evaluated or saved. A checkpoint is never written from a state
holding NaN or infinity.

Many processes (MPI): a :class:`Trainer` detects by itself a world of more than one
process (a program started by ``mpiexec -n K`` with mpi4py installed) and trains with
synchronous data parallelism; ``distributed=False`` forces one process, and a
:class:`~rnnlab.train.distributed.World` may be passed. The batch size stays the global
batch: rank ``r`` takes its contiguous share of each batch's rows (streams for truncated
BPTT: the batch size must be divisible by ``K``), the gradients are summed with one
reduction of one flat buffer per step, weighted by each rank's count of loss terms, so
that the result is the single-process mean over the global batch; clipping and the
optimizer step follow on every rank. Dropout masks are drawn for the global batch and do
not depend on ``K``. Rank 0 alone writes checkpoints, metrics (each record carries
``world_size``) and the progress bar; validation and test losses and scores are computed
over the whole split, divided between the ranks. Stop signals (to any rank) and
``max_time`` are agreed in the reduction: every rank stops after the same step. Rollbacks
happen on every rank together; a :class:`DivergenceError` or a
:class:`~rnnlab.train.distributed.DriftError` (the parameter checksums, every
``check_every`` steps, differ) is raised on every rank. A checkpoint resumes with any
``K``. Any other exception on one rank prints the rank and the cause and ends every rank
(``MPI_Abort``). See :mod:`rnnlab.train.distributed` (CuPy arrays are reduced through host
memory; NCCL is later work).

Before training starts the validation and test splits are checked (at least two tokens,
every id inside the vocabulary; the training split too when it is in memory), so that a
bad corpus fails at once rather than at the end of the first epoch.
"""

from __future__ import annotations

import copy
import math
import signal
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.train import state as st
from rnnlab.train.checkpoint import (
    CheckpointError,
    meta_get,
    read_checkpoint,
    remove_stale_temporaries,
    write_checkpoint,
)
from rnnlab.train.config import DataConfig, TrainConfig
from rnnlab.train.distributed import (
    DriftError,
    Rows,
    flatten_grads,
    shard_rngs,
    unflatten_grads,
    world_of,
)
from rnnlab.train.factory import build_optimizer, build_scheduler, trained_parameters
from rnnlab.train.metrics import MetricsLog, ProgressBar, perplexity
from rnnlab.train.runfolder import RunLock
from rnnlab.train.tasks import Task, make_task

#: The signals that stop training with a checkpoint, and the stop reason of each.
STOP_SIGNALS = {"SIGINT": "interrupted", "SIGTERM": "terminated", "SIGHUP": "hangup"}
#: The stops the processes of a distributed run agree on in the gradient reduction (one
#: slot each in its buffer; when several are asked for at once the first one is reported).
AGREED_STOPS = (*STOP_SIGNALS.values(), "max_time")


class DivergenceError(RuntimeError):
    """Training diverged more often than ``max_divergences`` allows."""


class Aborted(KeyboardInterrupt):
    """A second stop signal while a stop was under way: training is abandoned at once.

    ``signum`` is the signal (``signal.SIGINT``, ``SIGTERM`` or ``SIGHUP``).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class Progress:
    """Where a run stands (saved in checkpoints)."""

    epoch: int = 0  # current epoch, 0-based
    step: int = 0  # optimizer steps applied
    best_valid: float | None = None  # best validation loss (nats per token)
    bad_epochs: int = 0  # epochs since the best validation loss
    divergences: int = 0
    finished: bool = False
    last_valid: float | None = None
    running_loss: float | None = None  # running mean of the training loss

    @classmethod
    def from_meta(cls, data: Any, where: str) -> Progress:
        """A :class:`Progress` from a checkpoint's ``progress`` document, every field checked."""
        if not isinstance(data, dict):
            raise CheckpointError(f"{where}: progress expected a dict, got {type(data).__name__}")
        names = [f.name for f in fields(cls)]
        if sorted(data) != sorted(names):
            raise CheckpointError(f"{where}: progress expected the keys {sorted(names)}, got "
                                  f"{sorted(data)}")
        for name in ("epoch", "step", "bad_epochs", "divergences"):
            value = data[name]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise CheckpointError(f"{where}: progress.{name} expected an int >= 0, got "
                                      f"{value!r}")
        for name in ("best_valid", "last_valid", "running_loss"):
            value = data[name]
            if value is not None and (not isinstance(value, int | float)
                                      or isinstance(value, bool) or not math.isfinite(value)):
                raise CheckpointError(f"{where}: progress.{name} expected null or a finite "
                                      f"number, got {value!r}")
        if not isinstance(data["finished"], bool):
            raise CheckpointError(f"{where}: progress.finished expected true or false, got "
                                  f"{data['finished']!r}")
        return cls(**data)


class Trainer:
    """Train ``model`` on ``data`` with ``config``, writing into ``out_dir``.

    ``data`` is a corpus for an :class:`~rnnlab.models.RNNLM`, a dict of splits for a
    regressor or a classifier (see :func:`rnnlab.train.tasks.make_task`); ``task`` trains
    any model a :class:`~rnnlab.train.tasks.Task` is written for (``model`` and ``data``
    are then taken from it).
    """

    def __init__(self, model: Any, data: Any, config: TrainConfig, out_dir: str | Path, *,
                 data_config: DataConfig | None = None, echo: Any = None,
                 task: Task | None = None, distributed: Any = None) -> None:
        if not isinstance(config, TrainConfig):
            raise TypeError(f"Trainer: config expected a TrainConfig, got "
                            f"{type(config).__name__}")
        target = model if task is None else getattr(task, "model", None)
        if config.unigram_bias and not hasattr(target, "init_output_bias"):
            raise TypeError(f"Trainer: unigram_bias=True expected a model with "
                            f"init_output_bias (an RNNLM), got {type(target).__name__}")
        if task is None:
            task = make_task(model, data, config)
        elif not isinstance(task, Task):
            raise TypeError(f"Trainer: task expected a rnnlab.train.tasks.Task, got "
                            f"{type(task).__name__}")
        task.check_config(config)
        #: The processes training together (:mod:`rnnlab.train.distributed`).
        self.world = world = world_of(distributed)
        if config.check_every is not None:
            world.check_every = config.check_every
        if world.size > 1:
            task.shard(world, config)
            rng = task.rng
            if rng is not None:  # the task's rows of each batch (fixed unless it says)
                rows = getattr(task, "rows", None) or \
                    Rows(*world.share(config.batch_size), config.batch_size)
                shard_rngs(task.model, rng, rows)
        self.task = task
        self.model, self.corpus, self.config = task.model, data, config
        self.data_config = data_config
        self.out_dir = Path(out_dir)
        self.trained = trained_parameters(self.model, config)  # all but config.freeze
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.xp = self.model.xp
        self.batcher = task.data
        #: Identifies the data (saved in every checkpoint, compared by :meth:`restore`).
        self.corpus_digest = task.digest()
        # every process must train on the same data (the files on each machine): raised on
        # every rank at once when they differ
        world.check_agree(self.corpus_digest, "training data (digest)")
        self.corpus_bytes = None if data_config is None else data_config.source_bytes()
        if world.is_root:
            remove_stale_temporaries(self.out_dir)  # left by a run killed while saving
        self.optimizer = build_optimizer(self.trained, config)
        self.scheduler = build_scheduler(self.optimizer, config, len(self.batcher))
        self.progress = Progress()
        self.metrics = MetricsLog(self.out_dir / "metrics.jsonl", world_size=world.size,
                                  enabled=world.is_root)
        self.echo = (echo or ProgressBar.write) if world.is_root else (lambda *a, **k: None)
        self._pending_stop: str | None = None
        self._global_items = 0
        self._snapshot: dict[str, Any] | None = None
        self._stop_reason: str | None = None
        self._best_params: dict[str, Any] | None = None

    # ----------------------------------------------------------------- running
    def fit(self) -> dict[str, Any]:
        """Train until the configured epochs, a stop condition, or a stop signal (Ctrl-C,
        SIGTERM, SIGHUP); return a summary.

        Raises :class:`~rnnlab.train.runfolder.RunFolderError` when another process
        trains in the same folder.
        """
        if self.world.size == 1:
            with RunLock(self.out_dir):
                return self._fit()
        try:
            if self.world.is_root:
                with RunLock(self.out_dir):
                    return self._fit()
            return self._fit()
        except (DivergenceError, DriftError):
            raise  # decided from reduced numbers: every rank raises it at the same step
        except BaseException as exc:  # one rank failing must end them all, not hang them
            self.world.abort(exc)
            raise

    def _fit(self) -> dict[str, Any]:
        cfg = self.config
        self._stop_reason = None
        started = self._started = time.perf_counter()
        self._pending_stop = None
        if self.progress.step == 0:
            # an initialisation: only before the first step (a resumed run keeps its own)
            self.task.start(cfg)
        previous = self._install_stop_signals()
        try:
            if self.world.size > 1:
                every = self.world.check_every
                self.echo(f"training on {self.world.size} processes (MPI), global batch "
                          f"{cfg.batch_size}, {cfg.batch_size // self.world.size} per process;"
                          f" parameters compared every {every} step{'s' * (every != 1)}")
                self._check_drift()
            self._take_snapshot()
            while self.progress.epoch < cfg.epochs and self._stop_reason is None:
                self.model.train()
                self._train_epoch(started)
                if self._stop_reason is not None:
                    break
                self._end_epoch()
            if self._stop_reason in ("max_steps", "max_time"):
                prog = self.progress
                prog.last_valid = self.evaluate("valid")
                self.metrics.log("valid", epoch=prog.epoch, step=prog.step, loss=prog.last_valid,
                                 **self._loss_fields(prog.last_valid))
            if self._stop_reason is None:  # the last epoch's end has just saved this state
                self.progress.finished = True
                return self._finish()
            self.save(self.out_dir / "last.safetensors")
            self.metrics.log("stop", reason=self._stop_reason, step=self.progress.step)
            if self._stop_reason in STOP_SIGNALS.values():
                self._say(f"{self._stop_reason}: state saved to "
                          f"{self.out_dir / 'last.safetensors'}; continue with --resume "
                          f"{self.out_dir / 'last.safetensors'}")
            return self.summary()
        finally:
            self._restore_signals(previous)

    def _train_epoch(self, started: float) -> None:
        cfg = self.config
        task = self.task
        per_batch = cfg.batch_size * cfg.bptt if task.perplexity else cfg.batch_size
        bar = ProgressBar(len(self.batcher), self.batcher.position,
                          f"epoch {self.progress.epoch + 1}", tokens_per_batch=per_batch,
                          enabled=cfg.progress and self.world.is_root, unit=task.unit,
                          show_ppl=task.perplexity)
        window_loss, window_steps, window_tokens, t0 = 0.0, 0, 0, time.perf_counter()
        try:
            while self.batcher.position < len(self.batcher):
                if self._should_stop(started):
                    return
                batch = self.batcher.batch(self.batcher.position)
                self.batcher.position += 1
                loss = self._train_step(*batch)
                if loss is None:  # rolled back
                    bar.reset(self.batcher.position)
                    window_loss, window_steps, window_tokens = 0.0, 0, 0
                    continue
                window_loss += loss
                window_steps += 1
                window_tokens += self._global_items
                bar.update(self.batcher.position, loss=loss, lr=self.optimizer.lr)
                prog = self.progress  # read again after every step: a rollback replaces it
                if prog.step % cfg.log_every == 0:
                    elapsed = time.perf_counter() - t0
                    mean = window_loss / window_steps
                    rate = window_tokens / max(elapsed, 1e-9)
                    self.metrics.log("train", epoch=prog.epoch, step=prog.step, loss=mean,
                                     **self._loss_fields(mean), lr=self.optimizer.lr,
                                     **{"tokens_per_s" if task.perplexity else
                                        "examples_per_s": rate})
                    window_loss, window_steps, window_tokens = 0.0, 0, 0
                    t0 = time.perf_counter()
                if self.world.size > 1 and prog.step % self.world.check_every == 0:
                    self._check_drift()
                if prog.step % cfg.snapshot_every == 0:
                    self._take_snapshot()
                if prog.step % cfg.checkpoint_every == 0:
                    self.save(self.out_dir / "last.safetensors")
        finally:
            bar.close()

    def _should_stop(self, started: float) -> bool:
        cfg = self.config
        if self._stop_reason is not None:
            return True
        if self.world.size > 1:  # stops by time or signal are agreed in the reduction
            if cfg.max_steps is not None and self.progress.step >= cfg.max_steps:
                self._stop_reason = "max_steps"
            return self._stop_reason is not None
        if cfg.max_steps is not None and self.progress.step >= cfg.max_steps:
            self._stop_reason = "max_steps"
        elif cfg.max_time is not None and time.perf_counter() - started >= cfg.max_time:
            self._stop_reason = "max_time"
        return self._stop_reason is not None

    def _train_step(self, *batch: Any) -> float | None:
        """One optimizer step; ``None`` when the step diverged and the run rolled back.

        numpy's overflow and invalid-value warnings are silenced here: the guard checks
        the loss, the gradient norm and the parameters itself and reports a divergence.
        """
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._guarded_step(batch)

    def _guarded_step(self, batch: tuple) -> float | None:
        from rnnlab.optim import clip_grad_norm, clip_grad_value

        cfg, prog, task = self.config, self.progress, self.task
        self.model.zero_grad()
        if self.world.size > 1:
            loss = self._distributed_gradients(batch)
        else:
            loss = task.forward_loss(batch)
            self._global_items = task.items(batch)
        reason = None
        if not math.isfinite(loss):
            reason = f"loss {loss}"
        else:
            if self.world.size == 1:
                task.backward()
            if cfg.clip_value is not None:
                clip_grad_value(self.trained, cfg.clip_value)
            norm = clip_grad_norm(self.trained, cfg.clip_norm if cfg.clip_norm else math.inf)
            if not math.isfinite(norm):
                reason = f"gradient norm {norm}"
            elif loss > cfg.divergence_factor * self._reference_loss():
                reason = f"loss {loss:.4g} > {cfg.divergence_factor} x reference " \
                         f"{self._reference_loss():.4g}"
        if reason is not None:
            self._rollback(reason)
            return None
        self.optimizer.step()
        if self._keeps_state_after(prog.step + 1) and not self._params_finite():
            # a finite gradient times a huge learning rate; checked where the state is kept
            # (snapshot, checkpoint, epoch end): elsewhere the next loss catches it
            self._rollback("a parameter is NaN or infinite after the update")
            return None
        prog.step += 1
        if self.scheduler is not None and self.scheduler.per_step:
            self.scheduler.step()
        prog.running_loss = loss if prog.running_loss is None else \
            0.98 * prog.running_loss + 0.02 * loss
        return loss

    def _distributed_gradients(self, batch: tuple | None) -> float:
        """This rank's share of the batch forward and backward, then one reduction of one
        flat buffer: the gradients times this rank's count of loss terms
        (:meth:`~rnnlab.train.tasks.Task.loss_count`), the loss times it, the count, the
        items (for the rate shown) and one flag per stop of :data:`AGREED_STOPS`. Returns
        the global mean loss; the gradients become the gradients of the global mean, those
        of one process training on the whole batch (up to the order of the sums)."""
        task, world, cfg = self.task, self.world, self.config
        if batch is None:  # an example batch too small to give this rank a share
            loss, count, items = 0.0, 0, 0
        else:
            loss, count, items = task.forward_loss(batch), task.loss_count(batch), \
                task.items(batch)
            task.backward()  # also after a non-finite loss: the ranks must stay in step
        asked = self._pending_stop or (
            "max_time" if cfg.max_time is not None
            and time.perf_counter() - self._started >= cfg.max_time else None)
        pairs = [(name, grad) for name, _, grad in self.trained]
        grad_dtype = pairs[0][1].dtype
        extra = 3 + len(AGREED_STOPS)
        buffer = flatten_grads(pairs, self.xp, grad_dtype, extra)
        if count:
            buffer[:-extra] *= grad_dtype.type(count)
        else:  # no loss term here (an empty share, or a loss over nothing): no gradient
            buffer[:-extra] = 0
        buffer[-extra:] = self.xp.asarray(
            [loss * count if count else 0.0, count, items,
             *(1.0 if asked == reason else 0.0 for reason in AGREED_STOPS)], dtype=grad_dtype)
        buffer = world.allreduce_grads(buffer, self.xp)
        tail = [float(v) for v in (buffer[-extra:].get() if hasattr(buffer, "get")
                                   else buffer[-extra:])]
        total_loss, total_count, total_items = tail[:3]
        unflatten_grads(buffer, pairs, 1.0 / total_count if total_count else 0.0)
        self._global_items = round(total_items)
        agreed = [r for r, flag in zip(AGREED_STOPS, tail[3:], strict=True) if flag > 0]
        if agreed and self._stop_reason is None:
            self._stop_reason = agreed[0]
        return total_loss / total_count if total_count else 0.0

    def _check_drift(self) -> None:
        """Stop with a DriftError when the ranks' parameters differ (cheap checksums)."""
        xp = self.xp
        sums = [0.0, 0.0]
        for k, (_, p) in enumerate(self.model.named_parameters()):
            sums[0] += float(xp.sum(p, dtype=xp.float64))
            sums[1] += float(xp.sum(p * (k + 1.0) / (1 + (k % 7)), dtype=xp.float64))
        self.world.check_same(np.asarray(sums), self.progress.step)

    def _keeps_state_after(self, step: int) -> bool:
        """Whether the state after ``step`` is snapshotted, saved or evaluated."""
        cfg = self.config
        return (step % cfg.snapshot_every == 0 or step % cfg.checkpoint_every == 0
                or self.batcher.position >= len(self.batcher)
                or (cfg.max_steps is not None and step >= cfg.max_steps)
                or self._stop_reason is not None or cfg.max_time is not None)

    def _params_finite(self) -> bool:
        xp = self.xp
        return all(bool(xp.isfinite(p).all()) for _, p in self.model.named_parameters())

    def _reference_loss(self) -> float:
        """What a blow-up is measured against: the running mean of the loss once 20 steps
        have passed, before that the loss of a uniform guess (log V for a language model;
        infinity for a task without one: only NaN and infinity count in the first steps)."""
        prog = self.progress
        if prog.running_loss is not None and prog.step >= 20:
            return prog.running_loss
        reference = self.task.reference_loss()
        return math.inf if reference is None else reference

    def _loss_fields(self, loss: float) -> dict[str, float]:
        """``ppl`` beside a loss in nats per token (language models)."""
        return {"ppl": perplexity(loss)} if self.task.perplexity else {}

    def _describe(self, loss: float) -> str:
        return f"ppl {perplexity(loss):.2f}" if self.task.perplexity else f"loss {loss:.4g}"

    def _end_epoch(self) -> None:
        cfg, prog = self.config, self.progress
        valid = self.evaluate("valid")
        if not math.isfinite(valid):  # finite parameters whose outputs overflow
            self._rollback(f"validation loss {valid}")
            return
        prog.last_valid = valid
        scores = self.task.scores("valid", cfg)
        improved = prog.best_valid is None or valid < prog.best_valid
        if improved:
            prog.best_valid, prog.bad_epochs = valid, 0
            self._best_params = {n: p.copy() for n, p in self.model.named_parameters()}
            self.save(self.out_dir / "best.safetensors", training_state=False)
        else:
            prog.bad_epochs += 1
        self.metrics.log("valid", epoch=prog.epoch, step=prog.step, loss=valid,
                         **self._loss_fields(valid), lr=self.optimizer.lr, best=improved,
                         **scores)
        shown = "".join(f", {k.replace('_', ' ')} {100 * v:.2f} %" for k, v in scores.items())
        self.echo(f"epoch {prog.epoch + 1}: valid {self._describe(valid)}"
                  f"{' (best)' if improved else ''}{shown}, lr {self.optimizer.lr:.4g}")
        if self.scheduler is not None and not self.scheduler.per_step:
            self.scheduler.step(valid)
        prog.epoch += 1
        self.task.end_epoch()
        if cfg.patience is not None and prog.bad_epochs >= cfg.patience:
            epochs = "epoch" if prog.bad_epochs == 1 else "epochs"
            self.echo(f"early stopping: no improvement for {prog.bad_epochs} {epochs}")
            self.metrics.log("early_stop", epoch=prog.epoch, step=prog.step)
            prog.epoch = cfg.epochs
        self.save(self.out_dir / "last.safetensors")
        self._take_snapshot()

    def _finish(self) -> dict[str, Any]:
        if self._best_params is not None:
            own = {n: p for n, p in self.model.named_parameters()}
            for name, value in self._best_params.items():
                own[name][...] = value
        if self.task.has_split("test"):
            test = self.evaluate("test")
            scores = self.task.scores("test", self.config)
            self.metrics.log("test", step=self.progress.step, loss=test,
                             **self._loss_fields(test), **scores)
            shown = "".join(f", {k.replace('_', ' ')} {100 * v:.2f} %"
                            for k, v in scores.items())
            self.echo(f"test {self._describe(test)}{shown}")
            self.test_loss = test
            self.test_scores = scores
        return self.summary()

    def summary(self) -> dict[str, Any]:
        prog = self.progress
        out: dict[str, Any] = {"steps": prog.step, "epochs": prog.epoch,
                               "stopped": self._stop_reason}
        for key, value in (("valid", prog.last_valid), ("best_valid", prog.best_valid),
                           ("test", getattr(self, "test_loss", None))):
            if value is not None:
                out[f"{key}_loss"] = value
                if self.task.perplexity:
                    out[f"{key}_ppl"] = perplexity(value)
        for name, value in getattr(self, "test_scores", {}).items():
            out[f"test_{name}"] = value
        return out

    def evaluate(self, split: str = "valid") -> float:
        """Mean loss over a whole split (nats per token for a language model, its state
        carried across windows)."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self.task.evaluate(split, self.config)

    # --------------------------------------------------------------- rollbacks
    def _take_snapshot(self) -> None:
        self._snapshot = {
            "params": {n: p.copy() for n, p in self.model.named_parameters()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "scheduler": None if self.scheduler is None else
            copy.deepcopy(self.scheduler.state_dict()),
            "rng": None if self.task.rng is None else
            copy.deepcopy(self.task.rng.bit_generator.state),
            "batcher": copy.deepcopy(self.batcher.state_dict()),
            "carried": self.task.get_state(),
            "progress": copy.deepcopy(asdict(self.progress)),
        }

    def _apply_snapshot(self, snap: dict[str, Any]) -> None:
        """Put the model, optimizer, schedule, RNG, data position and progress back."""
        own = {n: p for n, p in self.model.named_parameters()}
        for name, value in snap["params"].items():
            own[name][...] = value
        self.optimizer.load_state_dict(copy.deepcopy(snap["optimizer"]))
        if self.scheduler is not None:
            self.scheduler.load_state_dict(copy.deepcopy(snap["scheduler"]))
        if self.task.rng is not None:
            self.task.rng.bit_generator.state = copy.deepcopy(snap["rng"])
        self.batcher.load_state_dict(copy.deepcopy(snap["batcher"]))
        self.task.set_state(snap["carried"])
        self.progress = Progress(**copy.deepcopy(snap["progress"]))

    def _rollback(self, reason: str) -> None:
        snap, prog, cfg = self._snapshot, self.progress, self.config
        assert snap is not None
        failed_at = prog.step
        divergences = prog.divergences + 1
        self._apply_snapshot(snap)
        self.progress.divergences = divergences
        old_lr = self.optimizer.lr
        self.optimizer.lr = old_lr * cfg.divergence_lr_factor
        if self.scheduler is not None:
            self.scheduler.scale_base(cfg.divergence_lr_factor)
        self.metrics.log("divergence", step=failed_at + 1, reason=reason,
                         rolled_back_to=self.progress.step, lr=self.optimizer.lr)
        limit = cfg.max_divergences
        allowed = f"{limit} rollback{'' if limit == 1 else 's'}"
        if divergences > limit:
            # the limit is spent: the state is saved as rolled back and the run stops
            self.echo(f"divergence at step {failed_at + 1} ({reason}): max_divergences allows "
                      f"{allowed}, all made; stopping")
            self.save(self.out_dir / "last.safetensors")
            raise DivergenceError(f"training diverged {divergences} times (last: {reason}); "
                                  f"max_divergences allows {allowed}; the "
                                  f"last good state is in {self.out_dir / 'last.safetensors'}")
        self.echo(f"divergence at step {failed_at + 1} ({reason}): rolled back to step "
                  f"{self.progress.step}, learning rate {old_lr:.4g} -> {self.optimizer.lr:.4g}"
                  f" (rollback {divergences} of at most {limit})")
        self._snapshot["optimizer"] = copy.deepcopy(self.optimizer.state_dict())
        if self.scheduler is not None:
            self._snapshot["scheduler"] = copy.deepcopy(self.scheduler.state_dict())
        self._snapshot["progress"]["divergences"] = divergences

    # ---------------------------------------------------------- stop signals
    def _install_stop_signals(self) -> dict[int, Any]:
        """Handle SIGINT, SIGTERM and SIGHUP (where they exist and are not ignored);
        returns the handlers they replaced."""
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum: int, frame: Any) -> None:
            if self._stop_reason in STOP_SIGNALS.values() or self._pending_stop is not None:
                raise Aborted(signum)  # the second one: no more waiting
            name = signal.Signals(signum).name
            if self.world.size > 1:  # the ranks agree on the stop in the next reduction
                self._pending_stop = STOP_SIGNALS[name]
            else:
                self._stop_reason = STOP_SIGNALS[name]
            what = "Ctrl-C" if signum == signal.SIGINT else name
            self._say(f"{what}: finishing the current step and saving (again to abort)")

        previous: dict[int, Any] = {}
        for name in STOP_SIGNALS:
            signum = getattr(signal, name, None)
            if signum is None or signal.getsignal(signum) is signal.SIG_IGN:
                continue  # not on this system, or ignored on purpose (nohup)
            previous[signum] = signal.signal(signum, handler)
        return previous

    @staticmethod
    def _restore_signals(previous: dict[int, Any]) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)

    def _say(self, message: str) -> None:
        """``echo``, where a closed terminal (after SIGHUP) must not stop the save."""
        try:
            self.echo(message)
        except (OSError, ValueError):
            pass

    # ------------------------------------------------------------- checkpoints
    def save(self, path: str | Path, *, training_state: bool = True) -> None:
        """Write a checkpoint (with the full training state unless ``training_state=False``)."""
        st.check_finite_params(self.model)
        arrays = st.model_arrays(self.model)
        meta: dict[str, Any] = {
            **self.task.meta(),
            "train_config": self.config.to_dict(),
            "data_config": None if self.data_config is None else self.data_config.to_dict(),
            "corpus_digest": self.corpus_digest,
            # a non-finite loss (of a model about to be rolled back) is saved as unknown
            "progress": {k: None if isinstance(v, float) and not math.isfinite(v) else v
                         for k, v in asdict(self.progress).items()},
        }
        if self.corpus_bytes is not None:
            meta["corpus_bytes"] = self.corpus_bytes
        if training_state:
            opt_arrays, opt_meta = st.optimizer_arrays(self.optimizer.state_dict())
            arrays.update(opt_arrays)
            arrays.update(self.task.state_arrays())  # gathered on rank 0 (a collective)
            rng = self.task.rng
            meta.update(optimizer=opt_meta, rng=None if rng is None else st.rng_state(rng),
                        data=self.batcher.state_dict(),
                        scheduler=None if self.scheduler is None else
                        self.scheduler.state_dict())
        if not self.world.is_root:
            return
        write_checkpoint(path, st.host(arrays), meta)
        if training_state:
            self.metrics.log("checkpoint", step=self.progress.step, path=str(path))

    def restore(self, path: str | Path) -> None:
        """Load the full training state written by :meth:`save` (for ``--resume``).

        Everything is checked (model arrays, optimizer buffers, schedule, data position,
        progress, random state, carried state, and the run's ``best.safetensors``); on any
        :class:`CheckpointError` the trainer is left exactly as it was.
        """
        arrays, meta = read_checkpoint(path)
        where = f"checkpoint {str(path)!r}"
        self.task.check_meta(meta, where)
        if "optimizer" not in meta:
            raise CheckpointError(f"{where}: holds no training state (a best-model file?); "
                                  f"resume from last.safetensors")
        digest = meta.get("corpus_digest")  # absent in checkpoints older than digests
        if digest is not None and digest != self.corpus_digest:
            raise CheckpointError(
                f"{where}: the corpus differs from the one this checkpoint was trained on "
                f"(the digest of its token ids is {self.corpus_digest}, the checkpoint "
                f"records {str(digest)[:60]}); resuming on other data would not continue "
                f"the same run")
        st.check_model_arrays(self.model, arrays, where)
        progress = Progress.from_meta(meta_get(meta, "progress", dict, where), where)
        best_params = self._read_best()
        before = self._snapshot
        self._take_snapshot()
        undo, self._snapshot = self._snapshot, before
        assert undo is not None
        try:
            st.load_model_arrays(self.model, arrays, where)
            try:
                self.optimizer.load_state_dict(
                    st.optimizer_state(arrays, meta_get(meta, "optimizer", dict, where),
                                       self.xp))
                if self.scheduler is not None:
                    self.scheduler.load_state_dict(meta_get(meta, "scheduler", dict, where))
                self.batcher.load_state_dict(meta_get(meta, "data", dict, where))
            except (TypeError, ValueError, KeyError, OverflowError) as exc:
                raise CheckpointError(f"{where}: training state does not fit ({exc})") from exc
            if self.task.rng is not None:
                st.restore_rng(self.task.rng, meta.get("rng"), where)
            self.task.restore_state(arrays, where, self.config)
            self._replan_schedule()
        except BaseException:
            self._apply_snapshot(undo)
            raise
        self.progress = progress
        self.progress.finished = False
        self._best_params = best_params

    def _replan_schedule(self) -> None:
        """A cosine schedule restored from a run planned for another number of epochs
        (``--resume ... --epochs 3``) is re-planned for this run's length: the remaining
        steps follow the cosine a run of ``config.epochs`` epochs would follow from here
        on (without this, the steps past the old plan would train at the final rate, 0)."""
        cfg, sched = self.config, self.scheduler
        if sched is None or not hasattr(sched.inner, "total_steps"):
            return
        inner = sched.inner
        planned = max(cfg.warmup_steps + 1, cfg.epochs * len(self.batcher))
        if inner.total_steps == planned:
            return
        old = inner.total_steps
        inner.total_steps = planned
        self.optimizer.lr = inner.lr_at(inner.step_count)
        self.echo(f"cosine schedule re-planned for {cfg.epochs} epochs ({planned} steps; the "
                  f"checkpoint planned {old}): learning rate at step {inner.step_count} "
                  f"is {self.optimizer.lr:.4g}")

    def _read_best(self) -> dict[str, Any] | None:
        """The parameters of the run's ``best.safetensors``, checked to fit the model."""
        best = self.out_dir / "best.safetensors"
        if not best.exists():
            return None
        best_arrays, _ = read_checkpoint(best)
        params = st.check_model_arrays(self.model, best_arrays,
                                       f"the run's best model {str(best)!r}")
        return {k: self.xp.asarray(v) for k, v in params.items()}
