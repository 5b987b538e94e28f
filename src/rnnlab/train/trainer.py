"""``Trainer``: truncated-BPTT training of an :class:`~rnnlab.models.RNNLM` with
validation each epoch, the best model kept, early stopping, JSON-lines metrics,
atomic checkpoints with exact resume, a divergence guard and a clean Ctrl-C.

A run's folder holds ``last.safetensors`` (everything needed to resume bit-exactly: model,
optimizer, schedule, random state, data position, carried state, progress),
``best.safetensors`` (the model with the best validation perplexity) and
``metrics.jsonl`` (one JSON object per line: ``train``, ``valid``, ``test``,
``divergence``, ``checkpoint``, ``stop`` events).

Divergence guard: a step whose loss or gradient norm is NaN/inf, or whose loss exceeds
``divergence_factor`` times the running mean (in the first 20 steps: times log V, the
loss of a uniform guess), is not applied. The run rolls back to the last in-memory
snapshot (taken every ``snapshot_every`` steps), multiplies the learning rate by
``divergence_lr_factor``, says so, and goes on; after ``max_divergences`` rollbacks it
stops with :class:`DivergenceError`. A checkpoint is never written from a state holding
NaN or infinity.
"""

from __future__ import annotations

import copy
import math
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rnnlab.data import BPTTBatcher
from rnnlab.train import state as st
from rnnlab.train.checkpoint import CheckpointError, meta_get, read_checkpoint, write_checkpoint
from rnnlab.train.config import DataConfig, TrainConfig
from rnnlab.train.evaluate import evaluate_ids
from rnnlab.train.factory import build_optimizer, build_scheduler
from rnnlab.train.metrics import MetricsLog, ProgressBar, perplexity


class DivergenceError(RuntimeError):
    """Training diverged more often than ``max_divergences`` allows."""


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


class Trainer:
    """Train ``model`` on ``corpus`` with ``config``, writing into ``out_dir``."""

    def __init__(self, model: Any, corpus: Any, config: TrainConfig, out_dir: str | Path, *,
                 data_config: DataConfig | None = None, echo: Any = None) -> None:
        self.model, self.corpus, self.config = model, corpus, config
        self.data_config = data_config
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.xp = model.xp
        self.batcher = BPTTBatcher(corpus.train, config.batch_size, config.bptt)
        if len(self.batcher) == 0:
            raise ValueError(f"Trainer: the training split ({len(corpus.train)} tokens) is too "
                             f"short for batch_size={config.batch_size}")
        self.optimizer = build_optimizer(model, config)
        self.scheduler = build_scheduler(self.optimizer, config, len(self.batcher))
        self.progress = Progress()
        self.metrics = MetricsLog(self.out_dir / "metrics.jsonl")
        self.echo = echo or ProgressBar.write
        self._snapshot: dict[str, Any] | None = None
        self._stop_reason: str | None = None
        self._best_params: dict[str, Any] | None = None

    # ----------------------------------------------------------------- running
    def fit(self) -> dict[str, Any]:
        """Train until the configured epochs, a stop condition, or Ctrl-C; return a summary."""
        cfg, prog = self.config, self.progress
        self._stop_reason = None
        started = time.perf_counter()
        previous = self._install_sigint()
        try:
            self._take_snapshot()
            while prog.epoch < cfg.epochs and self._stop_reason is None:
                self.model.train()
                self._train_epoch(started)
                if self._stop_reason is not None:
                    break
                self._end_epoch()
            if self._stop_reason in ("max_steps", "max_time"):
                prog.last_valid = self.evaluate("valid")
                self.metrics.log("valid", epoch=prog.epoch, step=prog.step, loss=prog.last_valid,
                                 ppl=perplexity(prog.last_valid))
            self.save(self.out_dir / "last.safetensors")
            if self._stop_reason is None:
                prog.finished = True
                return self._finish()
            self.metrics.log("stop", reason=self._stop_reason, step=prog.step)
            if self._stop_reason == "interrupted":
                self.echo(f"interrupted: state saved to {self.out_dir / 'last.safetensors'}; "
                          f"continue with --resume {self.out_dir / 'last.safetensors'}")
            return self.summary()
        finally:
            self._restore_sigint(previous)

    def _train_epoch(self, started: float) -> None:
        cfg, prog = self.config, self.progress
        bar = ProgressBar(len(self.batcher), self.batcher.position, f"epoch {prog.epoch + 1}",
                          tokens_per_batch=cfg.batch_size * cfg.bptt, enabled=cfg.progress)
        window_loss, window_steps, window_tokens, t0 = 0.0, 0, 0, time.perf_counter()
        try:
            while self.batcher.position < len(self.batcher):
                if self._should_stop(started):
                    return
                x, y = self.batcher.batch(self.batcher.position)
                self.batcher.position += 1
                loss = self._train_step(x, y)
                if loss is None:  # rolled back
                    bar.reset(self.batcher.position)
                    window_loss, window_steps, window_tokens = 0.0, 0, 0
                    continue
                window_loss += loss
                window_steps += 1
                window_tokens += x.size
                bar.update(self.batcher.position, loss=loss, lr=self.optimizer.lr)
                if prog.step % cfg.log_every == 0:
                    elapsed = time.perf_counter() - t0
                    mean = window_loss / window_steps
                    self.metrics.log("train", epoch=prog.epoch, step=prog.step, loss=mean,
                                     ppl=perplexity(mean), lr=self.optimizer.lr,
                                     tokens_per_s=window_tokens / max(elapsed, 1e-9))
                    window_loss, window_steps, window_tokens = 0.0, 0, 0
                    t0 = time.perf_counter()
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
        if cfg.max_steps is not None and self.progress.step >= cfg.max_steps:
            self._stop_reason = "max_steps"
        elif cfg.max_time is not None and time.perf_counter() - started >= cfg.max_time:
            self._stop_reason = "max_time"
        return self._stop_reason is not None

    def _train_step(self, x: Any, y: Any) -> float | None:
        """One optimizer step; ``None`` when the step diverged and the run rolled back."""
        from rnnlab.optim import clip_grad_norm, clip_grad_value

        cfg, prog, model, xp = self.config, self.progress, self.model, self.xp
        model.zero_grad()
        loss = model.forward_loss(xp.asarray(x), xp.asarray(y))
        reason = None
        if not math.isfinite(loss):
            reason = f"loss {loss}"
        else:
            model.backward()
            if cfg.clip_value is not None:
                clip_grad_value(model, cfg.clip_value)
            norm = clip_grad_norm(model, cfg.clip_norm if cfg.clip_norm else math.inf)
            if not math.isfinite(norm):
                reason = f"gradient norm {norm}"
            elif loss > cfg.divergence_factor * self._reference_loss():
                reason = f"loss {loss:.4g} > {cfg.divergence_factor} x reference " \
                         f"{self._reference_loss():.4g}"
        if reason is not None:
            self._rollback(reason)
            return None
        self.optimizer.step()
        prog.step += 1
        if self.scheduler is not None and self.scheduler.per_step:
            self.scheduler.step()
        prog.running_loss = loss if prog.running_loss is None else \
            0.98 * prog.running_loss + 0.02 * loss
        return loss

    def _reference_loss(self) -> float:
        """What a blow-up is measured against: the running mean of the loss once 20 steps
        have passed, before that the loss of a uniform guess, log(V)."""
        prog = self.progress
        if prog.running_loss is not None and prog.step >= 20:
            return prog.running_loss
        return math.log(self.model.config.vocab_size)

    def _end_epoch(self) -> None:
        cfg, prog = self.config, self.progress
        valid = self.evaluate("valid")
        prog.last_valid = valid
        improved = prog.best_valid is None or valid < prog.best_valid
        if improved:
            prog.best_valid, prog.bad_epochs = valid, 0
            self._best_params = {n: p.copy() for n, p, _ in self.model.named_parameters()}
            self.save(self.out_dir / "best.safetensors", training_state=False)
        else:
            prog.bad_epochs += 1
        self.metrics.log("valid", epoch=prog.epoch, step=prog.step, loss=valid,
                         ppl=perplexity(valid), lr=self.optimizer.lr, best=improved)
        self.echo(f"epoch {prog.epoch + 1}: valid ppl {perplexity(valid):.2f}"
                  f"{' (best)' if improved else ''}, lr {self.optimizer.lr:.4g}")
        if self.scheduler is not None and not self.scheduler.per_step:
            self.scheduler.step(valid)
        prog.epoch += 1
        self.batcher.reset()
        self.model.reset_state()
        if cfg.patience is not None and prog.bad_epochs >= cfg.patience:
            self.echo(f"early stopping: no improvement for {prog.bad_epochs} epochs")
            self.metrics.log("early_stop", epoch=prog.epoch, step=prog.step)
            prog.epoch = cfg.epochs
        self.save(self.out_dir / "last.safetensors")
        self._take_snapshot()

    def _finish(self) -> dict[str, Any]:
        if self._best_params is not None:
            own = {n: p for n, p, _ in self.model.named_parameters()}
            for name, value in self._best_params.items():
                own[name][...] = value
        if len(self.corpus.test) > 1:
            test = self.evaluate("test")
            self.metrics.log("test", step=self.progress.step, loss=test, ppl=perplexity(test))
            self.echo(f"test ppl {perplexity(test):.2f}")
            self.test_loss = test
        return self.summary()

    def summary(self) -> dict[str, Any]:
        prog = self.progress
        out: dict[str, Any] = {"steps": prog.step, "epochs": prog.epoch,
                               "stopped": self._stop_reason}
        for key, value in (("valid", prog.last_valid), ("best_valid", prog.best_valid),
                           ("test", getattr(self, "test_loss", None))):
            if value is not None:
                out[f"{key}_loss"], out[f"{key}_ppl"] = value, perplexity(value)
        return out

    def evaluate(self, split: str = "valid") -> float:
        """Mean loss (nats per token) over a whole split, state carried across windows."""
        return evaluate_ids(self.model, getattr(self.corpus, split),
                            batch_size=self.config.eval_batch_size, bptt=self.config.bptt)

    # --------------------------------------------------------------- rollbacks
    def _take_snapshot(self) -> None:
        self._snapshot = {
            "params": {n: p.copy() for n, p, _ in self.model.named_parameters()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "scheduler": None if self.scheduler is None else
            copy.deepcopy(self.scheduler.state_dict()),
            "rng": copy.deepcopy(self.model.rng.bit_generator.state),
            "batcher": copy.deepcopy(self.batcher.state_dict()),
            "carried": self.model.get_state(),
            "progress": copy.deepcopy(asdict(self.progress)),
        }

    def _rollback(self, reason: str) -> None:
        snap, prog, cfg = self._snapshot, self.progress, self.config
        assert snap is not None
        failed_at = prog.step
        own = {n: p for n, p, _ in self.model.named_parameters()}
        for name, value in snap["params"].items():
            own[name][...] = value
        self.optimizer.load_state_dict(copy.deepcopy(snap["optimizer"]))
        if self.scheduler is not None:
            self.scheduler.load_state_dict(copy.deepcopy(snap["scheduler"]))
        self.model.rng.bit_generator.state = copy.deepcopy(snap["rng"])
        self.batcher.load_state_dict(copy.deepcopy(snap["batcher"]))
        self.model.set_state(snap["carried"])
        divergences = prog.divergences + 1
        self.progress = Progress(**copy.deepcopy(snap["progress"]))
        self.progress.divergences = divergences
        old_lr = self.optimizer.lr
        self.optimizer.lr = old_lr * cfg.divergence_lr_factor
        if self.scheduler is not None:
            self.scheduler.scale_base(cfg.divergence_lr_factor)
        message = (f"divergence at step {failed_at + 1} ({reason}): rolled back to step "
                   f"{self.progress.step}, learning rate {old_lr:.4g} -> {self.optimizer.lr:.4g}"
                   f" ({divergences}/{cfg.max_divergences})")
        self.echo(message)
        self.metrics.log("divergence", step=failed_at + 1, reason=reason,
                         rolled_back_to=self.progress.step, lr=self.optimizer.lr)
        if divergences > cfg.max_divergences:
            self.save(self.out_dir / "last.safetensors")
            raise DivergenceError(f"training diverged {divergences} times (last: {reason}); "
                                  f"the last good state is in {self.out_dir / 'last.safetensors'}")
        self._snapshot["optimizer"] = copy.deepcopy(self.optimizer.state_dict())
        if self.scheduler is not None:
            self._snapshot["scheduler"] = copy.deepcopy(self.scheduler.state_dict())
        self._snapshot["progress"]["divergences"] = divergences

    # ---------------------------------------------------------------- Ctrl-C
    def _install_sigint(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum: int, frame: Any) -> None:
            if self._stop_reason == "interrupted":
                raise KeyboardInterrupt
            self._stop_reason = "interrupted"
            self.echo("Ctrl-C: finishing the current step and saving (press again to abort)")

        return signal.signal(signal.SIGINT, handler)

    @staticmethod
    def _restore_sigint(previous: Any) -> None:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)

    # ------------------------------------------------------------- checkpoints
    def save(self, path: str | Path, *, training_state: bool = True) -> None:
        """Write a checkpoint (with the full training state unless ``training_state=False``)."""
        st.check_finite_params(self.model)
        arrays = st.model_arrays(self.model)
        meta: dict[str, Any] = {
            "kind": "rnnlm",
            "model_config": self.model.config.to_dict(),
            "vocab": self.corpus.vocab.to_dict(),
            "train_config": self.config.to_dict(),
            "data_config": None if self.data_config is None else self.data_config.to_dict(),
            "progress": asdict(self.progress),
        }
        if training_state:
            opt_arrays, opt_meta = st.optimizer_arrays(self.optimizer.state_dict())
            arrays.update(opt_arrays)
            arrays.update(st.state_arrays(self.model))
            meta.update(optimizer=opt_meta, rng=st.rng_state(self.model.rng),
                        data=self.batcher.state_dict(),
                        scheduler=None if self.scheduler is None else
                        self.scheduler.state_dict())
        write_checkpoint(path, st.host(arrays), meta)
        if training_state:
            self.metrics.log("checkpoint", step=self.progress.step, path=str(path))

    def restore(self, path: str | Path) -> None:
        """Load the full training state written by :meth:`save` (for ``--resume``)."""
        arrays, meta = read_checkpoint(path)
        where = f"checkpoint {str(path)!r}"
        if "optimizer" not in meta:
            raise CheckpointError(f"{where}: holds no training state (a best-model file?); "
                                  f"resume from last.safetensors")
        if meta_get(meta, "model_config", dict, where) != self.model.config.to_dict():
            raise CheckpointError(f"{where}: its model configuration differs from this model's")
        if meta_get(meta, "vocab", dict, where) != self.corpus.vocab.to_dict():
            raise CheckpointError(f"{where}: its vocabulary differs from the corpus's")
        st.load_model_arrays(self.model, arrays, where)
        try:
            self.optimizer.load_state_dict(
                st.optimizer_state(arrays, meta_get(meta, "optimizer", dict, where), self.xp))
            if self.scheduler is not None:
                self.scheduler.load_state_dict(meta_get(meta, "scheduler", dict, where))
            self.batcher.load_state_dict(meta_get(meta, "data", dict, where))
            self.progress = Progress(**meta_get(meta, "progress", dict, where))
        except (TypeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{where}: training state does not fit ({exc})") from exc
        st.restore_rng(self.model.rng, meta.get("rng"), where)
        st.restore_carried_state(self.model, arrays, where)
        self.progress.finished = False
        best = self.out_dir / "best.safetensors"
        if best.exists():
            best_arrays, _ = read_checkpoint(best)
            self._best_params = {k: self.xp.asarray(v)
                                 for k, v in st.take_group(best_arrays, "model").items()}
