"""Tasks: what :class:`~rnnlab.train.Trainer` needs to know about one model family.

The trainer trains a *task*, a small adapter around a model and its data. A task has:

``kind`` (str)
    The checkpoint's ``kind`` (``"rnnlm"``, ``"regressor"``, ``"classifier"``,
    ``"seq2seq"``).
``model``
    The model: ``named_parameters()`` (``(name, param)`` pairs, as PyTorch's) and
    ``named_parameters_and_grads()`` (``(name, param, grad)`` triples), ``zero_grad()``,
    ``train()`` / ``eval()``, ``xp``.
``data``
    The training batches: ``len(data)`` batches per epoch, ``data.position`` (the next
    batch), ``data.batch(index)`` (a tuple), ``data.reset()`` (a new epoch),
    ``data.state_dict()`` / ``data.load_state_dict(state)`` (the position, exactly).
``forward_loss(batch) -> float`` and ``backward()``
    The mean loss of one batch, and the gradients of the last one added into the
    parameters' gradients.
``items(batch)`` and ``loss_count(batch)``
    The units the batch holds (examples, tokens: the rate shown) and the terms its mean
    loss averages (the weight of a process's share on many processes).
``shard(world, config)``
    Train on ``world.size`` processes (:mod:`rnnlab.train.distributed`).
``evaluate(split, config) -> float`` and ``scores(split, config) -> dict``
    The mean loss over a split (``"valid"``, ``"test"``) and any other figures (accuracy).
``state_arrays()`` / ``restore_state(arrays, where, config)``
    Arrays carried between batches (the language model's recurrent state), saved as
    ``state/...``.
``meta()`` / ``check_meta(meta, where)``
    What a checkpoint says about the model and its data (configuration, vocabulary), and
    the check that a checkpoint fits this task.

The tasks here: :class:`LanguageModelTask` (an :class:`~rnnlab.models.RNNLM` over a
corpus, truncated BPTT over contiguous streams), :class:`RegressionTask`
(:class:`~rnnlab.models.SequenceRegressor`; :class:`ForecastTask` for one forecasting a
series), :class:`ClassificationTask`
(:class:`~rnnlab.models.SequenceClassifier`) and :class:`Seq2SeqTask`
(:class:`~rnnlab.seq2seq.Seq2Seq`). The last three read shuffled mini-batches of whole
examples (:class:`ExampleBatches`). :func:`make_task` picks the task for a model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnlab.data import BPTTBatcher, DataError
from rnnlab.data.core import ids_digest
from rnnlab.train.checkpoint import CheckpointError, meta_get, take_group


def _int_arg(value: Any, owner: str, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{owner}: {name} expected an int >= {low}, got {value!r}")
    return int(value)


# --------------------------------------------------------------------- data sources
class ExampleBatches:
    """Shuffled mini-batches of ``n`` examples, a fresh order every epoch.

    The order of epoch ``e`` is ``default_rng([seed, e]).permutation(n)``, so the
    position (``epoch``, ``position``) is all a checkpoint needs to continue exactly.
    ``take(indices)`` returns the batch (a tuple) of those examples.
    """

    def __init__(self, n: int, batch_size: int, take: Callable[[np.ndarray], tuple],
                 seed: int = 0) -> None:
        self.n = _int_arg(n, "ExampleBatches", "n", 1)
        self.batch_size = _int_arg(batch_size, "ExampleBatches", "batch_size", 1)
        self.seed = _int_arg(seed, "ExampleBatches", "seed", 0)
        self.take = take
        self.position = 0
        self.epoch = 0
        self._order: np.ndarray | None = None
        #: ``(rank, size)`` of a run on many processes: :meth:`batch` takes the whole
        #: global batch (padded and trimmed as one process would) and gives this rank its
        #: contiguous share of the rows (None when the share is empty).
        self.shard: tuple[int, int] | None = None
        #: This rank's rows of the last batch (:class:`~rnnlab.train.distributed.Rows`),
        #: updated by :meth:`batch` when sharded; the dropout generator reads them.
        self.rows: Any = None

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)

    def order(self) -> np.ndarray:
        if self._order is None:
            self._order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        return self._order

    def batch(self, index: int) -> tuple:
        start = int(index) * self.batch_size
        chosen = self.order()[start:start + self.batch_size]
        if self.shard is None:
            return self.take(chosen)
        from rnnlab.train.distributed import slice_rows

        rank, size = self.shard
        lo, hi = rank * len(chosen) // size, (rank + 1) * len(chosen) // size
        if self.rows is not None:
            self.rows.set(lo, hi, len(chosen))
        if hi == lo:
            return None
        return slice_rows(self.take(chosen), lo, hi)

    def reset(self) -> None:
        """The next epoch: position 0, a new order."""
        self.position, self.epoch, self._order = 0, self.epoch + 1, None

    def state_dict(self) -> dict[str, int]:
        return {"position": self.position, "epoch": self.epoch, "examples": self.n,
                "batch_size": self.batch_size, "seed": self.seed}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if not isinstance(state, Mapping):
            raise DataError(f"ExampleBatches.load_state_dict: expected a dict, got {state!r}")
        mine = self.state_dict()
        for key in ("examples", "batch_size", "seed"):
            if state.get(key) != mine[key]:
                raise DataError(f"ExampleBatches.load_state_dict: the state was saved with "
                                f"{key}={state.get(key)!r}, these batches have "
                                f"{key}={mine[key]!r}")
        position, epoch = state.get("position"), state.get("epoch")
        if isinstance(position, bool) or not isinstance(position, int) \
                or not 0 <= position <= len(self):
            raise DataError(f"ExampleBatches.load_state_dict: position expected an int in "
                            f"[0, {len(self)}], got {position!r}")
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise DataError(f"ExampleBatches.load_state_dict: epoch expected an int >= 0, "
                            f"got {epoch!r}")
        self.position, self.epoch, self._order = position, epoch, None


@dataclass
class Examples:
    """Examples of a many-to-one or many-to-many task: ``inputs`` ``(N, T, D)``,
    ``targets`` (``(N, out)``, ``(N, T, out)`` or class ids ``(N,)``) and optional
    ``lengths`` ``(N,)`` (valid steps of each sequence)."""

    inputs: np.ndarray
    targets: np.ndarray
    lengths: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.inputs, self.targets = np.asarray(self.inputs), np.asarray(self.targets)
        if self.inputs.ndim != 3:
            raise ValueError(f"Examples: inputs expected shape (N, T, D), got "
                             f"{self.inputs.shape}")
        N = self.inputs.shape[0]
        if N == 0 or self.targets.shape[:1] != (N,):
            raise ValueError(f"Examples: targets expected {N} >= 1 rows (one per input), got "
                             f"shape {self.targets.shape}")
        if self.lengths is not None:
            self.lengths = np.asarray(self.lengths)
            if self.lengths.shape != (N,):
                raise ValueError(f"Examples: lengths expected shape ({N},), got "
                                 f"{self.lengths.shape}")

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def take(self, index: np.ndarray) -> tuple:
        lengths = None if self.lengths is None else self.lengths[index]
        return (self.inputs[index], self.targets[index], lengths)

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"inputs": self.inputs, "targets": self.targets}
        if self.lengths is not None:
            out["lengths"] = self.lengths
        return out


def _examples(value: Any, owner: str, name: str) -> Examples | None:
    if value is None or isinstance(value, Examples):
        return value
    if isinstance(value, tuple | list) and len(value) in (2, 3):
        return Examples(*value)
    raise TypeError(f"{owner}: {name} expected Examples or a tuple (inputs, targets[, "
                    f"lengths]), got {type(value).__name__}")


# ------------------------------------------------------------------ the base task
class Task:
    """What every task shares; see the module's docstring for the protocol."""

    kind = "task"
    #: Whether losses are shown as perplexities (nats per token).
    perplexity = False
    #: What the progress bar counts per batch (``tokens`` for a language model).
    unit = "ex"

    model: Any
    data: Any
    #: The processes training together (:mod:`rnnlab.train.distributed`); None: one.
    world: Any = None

    def shard(self, world: Any, config: Any) -> None:
        """Train on ``world.size`` processes, this one being ``world.rank`` (called by the
        trainer when more than one process trains)."""
        raise TypeError(f"Trainer: a {type(self).__name__} cannot train on many processes "
                        f"(it has no shard() method)")

    def check_config(self, config: Any) -> None:
        """Refuse options that make no sense for this task (called by the trainer)."""
        if config.unigram_bias:
            raise TypeError(f"Trainer: unigram_bias=True expected a model with "
                            f"init_output_bias (an RNNLM), got {type(self.model).__name__}")

    def start(self, config: Any) -> None:
        """Before the first step of a new run."""

    @property
    def rng(self) -> np.random.Generator | None:
        """The model's random generator (dropout masks), saved and restored exactly."""
        return getattr(self.model, "rng", None)

    def digest(self) -> str:
        raise NotImplementedError

    def items(self, batch: tuple) -> int:
        """How many units (tokens, examples) the batch holds."""
        return len(batch[0])

    def loss_count(self, batch: tuple) -> int:
        """How many terms the batch's mean loss averages (tokens, examples, valid steps
        times outputs, answer characters): on many processes each share's gradient is
        weighted by it, so that the reduced gradient is the one of the global batch's
        mean. The default: :meth:`items`."""
        return self.items(batch)

    def forward_loss(self, batch: tuple) -> float:
        raise NotImplementedError

    def backward(self) -> None:
        self.model.backward()

    def reference_loss(self) -> float | None:
        """The loss of a uniform guess (the divergence guard's yardstick for the first
        steps), or None when there is none."""
        return None

    def has_split(self, split: str) -> bool:
        raise NotImplementedError

    def evaluate(self, split: str, config: Any) -> float:
        raise NotImplementedError

    def scores(self, split: str, config: Any) -> dict[str, float]:
        return {}

    def get_state(self) -> Any:
        return None

    def set_state(self, state: Any) -> None:
        pass

    def end_epoch(self) -> None:
        self.data.reset()

    def state_arrays(self) -> dict[str, Any]:
        return {}

    def restore_state(self, arrays: Mapping[str, np.ndarray], where: str, config: Any) -> None:
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


# ------------------------------------------------------------------ language model
class LanguageModelTask(Task):
    """An :class:`~rnnlab.models.RNNLM` over a corpus (``train``/``valid``/``test`` id
    arrays and a ``vocab``): truncated BPTT over ``batch_size`` contiguous streams in
    windows of ``bptt``, the recurrent state carried from window to window."""

    kind = "rnnlm"
    perplexity = True
    unit = "tok"

    def __init__(self, model: Any, corpus: Any, config: Any) -> None:
        self.model, self.corpus = model, corpus
        self.data = BPTTBatcher(corpus.train, config.batch_size, config.bptt)
        if len(self.data) == 0:
            raise ValueError(f"Trainer: the training split ({len(corpus.train)} tokens) is too "
                             f"short for batch_size={config.batch_size}")
        self._check_corpus()

    def check_config(self, config: Any) -> None:
        pass

    def shard(self, world: Any, config: Any) -> None:
        world.check_batch(config.batch_size)
        self.world = world
        self._rows = world.share(config.batch_size)

    def start(self, config: Any) -> None:
        if config.unigram_bias:
            self.model.init_output_bias(self.corpus.train)

    def _check_corpus(self) -> None:
        """Fail now, not after an epoch: the splits must fit the model's vocabulary."""
        V = self.model.config.vocab_size
        if len(self.corpus.valid) < 2:
            raise DataError(f"Trainer: the validation split has {len(self.corpus.valid)} "
                            f"token(s); it needs at least 2 (use a larger corpus or split)")
        parts = [("validation", self.corpus.valid), ("test", self.corpus.test)]
        if not isinstance(self.corpus.train, np.memmap):  # a memmap is only read by windows
            parts.append(("training", self.corpus.train))
        for name, ids in parts:
            ids = np.asarray(ids)
            if ids.size == 0:
                continue
            if ids.dtype.kind not in "iu":
                raise DataError(f"Trainer: the {name} split expected integer ids, got dtype "
                                f"{ids.dtype}")
            low, high = int(ids.min()), int(ids.max())
            if low < 0 or high >= V:
                raise DataError(f"Trainer: the {name} split holds the id "
                                f"{low if low < 0 else high}, outside the model's vocabulary "
                                f"[0, {V}); the corpus and the model do not match")

    def digest(self) -> str:
        c = self.corpus
        return ids_digest({"train": c.train, "valid": c.valid, "test": c.test})

    def forward_loss(self, batch: tuple) -> float:
        x, y = batch
        xp = self.model.xp
        if self.world is not None:  # this rank's streams
            lo, hi = self._rows
            x, y = x[lo:hi], y[lo:hi]
        return self.model.forward_loss(xp.asarray(x), xp.asarray(y))

    def items(self, batch: tuple) -> int:
        if self.world is None:
            return int(batch[0].size)
        lo, hi = self._rows  # this rank's streams
        return (hi - lo) * int(batch[0].shape[1])

    def reference_loss(self) -> float:
        return math.log(self.model.config.vocab_size)

    def has_split(self, split: str) -> bool:
        return len(getattr(self.corpus, split)) > 1

    def evaluate(self, split: str, config: Any) -> float:
        from rnnlab.train.evaluate import evaluate_ids

        ids = getattr(self.corpus, split)
        if self.world is None:
            return evaluate_ids(self.model, ids, batch_size=config.eval_batch_size,
                                bptt=config.bptt)
        return self._evaluate_shared(ids, config)

    def _evaluate_shared(self, ids: Any, config: Any) -> float:
        """:func:`~rnnlab.train.evaluate.evaluate_ids` with the streams divided between the
        ranks: each sums its tokens' losses, one reduction adds them up."""
        from rnnlab.train.evaluate import eval_batch_size, loss_sums

        lo, hi = self.world.share(eval_batch_size(ids, config.eval_batch_size))
        total, count = loss_sums(self.model, ids, batch_size=config.eval_batch_size,
                                 bptt=config.bptt, streams=slice(lo, hi)) \
            if hi > lo else (0.0, 0)
        total, count = self.world.allreduce_sum([total, count])
        return float(total / count)

    def get_state(self) -> Any:
        return self.model.get_state()

    def set_state(self, state: Any) -> None:
        self.model.set_state(state)

    def end_epoch(self) -> None:
        self.data.reset()
        self.model.reset_state()

    def state_arrays(self) -> dict[str, Any]:
        from rnnlab.train import state as st

        arrays = st.state_arrays(self.model)
        if self.world is None:
            return arrays
        gathered = {k: self.world.gather_rows(v, axis=1) for k, v in arrays.items()}
        return gathered if self.world.is_root else arrays

    def restore_state(self, arrays: Mapping[str, np.ndarray], where: str, config: Any) -> None:
        from rnnlab.train import state as st

        if self.data.position > 0 and not take_group(arrays, "state"):
            raise CheckpointError(f"{where}: stopped inside an epoch (window "
                                  f"{self.data.position}) but holds no carried state")
        st.restore_carried_state(self.model, arrays, where, batch_size=config.batch_size)
        carried = self.model.get_state()
        if self.world is not None and carried is not None:  # this rank's streams
            lo, hi = self._rows
            xp = self.model.xp
            self.model.set_state(tuple(None if a is None else xp.ascontiguousarray(a[:, lo:hi])
                                       for a in carried))

    def meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "model_config": self.model.config.to_dict(),
                "vocab": self.corpus.vocab.to_dict()}

    def check_meta(self, meta: Mapping[str, Any], where: str) -> None:
        from rnnlab.train import state as st

        if meta.get("kind") != "rnnlm":
            raise CheckpointError(f"{where}: holds a {meta.get('kind')!r} model, expected "
                                  f"'rnnlm'")
        if "optimizer" not in meta:
            raise CheckpointError(f"{where}: holds no training state (a best-model file?); "
                                  f"resume from last.safetensors")
        config = st.check_model_config(meta_get(meta, "model_config", dict, where), where)
        if config != self.model.config.to_dict():
            raise CheckpointError(f"{where}: its model configuration differs from this model's")
        if meta_get(meta, "vocab", dict, where) != self.corpus.vocab.to_dict():
            raise CheckpointError(f"{where}: its vocabulary differs from the corpus's")


# ------------------------------------------------------------- example-based tasks
class ExampleTask(Task):
    """Shuffled mini-batches of whole examples (the base of the tasks below).

    ``splits`` maps ``"train"``, ``"valid"`` (and optionally ``"test"``) to the split's
    examples; :meth:`loss_of` is the model's mean loss on one batch.
    """

    def __init__(self, model: Any, splits: dict[str, Any], config: Any, *, size: Callable,
                 take: Callable) -> None:
        self.model, self.splits = model, splits
        for name in ("train", "valid"):
            if splits.get(name) is None:
                raise ValueError(f"Trainer: a {self.kind} task expected a {name!r} split, got "
                                 f"none")
        self._size, self._take = size, take
        self.data = ExampleBatches(size(splits["train"]), config.batch_size,
                                   lambda index: take(splits["train"], index), config.seed)

    def has_split(self, split: str) -> bool:
        return self.splits.get(split) is not None

    def shard(self, world: Any, config: Any) -> None:
        """Each batch is taken whole and this rank keeps its contiguous share of the rows
        (:class:`ExampleBatches`); the shares may differ by one. With dropout every
        process must hold a row of every batch (the masks are drawn for the whole batch on
        every process, in the same order): a batch size, or a last batch, smaller than the
        number of processes is refused."""
        from rnnlab.train.distributed import Rows

        data, K = self.data, world.size
        smallest = min(data.batch_size, data.n - (len(data) - 1) * data.batch_size)
        if smallest < K and _draws_masks(self.model):
            raise ValueError(
                f"Trainer: with dropout every one of the {K} processes needs an example of "
                f"every batch, but batch_size={data.batch_size} over {data.n} training "
                f"examples gives a batch of {smallest}; choose a batch size of at least {K} "
                f"that leaves no last batch smaller than {K}")
        self.world = world
        data.shard = (world.rank, world.size)
        data.rows = self.rows = Rows(*world.share(data.batch_size), data.batch_size)

    def forward_loss(self, batch: tuple) -> float:
        raise NotImplementedError

    def evaluate(self, split: str, config: Any) -> float:
        """The mean loss over every loss term of ``split``: each batch's loss weighted by
        its :meth:`loss_count` (examples; the valid steps of a many-to-many regression with
        lengths; the answer characters of seq2seq), so the figure depends neither on the
        batch size nor on the number of processes (each takes a share of every batch, one
        reduction adds the sums up)."""
        from rnnlab.train.distributed import slice_rows

        data = self.splits[split]
        n = self._size(data)
        size = max(config.batch_size, config.eval_batch_size)
        was_training = self.model.training
        self.model.eval()
        total, count = 0.0, 0
        try:
            for start in range(0, n, size):
                index = np.arange(start, min(start + size, n))
                if self.world is None:
                    batch = self._take(data, index)
                else:  # this rank's rows of the batch one process takes
                    lo, hi = self.world.share(len(index))
                    if hi == lo:
                        continue
                    batch = slice_rows(self._take(data, index), lo, hi)
                terms = self.loss_count(batch)
                loss = self.forward_loss(batch)
                if terms:
                    total += loss * terms
                    count += terms
        finally:
            self.model.train(was_training)
        if self.world is not None:
            total, count = (float(v) for v in self.world.allreduce_sum([total, count]))
        return total / count if count else 0.0


def _draws_masks(model: Any) -> bool:
    """Whether training ``model`` draws dropout masks (a layer with a dropout rate > 0)."""
    from rnnlab.nn.dropout import Dropout

    modules = model.modules() if hasattr(model, "modules") else [model]
    return any((isinstance(m, Dropout) and m.p > 0)
               or float(getattr(m, "dropout", 0.0) or 0.0) > 0 for m in modules)


def _digest_of(splits: Mapping[str, Any]) -> str:
    import hashlib

    h = hashlib.sha256()
    for name in sorted(splits):
        data = splits[name]
        if data is None:
            continue
        for key, value in sorted(data.arrays().items()):
            value = np.ascontiguousarray(value)
            h.update(f"{name}/{key}:{value.dtype.str}:{value.shape};".encode())
            h.update(value.reshape(-1).view(np.uint8))
    return f"sha256:{h.hexdigest()}"


class RegressionTask(ExampleTask):
    """A :class:`~rnnlab.models.SequenceRegressor` on :class:`Examples` (mean squared
    error; ``lengths`` passed through)."""

    kind = "regressor"

    def __init__(self, model: Any, data: Mapping[str, Any], config: Any) -> None:
        splits = {k: _examples(data.get(k), "Trainer", k) for k in ("train", "valid", "test")}
        super().__init__(model, splits, config, size=len, take=Examples.take)

    def digest(self) -> str:
        return _digest_of(self.splits)

    def forward_loss(self, batch: tuple) -> float:
        xs, ys, lengths = batch
        xp, dtype = self.model.xp, self.model.dtype
        return self.model.forward_loss(xp.asarray(xs, dtype=dtype), xp.asarray(ys, dtype=dtype),
                                       lengths=lengths)

    def loss_count(self, batch: tuple) -> int:
        """The values the mean squared error averages: every target value, or, many-to-many
        with lengths, the valid steps times the outputs."""
        xs, ys, lengths = batch
        if lengths is None or not self.model.many_to_many:
            return int(np.size(ys))
        steps = np.clip(np.asarray(lengths), 0, np.shape(xs)[1])
        return int(steps.sum()) * int(self.model.output_size)

    def meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "model_config": regressor_config(self.model)}


def regressor_config(model: Any) -> dict[str, Any]:
    """The constructor arguments of a :class:`~rnnlab.models.SequenceRegressor`."""
    rnn = model.rnn
    return {"input_size": int(rnn.input_size), "hidden_size": int(rnn.hidden_size),
            "output_size": int(model.output_size), "num_layers": int(rnn.num_layers),
            "cell": model.cell, "many_to_many": model.many_to_many,
            "bidirectional": rnn.num_directions == 2, "dropout": float(rnn.dropout),
            "nonlinearity": getattr(rnn, "nonlinearity", "tanh"),
            "dtype": np.dtype(model.dtype).name}


class ForecastTask(RegressionTask):
    """A many-to-one :class:`~rnnlab.models.SequenceRegressor` forecasting a series from
    windows of it (:func:`rnnlab.data.series.forecast_windows`): a regression task whose
    checkpoints also record where the series came from and how it was windowed and
    standardised (``forecast``: ``csv``, ``column``, ``window``, ``horizon``,
    ``valid_fraction``, ``mean``, ``std``), so a run can be resumed and its forecasts put
    back in the series' units."""

    def __init__(self, model: Any, windows: Any, config: Any, *,
                 source: Mapping[str, Any]) -> None:
        super().__init__(model, {"train": windows.train, "valid": windows.valid}, config)
        self.windows = windows
        self.source = {**source, "window": windows.window, "horizon": windows.horizon,
                       "mean": windows.mean, "std": windows.std}

    def meta(self) -> dict[str, Any]:
        return {**super().meta(), "forecast": dict(self.source)}

    def check_meta(self, meta: Mapping[str, Any], where: str) -> None:
        super().check_meta(meta, where)
        saved = meta_get(meta, "forecast", dict, where)
        for key in ("column", "window", "horizon", "valid_fraction"):
            if saved.get(key) != self.source.get(key):
                raise CheckpointError(f"{where}: was trained with {key}={saved.get(key)!r}, "
                                      f"this run has {key}={self.source.get(key)!r}")


class ClassificationTask(ExampleTask):
    """A :class:`~rnnlab.models.SequenceClassifier` on :class:`Examples` whose targets are
    class ids (softmax cross-entropy); also scores the accuracy."""

    kind = "classifier"

    def __init__(self, model: Any, data: Mapping[str, Any], config: Any) -> None:
        splits = {k: _examples(data.get(k), "Trainer", k) for k in ("train", "valid", "test")}
        for name, split in splits.items():
            if split is None:
                continue
            t = split.targets
            if t.ndim != 1 or t.dtype.kind not in "iu" or t.min() < 0 \
                    or t.max() >= model.num_classes:
                raise DataError(f"Trainer: the {name} split expected class ids in [0, "
                                f"{model.num_classes}) of shape (N,), got {t.dtype}"
                                f"{t.shape} in [{t.min()}, {t.max()}]")
        super().__init__(model, splits, config, size=len, take=Examples.take)

    def digest(self) -> str:
        return _digest_of(self.splits)

    def forward_loss(self, batch: tuple) -> float:
        xs, ys, lengths = batch
        xp = self.model.xp
        return self.model.forward_loss(xp.asarray(xs, dtype=self.model.dtype), ys,
                                       lengths=lengths)

    def reference_loss(self) -> float:
        return math.log(self.model.num_classes)

    def scores(self, split: str, config: Any) -> dict[str, float]:
        data = self.splits[split]
        lo, hi = (0, len(data)) if self.world is None else self.world.share(len(data))
        was_training = self.model.training
        self.model.eval()
        try:
            right = 0
            for start in range(lo, hi, config.batch_size):  # this rank's share
                xs, ys, lengths = data.take(np.arange(start, min(start + config.batch_size,
                                                                 hi)))
                pred = self.model.predict(xs.astype(self.model.dtype), lengths=lengths)
                right += int((np.asarray(pred) == ys).sum())
        finally:
            self.model.train(was_training)
        if self.world is not None:
            right = round(float(self.world.allreduce_sum([right])[0]))
        return {"accuracy": right / len(data)}

    def meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "model_config": self.model.config_dict()}


class Seq2SeqTask(ExampleTask):
    """A :class:`~rnnlab.seq2seq.Seq2Seq` on question/answer pairs: teacher forcing on
    padded batches (mean cross-entropy per answer character); also scores the exact-match
    accuracy of greedy (or beam) decoding.

    ``data``: ``{"train": Pairs, "valid": Pairs, "test": Pairs or None}``; ``codec`` turns
    them into ids; ``source`` (JSON) records where the pairs came from (saved as
    ``data_source``: ``data`` is the trainer's position in the batches).
    """

    kind = "seq2seq"

    def __init__(self, model: Any, data: Mapping[str, Any], config: Any, *, codec: Any,
                 source: Mapping[str, Any] | None = None, beam_width: int = 1) -> None:
        from rnnlab.seq2seq.data import take

        self.codec, self.source, self.beam_width = codec, dict(source or {}), beam_width
        self.pairs = {k: data.get(k) for k in ("train", "valid", "test")}
        batches = {k: None if v is None or len(v) == 0 else codec.batch(v)
                   for k, v in self.pairs.items()}
        super().__init__(model, batches, config, size=len,
                         take=lambda b, index: (take(b, index),))

    def digest(self) -> str:
        import hashlib

        h = hashlib.sha256()
        for name in sorted(self.pairs):
            pairs = self.pairs[name]
            if pairs is None:
                continue
            for q, a in zip(pairs.questions, pairs.answers, strict=True):
                h.update(f"{name}\x00{q}\x00{a}\x00".encode())
        return f"sha256:{h.hexdigest()}"

    def forward_loss(self, batch: tuple) -> float:
        return self.model.forward_loss(batch[0])

    def loss_count(self, batch: tuple) -> int:
        """The answer characters (targets that are not padding) the cross-entropy averages."""
        from rnnlab.seq2seq.data import IGNORE_INDEX

        return int((np.asarray(batch[0].targets) != IGNORE_INDEX).sum())

    def reference_loss(self) -> float:
        return math.log(self.model.config.vocab_size)

    def scores(self, split: str, config: Any) -> dict[str, float]:
        from rnnlab.seq2seq.search import exact_match

        pairs = self.pairs[split]
        if self.world is not None:  # this rank's share of the pairs; the counts are reduced
            lo, hi = self.world.share(len(pairs))
            pairs = pairs.subset(list(range(lo, hi)))
        was_training = self.model.training
        try:
            right = exact_match(self.model, self.codec, pairs, self.beam_width) * len(pairs) \
                if len(pairs) else 0.0
        finally:
            self.model.train(was_training)
        if self.world is not None:
            right = float(self.world.allreduce_sum([right])[0])
        return {"exact_match": round(right) / len(self.pairs[split])}

    def meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "model_config": self.model.config.to_dict(),
                "codec": self.codec.to_dict(), "data_source": self.source}

    def check_meta(self, meta: Mapping[str, Any], where: str) -> None:
        super().check_meta(meta, where)
        if meta_get(meta, "codec", dict, where) != self.codec.to_dict():
            raise CheckpointError(f"{where}: its vocabulary differs from this data's")


def make_task(model: Any, data: Any, config: Any) -> Task:
    """The task for ``model``: a language model over a corpus, a regressor, a classifier
    (``data``: ``{"train": ..., "valid": ..., "test": ...}`` of :class:`Examples` or
    tuples). A seq2seq model needs its codec: build a :class:`Seq2SeqTask` yourself."""
    from rnnlab.models import RNNLM, SequenceClassifier, SequenceRegressor

    if isinstance(model, RNNLM):
        return LanguageModelTask(model, data, config)
    if isinstance(model, SequenceRegressor):
        return RegressionTask(model, data, config)
    if isinstance(model, SequenceClassifier):
        return ClassificationTask(model, data, config)
    if isinstance(model, Task):
        raise TypeError("Trainer: pass a task as task=..., not as the model")
    raise TypeError(f"Trainer: model expected an RNNLM, a SequenceRegressor or a "
                    f"SequenceClassifier (or task=... for any other model), got "
                    f"{type(model).__name__}")
