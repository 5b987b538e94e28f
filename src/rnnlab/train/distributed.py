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
  (:meth:`~rnnlab.train.task.Task.counts`: tokens, examples, valid steps times
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
  and a :class:`~rnnlab.train.guard.DivergenceError` or a :class:`DriftError` is raised
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

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
import traceback
from collections.abc import Iterator
from typing import Any

import numpy as np

from rnnlab.nn.minrnn import MinRecurrent
from rnnlab.nn.recurrent import Recurrent
from rnnlab.train.runfolder import RunLock

#: The stops the processes of a distributed run agree on in the gradient reduction (one
#: slot each in its buffer; when several are asked for at once the first one is reported).
AGREED_STOPS = ("interrupted", "terminated", "hangup", "max_time")


def run_options(task: Any, config: Any) -> dict[str, str]:
    """What a run's processes must agree on before they train, one entry per option (as
    JSON text): the task's document (kind, model configuration, vocabulary ...) and the
    run configuration (a :class:`~rnnlab.train.TrainConfig`), less how each process
    reports (``progress``)."""
    flat: dict[str, str] = {}
    for section, values in (("model", task.meta()), ("train", config.to_dict())):
        for key, value in values.items():
            if isinstance(value, dict):
                for sub, item in value.items():
                    flat[f"{key}.{sub}"] = json.dumps(item, sort_keys=True, default=str)
            elif (section, key) != ("train", "progress"):
                flat[f"{section}.{key}" if section == "train" else key] = \
                    json.dumps(value, sort_keys=True, default=str)
    return flat


#: How :meth:`World.check_agree` ends by default.
SAME_FILES = "every process must read the same data (the same files on every machine)"


class AgreedError(RuntimeError):
    """An error decided from reduced numbers, raised on every rank at the same step (it
    ends no rank by ``MPI_Abort``)."""


class DriftError(AgreedError):
    """The parameters of the ranks differ (they must stay identical)."""


class World:
    """A single process (``rank`` 0 of ``size`` 1): every collective is the identity, and
    :meth:`forward_backward` is the plain forward and backward pass."""

    rank = 0
    size = 1
    comm: Any = None
    #: Whether stops by signal and time are agreed in the gradient reduction (many
    #: processes) or taken at once (one).
    agrees_stops = False

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

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (a small picklable object), in rank order, on every rank."""
        return [value]

    def check_options(self, task: Any, config: Any) -> None:
        """Raise ValueError on every rank, naming the options that differ, unless every
        rank was started with the same options (:func:`run_options` of ``task`` and
        ``config``); called before any collective that depends on them (a batch's size,
        the parameters' count). Nothing for a single process."""

    def check_agree(self, value: str, what: str, hint: str = SAME_FILES) -> None:
        """Raise ValueError unless every rank holds the same ``value`` (a short string,
        e.g. a digest); ``what`` names it in the message, ``hint`` ends it."""

    def fail(self, message: str, status: int) -> None:
        """End every rank after an error on this one that was reported as ``message`` (one
        line, printed here with the rank); nothing for a single process."""

    # ------------------------------------------------- what the trainer calls
    def join(self, task: Any, config: Any) -> None:
        """Let ``task`` check ``config`` and take this process's share of the data (here
        all of it)."""
        task.prepare(config, self)

    def forward_backward(self, task: Any, batch: Any, trained: list[tuple[str, Any, Any]],
                         stops: Any) -> tuple[float, int]:
        """``(loss, items)`` of one batch, its gradients added into the parameters'. After
        a non-finite loss there is no backward pass (the step is rolled back)."""
        loss = task.forward_loss(batch)
        if math.isfinite(loss):
            task.backward()
        return loss, task.counts(batch)[0]

    def check_drift(self, model: Any, step: int, *, now: bool = False) -> None:
        """Every ``check_every`` steps (or ``now``) on many processes: raise
        :class:`DriftError` when their parameters differ."""

    def announce(self, config: Any, echo: Any) -> None:
        """Say how the processes share the work (nothing to say for one)."""

    def lock(self, folder: str | os.PathLike[str]) -> Any:
        """The lock of run folder ``folder`` (:class:`~rnnlab.train.runfolder.RunLock`, a
        context manager), held by rank 0 alone."""
        return RunLock(folder)

    @contextlib.contextmanager
    def running(self, folder: str | os.PathLike[str]) -> Iterator[None]:
        """Train in ``folder``: its lock held, and on many processes one rank's failure
        ending every rank rather than leaving them waiting."""
        with self.lock(folder):
            yield


class NoLock:
    """What a rank other than 0 holds for the run folder (rank 0 holds its lock)."""

    def release(self) -> None:
        pass

    def __enter__(self) -> NoLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


class MPIWorld(World):
    """The ranks of an MPI communicator (``mpi4py``)."""

    agrees_stops = True

    def __init__(self, comm: Any, check_every: int = 50) -> None:
        super().__init__(check_every)
        from mpi4py import MPI

        self._MPI = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()

    def allreduce_grads(self, buffer: Any, xp: Any) -> Any:
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
        _exit_after_abort(1)

    def broadcast(self, value: Any) -> Any:
        return self.comm.bcast(value, root=0)

    def gather(self, value: Any) -> list[Any]:
        return list(self.comm.allgather(value))

    def check_options(self, task: Any, config: Any) -> None:
        short = {k: v if len(v) <= 64 else
                 "sha256:" + hashlib.sha256(v.encode("utf-8")).hexdigest()[:16]
                 for k, v in run_options(task, config).items()}  # no vocabulary is sent
        every = self.gather(short)
        names = sorted({k for o in every for k in o
                        if any(p.get(k) != o.get(k) for p in every)})
        if not names:
            return
        shown = "; ".join(f"{name} (" + ", ".join(f"rank {r}: {str(o.get(name))[:24]}"
                                                  for r, o in enumerate(every)) + ")"
                          for name in names[:4])
        more = f" and {len(names) - 4} more" if len(names) > 4 else ""
        raise ValueError(f"the {self.size} processes were started with different options: "
                         f"{shown}{more}; every process must be started with the same "
                         f"command line")

    def check_agree(self, value: str, what: str, hint: str = SAME_FILES) -> None:
        values = self.comm.allgather(value)
        if any(v != values[0] for v in values):
            ranks = ", ".join(f"rank {r}: {str(v)[:16]}" for r, v in enumerate(values))
            raise ValueError(f"the {self.size} processes do not hold the same {what} "
                             f"({ranks}); {hint}")

    def fail(self, message: str, status: int) -> None:
        if self.rank:  # an error on rank 0 too (the same cause) is the one reported
            time.sleep(0.5)
        sys.stderr.write(f"rnnlab: error: rank {self.rank} of {self.size}: {message} "
                         f"(ending all {self.size} processes)\n")
        sys.stderr.flush()
        _let_mpiexec_forward_output()
        self.comm.Abort(status or 1)
        _exit_after_abort(status or 1)


    # ------------------------------------------------- what the trainer calls
    def join(self, task: Any, config: Any) -> None:
        """The task takes this rank's share; the dropout generator is sharded so that the
        masks are those of the global batch (:func:`shard_rngs`)."""
        task.prepare(config, self)
        rng = getattr(task.model, "rng", None)
        if rng is not None:  # the task's rows of each batch (fixed unless it says)
            rows = getattr(task, "rows", None) or \
                Rows(*self.share(config.batch_size), config.batch_size)
            shard_rngs(task.model, rng, rows)

    def forward_backward(self, task: Any, batch: Any, trained: list[tuple[str, Any, Any]],
                         stops: Any) -> tuple[float, int]:
        """This rank's share of the batch forward and backward, then one reduction of one
        flat buffer: the gradients times this rank's count of loss terms
        (:meth:`~rnnlab.train.task.Task.counts`), the loss times it, the count, the items
        (for the rate shown) and one flag per stop of :data:`AGREED_STOPS` that ``stops``
        asks for. Returns the global mean loss and items; the gradients become the
        gradients of the global mean, those of one process training on the whole batch (up
        to the order of the sums)."""
        xp = task.model.xp
        if batch is None:  # an example batch too small to give this rank a share
            loss, count, items = 0.0, 0, 0
        else:
            loss = task.forward_loss(batch)
            items, count = task.counts(batch)
            task.backward()  # also after a non-finite loss: the ranks must stay in step
        asked = stops.asked()
        pairs = [(name, grad) for name, _, grad in trained]
        grad_dtype = pairs[0][1].dtype
        extra = 3 + len(AGREED_STOPS)
        buffer = flatten_grads(pairs, xp, grad_dtype, extra)
        if count:
            buffer[:-extra] *= grad_dtype.type(count)
        else:  # no loss term here (an empty share, or a loss over nothing): no gradient
            buffer[:-extra] = 0
        buffer[-extra:] = xp.asarray(
            [loss * count if count else 0.0, count, items,
             *(1.0 if asked == reason else 0.0 for reason in AGREED_STOPS)], dtype=grad_dtype)
        buffer = self.allreduce_grads(buffer, xp)
        tail = [float(v) for v in (buffer[-extra:].get() if hasattr(buffer, "get")
                                   else buffer[-extra:])]
        total_loss, total_count, total_items = tail[:3]
        unflatten_grads(buffer, pairs, 1.0 / total_count if total_count else 0.0)
        stops.agree([r for r, flag in zip(AGREED_STOPS, tail[3:], strict=True) if flag > 0])
        return (total_loss / total_count if total_count else 0.0), round(total_items)

    def check_drift(self, model: Any, step: int, *, now: bool = False) -> None:
        """Stop with a DriftError when the ranks' parameters differ (cheap checksums)."""
        if not now and step % self.check_every:
            return
        xp = model.xp
        sums = [0.0, 0.0]
        for k, (_, p) in enumerate(model.named_parameters()):
            sums[0] += float(xp.sum(p, dtype=xp.float64))
            sums[1] += float(xp.sum(p * (k + 1.0) / (1 + (k % 7)), dtype=xp.float64))
        self.check_same(np.asarray(sums), step)

    def announce(self, config: Any, echo: Any) -> None:
        every = self.check_every
        echo(f"training on {self.size} processes (MPI), global batch {config.batch_size}, "
             f"{config.batch_size // self.size} per process; parameters compared every "
             f"{every} step{'s' * (every != 1)}")

    def lock(self, folder: str | os.PathLike[str]) -> Any:
        return RunLock(folder) if self.is_root else NoLock()

    @contextlib.contextmanager
    def running(self, folder: str | os.PathLike[str]) -> Iterator[None]:
        try:
            with self.lock(folder):
                yield
        except AgreedError:
            raise  # decided from reduced numbers: every rank raises it at the same step
        except BaseException as exc:  # one rank failing must end them all, not hang them
            self.abort(exc)
            raise


def _let_mpiexec_forward_output() -> None:
    """A moment for mpiexec's proxy to pass on what this rank just wrote: an abort tears
    the job down at once, and a message still in the pipe would be lost."""
    time.sleep(0.3)


def _exit_after_abort(status: int) -> None:
    """MPICH's ``MPI_Abort`` can return on the rank that called it while mpiexec tears the
    job down (seen with MPICH 5 when another rank fails at the same moment); the process
    must not go on (it would print its error a second time): end it now."""
    sys.stderr.flush()
    os._exit(status)


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
