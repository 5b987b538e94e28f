"""The one place that knows about devices: the array module, the dtype policy, moves.

Every other module asks this one for its array module (``xp``) at run time, from an
argument or from the ``RNNLAB_DEVICE`` environment variable, never from a global flag
read at import time. ``xp`` is :mod:`numpy` on the CPU and :mod:`cupy` on a GPU.

>>> from rnnlab import backend
>>> backend.get_xp("cpu").__name__
'numpy'
"""

from __future__ import annotations

import collections
import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from types import ModuleType
from typing import Any

import numpy as np

#: Default floating dtype of every layer (as in PyTorch); float64 is chosen per layer.
DEFAULT_DTYPE = np.dtype(np.float32)
#: Floating dtypes a layer may hold.
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_CPU_NAMES = {"cpu", "numpy"}
_GPU_NAMES = {"gpu", "cuda", "cupy"}


class DeviceError(RuntimeError):
    """The requested device cannot be used (CuPy missing, or no CUDA device)."""


def resolve_device(device: str | None = None) -> str:
    """Return ``"cpu"`` or ``"gpu"`` for ``device``, or for ``RNNLAB_DEVICE`` when ``None``."""
    if device is None:
        device = os.environ.get("RNNLAB_DEVICE", "cpu") or "cpu"
    if not isinstance(device, str):
        raise TypeError(f"device: expected 'cpu' or 'gpu', got {type(device).__name__}")
    name = device.strip().lower()
    if name in _CPU_NAMES:
        return "cpu"
    if name in _GPU_NAMES or name.startswith("cuda:"):
        return "gpu"
    raise ValueError(f"device: expected 'cpu' or 'gpu', got {device!r}")


def _import_cupy() -> ModuleType:
    try:
        import cupy
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise DeviceError(
            "device 'gpu' needs CuPy, which is not installed; install it with "
            "pip install 'rnnlab[gpu]' (a CuPy build for CUDA 12)"
        ) from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # pragma: no cover - depends on the machine
        raise DeviceError(f"device 'gpu': CuPy is installed but CUDA is unusable ({exc})") from exc
    if count < 1:  # pragma: no cover - depends on the machine
        raise DeviceError("device 'gpu': CuPy is installed but no CUDA device was found")
    return cupy


def get_xp(device: str | None = None) -> ModuleType:
    """The array module for ``device`` (``"cpu"``, ``"gpu"``, or ``None`` for the environment)."""
    if resolve_device(device) == "gpu":
        return _import_cupy()
    return np


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        _import_cupy()
    except DeviceError:
        return False
    return True


def device_of(xp: ModuleType) -> str:
    """``"cpu"`` for numpy, ``"gpu"`` otherwise."""
    return "cpu" if xp is np else "gpu"


def _is_device_array(obj: Any) -> bool:
    return type(obj).__module__.startswith("cupy")


def xp_of(array: Any) -> ModuleType:
    """The array module an array belongs to (numpy for anything that is not a CuPy array)."""
    if _is_device_array(array):
        return sys.modules[type(array).__module__.partition(".")[0]]
    return np


def is_array(obj: Any) -> bool:
    """True for numpy and CuPy arrays."""
    return isinstance(obj, np.ndarray) or _is_device_array(obj)


def resolve_dtype(dtype: Any = None) -> np.dtype:
    """The layer dtype for ``dtype`` (default float32); only float32 and float64 are allowed."""
    if dtype is None:
        return DEFAULT_DTYPE
    try:
        resolved = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype: expected float32 or float64, got {dtype!r}") from exc
    if resolved not in FLOAT_DTYPES:
        raise TypeError(f"dtype: expected float32 or float64, got {resolved}")
    return resolved


def to_numpy(array: Any) -> np.ndarray:
    """A host (numpy) copy or view of ``array`` (a device array is copied to the host)."""
    if _is_device_array(array):
        return array.get()
    return np.asarray(array)


def to_xp(array: Any, xp: ModuleType) -> Any:
    """``array`` on the device of ``xp`` (a no-op when it is already there)."""
    if xp is np:
        return to_numpy(array)
    return xp.asarray(array)


def make_rng(rng: np.random.Generator | int | None = None) -> np.random.Generator:
    """A numpy ``Generator`` from a Generator, a seed, or ``None`` (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, int | np.integer) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng: expected a numpy.random.Generator, an int seed or None, got {rng!r}")


def random_uniform(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype,
                   xp: ModuleType) -> Any:
    """Uniform [0, 1) numbers of ``shape`` on the device of ``xp``, drawn from ``rng``.

    On the CPU the numbers come straight from ``rng``; on a GPU a device generator is
    seeded from ``rng`` so that one seed still fixes the whole run.
    """
    if xp is np:
        return rng.random(shape, dtype=np.float32 if dtype == np.float32 else np.float64)
    seed = int(rng.integers(0, 2**63 - 1))  # pragma: no cover - GPU only
    return xp.random.default_rng(seed).random(shape, dtype=dtype)  # pragma: no cover


# ------------------------------------------------------------------- CPU threads
_BLAS: Any = None
_LIMIT: int | None = None  # the limit of the innermost active blas_threads block


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


@contextlib.contextmanager
def blas_threads(limit: int | None) -> Iterator[None]:
    """Run the block with at most ``limit`` BLAS threads (``None``: leave as is).

    The time loops use one thread: their per-step products are small, and a second
    OpenBLAS thread slows them down (badly so when the CPU is shared, as the threads
    spin waiting for each other); the big products outside the loops keep every thread.
    Costs a few microseconds (one library call each way), nothing when already limited.
    """
    global _LIMIT
    if limit is None or (_LIMIT is not None and _LIMIT <= limit):
        yield  # nothing to do, or an enclosing block already limits as much
        return
    changed = []
    for lib in _blas_libraries():
        current = lib.num_threads
        if current > limit:
            lib.set_num_threads(limit)
            changed.append((lib, current))
    outer, _LIMIT = _LIMIT, limit
    try:
        yield
    finally:
        _LIMIT = outer
        for lib, previous in changed:
            lib.set_num_threads(previous)


def _blas_releasers() -> list[Any]:
    """OpenBLAS's ``blas_thread_shutdown_`` of every BLAS library numpy loaded, or an
    empty list when any of them is not OpenBLAS on its own pthreads (cached)."""
    global _RELEASERS
    if _RELEASERS is None:
        found = []
        for lib in _blas_libraries():
            fn = getattr(getattr(lib, "dynlib", None), "blas_thread_shutdown_", None)
            if (lib.internal_api != "openblas" or fn is None
                    or getattr(lib, "threading_layer", "") != "pthreads"):
                found = []
                break
            found.append(fn)
        _RELEASERS = found
    return _RELEASERS


_RELEASERS: list[Any] | None = None


def can_release_blas_threads() -> bool:
    """Whether :func:`release_blas_threads` can free the cores numpy's BLAS threads hold
    (``RNNLAB_RELEASE_BLAS=0`` says no)."""
    if os.environ.get("RNNLAB_RELEASE_BLAS", "").strip().lower() in ("0", "off", "no", "false"):
        return False
    return bool(_blas_releasers())


def release_blas_threads() -> bool:
    """Stop numpy's idle BLAS worker threads now, so that other threads get the cores.

    After each call OpenBLAS's workers spin, waiting for more work, for 2^28 cycles
    (about 0.1 s), and on a 2-core machine such a spinning thread takes the core that a
    second compute thread of rnnlab needs. OpenBLAS's ``blas_thread_shutdown_`` (the
    call OpenBLAS itself makes before a ``fork``) ends them; the next multi-threaded
    BLAS call starts them again (measured here: about 75 us to end them, and no change
    in the time of the next large product). Only for OpenBLAS on its own pthreads;
    returns False, doing nothing, elsewhere. It must not run while another thread is
    inside a BLAS call: rnnlab calls it from the thread that runs the model, before
    work it shares out between threads, as a training loop owns the BLAS library while
    it runs. ``RNNLAB_RELEASE_BLAS=0`` turns it off (the per-step products then stay in
    BLAS, see :mod:`rnnlab.nn._packed`).
    """
    if _BESIDE or not can_release_blas_threads():
        return False  # (beside a side job the workers are ended already, see run_beside)
    for fn in _blas_releasers():
        fn()
    return True


#: Per-step products at least this large (multiply-adds) keep every BLAS thread. Measured
#: on 2 cores (OpenBLAS 0.3.31, quiet machine): an LSTM 256 at batch 32 (8.4 M per step)
#: runs forward + backward in 84 ms with both threads against 103 ms with one, a GRU 256
#: 73 against 90; at LSTM 100, batch 20 (0.8 M) the two are within noise, and one thread
#: is the safer choice there when the machine is busy (a spinning second BLAS thread then
#: steals the core the elementwise work needs).
LOOP_SHARE_MACS = 2_000_000


def loop_threads(macs: int = 0) -> int | None:
    """BLAS threads for the per-step products of a time loop: one for small products,
    all (``None``) from :data:`LOOP_SHARE_MACS` multiply-adds per step; the environment
    variable ``RNNLAB_LOOP_THREADS`` (a number, or ``all``) overrides."""
    value = os.environ.get("RNNLAB_LOOP_THREADS", "").strip().lower()
    if value in ("all", "default", "none", "0"):
        return None
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            pass
    return None if macs >= LOOP_SHARE_MACS else 1


def blas_thread_count() -> int:
    """How many threads numpy's BLAS would use now (inside :func:`blas_threads` too)."""
    n = max((lib.num_threads for lib in _blas_libraries()), default=1)
    return n if _LIMIT is None else min(n, _LIMIT)


def loop_transposed(limit: int | None) -> bool:
    """Whether a time loop running under ``blas_threads(limit)`` computes its per-step
    products transposed (:meth:`rnnlab.nn._cellmath.Trace.times_wt`): yes with two or
    more BLAS threads, where that is faster; ``RNNLAB_LOOP_TRANSPOSED`` (``1``/``0``)
    overrides."""
    value = os.environ.get("RNNLAB_LOOP_TRANSPOSED", "").strip().lower()
    if value in ("1", "0", "yes", "no", "true", "false", "on", "off"):
        return value in ("1", "yes", "true", "on")
    return (limit if limit is not None else blas_thread_count()) > 1


_POOL: ThreadPoolExecutor | None = None


def cpu_workers() -> int:
    """How many host threads the elementwise row work may use (``RNNLAB_CPU_WORKERS``)."""
    value = os.environ.get("RNNLAB_CPU_WORKERS")
    if value:
        with contextlib.suppress(ValueError):
            return max(1, int(value))
    return max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else (os.cpu_count() or 1), 8))


def _pool(workers: int) -> ThreadPoolExecutor:
    """The shared pool, grown to at least ``workers`` threads."""
    global _POOL
    if _POOL is None or _POOL._max_workers < workers:
        _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rnnlab")
    return _POOL


def parallel_chunks(fn: Any, total: int, *, min_chunk: int = 64) -> list[Any]:
    """Call ``fn(start, stop)`` over ``[0, total)`` split in contiguous parts, on up to
    :func:`cpu_workers` threads (numpy releases the GIL inside its loops); results in
    order; the first part runs on the calling thread (a pool thread can take milliseconds
    to wake here: the compiled loss sweep of the book's LSTM 100 model, when it went
    through this function, took 3.8 ms a step this way against 6-7 ms with every part on
    the pool). Each part is independent, so the outcome does not depend on the split.
    The parts must not call BLAS: idle BLAS workers are ended first
    (:func:`release_blas_threads`), so that they do not spin on the cores the parts need
    (the loss of the book's LSTM 100 model, right after the output layer's product:
    ``python benchmarks/bench_loop_products.py --release``)."""
    workers = 1 if _BESIDE else min(cpu_workers(), max(1, total // min_chunk))
    if workers <= 1:
        return [fn(0, total)]
    release_blas_threads()
    pool = _pool(workers - 1)
    bounds = [total * k // workers for k in range(workers + 1)]
    futures = [pool.submit(fn, bounds[k], bounds[k + 1]) for k in range(1, workers)]
    try:  # the first part on this thread: only the others wait for a pool thread to wake
        first = fn(bounds[0], bounds[1])
    finally:
        wait(futures)
    return [first] + [f.result() for f in futures]


def run_together(fn: Any, threads: int) -> None:
    """Call ``fn()`` on ``threads`` threads at once, the calling thread being one of them
    (for compiled kernels that release the GIL and share their work out themselves).
    Returns when every call is done; re-raises their errors. Beside a side job
    (:func:`run_beside`) it calls ``fn()`` once, on this thread."""
    if threads <= 1 or _BESIDE:
        fn()
        return
    pool = _pool(max(threads - 1, cpu_workers()))
    futures = [pool.submit(fn) for _ in range(threads - 1)]
    try:
        fn()
    finally:
        for f in futures:
            f.result()


# ------------------------------------------------------------ work beside the model
_BESIDE = False  # True while run_beside's side job holds the other core

#: run_beside's side job is worth starting from this many multiply-adds of side work
BESIDE_MIN_MACS = 50_000_000


def solo() -> bool:
    """Whether the model's thread should keep to one core now: true inside
    :func:`run_beside`, whose side job has the other one. The shared packed products,
    :func:`parallel_chunks` and :func:`run_together` then run on the calling thread
    alone, and BLAS is limited to one thread."""
    return _BESIDE


def beside_pays(side_macs: int, main_macs: int) -> bool:
    """Whether :func:`run_beside` should run ``side_macs`` multiply-adds of independent
    products beside a main job of about ``main_macs`` (both on one thread each).

    Yes when there are two cores for the two jobs, OpenBLAS's idle workers can be ended
    (:func:`release_blas_threads`; else they would spin on the core the side job needs),
    the side work is at least :data:`BESIDE_MIN_MACS`, and the side work is 1.5 to 8
    times the main work. Measured (``python benchmarks/bench_loop_products.py
    --beside``, RNNLM steps on 2 cores, side and main as ``RNNLM.backward`` splits
    them): the 2 x LSTM 200 of Zaremba et al. (side 4.1 times main) 1.02-1.13x, C's
    2 x LSTM 650 (2.0 times) 1.005-1.06x; D's char LSTM 256 (1.03 times) 0.84-0.87x,
    as its recurrent backward loses more on one thread than the side job saves; A and
    B (51 and 13.5 times) 0.96-1.03x, within the noise: their short main job leaves
    the two threads splitting the side work, which two BLAS threads do as well.
    ``RNNLAB_BESIDE`` (``1``/``0``) overrides.
    """
    value = os.environ.get("RNNLAB_BESIDE", "").strip().lower()
    if value in ("0", "off", "no", "false"):
        return False
    if _BESIDE or cpu_workers() < 2 or not can_release_blas_threads():
        return False
    if value in ("1", "on", "yes", "true"):
        return True
    return side_macs >= BESIDE_MIN_MACS and 3 * main_macs <= 2 * side_macs <= 16 * main_macs


def run_beside(main: Any, parts: Any = ()) -> Any:
    """``main(add)`` on this thread while a pool thread works through ``parts``
    (callables without arguments, independent of each other and of what ``main`` still
    has to do), and through those ``main`` hands to ``add`` as it goes; returns what
    ``main`` returns.

    The side thread takes parts in the order they came. When ``main`` is done this
    thread takes the parts still left, so the two finish together. Both run with one
    BLAS thread, and OpenBLAS's idle workers are ended first (in that order: raising
    the thread count again would restart them). Every part runs exactly once, on one
    of the two threads, and the caller must make the results independent of which
    (each part writes its own arrays). Errors are re-raised after both threads stop.
    Use :func:`beside_pays` to decide; nested inside another call, or with no parts
    at all, everything runs on this thread in order.
    """
    global _BESIDE
    pending = collections.deque(parts)
    if _BESIDE or not pending:
        result = main(pending.append)
        while pending:
            pending.popleft()()
        return result
    ready = threading.Condition()
    closed = False  # main has returned (or failed): no more parts will come

    def add(part: Any) -> None:
        with ready:
            pending.append(part)
            ready.notify()

    def take() -> Any:
        with ready:
            while not pending and not closed:
                ready.wait()
            return pending.popleft() if pending else None

    def work() -> None:
        while (part := take()) is not None:
            part()

    def close(drop: bool) -> None:
        nonlocal closed
        with ready:
            closed = True
            if drop:
                pending.clear()
            ready.notify_all()

    with blas_threads(1):
        release_blas_threads()
        _BESIDE = True
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
            _BESIDE = False
    return result
