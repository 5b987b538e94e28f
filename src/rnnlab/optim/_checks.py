"""Argument checks shared by the optimizers, clipping and schedules.

Every message has the form ``"<Owner>: <argument> expected <X>, got <Y>"`` (as in
:mod:`rnnlab.nn`), so a wrong call is fixed from the message alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from numbers import Integral, Real
from typing import Any, Protocol, TypeAlias

from rnnlab.backend import Array, is_array, xp_of
from rnnlab.nn.module import Module

#: One parameter as optimizers and clipping hold it: its name, the array, its gradient
#: (the array ``backward`` adds into).
ParamTriple: TypeAlias = tuple[str, Array, Array]


class HasParamsAndGrads(Protocol):
    """What optimizers and clipping take from a model (:class:`rnnlab.nn.Module`)."""

    def named_parameters_and_grads(self) -> Iterable[ParamTriple]: ...


#: What optimizers and clipping take: a module, ``(name, param, grad)`` triples, or
#: ``(param, grad)`` pairs (named ``"0"``, ``"1"``, ...).
ParamSource: TypeAlias = HasParamsAndGrads | Iterable[ParamTriple] | Iterable[tuple[Array, Array]]


def check_real(value: Any, owner: str, arg: str, *, low: float | None = None,
               high: float | None = None, low_open: bool = False, high_open: bool = False,
               allow_inf: bool = False) -> float:
    """A finite real number (``bool`` excluded) in the given range, as a Python float.

    ``low``/``high`` are inclusive unless ``low_open``/``high_open``; ``allow_inf`` lets
    ``+inf`` through (never NaN).
    """
    lo = "" if low is None else ("(" if low_open else "[") + f"{low:g}"
    hi = "" if high is None else f"{high:g}" + (")" if high_open else "]")
    if low is not None and high is not None:
        wanted = f"a finite number in {lo}, {hi}"
    elif low is not None:
        wanted = f"a finite number {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        wanted = f"a finite number {'<' if high_open else '<='} {high:g}"
    else:
        wanted = "a finite number"
    if allow_inf:
        wanted = wanted.replace("a finite number", "a number (inf allowed)")
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{owner}: {arg} expected {wanted}, got {value!r} "
                        f"({type(value).__name__})")
    x = float(value)
    bad = math.isnan(x) or (math.isinf(x) and not (allow_inf and x > 0))
    if not bad and low is not None:
        bad = x <= low if low_open else x < low
    if not bad and high is not None:
        bad = x >= high if high_open else x > high
    if bad:
        raise ValueError(f"{owner}: {arg} expected {wanted}, got {value!r}")
    return x


def check_int(value: Any, owner: str, arg: str, *, low: int = 0) -> int:
    """An integer (``bool`` excluded) ``>= low``, as a Python int."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{owner}: {arg} expected an integer >= {low}, got {value!r} "
                        f"({type(value).__name__})")
    if int(value) < low:
        raise ValueError(f"{owner}: {arg} expected an integer >= {low}, got {value!r}")
    return int(value)


def check_bool(value: Any, owner: str, arg: str) -> bool:
    """``True`` or ``False`` (numpy booleans accepted)."""
    if type(value).__name__ not in ("bool", "bool_"):
        raise TypeError(f"{owner}: {arg} expected True or False, got {value!r}")
    return bool(value)


def check_choice(value: Any, owner: str, arg: str, choices: tuple[str, ...]) -> str:
    """One of ``choices`` (strings)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{owner}: {arg} expected one of {list(choices)}, got {value!r}")
    return value


def check_keys(mapping: Any, owner: str, arg: str, expected: Iterable[str]) -> None:
    """``mapping`` is a Mapping with exactly the keys ``expected``."""
    if not isinstance(mapping, Mapping):
        raise TypeError(f"{owner}: {arg} expected a mapping, got {type(mapping).__name__}")
    want = set(expected)
    missing = sorted(want - set(mapping))
    unexpected = sorted(map(str, set(mapping) - want))
    if missing or unexpected:
        raise ValueError(f"{owner}: {arg} expected keys {sorted(want)}, got missing keys "
                         f"{missing} and unexpected keys {unexpected}")


def _describe(obj: Any) -> str:
    if is_array(obj):
        return f"an array of shape {tuple(obj.shape)}"
    return type(obj).__name__


def _check_pair(param: Array, grad: Array, owner: str, where: str) -> None:
    if not is_array(param) or not is_array(grad):
        raise TypeError(f"{owner}: {where} expected a parameter array and a gradient array, "
                        f"got {_describe(param)} and {_describe(grad)}")
    if param.dtype.kind != "f":
        raise TypeError(f"{owner}: {where} expected a floating parameter, got dtype "
                        f"{param.dtype}")
    if (tuple(grad.shape) != tuple(param.shape) or grad.dtype != param.dtype
            or xp_of(grad) is not xp_of(param)):
        raise ValueError(
            f"{owner}: {where} expected a gradient like its parameter "
            f"({xp_of(param).__name__} {param.dtype} {tuple(param.shape)}), got "
            f"{xp_of(grad).__name__} {grad.dtype} {tuple(grad.shape)}")


def _without_grads(owner: str, index: int | None = None, name: str = "") -> TypeError:
    """Why a module's ``parameters()`` (``index`` None) or a ``(name, param)`` pair of its
    ``named_parameters()`` at ``params[index]`` cannot be used here, and what to pass
    instead (both give parameters only, as PyTorch's do; the gradients are elsewhere)."""
    what = ("module.parameters() (the parameter arrays)" if index is None else
            f"a (name, param) pair at params[{index}] ({name!r}), as "
            f"module.named_parameters() yields")
    return TypeError(f"{owner}: params got {what}, which carries no gradients (as in "
                     f"PyTorch); pass the module itself or module.named_parameters_and_grads()")


def _is_parameters_iterator(params: Any) -> bool:
    """``params`` is the generator of :meth:`rnnlab.nn.Module.parameters` (the parameter
    arrays, not their gradients)."""
    return getattr(params, "gi_code", None) is Module.parameters.__code__


def _is_name_and_array(item: Any) -> bool:
    """``item`` is a ``(name, param)`` pair, as :meth:`rnnlab.nn.Module.named_parameters`
    yields."""
    return (isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[0], str)
            and is_array(item[1]))


def collect_params(params: ParamSource, owner: str) -> list[ParamTriple]:
    """``(name, param, grad)`` triples from a Module, triples, or ``(param, grad)`` pairs.

    A module gives ``module.named_parameters_and_grads()`` (shared arrays once); pairs are
    named ``"0"``, ``"1"``, ... in order. Names and parameter arrays must be unique. The
    ``(name, param)`` pairs of ``module.named_parameters()`` and the arrays of
    ``module.parameters()`` are refused with a message that says what to pass.
    """
    named = getattr(params, "named_parameters_and_grads", None)
    if callable(named):
        items = list(named())
        source = "the module's named_parameters_and_grads()"
    elif isinstance(params, str | bytes | Mapping) or is_array(params) \
            or not isinstance(params, Iterable):
        raise TypeError(f"{owner}: params expected an rnnlab.nn.Module or an iterable of "
                        f"(name, param, grad) triples, got {type(params).__name__}")
    elif _is_parameters_iterator(params):
        raise _without_grads(owner)
    else:
        items = list(params)
        source = "params"
    out: list[ParamTriple] = []
    seen_names: set[str] = set()
    seen_ids: dict[int, str] = {}
    for i, item in enumerate(items):
        if isinstance(item, tuple | list) and len(item) == 3 and isinstance(item[0], str):
            name, param, grad = item
        elif _is_name_and_array(item):
            raise _without_grads(owner, i, item[0])
        elif isinstance(item, tuple | list) and len(item) == 2:
            name, (param, grad) = str(i), item
        else:
            raise TypeError(f"{owner}: params[{i}] expected a (name, param, grad) triple or "
                            f"a (param, grad) pair, got {_describe(item)}")
        _check_pair(param, grad, owner, f"params[{i}] ({name!r})")
        if name in seen_names:
            raise ValueError(f"{owner}: params expected unique names, got {name!r} twice")
        if id(param) in seen_ids:
            raise ValueError(f"{owner}: params expected each array once, got the array of "
                             f"{seen_ids[id(param)]!r} again as {name!r}")
        seen_names.add(name)
        seen_ids[id(param)] = name
        out.append((name, param, grad))
    if not out:
        raise ValueError(f"{owner}: params expected at least one parameter, got none from "
                         f"{source}")
    return out


def collect_grads(params: ParamSource | Array, owner: str) -> list[Array]:
    """Gradient arrays (each once) from a Module, triples, pairs, arrays or one array.

    The arrays of ``module.parameters()`` and the ``(name, param)`` pairs of
    ``module.named_parameters()`` are parameters, not gradients: they are refused (taking
    them would scale the weights).
    """
    if is_array(params):
        return [params]
    named = getattr(params, "named_parameters_and_grads", None)
    if callable(named):
        items: list[Any] = [g for _, _, g in named()]
    elif isinstance(params, str | bytes | Mapping) or not isinstance(params, Iterable):
        raise TypeError(f"{owner}: params expected an rnnlab.nn.Module, (name, param, grad) "
                        f"triples, (param, grad) pairs or gradient arrays, got "
                        f"{type(params).__name__}")
    elif _is_parameters_iterator(params):
        raise _without_grads(owner)
    else:
        items = []
        for i, item in enumerate(params):
            if is_array(item):
                items.append(item)
            elif _is_name_and_array(item):
                raise _without_grads(owner, i, item[0])
            elif isinstance(item, tuple | list) and len(item) in (2, 3) and is_array(item[-1]):
                items.append(item[-1])
            else:
                raise TypeError(f"{owner}: params[{i}] expected a gradient array, a "
                                f"(param, grad) pair or a (name, param, grad) triple, got "
                                f"{_describe(item)}")
    grads, seen = [], set()
    for g in items:
        if g.dtype.kind != "f":
            raise TypeError(f"{owner}: params expected floating gradients, got dtype "
                            f"{g.dtype}")
        if id(g) not in seen:
            seen.add(id(g))
            grads.append(g)
    return grads
