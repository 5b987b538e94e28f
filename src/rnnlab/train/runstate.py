"""A run's state, in one object: captured to memory (for a divergence rollback) or written
to disk (a checkpoint), and put back from either.

The state is seven things: the parameters, the optimizer's buffers, the learning-rate
schedule, the model's random generator (dropout masks), the data position, the state
carried between batches (a language model's recurrent state) and the progress
(:class:`Progress`). :meth:`RunState.capture` / :meth:`RunState.apply` move them to and
from memory; :meth:`RunState.save` / :meth:`RunState.restore` to and from a checkpoint
(safetensors + JSON, :mod:`rnnlab.train.checkpoint`), where the task adds what it says
about the model (kind, configuration, vocabulary), and the run records its
configuration and the digest of its data.

A checkpoint is never written from a state holding NaN or infinity. :meth:`restore`
checks everything before anything is changed (model arrays, optimizer buffers, schedule,
data position, progress, random state, carried state, the run's ``best.safetensors``),
and on any :class:`~rnnlab.train.checkpoint.CheckpointError` leaves the state as it was.
A cosine schedule restored from a run planned for another number of epochs is re-planned
for this run's length (:meth:`RunState.replan`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from rnnlab.train import state as st
from rnnlab.train.checkpoint import (
    CheckpointError,
    check_document_size,
    meta_get,
    read_checkpoint,
    write_checkpoint,
)
from rnnlab.train.config import DataConfig, TrainConfig
from rnnlab.train.task import Task


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


@dataclass
class Snapshot:
    """The seven things of a run's state, copied to memory."""

    params: dict[str, Any]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    rng: dict[str, Any] | None
    data: dict[str, Any]
    carried: Any
    progress: Progress


class RunState:
    """The state of a run training ``task`` with ``optimizer`` and ``scheduler``.

    ``digest`` identifies the training data (saved in every checkpoint, compared by
    :meth:`restore`); ``data_config`` and ``source_bytes`` say where the data came from.
    ``is_root``: this process writes checkpoints (rank 0); ``log`` records a
    ``checkpoint`` event; ``echo`` says what a restore re-planned.
    """

    def __init__(self, task: Task, optimizer: Any, scheduler: Any, config: TrainConfig, *,
                 digest: str, data_config: DataConfig | None, is_root: bool,
                 log: Callable[..., Any], echo: Callable[[str], None]) -> None:
        self.task, self.model, self.optimizer, self.scheduler = \
            task, task.model, optimizer, scheduler
        self.config, self.data_config, self.digest = config, data_config, digest
        self.source_bytes = None if data_config is None else data_config.source_bytes()
        self.is_root, self._log, self._echo = is_root, log, echo
        self.progress = Progress()
        #: The parameters of the best model so far (None before the first validation).
        self.best_params: dict[str, Any] | None = None

    @property
    def rng(self) -> Any:
        """The model's random generator (dropout masks), saved and restored exactly."""
        return getattr(self.model, "rng", None)

    # ------------------------------------------------------------------ memory
    def capture(self) -> Snapshot:
        return Snapshot(
            params={n: p.copy() for n, p in self.model.named_parameters()},
            optimizer=self.optimizer.state_dict(),  # already a copy of every buffer
            scheduler=None if self.scheduler is None else
            copy.deepcopy(self.scheduler.state_dict()),
            rng=None if self.rng is None else copy.deepcopy(self.rng.bit_generator.state),
            data=copy.deepcopy(self.task.data.state_dict()),
            carried=self.task.carried,
            progress=copy.deepcopy(self.progress))

    def apply(self, snap: Snapshot) -> None:
        """Put the model, optimizer, schedule, RNG, data position and progress back."""
        self.load_params(snap.params)
        self.optimizer.load_state_dict(snap.optimizer)  # copies into fresh buffers
        if self.scheduler is not None:
            self.scheduler.load_state_dict(copy.deepcopy(snap.scheduler))
        if self.rng is not None:
            self.rng.bit_generator.state = copy.deepcopy(snap.rng)
        self.task.data.load_state_dict(copy.deepcopy(snap.data))
        self.task.carried = snap.carried
        self.progress = copy.deepcopy(snap.progress)

    def load_params(self, params: dict[str, Any]) -> None:
        own = dict(self.model.named_parameters())
        for name, value in params.items():
            own[name][...] = value

    def keep_best(self) -> None:
        self.best_params = {n: p.copy() for n, p in self.model.named_parameters()}

    # -------------------------------------------------------------------- disk
    def save(self, path: str | Path, *, training_state: bool = True) -> None:
        """Write a checkpoint (with the full training state unless ``training_state=False``)."""
        st.check_finite_params(self.model)
        arrays, meta = self.document(training_state=training_state)
        if not self.is_root:
            return
        write_checkpoint(path, st.host(arrays), meta)
        if training_state:
            self._log("checkpoint", step=self.progress.step, path=str(path))

    def check_size(self) -> None:
        """Refuse, before the first step, a run whose checkpoints safetensors could not
        read back (a header over its limit, e.g. a vocabulary of millions of words):
        :func:`~rnnlab.train.checkpoint.check_document_size`, whose error gives the size,
        the limit and the hint. No collective: every rank checks the same document."""
        arrays, meta = self.document(training_state=True, gather=False)
        check_document_size(meta, arrays)

    def document(self, *, training_state: bool = True, gather: bool = True
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(arrays, meta)`` of a checkpoint of this state (the model's arrays, and with
        ``training_state`` the optimizer's and the carried state, gathered on rank 0: a
        collective unless ``gather=False``, which leaves the carried state out)."""
        arrays = st.model_arrays(self.model)
        meta: dict[str, Any] = {
            **self.task.meta(),
            "train_config": self.config.to_dict(),
            "data_config": None if self.data_config is None else self.data_config.to_dict(),
            "corpus_digest": self.digest,
            # a non-finite loss (of a model about to be rolled back) is saved as unknown
            "progress": {k: None if isinstance(v, float) and not math.isfinite(v) else v
                         for k, v in asdict(self.progress).items()},
        }
        if self.source_bytes is not None:
            meta["corpus_bytes"] = self.source_bytes
        if training_state:
            opt_arrays, opt_meta = st.optimizer_arrays(self.optimizer.state_dict())
            arrays.update(opt_arrays)
            if gather:
                arrays.update(self.task.state_arrays())  # gathered on rank 0 (a collective)
            meta.update(optimizer=opt_meta,
                        rng=None if self.rng is None else st.rng_state(self.rng),
                        data=self.task.data.state_dict(),
                        scheduler=None if self.scheduler is None else
                        self.scheduler.state_dict())
        return arrays, meta

    def restore(self, path: str | Path, best: Path) -> None:
        """Load the full training state written by :meth:`save`, and the parameters of
        the run's best model ``best`` (if it exists)."""
        arrays, meta = read_checkpoint(path)
        where = f"checkpoint {str(path)!r}"
        self.task.check_meta(meta, where)
        if "optimizer" not in meta:
            raise CheckpointError(f"{where}: holds no training state (a best-model file?); "
                                  f"resume from last.safetensors")
        recorded = meta.get("corpus_digest")  # absent in checkpoints older than digests
        if recorded is not None and recorded != self.digest:
            raise CheckpointError(
                f"{where}: the corpus differs from the one this checkpoint was trained on "
                f"(the digest of its token ids is {self.digest}, the checkpoint "
                f"records {str(recorded)[:60]}); resuming on other data would not continue "
                f"the same run")
        st.check_model_arrays(self.model, arrays, where)
        progress = Progress.from_meta(meta_get(meta, "progress", dict, where), where)
        best_params = self._read_best(best)
        undo = self.capture()
        try:
            st.load_model_arrays(self.model, arrays, where)
            try:
                self.optimizer.load_state_dict(
                    st.optimizer_state(arrays, meta_get(meta, "optimizer", dict, where),
                                       self.model.xp))
                if self.scheduler is not None:
                    self.scheduler.load_state_dict(meta_get(meta, "scheduler", dict, where))
                self.task.data.load_state_dict(meta_get(meta, "data", dict, where))
            except (TypeError, ValueError, KeyError, OverflowError) as exc:
                raise CheckpointError(f"{where}: training state does not fit ({exc})") from exc
            if self.rng is not None:
                st.restore_rng(self.rng, meta.get("rng"), where)
            self.task.restore_state(arrays, where, self.config)
            self.replan()
        except BaseException:
            self.apply(undo)
            raise
        self.progress = progress
        self.progress.finished = False
        self.best_params = best_params

    def replan(self) -> None:
        """A cosine schedule restored from a run planned for another number of epochs
        (``--resume ... --epochs 3``) is re-planned for this run's length: the remaining
        steps follow the cosine a run of ``config.epochs`` epochs would follow from here
        on (without this, the steps past the old plan would train at the final rate, 0)."""
        cfg, sched = self.config, self.scheduler
        if sched is None or not hasattr(sched.inner, "total_steps"):
            return
        inner = sched.inner
        planned = max(cfg.warmup_steps + 1, cfg.epochs * len(self.task.data))
        if inner.total_steps == planned:
            return
        old = inner.total_steps
        inner.total_steps = planned
        self.optimizer.lr = inner.lr_at(inner.step_count)
        self._echo(f"cosine schedule re-planned for {cfg.epochs} epochs ({planned} steps; the "
                   f"checkpoint planned {old}): learning rate at step {inner.step_count} "
                   f"is {self.optimizer.lr:.4g}")

    def _read_best(self, best: Path) -> dict[str, Any] | None:
        """The parameters of the run's ``best.safetensors``, checked to fit the model."""
        if not best.exists():
            return None
        best_arrays, _ = read_checkpoint(best)
        params = st.check_model_arrays(self.model, best_arrays,
                                       f"the run's best model {str(best)!r}")
        return {k: self.model.xp.asarray(v) for k, v in params.items()}
