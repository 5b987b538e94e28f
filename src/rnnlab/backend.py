"""The one place that knows about devices: the array module, the dtype policy, moves.

Every other module asks this one for its array module (``xp``) at run time, from an
argument or from the ``RNNLAB_DEVICE`` environment variable, never from a global flag
read at import time. ``xp`` is :mod:`numpy` on the CPU and :mod:`cupy` on a GPU.

>>> from rnnlab import backend
>>> backend.get_xp("cpu").__name__
'numpy'
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import DTypeLike

#: A NumPy or CuPy array (``xp.ndarray`` of the module :func:`get_xp` gives). CuPy has no
#: type stubs to name, so this is ``Any`` to the type checker; annotations use it to say
#: "an array on the layer's device" where ``NDArray`` would wrongly exclude the GPU.
Array: TypeAlias = Any
#: What a random-generator argument may be: a Generator, a seed, or None (fresh entropy).
RNGLike: TypeAlias = np.random.Generator | int | None

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


def resolve_dtype(dtype: DTypeLike | None = None) -> np.dtype:
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


def make_rng(rng: RNGLike = None) -> np.random.Generator:
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
    seeded from ``rng`` so that one seed still fixes the whole run. A generator with a
    ``global_part`` method (a rank's share of a batch trained on many processes,
    :class:`rnnlab.train.distributed.ShardedRNG`) gets its rows of the draw for the whole
    batch, on the GPU too, so that the numbers do not depend on the number of processes.
    """
    if xp is np:
        return rng.random(shape, dtype=np.float32 if dtype == np.float32 else np.float64)
    seed = int(rng.integers(0, 2**63 - 1))
    device = xp.random.default_rng(seed)
    part = getattr(rng, "global_part", None)
    part = part(tuple(shape)) if part is not None else None
    if part is not None:
        return xp.ascontiguousarray(device.random(part[0], dtype=dtype)[part[1]])
    return device.random(shape, dtype=dtype)
