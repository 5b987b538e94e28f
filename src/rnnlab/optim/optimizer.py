"""The optimizer base class: parameter references, lazy state, scratch, state dicts.

An optimizer keeps references to each parameter array and to its gradient array (the
``grads`` entries that ``backward`` adds into) and updates the parameters **in place**,
so build it after the model has been moved to its device (``Module.to``) and keep it.

State buffers (momentum, moment estimates, ...) are created **lazily**, by the first
``step()``, as ``zeros_like`` (or ``full_like``) of their parameter: same shape, dtype and
device. Work arrays are not state: each optimizer keeps at most two flat scratch
buffers per (device, dtype), each the size of its largest parameter, and hands out
reshaped views of them, so a step allocates no parameter-sized temporaries. SGD needs
none of them on the CPU unless weight decay or dampening act: it subtracts in one
compiled sweep (float32 with numba) or block by block through a small scratch
(:meth:`Optimizer._sub_scaled`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from rnnlab.backend import Array, is_array, to_xp, xp_of
from rnnlab.fast import engine_for
from rnnlab.optim._checks import (
    ParamSource,
    check_int,
    check_keys,
    check_real,
    collect_params,
)


def _group_key(array: Array) -> tuple[str, str, Any]:
    device = getattr(array, "device", None)
    return (xp_of(array).__name__, array.dtype.str, getattr(device, "id", None))


class Optimizer:
    """Base class; subclasses define ``_defaults``, ``_check_hyper``, ``_buffer_names``
    and ``_update``.

    Parameters
    ----------
    params:
        An :class:`rnnlab.nn.Module` (its ``named_parameters_and_grads()``), or an
        iterable of ``(name, param, grad)`` triples (``(param, grad)`` pairs are named
        ``"0"``, ...). A module's ``parameters()`` / ``named_parameters()`` hold no
        gradients (as PyTorch's) and are refused.
    **hyper:
        The hyper-parameters, all plain attributes afterwards (``opt.lr = 0.1``), checked
        again on every assignment.
    """

    #: Hyper-parameter names in ``state_dict()["hyper"]`` order.
    _hyper_names: ClassVar[tuple[str, ...]] = ("lr",)
    #: Buffers that hold sums or averages of squares: a negative entry in a loaded state
    #: cannot have come from a step (it would turn into NaN under a square root).
    _nonnegative_buffers: ClassVar[frozenset[str]] = frozenset()
    #: Set once by ``__init__`` (past ``__setattr__``): names, parameters and gradients
    #: in update order, index ``i`` of each the same parameter.
    _names: tuple[str, ...]
    _params: list[Array]
    _grads: list[Array]
    lr: float

    def __init__(self, params: ParamSource, **hyper: Any) -> None:
        owner = type(self).__name__
        triples = collect_params(params, owner)
        object.__setattr__(self, "_names", tuple(n for n, _, _ in triples))
        object.__setattr__(self, "_params", [p for _, p, _ in triples])
        object.__setattr__(self, "_grads", [g for _, _, g in triples])
        for name, value in self._check_hyper(hyper, owner).items():
            object.__setattr__(self, name, value)
        self._step_count = 0
        self.state: dict[str, dict[str, Any]] = {name: {} for name in self._names}
        self._pool: dict[tuple[Any, ...], Array] = {}
        self._views: dict[tuple[int, int], Array] = {}
        self._ready = True

    # ------------------------------------------------------------ hyper-parameters
    @classmethod
    def _check_hyper(cls, hyper: Mapping[str, Any], owner: str) -> dict[str, Any]:
        """Validated, normalised hyper-parameters (Python floats/bools/tuples)."""
        raise NotImplementedError

    @classmethod
    def _buffer_names(cls, hyper: Mapping[str, Any]) -> tuple[str, ...]:
        """The state buffers a parameter may hold under ``hyper``."""
        raise NotImplementedError

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._hyper_names and self.__dict__.get("_ready"):
            hyper = self.hyper
            hyper[name] = value
            value = self._check_hyper(hyper, type(self).__name__)[name]
        object.__setattr__(self, name, value)

    @property
    def hyper(self) -> dict[str, Any]:
        """The hyper-parameters as a JSON-able dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in ((k, getattr(self, k)) for k in self._hyper_names)}

    @property
    def param_names(self) -> tuple[str, ...]:
        """The parameter names, in update order."""
        return self._names

    @property
    def step_count(self) -> int:
        """How many times ``step()`` has run (Adam's bias correction uses it)."""
        return self._step_count

    # ---------------------------------------------------------------- stepping
    def step(self) -> None:
        """Update every parameter in place from its current gradient."""
        self._step_count += 1
        for i, name in enumerate(self._names):
            self._update(i, self._params[i], self._grads[i], self.state[name])

    def _update(self, i: int, param: Array, grad: Array, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def zero_grad(self) -> None:
        """Set every gradient to zero, in place."""
        for grad in self._grads:
            grad.fill(0)

    def _buffer(self, state: dict[str, Any], key: str, param: Array, fill: float = 0.0) -> Any:
        """``state[key]``, created on first use filled with ``fill`` like ``param``."""
        buf = state.get(key)
        if buf is None:
            buf = xp_of(param).full_like(param, fill)
            state[key] = buf
        return buf

    def _work(self, i: int, k: int = 0) -> Array:
        """Scratch ``k`` (0 or 1) shaped like parameter ``i``; contents undefined.

        Views of one flat buffer per (device, dtype, k), sized for the largest parameter,
        so all parameters share it (the updates run one after another).
        """
        view = self._views.get((i, k))
        if view is None:
            param = self._params[i]
            group = _group_key(param)
            flat = self._pool.get((group, k))
            if flat is None:
                largest = max((p for p in self._params if _group_key(p) == group),
                              key=lambda p: p.size)
                flat = xp_of(param).empty_like(largest, order="C").reshape(-1)
                self._pool[group, k] = flat
            view = flat[:param.size].reshape(param.shape)
            self._views[i, k] = view
        return view

    def _sub_scaled(self, i: int, param: Array, grad: Array, scale: float) -> None:
        """``param -= scale * grad``, the product rounded to the parameter's dtype first
        (through a work array kept per parameter; the engine may do it in one sweep with
        the same roundings, so the result is the same bits)."""
        xp = xp_of(param)
        if engine_for(xp, param.dtype).sub_scaled(param, grad, scale):
            return
        work = self._work(i)
        xp.multiply(grad, scale, out=work)
        param -= work

    # -------------------------------------------------------------- state dicts
    def state_dict(self) -> dict[str, Any]:
        """A snapshot: ``{"type", "hyper", "step", "state"}``.

        ``hyper`` is JSON-able (including ``lr``); ``state`` maps every parameter name
        to ``{buffer_name: array}`` (empty before the first step). Arrays are copies on
        the parameters' device, so later steps do not change the snapshot.
        """
        return {
            "type": type(self).__name__,
            "hyper": self.hyper,
            "step": self._step_count,
            "state": {name: {k: v.copy() for k, v in bufs.items()}
                      for name, bufs in self.state.items()},
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore hyper-parameters (``lr`` included), the step count and the buffers.

        Everything is validated first (type, hyper-parameters, parameter names, buffer
        names, shapes, dtypes, finite values, no negative sums of squares); on error a
        ``ValueError``/``TypeError`` names the culprit and nothing is changed. Arrays may
        be numpy or CuPy; they are copied onto the parameters' device, so resuming from a
        saved dict is bit-exact.
        """
        cls = type(self).__name__
        owner = f"{cls}.load_state_dict"
        check_keys(state_dict, owner, "state_dict", ("type", "hyper", "step", "state"))
        if state_dict["type"] != cls:
            raise ValueError(f"{owner}: type expected {cls!r}, got {state_dict['type']!r}")
        check_keys(state_dict["hyper"], owner, "hyper", self._hyper_names)
        hyper = self._check_hyper(state_dict["hyper"], owner)
        step = check_int(state_dict["step"], owner, "step", low=0)
        check_keys(state_dict["state"], owner, "state", self._names)
        allowed = self._buffer_names(hyper)
        plan: dict[str, dict[str, Any]] = {}
        for name, param in zip(self._names, self._params, strict=True):
            bufs = state_dict["state"][name]
            if not isinstance(bufs, Mapping):
                raise TypeError(f"{owner}: state[{name!r}] expected a mapping of buffers, "
                                f"got {type(bufs).__name__}")
            plan[name] = {}
            for key, value in bufs.items():
                where = f"state[{name!r}][{key!r}]"
                if key not in allowed:
                    raise ValueError(f"{owner}: {where} expected a buffer name in "
                                     f"{list(allowed)}, got {key!r}")
                if not is_array(value):
                    value = np.asarray(value)
                if tuple(value.shape) != tuple(param.shape):
                    raise ValueError(f"{owner}: {where} expected shape "
                                     f"{tuple(param.shape)}, got {tuple(value.shape)}")
                if value.dtype != param.dtype:
                    raise ValueError(f"{owner}: {where} expected dtype {param.dtype}, got "
                                     f"{value.dtype}")
                self._check_values(key, value, owner, where)
                plan[name][key] = value
        for key, value in hyper.items():
            object.__setattr__(self, key, value)
        self._step_count = step
        for name, param in zip(self._names, self._params, strict=True):
            new = {}
            for key, value in plan[name].items():
                buf = xp_of(param).empty_like(param)
                buf[...] = to_xp(value, xp_of(param))
                new[key] = buf
            self.state[name] = new

    @classmethod
    def _check_values(cls, key: str, value: Any, owner: str, where: str) -> None:
        """A loaded buffer holds finite values, and no negative one where a step could
        not have put it (:attr:`_nonnegative_buffers`): refused at load, not found later
        as a divergence."""
        if value.dtype.kind != "f" or value.size == 0:
            return
        xp = xp_of(value)
        if not bool(xp.isfinite(value).all()):
            raise ValueError(f"{owner}: {where} expected finite values, got NaN or infinity")
        if key in cls._nonnegative_buffers:
            low = float(value.min())
            if low < 0:
                raise ValueError(f"{owner}: {where} expected values >= 0 (it holds squares), "
                                 f"got {low:g}")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyper.items())
        return f"{type(self).__name__}({len(self._names)} parameters, {args})"


def check_lr(value: Any, owner: str) -> float:
    """A learning rate: a finite number >= 0."""
    return check_real(value, owner, "lr", low=0.0)
