"""Synchronous data-parallel training on MPI: the world the trainer runs in.

:func:`detect` returns the MPI world (``mpi4py``'s ``COMM_WORLD``) when mpi4py is
importable and the program was started by ``mpiexec -n K`` with ``K > 1``; otherwise a
:class:`World` of one process whose collectives do nothing, so a program started without
``mpiexec`` behaves exactly as before.

What the trainer does with a world of ``K`` processes (see :class:`rnnlab.train.Trainer`):

* the batch size stays the global batch; rank ``r`` takes the contiguous share
  :meth:`World.share` of each batch's rows (for truncated BPTT the streams
  ``r*B/K ... (r+1)*B/K - 1``, so its carried state is the one a single process carries
  for those streams; ``B`` must be divisible by ``K``). A task of example batches takes
  each batch whole, padded and trimmed as one process would, and keeps its rows
  (:func:`slice_rows`; the shares of a batch may differ by one, and :class:`Rows` follows
  the size of each batch);
* after the backward pass each rank's gradients, times its count of loss terms
  (:meth:`~rnnlab.train.tasks.Task.loss_count`: tokens, examples, valid steps times
  outputs, answer characters), its loss times that count, the count, its item count and
  one flag per stop go into one flat buffer reduced with a single ``Allreduce``
  (:meth:`World.allreduce_grads`); dividing by the global count gives the gradient and
  loss of the mean over the global batch, those of a single process up to the order of
  the sums, also when the rows of a batch hold different numbers of loss terms. Clipping
  and the optimizer step follow on every rank from the same numbers;
* stops are agreed in that reduction: a stop signal received by any rank (mpiexec passes
  SIGINT and SIGTERM on to every rank; one rank alone may be told) or a ``max_time`` spent
  on any rank's clock sets its flag, and every rank stops after the same step, rank 0
  saving the checkpoint;
* the divergence guard decides from reduced numbers, so every rank rolls back together,
  and a :class:`~rnnlab.train.trainer.DivergenceError` or a :class:`DriftError` is raised
  on every rank at the same step (they end no rank by ``MPI_Abort``; any other exception
  does, see :meth:`World.abort`);
* random draws of the dropout masks are made for the whole global batch on every rank and
  each rank keeps its rows (:class:`ShardedRNG`), so the masks, and the generator's state
  saved in checkpoints, do not depend on ``K``. A task of example batches therefore needs
  a row of every batch on every rank when the model has dropout;
* every ``check_every`` steps (``TrainConfig.check_every``, ``rnnlab train
  --check-every``; else the world's own, 50) a checksum of the parameters (one
  ``Allreduce`` of two numbers) stops the run with :class:`DriftError` if the ranks differ.

GPU arrays (CuPy) are staged through host memory for the reduction: the device is
synchronised, the flat buffer is copied to the host once, reduced, and copied back once.
A direct device reduction (NCCL) is later work. On a GPU a mask comes from a device
generator seeded from the shared generator; the rank draws the global batch's mask there
and keeps its rows (:func:`rnnlab.backend.random_uniform`), so it does not depend on ``K``
either.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

import numpy as np


class DriftError(RuntimeError):
    """The parameters of the ranks differ (they must stay identical)."""


class World:
    """A single process (``rank`` 0 of ``size`` 1): every collective is the identity."""

    rank = 0
    size = 1
    comm: Any = None

    def __init__(self, check_every: int = 50) -> None:
        if isinstance(check_every, bool) or not isinstance(check_every, int) \
                or check_every < 1:
            raise ValueError(f"World: check_every expected an int >= 1, got {check_every!r}")
        self.check_every = check_every
        #: Number of gradient reductions made (one per training step).
        self.reductions = 0
        #: Seconds spent in the gradient reductions (staging and the ``Allreduce``).
        self.reduce_seconds = 0.0

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def share(self, n: int) -> tuple[int, int]:
        """The rows ``[lo, hi)`` of ``n`` that this rank takes (contiguous, as even as can be)."""
        return self.rank * n // self.size, (self.rank + 1) * n // self.size

    def check_batch(self, batch_size: int, what: str = "batch_size") -> None:
        if batch_size % self.size:
            raise ValueError(f"Trainer: {what}={batch_size} expected a multiple of the number "
                             f"of processes ({self.size}): each process takes an equal share "
                             f"of the streams")

    def allreduce_grads(self, buffer: Any, xp: Any) -> Any:
        """Sum ``buffer`` (a flat array) over the ranks, in place; one collective call."""
        return buffer

    def allreduce_sum(self, values: Any) -> np.ndarray:
        """Sum of a few host numbers over the ranks."""
        return np.asarray(values, dtype=np.float64)

    def gather_rows(self, array: Any, axis: int = 1) -> Any:
        """The arrays of all ranks concatenated along ``axis`` on rank 0 (None elsewhere)."""
        return array

    def check_same(self, values: np.ndarray, step: int) -> None:
        """Raise :class:`DriftError` when ``values`` differ between the ranks."""

    def abort(self, exc: BaseException) -> None:
        """End every rank after ``exc`` on this one (nothing for a single process)."""

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` (a small picklable object), on every rank."""
        return value

    def check_agree(self, value: str, what: str) -> None:
        """Raise ValueError unless every rank holds the same ``value`` (a short string,
        e.g. a digest); ``what`` names it in the message."""

    def fail(self, message: str, status: int) -> None:
        """End every rank after an error on this one that was reported as ``message`` (one
        line, printed here with the rank); nothing for a single process."""


class MPIWorld(World):
    """The ranks of an MPI communicator (``mpi4py``)."""

    def __init__(self, comm: Any, check_every: int = 50) -> None:
        super().__init__(check_every)
        from mpi4py import MPI

        self._MPI = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()

    def allreduce_grads(self, buffer: Any, xp: Any) -> Any:
        import time

        t0 = time.perf_counter()
        if xp is np:
            self.comm.Allreduce(self._MPI.IN_PLACE, buffer, op=self._MPI.SUM)
        else:  # CuPy: through host memory, one copy each way, after the stream is done
            cuda = getattr(xp, "cuda", None)
            if cuda is not None:
                cuda.get_current_stream().synchronize()
            host = np.ascontiguousarray(buffer.get())  # device -> host
            self.comm.Allreduce(self._MPI.IN_PLACE, host, op=self._MPI.SUM)
            buffer = xp.asarray(host)  # host -> device
        self.reductions += 1
        self.reduce_seconds += time.perf_counter() - t0
        return buffer

    def allreduce_sum(self, values: Any) -> np.ndarray:
        values = np.array(values, dtype=np.float64)
        self.comm.Allreduce(self._MPI.IN_PLACE, values, op=self._MPI.SUM)
        return values

    def gather_rows(self, array: Any, axis: int = 1) -> Any:
        parts = self.comm.gather(np.asarray(array), root=0)
        return np.concatenate(parts, axis=axis) if self.rank == 0 else None

    def check_same(self, values: np.ndarray, step: int) -> None:
        values = np.asarray(values, dtype=np.float64)
        both = np.concatenate([values, -values])
        self.comm.Allreduce(self._MPI.IN_PLACE, both, op=self._MPI.MAX)
        n = values.size
        if not np.array_equal(both[:n], -both[n:]):
            raise DriftError(f"the parameters of the {self.size} processes differ at step "
                             f"{step} (checksums from {(-both[n:]).tolist()} to "
                             f"{both[:n].tolist()}); they must stay identical: is every "
                             f"process running the same program, data and seed?")

    def abort(self, exc: BaseException) -> None:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        sys.stderr.write(f"rnnlab: rank {self.rank} of {self.size} failed, ending all "
                         f"ranks: {type(exc).__name__}: {exc}\n{text}")
        sys.stderr.flush()
        _let_mpiexec_forward_output()
        self.comm.Abort(1)

    def broadcast(self, value: Any) -> Any:
        return self.comm.bcast(value, root=0)

    def check_agree(self, value: str, what: str) -> None:
        values = self.comm.allgather(value)
        if any(v != values[0] for v in values):
            ranks = ", ".join(f"rank {r}: {str(v)[:16]}" for r, v in enumerate(values))
            raise ValueError(f"the {self.size} processes do not hold the same {what} "
                             f"({ranks}); every process must read the same data (the same "
                             f"files on every machine)")

    def fail(self, message: str, status: int) -> None:
        import time

        if self.rank:  # an error on rank 0 too (the same cause) is the one reported
            time.sleep(0.5)
        sys.stderr.write(f"rnnlab: error: rank {self.rank} of {self.size}: {message} "
                         f"(ending all {self.size} processes)\n")
        sys.stderr.flush()
        _let_mpiexec_forward_output()
        self.comm.Abort(status or 1)


def _let_mpiexec_forward_output() -> None:
    """A moment for mpiexec's proxy to pass on what this rank just wrote: an abort tears
    the job down at once, and a message still in the pipe would be lost."""
    import time

    time.sleep(0.3)


_WORLD: World | None = None


def detect(check_every: int = 50) -> World:
    """The MPI world when mpi4py is importable and more than one process runs, else a
    single-process :class:`World`. ``RNNLAB_MPI=0`` forces a single process."""
    global _WORLD
    if os.environ.get("RNNLAB_MPI", "1").strip().lower() in ("0", "off", "false", "no"):
        return World(check_every)
    if not any(k.startswith(("PMI_", "OMPI_COMM_WORLD", "PMIX_", "MPI_LOCALNRANKS"))
               for k in os.environ):
        return World(check_every)  # not started by mpiexec: mpi4py is not even imported
    try:
        from mpi4py import MPI
    except ImportError:
        return World(check_every)
    comm = MPI.COMM_WORLD
    if comm.Get_size() < 2:
        return World(check_every)
    if _WORLD is None or _WORLD.comm is not comm:
        _WORLD = MPIWorld(comm, check_every)
    _WORLD.check_every = check_every
    return _WORLD


def world_of(distributed: Any) -> World:
    """The world a trainer's ``distributed=`` argument names: None (detect), False (one
    process), True (detect; the same), or a :class:`World`."""
    if distributed is None or distributed is True:
        return detect()
    if distributed is False:
        return World()
    if isinstance(distributed, World):
        return distributed
    raise TypeError(f"Trainer: distributed expected None, True, False or a "
                    f"rnnlab.train.distributed.World, got {type(distributed).__name__}")


class Rows:
    """The rows ``[lo, hi)`` this rank takes of a global batch of ``total`` rows. A
    language model's share is fixed; a task of example batches updates it for every batch
    (the last batch of an epoch may be smaller), and the :class:`ShardedRNG` reads it at
    every draw."""

    def __init__(self, lo: int, hi: int, total: int) -> None:
        self.set(lo, hi, total)

    def set(self, lo: int, hi: int, total: int) -> None:
        self.lo, self.hi, self.total = int(lo), int(hi), int(total)


class ShardedRNG:
    """A generator that draws uniform numbers for all ``rows.total`` rows of the global
    batch (the batch on ``axis``: 0 for batch-first arrays, 1 for the time-major ones of the
    recurrent layers) and hands back the rows ``[rows.lo, rows.hi)`` of this rank. Draws
    whose ``axis`` is not this rank's row count, and every other method, go to the wrapped
    generator unchanged, so the generator's stream is the one a single process draws."""

    def __init__(self, rng: np.random.Generator, rows: Rows, axis: int = 0) -> None:
        self._rng, self.rows, self.axis = rng, rows, axis

    def global_part(self, size: Any) -> tuple[tuple[int, ...], tuple[slice, ...]] | None:
        """For a draw of ``size`` with this rank's row count on :attr:`axis`: the global
        batch's shape and the index of this rank's rows in it; None for any other draw.
        :func:`rnnlab.backend.random_uniform` reads it to draw a GPU mask the same way."""
        a, rows = self.axis, self.rows
        if not (isinstance(size, tuple) and len(size) > a and size[a] == rows.hi - rows.lo):
            return None
        return ((*size[:a], rows.total, *size[a + 1:]),
                (slice(None),) * a + (slice(rows.lo, rows.hi),))

    def random(self, size: Any = None, dtype: Any = np.float64, out: Any = None) -> Any:
        part = self.global_part(size) if out is None else None
        if part is not None:
            return np.ascontiguousarray(self._rng.random(part[0], dtype=dtype)[part[1]])
        return self._rng.random(size, dtype=dtype, out=out)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rng, name)


def shard_rngs(model: Any, rng: Any, rows: Rows) -> None:
    """Replace ``rng`` by a :class:`ShardedRNG` reading ``rows`` wherever ``model`` and its
    children hold it: with the batch on axis 1 in the recurrent layers (time-major: the
    classic cells' and the min cells' masks between layers), else on axis 0."""
    from rnnlab.nn.minrnn import MinRecurrent
    from rnnlab.nn.recurrent import Recurrent

    seen: set[int] = set()

    def walk(obj: Any) -> None:
        if id(obj) in seen or not hasattr(obj, "__dict__"):
            return
        seen.add(id(obj))
        axis = 1 if isinstance(obj, Recurrent | MinRecurrent) else 0
        for key, value in list(vars(obj).items()):
            if value is rng:
                setattr(obj, key, ShardedRNG(rng, rows, axis))
            elif hasattr(value, "params") and hasattr(value, "__dict__"):
                walk(value)
            elif isinstance(value, list | tuple):
                for item in value:
                    if hasattr(item, "params"):
                        walk(item)
            elif isinstance(value, dict):
                for item in value.values():
                    if hasattr(item, "params"):
                        walk(item)

    walk(model)


def slice_rows(value: Any, lo: int, hi: int) -> Any:
    """Rows ``[lo, hi)`` of a batch: of an array, of every array in a tuple or list, and
    of every field of a dataclass (a seq2seq :class:`~rnnlab.seq2seq.data.Batch`); None
    stays None."""
    import dataclasses

    if value is None:
        return None
    if isinstance(value, tuple | list):
        return type(value)(slice_rows(v, lo, hi) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: slice_rows(getattr(value, f.name), lo, hi)
                                             for f in dataclasses.fields(value)})
    return value[lo:hi]


def flatten_grads(pairs: list[tuple[Any, Any]], xp: Any, dtype: Any, extra: int) -> Any:
    """One flat buffer of the gradients (in order) and ``extra`` trailing slots."""
    total = sum(int(g.size) for _, g in pairs)
    buffer = xp.empty(total + extra, dtype=dtype)
    at = 0
    for _, g in pairs:
        n = int(g.size)
        buffer[at:at + n] = g.reshape(-1)
        at += n
    return buffer


def unflatten_grads(buffer: Any, pairs: list[tuple[Any, Any]], scale: float) -> None:
    """Write ``buffer * scale`` back into the gradients (in place)."""
    at = 0
    for _, g in pairs:
        n = int(g.size)
        g[...] = (buffer[at:at + n] * scale).reshape(g.shape)
        at += n
