"""Gradient checks by central finite differences in float64, for rnnlab's layers and yours.

:func:`check_module` checks a whole layer: the gradient of every parameter, of every
floating-point input and of the initial state, against central differences of a random
scalar loss. It returns a :class:`GradCheckReport`, a table that prints and that code
can read::

    >>> import numpy as np
    >>> from rnnlab import nn
    >>> from rnnlab.gradcheck import check_module
    >>> rng = np.random.default_rng(0)
    >>> lstm = nn.LSTM(2, 3, num_layers=2, dtype=np.float64, rng=0)
    >>> xs = rng.standard_normal((2, 4, 2))
    >>> h0, c0 = rng.standard_normal((2, 2, 3)), rng.standard_normal((2, 2, 3))
    >>> report = check_module(lstm, xs, state=(h0, c0))
    >>> report.passed, len(report), report.worst < 1e-6
    (True, 11, True)
    >>> print(report)  # doctest: +ELLIPSIS
    gradient check of LSTM(2, 3, num_layers=2): ...
    name          kind   shape      rel. error  max abs diff  result
    weight_ih_l0  param  (12, 2)    ...

The lower-level pieces serve any function of arrays: :func:`numeric_gradient` (central
differences of a function of no arguments that reads an array), :func:`relative_error`,
:func:`check_gradients` (a report for several arrays) and :func:`assert_gradients` (the
same, raising ``AssertionError`` on a failure)::

    >>> w = np.array([1.0, -2.0])
    >>> g = numeric_gradient(lambda: float((w ** 2).sum()), w)
    >>> bool(np.allclose(g, 2 * w))
    True

A large layer has millions of entries and every one costs two forward passes, so
:func:`check_module` checks a random sample of ``samples`` entries of each array larger
than that (arrays up to that size, and every array with ``samples=None``, are checked
whole). The default, ``samples="auto"``, is :data:`DEFAULT_SAMPLES` entries, fewer when
the layer's forward pass is so slow that they would take more than about a minute. The
sample is drawn from ``seed``, so the same entries are checked on every run, and the
report says which arrays were sampled. A tqdm bar (on a terminal, or always with
``progress=True``) shows the entries checked and the time left.

The measure of a row is the relative error of the whole array (or of its sample),
``||a - n|| / (||a|| + ||n||)`` (``a`` the analytic gradient, ``n`` the numeric one): 0
when both are zero, at most 1 otherwise. Entry by entry relative errors are not used
because entries near zero (a tanh saturated, a ReLU off) make them large for a correct
gradient; the largest entry-wise absolute difference is shown beside it to locate a
problem.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
from tqdm import tqdm

from rnnlab.nn.module import Module

__all__ = ["AUTO_SECONDS", "DEFAULT_SAMPLES", "EPS", "TOL", "GradCheckReport", "GradCheckRow",
           "assert_gradients", "check_gradients", "check_module", "numeric_gradient",
           "relative_error"]

#: Default step of the central difference (error O(eps^2) + O(roundoff / eps)).
EPS = 1e-6
#: Default bound on :func:`relative_error` for a passing check.
TOL = 1e-6
#: The most entries of each array :func:`check_module` checks with ``samples="auto"``
#: (the default; arrays with more are sampled at random).
DEFAULT_SAMPLES = 256
#: The time ``samples="auto"`` aims at (seconds): fewer entries are sampled when the
#: layer's forward pass is so slow that :data:`DEFAULT_SAMPLES` would take longer.
AUTO_SECONDS = 60.0
#: The fewest entries per array ``samples="auto"`` checks, however slow the layer.
MIN_AUTO_SAMPLES = 8


# ------------------------------------------------------------------- the pieces
def numeric_gradient(f: Callable[[], float], x: np.ndarray, eps: float = EPS, *,
                     indices: Any = None, bar: Any = None) -> np.ndarray:
    """d f() / d x by central differences, perturbing ``x`` in place (restored after).

    ``f`` takes no arguments and reads ``x`` itself (a parameter, an input, a state), so
    the same helper serves every array a layer reads. ``x`` must be a float64 array.
    With ``indices`` (flat indices into ``x``, as :func:`sample_indices` draws them) only
    those entries are measured and the result is 1-D, one derivative per index; ``bar``
    (a tqdm bar) is advanced by one per entry.
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise TypeError(f"numeric_gradient: x expected a float64 ndarray, got "
                        f"{type(x).__name__} {getattr(x, 'dtype', '')}")
    _check_eps(eps, "numeric_gradient")
    grad: np.ndarray
    if indices is None:
        where: Any = np.ndindex(*x.shape)
        grad = np.zeros(x.shape, dtype=np.float64)
    else:
        flat = np.asarray(indices, dtype=np.int64).reshape(-1)
        if flat.size and (flat.min() < 0 or flat.max() >= x.size):
            raise ValueError(f"numeric_gradient: indices expected flat indices in [0, "
                             f"{x.size}), got {int(flat.min())}..{int(flat.max())}")
        where = zip(*np.unravel_index(flat, x.shape), strict=True) if x.ndim else [()] * len(flat)
        grad = np.zeros(flat.size, dtype=np.float64)
    for k, idx in enumerate(where):
        old = x[idx]
        x[idx] = old + eps
        f_plus = f()
        x[idx] = old - eps
        f_minus = f()
        x[idx] = old
        grad[idx if indices is None else k] = (f_plus - f_minus) / (2.0 * eps)
        if bar is not None:
            bar.update(1)
    return grad


def sample_indices(size: int, samples: int | None, seed: Any = 0) -> np.ndarray | None:
    """``samples`` distinct flat indices of an array of ``size`` entries, sorted, drawn from
    ``seed`` (the same every time); None (every entry) when ``samples`` is None or not
    smaller than ``size``."""
    if samples is None or samples >= size:
        return None
    return np.sort(np.random.default_rng(seed).choice(size, size=samples, replace=False))


def auto_samples(seconds_per_forward: float, sizes: Sequence[int], *,
                 budget: float = AUTO_SECONDS) -> int:
    """The entries per array that ``samples="auto"`` checks: :data:`DEFAULT_SAMPLES`, or
    fewer (at least :data:`MIN_AUTO_SAMPLES`) when two forward passes per entry of the
    arrays of ``sizes`` would take longer than ``budget`` seconds."""
    cost = 2.0 * max(float(seconds_per_forward), 1e-9)
    small = sum(n for n in sizes if n <= DEFAULT_SAMPLES)
    big = sum(1 for n in sizes if n > DEFAULT_SAMPLES)
    if not big:
        return DEFAULT_SAMPLES
    fit = int((budget / cost - small) / big)
    return max(MIN_AUTO_SAMPLES, min(DEFAULT_SAMPLES, fit))


def _check_samples(samples: Any, owner: str) -> int | None:
    if samples is None:
        return None
    if isinstance(samples, bool) or not isinstance(samples, int | np.integer) or samples < 1:
        raise ValueError(f"{owner}: samples expected an int >= 1 (entries checked per "
                         f"array) or None (every entry), got {samples!r}")
    return int(samples)


def relative_error(analytic: Any, numeric: Any) -> float:
    """``||a - n|| / max(||a|| + ||n||, tiny)``: 0 when both are zero, at most 1 otherwise."""
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    if a.shape != n.shape:
        raise ValueError(f"relative_error: shapes differ, {a.shape} vs {n.shape}")
    scale = max(float(np.linalg.norm(a) + np.linalg.norm(n)), np.finfo(np.float64).tiny)
    return float(np.linalg.norm(a - n)) / scale


def _check_eps(eps: Any, owner: str) -> float:
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not math.isfinite(eps) \
            or eps <= 0:
        raise ValueError(f"{owner}: eps expected a positive finite float, got {eps!r}")
    return float(eps)


def _check_tol(tol: Any, owner: str) -> float:
    if isinstance(tol, bool) or not isinstance(tol, int | float) or not math.isfinite(tol) \
            or tol <= 0:
        raise ValueError(f"{owner}: tol expected a positive finite float, got {tol!r}")
    return float(tol)


# -------------------------------------------------------------------- the table
class GradCheckRow(NamedTuple):
    """One checked array: its ``name``, ``kind`` ("param", "input", "state" or "array"),
    ``shape``, relative ``error`` (NaN when it could not be measured), largest entry-wise
    ``max_abs`` difference, whether it ``passed``, a ``note`` (why it failed, when it
    was not a number) and ``entries``, the number of entries checked when they were a
    random sample (None: every entry)."""

    name: str
    kind: str
    shape: tuple[int, ...]
    error: float
    max_abs: float
    passed: bool
    note: str = ""
    entries: int | None = None


class GradCheckReport:
    """The result of a gradient check: one :class:`GradCheckRow` per array.

    ``str(report)`` is the table; ``report.passed`` (also ``bool(report)``) says whether
    every row is within ``report.tol``; ``report["weight_ih_l0"]`` or ``report[0]`` is a
    row; iterating gives the rows; :meth:`to_dicts` gives plain dicts (for JSON);
    :meth:`raise_if_failed` raises ``AssertionError`` naming every failing row.
    """

    def __init__(self, rows: Sequence[GradCheckRow], *, tol: float, eps: float,
                 title: str = "gradient check", notes: Sequence[str] = ()) -> None:
        self.rows: tuple[GradCheckRow, ...] = tuple(rows)
        self.tol, self.eps, self.title = tol, eps, title
        self.notes: tuple[str, ...] = tuple(notes)

    @property
    def passed(self) -> bool:
        """Whether every row passed (a report without rows passes nothing: False)."""
        return bool(self.rows) and all(row.passed for row in self.rows)

    @property
    def failures(self) -> list[GradCheckRow]:
        return [row for row in self.rows if not row.passed]

    @property
    def worst(self) -> float:
        """The largest relative error of the report (NaN when one could not be measured)."""
        errors = [row.error for row in self.rows]
        if any(math.isnan(e) for e in errors):
            return math.nan
        return max(errors, default=0.0)

    @property
    def errors(self) -> dict[str, float]:
        """``name: relative error`` of every row."""
        return {row.name: row.error for row in self.rows}

    def __bool__(self) -> bool:
        return self.passed

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[GradCheckRow]:
        return iter(self.rows)

    def __getitem__(self, key: int | str) -> GradCheckRow:
        if isinstance(key, str):
            for row in self.rows:
                if row.name == key:
                    return row
            raise KeyError(f"GradCheckReport: no row {key!r}; rows are "
                           f"{[row.name for row in self.rows]}")
        return self.rows[key]

    def to_dicts(self) -> list[dict[str, Any]]:
        """The rows as dicts (``shape`` a list), with the tolerance of each."""
        return [{**row._asdict(), "shape": list(row.shape), "tol": self.tol}
                for row in self.rows]

    def failure_lines(self) -> list[str]:
        lines = []
        for row in self.failures:
            what = row.note or f"relative error {row.error:.3e} > {self.tol:.0e}"
            lines.append(f"{row.name}: {what}")
        return lines

    def raise_if_failed(self) -> None:
        """Raise ``AssertionError`` naming every failing row (nothing when all passed)."""
        if not self.rows:
            raise AssertionError(f"{self.title}: nothing was checked")
        if not self.passed:
            raise AssertionError("gradient check failed:\n  " +
                                 "\n  ".join(self.failure_lines()))

    def format(self) -> str:
        header = ("name", "kind", "shape", "rel. error", "max abs diff", "result")
        table = [header]
        for row in self.rows:
            error = "-" if math.isnan(row.error) else f"{row.error:.2e}"
            max_abs = "-" if math.isnan(row.max_abs) else f"{row.max_abs:.2e}"
            result = "ok" if row.passed else "FAIL" + (f" ({row.note})" if row.note else "")
            table.append((row.name, row.kind, str(row.shape), error, max_abs, result))
        widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
        lines = [f"{self.title}: float64, central differences (eps {self.eps:.0e}), "
                 f"tolerance {self.tol:.0e} on ||a - n|| / (||a|| + ||n||)"]
        lines += [f"note: {note}" for note in self.notes]
        for line in table:
            cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
            lines.append("  ".join([*cells, line[-1]]).rstrip())
        failed = len(self.failures)
        if not self.rows:
            lines.append("nothing was checked")
        elif failed:
            lines.append(f"FAILED: {failed} of {len(self.rows)} "
                         f"array{'' if len(self.rows) == 1 else 's'} above {self.tol:.0e}")
        else:
            n = len(self.rows)
            lines.append(f"passed: {'the one array is' if n == 1 else f'all {n} arrays are'} "
                         f"within {self.tol:.0e} (worst {self.worst:.1e})")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()

    def __repr__(self) -> str:
        state = "passed" if self.passed else f"{len(self.failures)} failed"
        return f"<GradCheckReport {self.title!r}: {len(self.rows)} rows, {state}>"


def _row(f: Callable[[], float], name: str, kind: str, array: np.ndarray, analytic: Any,
         tol: float, eps: float, indices: np.ndarray | None = None,
         bar: Any = None) -> GradCheckRow:
    shape = tuple(array.shape)
    entries = None if indices is None else int(indices.size)
    if analytic is None:
        return GradCheckRow(name, kind, shape, math.nan, math.nan, False,
                            "no analytic gradient", entries)
    analytic = np.asarray(analytic)
    if analytic.shape != array.shape:
        return GradCheckRow(name, kind, shape, math.nan, math.nan, False,
                            f"analytic shape {analytic.shape}, array {array.shape}", entries)
    analytic = analytic.astype(np.float64, copy=False)
    if indices is not None:
        analytic = analytic.reshape(-1)[indices]
    numeric = numeric_gradient(f, array, eps, indices=indices, bar=bar)
    err = relative_error(analytic, numeric)
    if not err <= tol:
        # Round-off of a central difference is about |f| * 1e-16 / eps per entry, which
        # for a gradient of 1e-5 on a loss of order one is already 1e-6 relative at
        # eps = 1e-6 (1.3e-6 at 1e-6, 1.5e-7 at 1e-5, 9e-9 at 1e-4 in one case); a wrong
        # gradient is wrong at every step size, so the better of eps and 10 * eps counts.
        if bar is not None:
            bar.total += numeric.size
            bar.refresh()
        wider = numeric_gradient(f, array, 10 * eps, indices=indices, bar=bar)
        wider_err = relative_error(analytic, wider)
        if wider_err < err or math.isnan(err):
            err, numeric = wider_err, wider
    max_abs = float(np.max(np.abs(analytic - numeric))) if numeric.size else 0.0
    return GradCheckRow(name, kind, shape, err, max_abs, bool(err <= tol), "", entries)


def _progress_bar(total: int, progress: bool | None, title: str) -> Any:
    """A tqdm bar over ``total`` entries (on a terminal when ``progress`` is None, always
    when True, never when False); it shows the rate and the time left."""
    return tqdm(total=total, desc=title.removeprefix("gradient check of ")[:40],
                unit="entry", leave=False, dynamic_ncols=True,
                disable=None if progress is None else not progress)


def check_gradients(f: Callable[[], float], checks: Mapping[str, tuple[np.ndarray, Any]],
                    tol: float = TOL, eps: float = EPS, *, kinds: Mapping[str, str] | None = None,
                    title: str = "gradient check", samples: int | None = None, seed: int = 0,
                    progress: bool | None = False) -> GradCheckReport:
    """Compare every ``name: (array, analytic_gradient)`` of ``checks`` with
    :func:`numeric_gradient` of ``f`` and return the report (nothing is raised for a
    failing row). ``f`` reads the arrays, which must be float64 ndarrays; an array that
    misses ``tol`` at ``eps`` is measured once more at ``10 * eps`` and the smaller error
    counts (a wrong gradient is wrong at every step size, round-off is not).

    ``samples`` (default None: every entry) checks that many random entries of each
    larger array (drawn from ``seed``; :func:`sample_indices`); ``progress`` shows a tqdm
    bar (None: on a terminal only)."""
    tol, eps = _check_tol(tol, "check_gradients"), _check_eps(eps, "check_gradients")
    samples = _check_samples(samples, "check_gradients")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"check_gradients: seed expected an int >= 0, got {seed!r}")
    if not isinstance(checks, Mapping):
        raise TypeError(f"check_gradients: checks expected a mapping name -> (array, "
                        f"gradient), got {type(checks).__name__}")
    for name, pair in checks.items():
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise TypeError(f"check_gradients: checks[{name!r}] expected a pair (array, "
                            f"gradient), got {type(pair).__name__}")
    picks = {name: sample_indices(int(np.size(pair[0])), samples, [seed, k])
             for k, (name, pair) in enumerate(checks.items())}
    total = 0
    for name, pair in checks.items():
        pick = picks[name]
        total += int(np.size(pair[0])) if pick is None else int(pick.size)
    rows = []
    with _progress_bar(total, progress, title) as bar:
        for name, pair in checks.items():
            kind = "array" if kinds is None else kinds.get(name, "array")
            rows.append(_row(f, name, kind, pair[0], pair[1], tol, eps, picks[name], bar))
    sampled = [row for row in rows if row.entries is not None]
    notes = []
    if sampled:
        notes.append(f"{samples} random entries (seed {seed}) checked of each array larger "
                     f"than that: " + ", ".join(f"{row.name} of {math.prod(row.shape):,}"
                                                  for row in sampled)
                     + " (samples=None checks every entry)")
    return GradCheckReport(rows, tol=tol, eps=eps, title=title, notes=notes)


def assert_gradients(f: Callable[[], float], checks: Mapping[str, tuple[np.ndarray, Any]],
                     tol: float = TOL, eps: float = EPS) -> dict[str, float]:
    """:func:`check_gradients`, raising ``AssertionError`` naming every failure; returns
    the relative error of each array (useful when debugging a near miss)."""
    report = check_gradients(f, checks, tol, eps)
    if report.rows:
        report.raise_if_failed()
    return report.errors


# ------------------------------------------------------------------ check_module
def check_module(module: Any, inputs: Any, state: Any = None, *,
                 kwargs: Mapping[str, Any] | None = None, tol: float = TOL, eps: float = EPS,
                 seed: int = 0, samples: int | str | None = "auto",
                 progress: bool | None = None) -> GradCheckReport:
    """Check every gradient ``module`` computes, by central differences in float64.

    The scalar loss is ``sum_k <y_k, R_k>`` over the outputs ``y_k`` of the forward, plus
    ``<h_n, R_h>`` (and ``<c_n, R_c>``) when the module keeps a final state, with fixed
    random weights ``R``. One analytic backward is compared with the numeric gradient of
    every parameter, of every floating-point input and of each array of ``state``.

    Parameters
    ----------
    module:
        The layer. The protocol it must follow (every :class:`rnnlab.nn.Module` does):

        - ``forward(*inputs)``, or ``forward(*inputs, state)`` when ``state`` is given
          (``**kwargs`` are passed too), returns an array or a tuple of arrays;
        - ``backward(*dys)`` takes one gradient per output and returns the gradient of
          the input (an array: of the one floating-point input), a tuple (one per
          floating-point input, then one per array of ``state``), or ``None`` (integer
          inputs only); it *adds* the parameter gradients into ``grads`` in place;
        - ``params`` and ``grads``: dicts with the same keys and shapes (child modules
          from ``named_children()``, as :class:`~rnnlab.nn.Module` does); ``forward`` reads the
          arrays in ``params`` on every call (they are perturbed in place);
        - optional, rnnlab's sequence-layer convention: after ``forward`` the attribute
          ``h_n`` (and ``c_n``) holds the final state; it then joins the loss, backward
          is called as ``backward(dy, dstate)`` (``dstate`` is ``dh_n`` or
          ``(dh_n, dc_n)``), and the attributes ``dh0`` (and ``dc0``) give the initial
          state's gradient when ``backward`` does not return it.

        Randomness is held still: every ``numpy.random.Generator`` held in an ``rng``
        attribute (of the module or a child) is replaced by a freshly seeded one before
        each forward, so dropout draws the same masks every time, and ``reset_state()``
        is called (a stateful layer starts each forward from ``state``).
        A float32 (or GPU) :class:`~rnnlab.nn.Module` is checked as a float64 host copy
        (the report says so); the module passed in is not changed.
    inputs:
        One array or a tuple of arrays. Floating-point ones are copied to float64 and
        checked; integer ones (token ids, lengths) are passed as they are.
    state:
        The initial state: ``None`` (not checked), an array ``h0`` or a tuple such as
        ``(h0, c0)``; copied to float64 and checked.
    kwargs:
        Keyword arguments of ``forward`` that are not differentiated (``lengths=...``).
    tol, eps:
        The bound on each row's relative error, and the finite-difference step.
    seed:
        Seeds the loss weights ``R``, the generators that replace ``rng`` and the sample
        of entries.
    samples:
        Entries checked per array: an array with more is checked at that many random
        entries (the report's notes name them); ``None`` checks every entry. The default,
        ``"auto"``, is :data:`DEFAULT_SAMPLES`, or fewer (:func:`auto_samples`, timed on
        the first forward pass) when that would take more than :data:`AUTO_SECONDS`: a
        built-in layer of any size is checked in about a minute (an LSTM 512 x 512 has
        2.1 million entries, over an hour whole).
    progress:
        A tqdm bar with the time left: ``None`` (default) on a terminal only, ``True``
        always, ``False`` never.
    """
    owner = "check_module"
    tol, eps = _check_tol(tol, owner), _check_eps(eps, owner)
    auto = isinstance(samples, str) and samples == "auto"
    count = None if auto else _check_samples(samples, owner)
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(f"{owner}: progress expected True, False or None, got {progress!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"{owner}: seed expected an int >= 0, got {seed!r}")
    for method in ("forward", "backward"):
        if not callable(getattr(module, method, None)):
            raise TypeError(f"{owner}: module expected an object with {method}() (see the "
                            f"protocol in check_module's docstring), got "
                            f"{type(module).__name__} without it")
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise TypeError(f"{owner}: kwargs expected a mapping of forward's keyword "
                        f"arguments, got {type(kwargs).__name__}")
    kwargs = dict(kwargs or {})
    notes: list[str] = []
    module = _float64_module(module, notes)
    params = _parameters(module)
    inputs = _as_inputs(inputs)
    state_parts, state_is_tuple = _as_state(state)
    state_arg = None if state is None else (
        tuple(state_parts) if state_is_tuple else state_parts[0])
    title = f"gradient check of {_describe(module)}"
    generators = _generators(module)

    def run() -> tuple[list[np.ndarray], list[np.ndarray]]:
        for i, (owner_obj, attr) in enumerate(generators):
            setattr(owner_obj, attr, np.random.default_rng([seed, i]))
        _reset_states(module)
        args = (*inputs, state_arg) if state is not None else tuple(inputs)
        outs = module.forward(*args, **kwargs)
        return _as_outputs(outs), _final_state(module)

    outs, finals = run()
    rng = np.random.default_rng(seed)
    R_out = [rng.standard_normal(o.shape) for o in outs]
    R_fin = [rng.standard_normal(f.shape) for f in finals]

    def loss() -> float:
        outs, finals = run()
        if [o.shape for o in outs] != [r.shape for r in R_out] or \
                [f.shape for f in finals] != [r.shape for r in R_fin]:
            raise RuntimeError(f"{owner}: the forward's output shapes changed from call to "
                               f"call")
        total = sum(float(np.vdot(o, r)) for o, r in zip(outs, R_out, strict=True))
        return total + sum(float(np.vdot(f, r)) for f, r in zip(finals, R_fin, strict=True))

    started = time.perf_counter()
    loss()
    seconds_per_forward = time.perf_counter() - started
    _zero_grads(module, params)
    douts = [r.copy() for r in R_out]
    if finals:
        dstate = R_fin[0].copy() if len(R_fin) == 1 else tuple(r.copy() for r in R_fin)
        back = module.backward(*douts, dstate)
    else:
        back = module.backward(*douts)
    analytic_params = {name: _host(grad).copy() for name, _, grad in params}
    input_grads, state_grads = _split_backward(module, back, inputs, state_parts)

    checks: dict[str, tuple[np.ndarray, Any]] = {}
    kinds: dict[str, str] = {}
    for name, param, _ in params:
        checks[name], kinds[name] = (param, analytic_params[name]), "param"
    float_inputs = [i for i, x in enumerate(inputs) if x.dtype == np.float64]
    for i, grad in zip(float_inputs, input_grads, strict=True):
        name = "input" if len(inputs) == 1 else f"input[{i}]"
        checks[name], kinds[name] = (inputs[i], grad), "input"
    for name, part, grad in zip(_state_names(len(state_parts)), state_parts, state_grads,
                                strict=True):
        checks[name], kinds[name] = (part, grad), "state"
    if auto:
        count = auto_samples(seconds_per_forward, [int(a.size) for a, _ in checks.values()])
    report = check_gradients(loss, checks, tol, eps, kinds=kinds, title=title,
                             samples=count, seed=seed, progress=progress)
    return GradCheckReport(report.rows, tol=tol, eps=eps, title=title,
                           notes=[*notes, *report.notes])


def _describe(module: Any) -> str:
    text = repr(module).split("\n", 1)[0]
    if len(text) > 80 or text.startswith("<"):
        text = type(module).__name__
    return text


def _host(array: Any) -> np.ndarray:
    get = getattr(array, "get", None)  # a CuPy array
    return np.asarray(get() if callable(get) and not isinstance(array, np.ndarray) else array)


def _float64_module(module: Any, notes: list[str]) -> Any:
    """``module`` itself when its parameters are float64 host arrays, else a float64 host
    copy of an rnnlab Module (any other object is refused)."""
    params = _parameters(module)
    if all(isinstance(p, np.ndarray) and p.dtype == np.float64 for _, p, _ in params):
        return module
    bad = next((name, p) for name, p, _ in params
               if not (isinstance(p, np.ndarray) and p.dtype == np.float64))
    if not isinstance(module, Module):
        raise TypeError(f"check_module: module expected float64 numpy parameters, got "
                        f"{bad[0]} as {type(bad[1]).__name__} of {getattr(bad[1], 'dtype', '?')}")
    # modules (numpy, cupy) held as attributes are shared, not copied
    memo: dict[int, Any] = {id(v): v for m in module.modules() for v in vars(m).values()
                            if isinstance(v, ModuleType)}
    twin = copy.deepcopy(module, memo)
    if twin.xp is not np:
        twin.to("cpu")
    cast: dict[int, np.ndarray] = {}

    def to64(array: Any) -> np.ndarray:
        if id(array) not in cast:
            cast[id(array)] = np.array(array, dtype=np.float64)
        return cast[id(array)]

    for sub in twin.modules():
        sub.params = {k: to64(v) for k, v in sub.params.items()}
        sub.grads = {k: to64(v) for k, v in sub.grads.items()}
        sub.dtype = np.dtype(np.float64)
        sub._scratch = {}
        sub._on_device_change()
    notes.append(f"checked a float64 host copy (the module's parameters are "
                 f"{getattr(bad[1], 'dtype', '?')}{'' if module.xp is np else ' on the GPU'})")
    return twin


def _parameters(module: Any) -> list[tuple[str, Any, Any]]:
    """``(dotted name, param, grad)`` of every parameter, shared arrays once."""
    params, grads = getattr(module, "params", None), getattr(module, "grads", None)
    if not isinstance(params, Mapping) or not isinstance(grads, Mapping):
        raise TypeError(f"check_module: module expected dicts params and grads (see the "
                        f"protocol in check_module's docstring), got {type(module).__name__} "
                        f"without them")
    out, seen = [], set()

    def walk(obj: Any, prefix: str, path: tuple[int, ...]) -> None:
        if id(obj) in path:
            return
        own, own_grads = getattr(obj, "params", {}), getattr(obj, "grads", {})
        for name, param in own.items():
            if name not in own_grads:
                raise TypeError(f"check_module: {prefix}{name} has no entry in grads")
            grad = own_grads[name]
            if tuple(getattr(grad, "shape", ())) != tuple(getattr(param, "shape", ())):
                raise ValueError(f"check_module: grads[{prefix}{name!r}] expected shape "
                                 f"{tuple(param.shape)}, got {tuple(getattr(grad, 'shape', ()))}")
            if id(param) not in seen:
                seen.add(id(param))
                out.append((prefix + name, param, grad))
        children = getattr(obj, "named_children", None)
        if callable(children):
            for child_name, child in children():
                walk(child, f"{prefix}{child_name}.", (*path, id(obj)))

    walk(module, "", ())
    return out


def _modules(module: Any) -> list[Any]:
    found: list[Any] = []
    stack: list[Any] = [module]
    while stack:
        obj = stack.pop()
        if any(obj is seen for seen in found):
            continue
        found.append(obj)
        children = getattr(obj, "named_children", None)
        if callable(children):
            stack.extend(child for _, child in children())
    return found


def _generators(module: Any) -> list[tuple[Any, str]]:
    return [(m, "rng") for m in _modules(module)
            if isinstance(getattr(m, "rng", None), np.random.Generator)]


def _reset_states(module: Any) -> None:
    for m in _modules(module):
        reset = getattr(m, "reset_state", None)
        if callable(reset):
            reset()


def _zero_grads(module: Any, params: list[tuple[str, Any, Any]]) -> None:
    for _, _, grad in params:
        grad[...] = 0


def _as_inputs(inputs: Any) -> list[np.ndarray]:
    items = list(inputs) if isinstance(inputs, tuple | list) else [inputs]
    if not items:
        raise ValueError("check_module: inputs expected at least one array, got none")
    out = []
    for i, x in enumerate(items):
        arr = _host(x)
        if arr.dtype.kind == "f":
            out.append(np.array(arr, dtype=np.float64))
        elif arr.dtype.kind in "iub":
            out.append(arr)
        else:
            raise TypeError(f"check_module: inputs[{i}] expected a float or integer array, "
                            f"got {type(x).__name__} of dtype {arr.dtype}")
    return out


def _as_state(state: Any) -> tuple[list[np.ndarray], bool]:
    if state is None:
        return [], False
    is_tuple = isinstance(state, tuple | list)
    items = list(state) if is_tuple else [state]
    out = []
    for i, part in enumerate(items):
        arr = _host(part)
        if arr.dtype.kind != "f":
            where = f"state[{i}]" if is_tuple else "state"
            raise TypeError(f"check_module: {where} expected a float array, got "
                            f"{type(part).__name__} of dtype {arr.dtype}")
        out.append(np.array(arr, dtype=np.float64))
    return out, is_tuple


def _state_names(n: int) -> list[str]:
    if n == 1:
        return ["h0"]
    if n == 2:
        return ["h0", "c0"]
    return [f"state[{i}]" for i in range(n)]


def _as_outputs(outs: Any) -> list[np.ndarray]:
    items = list(outs) if isinstance(outs, tuple | list) else [outs]
    result = []
    for i, y in enumerate(items):
        arr = _host(y) if y is not None else None
        if arr is None or arr.dtype.kind != "f":
            raise TypeError(f"check_module: forward's output {i} expected a float array, got "
                            f"{type(y).__name__}")
        result.append(np.array(arr, dtype=np.float64))
    return result


def _final_state(module: Any) -> list[np.ndarray]:
    h_n = getattr(module, "h_n", None)
    if h_n is None:
        return []
    parts = [np.array(_host(h_n), dtype=np.float64)]
    c_n = getattr(module, "c_n", None)
    if c_n is not None:
        parts.append(np.array(_host(c_n), dtype=np.float64))
    return parts


def _split_backward(module: Any, back: Any, inputs: list[np.ndarray],
                    state_parts: list[np.ndarray]) -> tuple[list[Any], list[Any]]:
    """The analytic gradients of the float inputs and of the state parts."""
    n_in = sum(1 for x in inputs if x.dtype == np.float64)
    if back is None:
        given: list[Any] = []
    elif isinstance(back, tuple | list):
        given = list(back)
    else:
        given = [back]
    if len(given) > n_in + len(state_parts):
        raise TypeError(f"check_module: backward returned {len(given)} gradients, expected at "
                        f"most {n_in + len(state_parts)} (one per float input, then one per "
                        f"state array)")
    given = [None if g is None else _host(g) for g in given]
    input_grads = (given[:n_in] + [None] * n_in)[:n_in]
    state_grads = given[n_in:] + [None] * (len(state_parts) - len(given[n_in:]))
    for i, attr in enumerate(("dh0", "dc0")[: len(state_parts)]):
        if state_grads[i] is None and getattr(module, attr, None) is not None:
            state_grads[i] = _host(getattr(module, attr))
    return input_grads, state_grads
