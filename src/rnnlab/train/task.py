"""The task: everything :class:`~rnnlab.train.Trainer` knows about what it trains.

The trainer trains a *task*, a small adapter around a model and its data that the caller
builds (each model family keeps its own beside its launcher: :mod:`rnnlab.families.lm`,
:mod:`rnnlab.families.forecast`, :mod:`rnnlab.families.classifier`,
:class:`rnnlab.seq2seq.training.Seq2SeqTask`). :class:`Task` is the protocol, in four
groups:

* what is trained: ``model`` (:class:`Model`), ``data`` (:class:`Batches`) and
  ``perplexity`` (losses are nats per token, shown as perplexities);
* one step: ``prepare(config, world)`` (when the trainer is built: refuse options that
  make no sense for the task, take this process's share of the data when several train
  together, initialise what the configuration asks), ``forward_loss(batch)``,
  ``backward()``, ``counts(batch)`` (``(items, loss terms)``: the rate shown, and the
  weight of a process's share);
  ``reference_loss()`` (the loss of a uniform guess, the divergence guard's yardstick);
* the end of an epoch: ``evaluate(split, config)`` (the mean loss over a split, or None
  when the task has no such split), ``scores(split, config)`` (other figures: accuracy);
* the run's state: ``carried`` (the state carried between batches, as an object, for a
  rollback), ``state_arrays()`` / ``restore_state(...)`` (the same as arrays, for a
  checkpoint), ``digest()`` (of the data), ``meta()`` / ``check_meta(...)`` (what a
  checkpoint says about the model, and the check that one fits).

:class:`TaskBase` gives the defaults a task of whole examples needs (no carried state, no
uniform-guess loss, no sharding). ``Trainer(model, data, config, out_dir)`` (the older
spelling) builds the task of the model's family through :func:`default_task`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from rnnlab.train.checkpoint import CheckpointError, meta_get, take_group
from rnnlab.train.config import TrainConfig


class Model(Protocol):
    """What the trainer asks of a model (every :class:`~rnnlab.nn.Module` has it)."""

    xp: Any
    training: bool

    def named_parameters(self) -> Iterator[tuple[str, Any]]: ...
    def named_parameters_and_grads(self) -> Iterator[tuple[str, Any, Any]]: ...
    def zero_grad(self) -> None: ...
    def train(self, mode: bool = True) -> Any: ...
    def eval(self) -> Any: ...


class Batches(Protocol):
    """The training batches of one epoch, with an exact position (a checkpoint's ``data``)."""

    position: int

    def __len__(self) -> int: ...
    def batch(self, index: int) -> Any: ...
    def reset(self) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


@runtime_checkable
class Task(Protocol):
    """What :class:`~rnnlab.train.Trainer` trains (see the module's docstring)."""

    model: Any
    data: Any
    perplexity: bool
    carried: Any

    def prepare(self, config: TrainConfig, world: Any) -> None: ...
    def forward_loss(self, batch: Any) -> float: ...
    def backward(self) -> None: ...
    def counts(self, batch: Any) -> tuple[int, int]: ...
    def reference_loss(self) -> float | None: ...
    def evaluate(self, split: str, config: TrainConfig) -> float | None: ...
    def scores(self, split: str, config: TrainConfig) -> dict[str, float]: ...
    def state_arrays(self) -> dict[str, Any]: ...
    def restore_state(self, arrays: Mapping[str, np.ndarray], where: str,
                      config: TrainConfig) -> None: ...
    def digest(self) -> str: ...
    def meta(self) -> dict[str, Any]: ...
    def check_meta(self, meta: Mapping[str, Any], where: str) -> None: ...


class TaskBase:
    """The defaults of a :class:`Task` (subclasses write ``forward_loss``, ``evaluate``,
    ``digest``, ``meta`` and, to train on many processes, ``prepare``)."""

    #: The checkpoint's ``kind`` (``"rnnlm"``, ``"regressor"``, ...).
    kind = "task"
    perplexity = False
    model: Any
    data: Any
    #: The processes training together (:mod:`rnnlab.train.distributed`); None: one.
    world: Any = None

    def prepare(self, config: TrainConfig, world: Any) -> None:
        """Refuse options that make no sense here; train on ``world.size`` processes."""
        refuse_unigram_bias(config, self.model)
        if world.size > 1:
            raise TypeError(f"Trainer: a {type(self).__name__} cannot train on many "
                            f"processes (its prepare() takes no share of the data)")

    def backward(self) -> None:
        self.model.backward()

    def counts(self, batch: Any) -> tuple[int, int]:
        """``(items, loss terms)``: examples, both (override for tokens, valid steps)."""
        return len(batch[0]), len(batch[0])

    def reference_loss(self) -> float | None:
        return None

    def scores(self, split: str, config: TrainConfig) -> dict[str, float]:
        return {}

    @property
    def carried(self) -> Any:
        return None

    @carried.setter
    def carried(self, state: Any) -> None:
        pass

    def state_arrays(self) -> dict[str, Any]:
        return {}

    def restore_state(self, arrays: Mapping[str, np.ndarray], where: str,
                      config: TrainConfig) -> None:
        if take_group(arrays, "state"):
            raise CheckpointError(f"{where}: holds a carried state, which a {self.kind} model "
                                  f"does not have")

    def meta(self) -> dict[str, Any]:
        raise NotImplementedError

    def check_meta(self, meta: Mapping[str, Any], where: str) -> None:
        if meta.get("kind") != self.kind:
            raise CheckpointError(f"{where}: holds a {meta.get('kind')!r} model, expected "
                                  f"{self.kind!r}")
        if meta_get(meta, "model_config", dict, where) != self.meta()["model_config"]:
            raise CheckpointError(f"{where}: its model configuration differs from this model's")


def refuse_unigram_bias(config: TrainConfig, model: Any) -> None:
    """``unigram_bias`` needs a language model (the one place this refusal is written)."""
    if config.unigram_bias and not hasattr(model, "init_output_bias"):
        raise TypeError(f"Trainer: unigram_bias=True expected a model with init_output_bias "
                        f"(an RNNLM), got {type(model).__name__}")


#: The task of a model passed with its data (``Trainer(model, data, config, out_dir)``):
#: model class -> task factory, filled by :mod:`rnnlab.families` for its model families.
DEFAULT_TASKS: dict[type, Callable[[Any, Any, TrainConfig], Any]] = {}


def default_task(model: Any, data: Any, config: TrainConfig) -> Task:
    """The task of ``model``'s family (:data:`DEFAULT_TASKS`), over ``data``."""
    for cls in type(model).__mro__:
        if cls in DEFAULT_TASKS:
            task: Task = DEFAULT_TASKS[cls](model, data, config)
            return task
    if isinstance(model, Task):
        raise TypeError("Trainer: pass a task as task=..., not as the model")
    if type(model).__name__ in ("RNNLM", "SequenceRegressor", "SequenceClassifier"):
        raise TypeError(f"Trainer(model, data, config, out_dir): no task is registered for "
                        f"{type(model).__name__}: build the task and pass it "
                        f"(Trainer(task, config, out_dir), e.g. with rnnlab.families.lm."
                        f"LanguageModelTask(model, data, config)), or import rnnlab.families "
                        f"first, which registers every family's task")
    raise TypeError(f"Trainer: model expected an RNNLM, a SequenceRegressor or a "
                    f"SequenceClassifier (or task=... for any other model), got "
                    f"{type(model).__name__}")


def trainer_arguments(first: Any, args: tuple[Any, ...], task: Task | None
                      ) -> tuple[Task, TrainConfig, Any]:
    """``(task, config, out_dir)`` from ``Trainer(task, config, out_dir)``,
    ``Trainer(model, data, config, out_dir)`` or ``Trainer(model, None, config, out_dir,
    task=task)``."""
    if len(args) == 2 and task is None:
        task, (config, out_dir) = first, args
    elif len(args) == 3:
        data, config, out_dir = args
    else:
        raise TypeError(f"Trainer expected (task, config, out_dir) or (model, data, config, "
                        f"out_dir), got {1 + len(args)} positional arguments")
    if not isinstance(config, TrainConfig):
        raise TypeError(f"Trainer: config expected a TrainConfig, got "
                        f"{type(config).__name__}")
    refuse_unigram_bias(config, first if task is None else getattr(task, "model", None))
    if task is None:
        task = default_task(first, data, config)
    elif not isinstance(task, Task):
        raise TypeError(f"Trainer: task expected a rnnlab.train.Task, got "
                        f"{type(task).__name__}")
    return task, config, out_dir
