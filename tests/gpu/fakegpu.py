"""A strict stand-in for CuPy that runs on the CPU, to test the backend seam without a GPU.

``cupy_fake`` behaves like an array module whose arrays live "on a device":

* its functions return device arrays (a numpy subclass whose type says ``cupy_fake``, so
  ``rnnlab.backend.xp_of`` treats them like CuPy arrays);
* a host ``numpy.ndarray`` (not a scalar) passed to any of its functions, operators,
  indexing or methods raises :class:`HostDeviceMix` - the transfer functions ``asarray``
  and ``array`` are the only way in, ``.get()`` the only way out, as in CuPy;
* NumPy ufuncs and functions on device arrays run "on the device" (CuPy implements
  ``__array_ufunc__`` and ``__array_function__``). Unlike CuPy, ``np.asarray(dev)``
  cannot be refused (the storage is a NumPy array), but the host array it gives is
  caught as soon as it meets a device operation.

It checks where data lives, nothing about speed or CUDA.
"""

from __future__ import annotations

import sys
import threading
import types
from typing import Any

import numpy as np

_STATE = threading.local()


class HostDeviceMix(TypeError):
    """Host and device arrays met in one operation."""


def _depth() -> int:
    return getattr(_STATE, "depth", 0)


def _is_host(obj: Any) -> bool:
    return type(obj) is np.ndarray and obj.ndim > 0


def _check(obj: Any, where: str) -> None:
    if _is_host(obj):
        raise HostDeviceMix(f"{where}: a host numpy array of shape {obj.shape} reached a "
                            f"device operation")
    if isinstance(obj, list | tuple):
        for item in obj:
            _check(item, where)
    elif isinstance(obj, dict):
        for item in obj.values():
            _check(item, where)


def _unwrap(obj: Any) -> Any:
    if isinstance(obj, ndarray):
        return obj.view(np.ndarray)
    if isinstance(obj, list | tuple):
        return type(obj)(_unwrap(item) for item in obj)
    if isinstance(obj, dict):
        return {key: _unwrap(value) for key, value in obj.items()}
    return obj


def _wrap(obj: Any) -> Any:
    if type(obj) is np.ndarray:
        return obj.view(ndarray)
    if isinstance(obj, tuple):
        return tuple(_wrap(item) for item in obj)
    return obj


def device_op(fn: Any, name: str, *, transfer: bool = False) -> Any:
    """``fn`` run on unwrapped arguments, its results wrapped as device arrays."""

    def run(*args: Any, **kwargs: Any) -> Any:
        if not transfer:
            _check(args, name)
            _check(kwargs, name)
        _STATE.depth = _depth() + 1
        try:
            return _wrap(fn(*_unwrap(args), **_unwrap(kwargs)))
        finally:
            _STATE.depth -= 1

    run.__name__ = name
    return run


class ndarray(np.ndarray):  # mirrors cupy.ndarray
    """A device array: numpy storage, CuPy's rules about where data may come from."""

    def get(self) -> np.ndarray:
        """Copy to the host (as ``cupy.ndarray.get``)."""
        return np.array(self.view(np.ndarray), copy=True)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        # as CuPy: a NumPy ufunc on device arrays (and scalars) runs on the device
        op = getattr(ufunc, method) if method != "__call__" else ufunc
        return device_op(op, f"numpy.{ufunc.__name__}")(*inputs, **kwargs)

    def __array_function__(self, func: Any, types_: Any, args: Any, kwargs: Any) -> Any:
        return device_op(func, f"numpy.{func.__name__}")(*args, **kwargs)


ndarray.__module__ = "cupy_fake"

_OPERATORS = [
    "__add__", "__radd__", "__iadd__", "__sub__", "__rsub__", "__isub__", "__mul__",
    "__rmul__", "__imul__", "__truediv__", "__rtruediv__", "__itruediv__", "__floordiv__",
    "__rfloordiv__", "__pow__", "__rpow__", "__matmul__", "__rmatmul__", "__neg__",
    "__pos__", "__abs__", "__and__", "__or__", "__xor__", "__invert__", "__eq__", "__ne__",
    "__lt__", "__le__", "__gt__", "__ge__", "__mod__", "__rshift__", "__lshift__",
    "__iand__", "__ior__",
]
_METHODS = ["sum", "max", "min", "mean", "all", "any", "argmax", "argmin", "prod", "std",
            "var", "cumsum", "clip", "round", "nonzero", "dot", "sort", "argsort", "take",
            "repeat", "item", "tolist"]


def _method(name: str) -> Any:
    base = getattr(np.ndarray, name)

    def call(self: ndarray, *args: Any, **kwargs: Any) -> Any:
        _check(args, f"ndarray.{name}")
        _check(kwargs, f"ndarray.{name}")
        _STATE.depth = _depth() + 1
        try:
            result = base(self.view(np.ndarray), *_unwrap(args), **_unwrap(kwargs))
        finally:
            _STATE.depth -= 1
        if name.startswith("__i") and name not in ("__invert__",):
            return self  # in-place operators return the array itself
        return _wrap(result)

    call.__name__ = name
    return call


for _name in _OPERATORS + _METHODS:
    setattr(ndarray, _name, _method(_name))


def _getitem(self: ndarray, key: Any) -> Any:
    _check(key if isinstance(key, tuple) else (key,), "ndarray.__getitem__")
    return _wrap(np.ndarray.__getitem__(self.view(np.ndarray), _unwrap(key)))


def _setitem(self: ndarray, key: Any, value: Any) -> None:
    _check(key if isinstance(key, tuple) else (key,), "ndarray.__setitem__")
    _check(value, "ndarray.__setitem__")
    np.ndarray.__setitem__(self.view(np.ndarray), _unwrap(key), _unwrap(value))


ndarray.__getitem__ = _getitem
ndarray.__setitem__ = _setitem


class _Ufunc:
    """A device ufunc with ``at`` and ``reduce`` like CuPy's."""

    def __init__(self, ufunc: Any) -> None:
        self._ufunc = ufunc
        self.__name__ = ufunc.__name__
        self._call = device_op(ufunc, ufunc.__name__)
        self.at = device_op(ufunc.at, f"{ufunc.__name__}.at")
        self.reduce = device_op(ufunc.reduce, f"{ufunc.__name__}.reduce")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(*args, **kwargs)


class _Generator:
    def __init__(self, seed: Any = None) -> None:
        self._rng = np.random.default_rng(seed)

    def random(self, shape: Any = None, dtype: Any = np.float64) -> Any:
        return _wrap(np.asarray(self._rng.random(shape, dtype=dtype)))


def _module() -> types.ModuleType:
    module = types.ModuleType("cupy_fake", __doc__)
    module.ndarray = ndarray
    module.HostDeviceMix = HostDeviceMix
    module.asarray = device_op(np.asarray, "asarray", transfer=True)
    module.array = device_op(np.array, "array", transfer=True)
    module.random = types.SimpleNamespace(default_rng=_Generator)

    def getattr_(name: str) -> Any:
        value = getattr(np, name)
        if isinstance(value, np.ufunc):
            wrapped = _Ufunc(value)
        elif callable(value) and not isinstance(value, type):
            wrapped = device_op(value, name)
        else:
            wrapped = value
        setattr(module, name, wrapped)
        return wrapped

    module.__getattr__ = getattr_
    return module


cupy_fake = _module()
sys.modules["cupy_fake"] = cupy_fake
