"""Tasks of whole examples: :class:`Examples` (inputs, targets and lengths of a split),
:class:`ExampleBatches` (shuffled mini-batches, a fresh order every epoch, an exact
position) and :class:`ExampleTask`, the base of the regressor's, the classifier's and
seq2seq's tasks (:mod:`rnnlab.families`, :mod:`rnnlab.seq2seq.training`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rnnlab.data import DataError
from rnnlab.nn.dropout import Dropout
from rnnlab.train.config import TrainConfig
from rnnlab.train.distributed import Rows, slice_rows
from rnnlab.train.task import TaskBase, refuse_unigram_bias


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

    def batch(self, index: int) -> tuple | None:
        start = int(index) * self.batch_size
        chosen = self.order()[start:start + self.batch_size]
        if self.shard is None:
            return self.take(chosen)
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


def examples_of(value: Any, owner: str, name: str) -> Examples | None:
    if value is None or isinstance(value, Examples):
        return value
    if isinstance(value, tuple | list) and len(value) in (2, 3):
        return Examples(*value)
    raise TypeError(f"{owner}: {name} expected Examples or a tuple (inputs, targets[, "
                    f"lengths]), got {type(value).__name__}")


class ExampleTask(TaskBase):
    """Shuffled mini-batches of whole examples (the base of the tasks below).

    ``splits`` maps ``"train"``, ``"valid"`` (and optionally ``"test"``) to the split's
    examples; ``take(split, index)`` the batch of those examples of a split.
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

    def prepare(self, config: TrainConfig, world: Any) -> None:
        """On many processes each batch is taken whole and this rank keeps its contiguous
        share of the rows (:class:`ExampleBatches`); the shares may differ by one. With
        dropout every process must hold a row of every batch (the masks are drawn for the
        whole batch on every process, in the same order): a batch size, or a last batch,
        smaller than the number of processes is refused."""
        refuse_unigram_bias(config, self.model)
        if world.size == 1:
            return
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
        lo, hi = world.share(data.batch_size)
        data.rows = self.rows = Rows(lo, hi, data.batch_size)

    def forward_loss(self, batch: Any) -> float:
        raise NotImplementedError

    def evaluate(self, split: str, config: TrainConfig) -> float | None:
        """The mean loss over every loss term of ``split`` (None: the task has no such
        split): each batch's loss weighted by its loss terms (:meth:`counts`: examples; the
        valid steps of a many-to-many regression with lengths; the answer characters of
        seq2seq), so the figure depends neither on the
        batch size nor on the number of processes (each takes a share of every batch, one
        reduction adds the sums up)."""
        data = self.splits.get(split)
        if data is None:
            return None
        n = self._size(data)
        size = max(config.batch_size, config.eval_batch_size)
        was_training = self.model.training
        self.model.eval()
        total, count = 0.0, 0.0
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
                terms = self.counts(batch)[1]
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
    modules = model.modules() if hasattr(model, "modules") else [model]
    return any((isinstance(m, Dropout) and m.p > 0)
               or float(getattr(m, "dropout", 0.0) or 0.0) > 0 for m in modules)


def digest_of(splits: Mapping[str, Any]) -> str:
    """The digest of every split's arrays (names, dtypes, shapes and bytes)."""
    h = hashlib.sha256()
    for name in sorted(splits):
        data = splits[name]
        if data is None:
            continue
        for key, value in sorted(data.arrays().items()):
            value = np.ascontiguousarray(value)
            h.update(f"{name}/{key}:{value.dtype.str}:{value.shape};".encode())
            h.update(value.reshape(-1).view(np.uint8).data)
    return f"sha256:{h.hexdigest()}"


