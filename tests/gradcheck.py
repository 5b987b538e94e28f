"""Central finite-difference gradient checks, float64.

>>> import numpy as np
>>> w = np.array([1.0, -2.0])
>>> g = numeric_gradient(lambda: float((w ** 2).sum()), w)
>>> bool(np.allclose(g, 2 * w))
True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

#: Default step of the central difference (error O(eps^2) + O(roundoff / eps)).
EPS = 1e-6
#: Default bound on :func:`relative_error` for a passing check.
TOL = 1e-6


def numeric_gradient(f: Callable[[], float], x: np.ndarray, eps: float = EPS) -> np.ndarray:
    """d f() / d x by central differences, perturbing ``x`` in place (restored after).

    ``f`` takes no arguments and reads ``x`` itself (a parameter, an input, a state), so
    the same helper serves every array a layer reads. ``x`` must be a float64 array.
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        raise TypeError(f"numeric_gradient: x expected a float64 ndarray, got "
                        f"{type(x).__name__} {getattr(x, 'dtype', '')}")
    grad = np.zeros(x.shape, dtype=np.float64)
    for idx in np.ndindex(*x.shape):
        old = x[idx]
        x[idx] = old + eps
        f_plus = f()
        x[idx] = old - eps
        f_minus = f()
        x[idx] = old
        grad[idx] = (f_plus - f_minus) / (2.0 * eps)
    return grad


def relative_error(analytic: Any, numeric: Any) -> float:
    """``||a - n|| / max(||a|| + ||n||, tiny)``: 0 when both are zero, at most 1 otherwise."""
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    if a.shape != n.shape:
        raise ValueError(f"relative_error: shapes differ, {a.shape} vs {n.shape}")
    scale = max(float(np.linalg.norm(a) + np.linalg.norm(n)), np.finfo(np.float64).tiny)
    return float(np.linalg.norm(a - n)) / scale


def assert_gradients(f: Callable[[], float], checks: Mapping[str, tuple[np.ndarray, Any]],
                     tol: float = TOL, eps: float = EPS) -> dict[str, float]:
    """Check every ``name: (array, analytic_gradient)`` of ``checks`` against
    :func:`numeric_gradient` of ``f``; raise ``AssertionError`` naming every failure.

    An array that misses ``tol`` at ``eps`` is measured once more at ``10 * eps``, and the
    smaller error counts. The round-off of a central difference is about
    ``|f| * 1e-16 / eps`` per entry, which for a gradient of 1e-5 on a loss of order one
    is already 1e-6 relative at ``eps = 1e-6`` (hypothesis found such a case: 1.3e-6 at
    1e-6, 1.5e-7 at 1e-5, 9e-9 at 1e-4); a wrong gradient is wrong at every step size.

    Returns the relative error of each array (useful when debugging a near miss).
    """
    errors, failures = {}, []
    for name, (array, analytic) in checks.items():
        analytic = np.asarray(analytic)
        if analytic.shape != array.shape:
            failures.append(f"{name}: analytic shape {analytic.shape}, array {array.shape}")
            continue
        err = relative_error(analytic, numeric_gradient(f, array, eps))
        if not err <= tol:
            err = min(err, relative_error(analytic, numeric_gradient(f, array, 10 * eps)))
        errors[name] = err
        if not err <= tol:  # also catches NaN
            failures.append(f"{name}: relative error {err:.3e} > {tol:.0e}")
    if failures:
        raise AssertionError("gradient check failed:\n  " + "\n  ".join(failures))
    return errors
