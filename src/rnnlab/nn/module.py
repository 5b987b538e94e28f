"""The layer protocol: ``params`` / ``grads`` dicts, ``zero_grad``, ``train`` / ``eval``,
``state_dict`` / ``load_state_dict``, child modules, device moves.

A :class:`Module` keeps its own arrays in ``params`` (PyTorch's names and layouts) and
their gradients in ``grads`` (same keys, same shapes). ``backward`` adds into ``grads`` in
place, so optimizers can hold references to them and gradients of shared weights sum.
Modules assigned as attributes become children, and their parameters appear under
dotted names (``rnn.weight_ih_l0``) exactly as in a PyTorch ``state_dict``.

The iteration methods that share a name with ``torch.nn.Module`` mean what PyTorch's do:
``parameters()`` yields the parameter arrays, ``named_parameters()`` ``(name, param)``
pairs, ``children()`` the child modules, ``named_children()`` ``(name, module)`` pairs and
``modules()`` this module and every descendant. The gradients, which PyTorch keeps on each
tensor (``p.grad``), come with :meth:`Module.named_parameters_and_grads`:
``(name, param, grad)`` triples, the form optimizers and gradient clipping take (they also
take the module itself).

Changed (issue 22): ``named_parameters()`` used to yield ``(name, param, grad)`` triples,
``parameters()`` to return a list of ``(param, grad)`` pairs and ``children()`` to yield
``(name, module)`` pairs. Code that unpacked three values from ``named_parameters()`` now
calls ``named_parameters_and_grads()``; code that took ``(param, grad)`` pairs from
``parameters()`` takes them from ``named_parameters_and_grads()`` (or passes the module);
code that took names from ``children()`` calls ``named_children()``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import ModuleType
from typing import Any, TypedDict

import numpy as np
from numpy.typing import DTypeLike

from rnnlab.backend import (
    Array,
    RNGLike,
    get_xp,
    is_array,
    resolve_dtype,
    to_numpy,
    to_xp,
    xp_of,
)
from rnnlab.fast import engine_for


class DeviceOptions(TypedDict, total=False):
    """The keyword arguments every layer takes (``**options`` passes them on)."""

    device: str | None
    dtype: DTypeLike | None


class LayerOptions(DeviceOptions, total=False):
    """:class:`DeviceOptions` and the random generator (or seed) of a layer with weights."""

    rng: RNGLike


class StateDictError(ValueError):
    """A state dict does not fit the module (names, shapes or dtypes)."""


class Module:
    """Base class of every layer and model.

    Parameters
    ----------
    device:
        ``"cpu"`` or ``"gpu"``; ``None`` reads ``RNNLAB_DEVICE`` (default ``"cpu"``).
    dtype:
        ``float32`` (default) or ``float64``.
    check_finite:
        When true, ``forward`` rejects inputs holding NaN or infinity with a ``ValueError``.
    """

    #: The child modules by attribute name (set past ``__setattr__``).
    _modules: dict[str, Module]

    def __init__(self, *, device: str | None = None, dtype: DTypeLike | None = None,
                 check_finite: bool = False) -> None:
        object.__setattr__(self, "_modules", {})
        self.params: dict[str, Any] = {}
        self.grads: dict[str, Any] = {}
        self.training = True
        try:
            self.xp: ModuleType = get_xp(device)
            self.dtype: np.dtype = resolve_dtype(dtype)
        except (TypeError, ValueError) as exc:  # name the layer in the message
            raise type(exc)(f"{type(self).__name__}: {exc}") from None
        self.check_finite = bool(check_finite)
        self._scratch: dict[Any, Any] = {}

    # ------------------------------------------------------------------ children
    def __setattr__(self, name: str, value: Any) -> None:
        modules = self.__dict__.get("_modules")
        if isinstance(value, Module):
            if modules is None:
                raise AttributeError("Module.__init__ must run before assigning child modules")
            modules[name] = value
        elif modules is not None and name in modules:
            del modules[name]
        object.__setattr__(self, name, value)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """Direct child modules as ``(name, module)`` pairs, as PyTorch's."""
        yield from self._modules.items()

    def children(self) -> Iterator[Module]:
        """Direct child modules, as PyTorch's (the names: :meth:`named_children`)."""
        yield from self._modules.values()

    def modules(self) -> Iterator[Module]:
        """This module and all descendants, depth first."""
        yield self
        for child in self.children():
            yield from child.modules()

    @property
    def name(self) -> str:
        return type(self).__name__

    # ---------------------------------------------------------------- parameters
    def add_param(self, name: str, value: Any) -> Any:
        """Register ``value`` as parameter ``name`` with a zero gradient of the same shape."""
        self.params[name] = value
        self.grads[name] = self.xp.zeros_like(value)
        return value

    def tie(self, name: str, other: Module, other_name: str) -> None:
        """Share parameter ``other.params[other_name]`` (and its gradient) as ``name``.

        Both modules then hold the same arrays: updates are seen by both, and both
        backwards add into one gradient.
        """
        mine, theirs = self.params[name], other.params[other_name]
        if tuple(mine.shape) != tuple(theirs.shape):
            raise ValueError(
                f"{self.name}.tie: {name} has shape {tuple(mine.shape)}, "
                f"{other.name}.{other_name} has shape {tuple(theirs.shape)}"
            )
        self.params[name] = theirs
        self.grads[name] = other.grads[other_name]

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        """``(dotted_name, param)`` for every parameter, shared arrays listed once: PyTorch's
        pairs, so ``for name, p in model.named_parameters()`` works as there.

        ``prefix`` is put before every name with a dot between, as PyTorch's
        (``named_parameters("head")`` gives ``head.weight``; ``"head."`` gives the same).
        The gradients come with :meth:`named_parameters_and_grads` (the same order).
        Before issue 22 this method yielded ``(name, param, grad)`` triples; that form is
        now ``named_parameters_and_grads()``.
        """
        for name, param, _ in self.named_parameters_and_grads(prefix):
            yield name, param

    def named_parameters_and_grads(self, prefix: str = "") -> Iterator[tuple[str, Any, Any]]:
        """``(dotted_name, param, grad)`` for every parameter, shared arrays listed once, in
        the order of :meth:`named_parameters` (``prefix`` as there).

        ``grad`` is the array in the owning module's ``grads`` (not a copy): adding into it
        or scaling it in place is what ``backward``, optimizers and clipping do. This is
        the form optimizers and ``clip_grad_norm`` take.
        """
        if prefix and not prefix.endswith("."):
            prefix += "."
        seen: set[int] = set()
        for name, param, grad in self._all_parameters(prefix):
            if id(param) not in seen:
                seen.add(id(param))
                yield name, param, grad

    def _all_parameters(self, prefix: str) -> Iterator[tuple[str, Any, Any]]:
        for name, param in self.params.items():
            yield prefix + name, param, self.grads[name]
        for child_name, child in self.named_children():
            yield from child._all_parameters(f"{prefix}{child_name}.")

    def parameters(self) -> Iterator[Any]:
        """Every parameter array, shared arrays once, as PyTorch's ``parameters()``.

        An optimizer needs the gradients too: pass it the module itself or
        :meth:`named_parameters_and_grads` (before issue 22 this method returned a list
        of ``(param, grad)`` pairs).
        """
        for _, param, _ in self.named_parameters_and_grads():
            yield param

    def num_parameters(self) -> int:
        """Number of scalar parameters (shared arrays counted once)."""
        return int(sum(p.size for p in self.parameters()))

    def zero_grad(self) -> None:
        """Set every gradient to zero, in place."""
        for _, _, grad in self.named_parameters_and_grads():
            grad.fill(0)

    # ------------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active) for this module and its children."""
        for module in self.modules():
            module.training = bool(mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode (dropout off)."""
        return self.train(False)

    # -------------------------------------------------------------- state dicts
    def state_dict(self) -> dict[str, Any]:
        """Every parameter under its dotted PyTorch name (tied arrays appear under each name)."""
        return {name: param for name, param, _ in self._all_parameters("")}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None:
        """Copy arrays from ``state`` into the parameters, in place.

        Names, shapes and dtypes are validated first, so that a mismatched dict changes
        nothing; with ``strict`` (default) missing and unexpected names are errors.
        Values may be numpy or CuPy arrays (anything ``numpy.asarray`` accepts).
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"{self.name}.load_state_dict: expected a mapping, got "
                            f"{type(state).__name__}")
        own = self.state_dict()
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        if strict and (missing or unexpected):
            raise StateDictError(
                f"{self.name}.load_state_dict: missing keys {missing}, unexpected keys "
                f"{unexpected}"
            )
        plan = []
        for name, value in state.items():
            if name not in own:
                continue
            target = own[name]
            if not is_array(value):
                value = np.asarray(value)
            if tuple(value.shape) != tuple(target.shape):
                raise StateDictError(
                    f"{self.name}.load_state_dict: {name} expected shape "
                    f"{tuple(target.shape)}, got {tuple(value.shape)}"
                )
            if value.dtype != target.dtype:
                raise StateDictError(
                    f"{self.name}.load_state_dict: {name} expected dtype {target.dtype}, "
                    f"got {value.dtype}"
                )
            plan.append((target, value))
        for target, value in plan:
            target[...] = to_xp(value, xp_of(target))

    # ------------------------------------------------------------------ devices
    def to(self, device: str) -> Module:
        """Move every parameter and gradient to ``device``, keeping shared arrays shared."""
        xp = get_xp(device)
        moved: dict[int, Any] = {}

        def move(array: Array) -> Any:
            key = id(array)
            if key not in moved:
                moved[key] = xp.asarray(to_numpy(array)) if xp is np else xp.asarray(array)
            return moved[key]

        for module in self.modules():
            module.params = {k: move(v) for k, v in module.params.items()}
            module.grads = {k: move(v) for k, v in module.grads.items()}
            module.xp = xp
            module._scratch = {}
            module._on_device_change()
        return self

    def _on_device_change(self) -> None:
        """Hook for layers that keep device-resident caches."""

    # ------------------------------------------------------------------ helpers
    def scratch(self, key: Any, shape: tuple[int, ...], dtype: DTypeLike | None = None) -> Any:
        """A reusable work array (contents undefined) that lives as long as its shape."""
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        buf = self._scratch.get(key)
        if buf is None or tuple(buf.shape) != tuple(shape) or buf.dtype != dtype:
            buf = self.xp.empty(shape, dtype=dtype)
            self._scratch[key] = buf
        return buf

    def ones(self, n: int, dtype: DTypeLike | None = None) -> Any:
        """A cached vector of ``n`` ones: ``ones @ m`` sums the rows of ``m`` through BLAS,
        2-4x faster than ``m.sum(axis=0)`` (a strided reduction) on the sizes used here."""
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        key = ("ones", n, dtype)
        buf = self._scratch.get(key)
        if buf is None:
            buf = self._scratch[key] = self.xp.ones(n, dtype=dtype)
        return buf

    def matmul_into_grad(self, grad: Array, a: Array, b: Array) -> None:
        """``grad += a @ b``: how every layer adds a product into a gradient (the engine
        may do it without temporaries)."""
        if not engine_for(self.xp, grad.dtype).add_matmul(grad, a, b, self.scratch):
            grad += a @ b

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def backward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{self.name}({self.extra_repr()}"]
        for name, child in self.named_children():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_repr}")
        return "\n".join(lines) + ")" if len(lines) > 1 else lines[0] + ")"


def option_reprs(module: Any, **defaults: Any) -> list[str]:
    """``name=value`` for each attribute of ``module`` named in ``defaults`` whose value
    differs from the default given there (for ``extra_repr``)."""
    return [f"{name}={getattr(module, name)!r}" for name, default in defaults.items()
            if getattr(module, name) != default]


def require_cache(module: Module, cache: Any, method: str = "backward") -> Any:
    """The forward cache, or a clear error when ``backward`` comes before ``forward``."""
    if cache is None:
        raise RuntimeError(f"{module.name}.{method}: called before forward (nothing cached)")
    return cache
