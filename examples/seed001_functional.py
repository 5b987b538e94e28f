"""Seed 001: the course's "RNN step by step" functions, checked by finite differences.

``rnnlab.functional`` keeps the course's column layout: ``x`` is ``(n_x, m, T_x)``, hidden
states ``(n_a, m)``, weights ``Wax (n_a, n_x)``, ``Waa (n_a, n_a)``, biases ``(n_a, 1)``.
This example follows the notebook:

1. ``rnn_forward`` over a random batch (n_x=3, m=10, T_x=4, n_a=5, n_y=2);
2. ``rnn_backward`` with a random upstream gradient ``da`` of every hidden state;
3. a central finite-difference check of ``dWax``, ``dWaa`` and ``dba``: with
   ``J = sum(a * da)`` we have ``dJ/da = da``, so ``rnn_backward(da)`` must return
   ``dJ/dW``, which is also ``(J(W + eps) - J(W - eps)) / (2 eps)`` entry by entry;
4. the same for ``lstm_forward`` / ``lstm_backward`` (``dWf dWi dWc dWo`` and biases).

Everything is float64, so the analytic and numeric gradients agree to ~1e-10.

Success: every checked gradient has a relative error ``|a - n| / (|a| + |n|)`` below 1e-6.
``--quick`` checks the course's sizes; the full run adds a larger configuration
(n_x=8, m=16, T_x=12, n_a=16).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np

from rnnlab.functional import lstm_backward, lstm_forward, rnn_backward, rnn_forward

TOL = 1e-6
EPS = 1e-6


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the course's sizes")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random arrays")
    return parser.parse_args()


def numeric_gradient(f: Callable[[], float], array: np.ndarray) -> np.ndarray:
    """dJ/d(array) by central differences; ``f`` reads ``array``, which is nudged in place."""
    grad = np.zeros_like(array)
    for idx in np.ndindex(*array.shape):
        old = array[idx]
        array[idx] = old + EPS
        j_plus = f()
        array[idx] = old - EPS
        j_minus = f()
        array[idx] = old  # restore
        grad[idx] = (j_plus - j_minus) / (2 * EPS)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    return float(np.linalg.norm(analytic - numeric)
                 / max(np.linalg.norm(analytic) + np.linalg.norm(numeric), 1e-300))


def compare(name: str, analytic: np.ndarray, numeric: np.ndarray, show: int = 3) -> float:
    """Print a few entries side by side and return the relative error of the whole array."""
    err = relative_error(analytic, numeric)
    status = "ok" if err < TOL else "FAIL"
    print(f"  {name:5s} {analytic.shape!s:11s} relative error {err:.2e}  {status}")
    for idx in list(np.ndindex(*analytic.shape))[:show]:
        print(f"        {name}{list(idx)}: analytic {analytic[idx]:+.10f}   "
              f"numeric {numeric[idx]:+.10f}")
    return err


def check_rnn(rng: np.random.Generator, n_x: int, m: int, T_x: int, n_a: int,
              n_y: int) -> list[float]:
    print(f"RNN: n_x={n_x}, m={m}, T_x={T_x}, n_a={n_a}, n_y={n_y}")
    x = rng.standard_normal((n_x, m, T_x))
    a0 = rng.standard_normal((n_a, m))
    parameters = {
        "Waa": rng.standard_normal((n_a, n_a)),
        "Wax": rng.standard_normal((n_a, n_x)),
        "Wya": rng.standard_normal((n_y, n_a)),
        "ba": rng.standard_normal((n_a, 1)),
        "by": rng.standard_normal((n_y, 1)),
    }
    a, y_pred, caches = rnn_forward(x, a0, parameters)
    print(f"  forward: a {a.shape}, y_pred {y_pred.shape}; a[4] at t=0: "
          f"{np.array2string(a[min(4, n_a - 1), :3, 0], precision=4)} ...")

    da = rng.standard_normal(a.shape)  # upstream gradient of every hidden state
    gradients = rnn_backward(da, caches)

    def J() -> float:  # the scalar whose gradient rnn_backward(da) computes
        return float(np.sum(rnn_forward(x, a0, parameters)[0] * da))

    errors = []
    for name in ("Wax", "Waa", "ba"):
        numeric = numeric_gradient(J, parameters[name])
        errors.append(compare("d" + name, gradients["d" + name], numeric))
    errors.append(compare("dx", gradients["dx"], numeric_gradient(J, x), show=0))
    errors.append(compare("da0", gradients["da0"], numeric_gradient(J, a0), show=0))
    return errors


def check_lstm(rng: np.random.Generator, n_x: int, m: int, T_x: int, n_a: int,
               n_y: int) -> list[float]:
    print(f"LSTM: n_x={n_x}, m={m}, T_x={T_x}, n_a={n_a}, n_y={n_y}")
    x = rng.standard_normal((n_x, m, T_x))
    a0 = rng.standard_normal((n_a, m))
    parameters = {}
    for gate in ("f", "i", "c", "o"):  # forget, update (input), candidate, output
        parameters["W" + gate] = rng.standard_normal((n_a, n_a + n_x))
        parameters["b" + gate] = rng.standard_normal((n_a, 1))
    parameters["Wy"] = rng.standard_normal((n_y, n_a))
    parameters["by"] = rng.standard_normal((n_y, 1))
    a, y, c, caches = lstm_forward(x, a0, parameters)
    print(f"  forward: a {a.shape}, y {y.shape}, c {c.shape}")

    da = rng.standard_normal(a.shape)
    gradients = lstm_backward(da, caches)

    def J() -> float:
        return float(np.sum(lstm_forward(x, a0, parameters)[0] * da))

    errors = []
    for name in ("Wf", "Wi", "Wc", "Wo", "bf", "bi", "bc", "bo"):
        numeric = numeric_gradient(J, parameters[name])
        errors.append(compare("d" + name, gradients["d" + name], numeric,
                              show=2 if name.startswith("W") else 1))
    errors.append(compare("dx", gradients["dx"], numeric_gradient(J, x), show=0))
    errors.append(compare("da0", gradients["da0"], numeric_gradient(J, a0), show=0))
    return errors


def main() -> int:
    args = parse_args()
    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    print(f"seed001: rnnlab.functional forward/backward vs central differences "
          f"(eps {EPS:g}, float64, seed {args.seed})")
    configs = [(3, 10, 4, 5, 2)]  # the course's test sizes
    if not args.quick:
        configs.append((8, 16, 12, 16, 4))
    errors = []
    for config in configs:
        errors += check_rnn(rng, *config)
        errors += check_lstm(rng, *config)
    worst = max(errors)
    elapsed = time.perf_counter() - started
    if worst < TOL:
        print(f"SUCCESS: {len(errors)} gradients match finite differences, worst relative "
              f"error {worst:.1e} < {TOL:g} ({elapsed:.1f} s)")
        return 0
    print(f"FAILURE: worst relative error {worst:.1e} >= {TOL:g}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
