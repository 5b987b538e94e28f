"""Host threads and BLAS threads: the engine's only process-wide machinery.

Three things here touch the whole process, and each is used only when it is safe:

* the BLAS thread count (threadpoolctl): a time loop's small per-step products run on
  one BLAS thread (:func:`blas_threads`);
* OpenBLAS's idle workers, which spin on the cores for about 0.1 s after each call and
  would take the core that rnnlab's own second thread needs; :func:`release_blas_threads`
  ends them with OpenBLAS's own ``blas_thread_shutdown_`` (the call OpenBLAS makes
  before a ``fork``); the next multi-threaded BLAS call starts them again;
* one pool of host threads (:func:`run_together`, :func:`parallel_chunks`,
  :func:`run_beside`).

Ending OpenBLAS's workers while another thread is inside BLAS deadlocks, and changing
the BLAS thread count then races with it. So both happen only when the calling thread
*owns the process* (:func:`owns_process`): no other Python thread is alive but
rnnlab's own pool threads (and tqdm's monitor, which only sleeps). Nothing can then
enter BLAS behind rnnlab's back: only the calling thread could start such a thread,
and it is busy here. Otherwise (a user's threads, two models trained in two threads, a
notebook kernel's threads) the engine keeps its arithmetic and does the same work on
the calling thread alone, without touching BLAS or the pool: the results are the same
bits, only the speed differs. After ``os.fork`` the child gets a fresh pool.

Per-thread state (the BLAS limit in force, whether a side job runs) is thread-local.
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

import numpy as np

from rnnlab.fast.config import count, flag

_local = threading.local()  # .limit (innermost blas_threads limit), .beside (bool)


def _limit() -> int | None:
    return getattr(_local, "limit", None)


def solo() -> bool:
    """Whether this thread runs the main job of :func:`run_beside`: its own work then
    keeps to one thread (the side job has the other core)."""
    return getattr(_local, "beside", False)


def scratch(key: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """A work array of this thread (contents undefined), kept while its shape stays."""
    buffers = getattr(_local, "scratch", None)
    if buffers is None:
        buffers = _local.scratch = {}
    buf = buffers.get(key)
    if buf is None or buf.shape != shape or buf.dtype != dtype:
        buf = buffers[key] = np.empty(shape, dtype=dtype)
    return buf


# ------------------------------------------------------------------- the process
_POOL: ThreadPoolExecutor | None = None
_POOL_PID: int | None = None
_POOL_LOCK = threading.Lock()
_POOL_PREFIX = "rnnlab-fast"


def _forget_pool() -> None:
    """In a forked child: the parent's pool threads do not exist here."""
    global _POOL, _POOL_PID, _POOL_LOCK
    _POOL, _POOL_PID, _POOL_LOCK = None, None, threading.Lock()
    _local.__dict__.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _quiet_thread(thread: threading.Thread) -> bool:
    """Threads that never call BLAS: rnnlab's pool and tqdm's monitor."""
    return thread.name.startswith(_POOL_PREFIX) or type(thread).__name__ == "TMonitor"


def owns_process() -> bool:
    """Whether the calling thread is the only Python thread that may call BLAS now (see
    the module docstring): then the engine may change the BLAS thread count, end
    OpenBLAS's idle workers and use its pool."""
    if threading.active_count() == 1:
        return True
    me = threading.current_thread()
    return all(t is me or _quiet_thread(t) for t in threading.enumerate())


def cpu_workers() -> int:
    """Host threads for the row sweeps: ``RNNLAB_CPU_WORKERS``, else the cores this
    process may use, at most 8."""
    chosen = count("RNNLAB_CPU_WORKERS")
    if isinstance(chosen, int):  # the variable takes no words
        return chosen
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return max(1, min(cores or os.cpu_count() or 1, 8))


def _pool(workers: int) -> ThreadPoolExecutor:
    """This process's pool, grown to at least ``workers`` threads."""
    global _POOL, _POOL_PID
    with _POOL_LOCK:
        if _POOL is None or _POOL_PID != os.getpid() or _POOL._max_workers < workers:
            _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=_POOL_PREFIX)
            _POOL_PID = os.getpid()
        return _POOL


# ------------------------------------------------------------------ BLAS threads
_BLAS: Any = None
_RELEASERS: list[Any] | None = None


def _blas_libraries() -> list[Any]:
    """threadpoolctl's controllers of the BLAS libraries numpy loaded (cached)."""
    global _BLAS
    if _BLAS is None:
        try:
            from threadpoolctl import ThreadpoolController

            _BLAS = list(ThreadpoolController().select(user_api="blas").lib_controllers)
        except Exception:  # pragma: no cover - threadpoolctl missing or unusable
            _BLAS = []
    return _BLAS


_NOMINAL: int | None = None


def blas_thread_count() -> int:
    """The BLAS threads a time loop plans with: the library's count when rnnlab first
    asked (so that a plan, and with it the arithmetic, does not depend on what another
    thread set meanwhile), within an enclosing :func:`blas_threads` limit."""
    global _NOMINAL
    if _NOMINAL is None:
        _NOMINAL = max((lib.num_threads for lib in _blas_libraries()), default=1)
    limit = _limit()
    return _NOMINAL if limit is None else min(_NOMINAL, limit)


@contextlib.contextmanager
def blas_threads(limit: int | None) -> Iterator[None]:
    """Run the block with at most ``limit`` BLAS threads (``None``: leave as is). The
    library's count changes only when this thread owns the process; the limit is
    recorded for this thread either way (plans read it)."""
    outer = _limit()
    if limit is None or (outer is not None and outer <= limit):
        yield
        return
    changed = []
    if owns_process():
        for lib in _blas_libraries():
            current = lib.num_threads
            if current > limit:
                lib.set_num_threads(limit)
                changed.append((lib, current))
    _local.limit = limit
    try:
        yield
    finally:
        _local.limit = outer
        for lib, previous in changed:
            lib.set_num_threads(previous)


def _blas_releasers() -> list[Any]:
    """OpenBLAS's ``blas_thread_shutdown_`` of every BLAS library numpy loaded, or an
    empty list when any of them is not OpenBLAS on its own pthreads (cached)."""
    global _RELEASERS
    if _RELEASERS is None:
        found: list[Any] = []
        for lib in _blas_libraries():
            fn = getattr(getattr(lib, "dynlib", None), "blas_thread_shutdown_", None)
            if (lib.internal_api != "openblas" or fn is None
                    or getattr(lib, "threading_layer", "") != "pthreads"):
                found = []
                break
            found.append(fn)
        _RELEASERS = found
    return _RELEASERS


def can_release_blas_threads() -> bool:
    """Whether this BLAS's idle workers can be ended at all (OpenBLAS on pthreads, and
    ``RNNLAB_RELEASE_BLAS`` not off). A machine fact: the plans that depend on it do not
    change with the threads alive."""
    return bool(flag("RNNLAB_RELEASE_BLAS")) and bool(_blas_releasers())


def release_blas_threads() -> bool:
    """End OpenBLAS's idle workers now, when this thread owns the process and no side
    job runs; returns whether it did."""
    if solo() or not can_release_blas_threads() or not owns_process():
        return False
    for fn in _blas_releasers():
        fn()
    return True


# ------------------------------------------------------------------- host threads
def run_together(fn: Callable[[], None], threads: int) -> None:
    """Call ``fn()`` on ``threads`` threads at once, this thread being one of them (for
    compiled kernels that release the GIL and take their work from a shared counter; the
    caller ends OpenBLAS's idle workers first where they would hold the cores, once per
    pass, as :class:`rnnlab.fast.packed.PackedProducts` does).
    When this thread does not own the process, or a side job runs, ``fn()`` runs once,
    here, and does all the work itself."""
    if threads <= 1 or solo() or not owns_process():
        fn()
        return
    pool = _pool(max(threads - 1, cpu_workers()))
    futures = [pool.submit(fn) for _ in range(threads - 1)]
    try:
        fn()
    finally:
        for f in futures:
            f.result()


def parallel_chunks(fn: Callable[[int, int], Any], total: int, *,
                    min_chunk: int = 64) -> list[Any]:
    """``fn(start, stop)`` over ``[0, total)`` in contiguous parts, on up to
    :func:`cpu_workers` threads (the first part on this thread); results in order. Each
    part is independent, so the outcome does not depend on the split. The parts must not
    call BLAS (OpenBLAS's idle workers are ended first)."""
    workers = min(cpu_workers(), max(1, total // min_chunk))
    if workers <= 1 or solo() or not owns_process():
        return [fn(0, total)]
    release_blas_threads()
    pool = _pool(workers - 1)
    bounds = [total * k // workers for k in range(workers + 1)]
    futures = [pool.submit(fn, bounds[k], bounds[k + 1]) for k in range(1, workers)]
    try:
        first = fn(bounds[0], bounds[1])
    finally:
        wait(futures)
    return [first] + [f.result() for f in futures]


#: a side job is worth starting from this many multiply-adds of side work
BESIDE_MIN_MACS = 50_000_000


def beside_pays(side_macs: int, main_macs: int) -> bool:
    """Whether :func:`run_beside` should run ``side_macs`` multiply-adds of independent
    products beside a main job of ``main_macs``: two cores, OpenBLAS's workers can be
    ended, the side work is at least :data:`BESIDE_MIN_MACS` and 1.5 to 8 times the
    main work (``python benchmarks/bench_loop_products.py --beside``). ``RNNLAB_BESIDE``
    overrides. Machine facts and sizes only, so the choice, and the arithmetic that
    follows from it, is the same whichever threads are alive."""
    forced = flag("RNNLAB_BESIDE")
    if forced is False or solo() or cpu_workers() < 2 or not can_release_blas_threads():
        return False
    if forced:
        return True
    return side_macs >= BESIDE_MIN_MACS and 3 * main_macs <= 2 * side_macs <= 16 * main_macs


def run_beside(main: Callable[[Callable[[Callable[[], None]], None]], Any],
               parts: Any = ()) -> Any:
    """``main(add)`` on this thread while a pool thread works through ``parts``
    (callables without arguments, independent of each other and of what ``main`` still
    has to do) and through those ``main`` hands to ``add``; returns what ``main`` returns.

    Both threads use one BLAS thread, and :func:`solo` is true on this thread meanwhile,
    so that its own work keeps to one thread. Every part runs exactly once, on one of
    the two threads, and must write its own arrays. When this thread does not own the
    process (or runs a side job already) everything runs here, in order, with the same
    arithmetic. Errors are re-raised after both threads stop.
    """
    pending = collections.deque(parts)
    if solo() or not pending:
        result = main(pending.append)
        while pending:
            pending.popleft()()
        return result
    if not owns_process():
        _local.beside = True
        try:
            with blas_threads(1):
                result = main(pending.append)
                while pending:
                    pending.popleft()()
        finally:
            _local.beside = False
        return result
    ready = threading.Condition()
    closed = False  # main has returned (or failed): no more parts will come

    def add(part: Callable[[], None]) -> None:
        with ready:
            pending.append(part)
            ready.notify()

    def take() -> Any:
        with ready:
            while not pending and not closed:
                ready.wait()
            return pending.popleft() if pending else None

    def work() -> None:
        outer = solo()
        _local.beside = True  # on the side thread too: each gradient its own work array
        try:
            while (part := take()) is not None:
                part()
        finally:
            _local.beside = outer

    def close(drop: bool) -> None:
        nonlocal closed
        with ready:
            closed = True
            if drop:
                pending.clear()
            ready.notify_all()

    with blas_threads(1):
        release_blas_threads()
        _local.beside = True
        try:
            future = _pool(max(1, cpu_workers() - 1)).submit(work)
            try:
                result = main(add)
            except BaseException:
                close(drop=True)
                future.exception()  # wait for the side thread's current part
                raise
            close(drop=False)
            try:
                work()
            finally:
                error = future.exception()
            if error is not None:
                raise error
        finally:
            _local.beside = False
    return result
