"""The course-style functional API (``rnnlab.functional``, column layout).

It must agree with the layers (``rnnlab.nn.RNN`` / ``LSTM``) on the same weights, with
finite differences for every returned gradient, with itself (cell functions against
sequence functions), with the course's equations written out here by hand, and reject
bad parameters with clear errors. The setup is the seed notebook's (n_x=3, m=10, T_x=4,
n_a=5, n_y=2), drawn from a ``default_rng``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rnnlab import functional as Fn
from rnnlab import nn
from rnnlab.gradcheck import assert_gradients

n_x, m, T_x, n_a, n_y = 3, 10, 4, 5, 2
GATES = ("i", "f", "c", "o")  # PyTorch's i, f, g, o
TOL = 1e-12


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def course_softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def rnn_setup(seed: int = 1) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_x, m, T_x))
    a0 = rng.standard_normal((n_a, m))
    parameters = {
        "Waa": rng.standard_normal((n_a, n_a)),
        "Wax": rng.standard_normal((n_a, n_x)),
        "Wya": rng.standard_normal((n_y, n_a)),
        "ba": rng.standard_normal((n_a, 1)),
        "by": rng.standard_normal((n_y, 1)),
    }
    return x, a0, parameters


def lstm_setup(seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                       dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_x, m, T_x))
    a0 = rng.standard_normal((n_a, m))
    c0 = rng.standard_normal((n_a, m))
    parameters = {f"W{g}": rng.standard_normal((n_a, n_a + n_x)) * 0.5 for g in GATES}
    parameters.update({f"b{g}": rng.standard_normal((n_a, 1)) for g in GATES})
    parameters["Wy"] = rng.standard_normal((n_y, n_a))
    parameters["by"] = rng.standard_normal((n_y, 1))
    return x, a0, c0, parameters


def close(actual: Any, expected: Any, what: str = "") -> None:
    np.testing.assert_allclose(actual, expected, rtol=TOL, atol=TOL, err_msg=what)


# ---------------------------------------------------- the notebook's test setup
def test_seed_notebook_rnn_setup_runs() -> None:
    x, a0, parameters = rnn_setup()
    a, y_pred, caches = Fn.rnn_forward(x, a0, parameters)
    assert a.shape == (n_a, m, T_x) and y_pred.shape == (n_y, m, T_x)
    close(y_pred.sum(axis=0), np.ones((m, T_x)))
    steps, x_cached = caches
    assert len(steps) == T_x and x_cached is x
    a_next, a_prev, xt, params = steps[1]
    close(a_next, a[:, :, 1])
    close(a_prev, a[:, :, 0])
    close(xt, x[:, :, 1])
    assert params is parameters
    da = np.random.default_rng(2).standard_normal((n_a, m, T_x))
    grads = Fn.rnn_backward(da, caches)
    shapes = {"dx": (n_x, m, T_x), "da0": (n_a, m), "dWax": (n_a, n_x), "dWaa": (n_a, n_a),
              "dba": (n_a, 1)}
    assert {k: v.shape for k, v in grads.items()} == shapes


# ------------------------------------------------------- the course's equations
def test_rnn_cell_forward_is_the_course_equation() -> None:
    x, a0, p = rnn_setup()
    a_next, yt_pred, cache = Fn.rnn_cell_forward(x[:, :, 0], a0, p)
    expected = np.tanh(p["Wax"] @ x[:, :, 0] + p["Waa"] @ a0 + p["ba"])
    close(a_next, expected)
    close(yt_pred, course_softmax(p["Wya"] @ expected + p["by"]))
    assert cache[:4] == (cache.a_next, a0, cache.xt, p)


def test_lstm_cell_forward_is_the_course_equation() -> None:
    x, a0, c0, p = lstm_setup()
    xt = x[:, :, 0]
    a_next, c_next, yt_pred, cache = Fn.lstm_cell_forward(xt, a0, c0, p)
    concat = np.concatenate([a0, xt])
    ft = sigmoid(p["Wf"] @ concat + p["bf"])
    it = sigmoid(p["Wi"] @ concat + p["bi"])
    cct = np.tanh(p["Wc"] @ concat + p["bc"])
    ot = sigmoid(p["Wo"] @ concat + p["bo"])
    c_expected = ft * c0 + it * cct
    a_expected = ot * np.tanh(c_expected)
    close(a_next, a_expected)
    close(c_next, c_expected)
    close(yt_pred, course_softmax(p["Wy"] @ a_expected + p["by"]))
    for got, want in zip((cache.ft, cache.it, cache.cct, cache.ot), (ft, it, cct, ot),
                         strict=True):
        close(got, want)
    close(cache.a_prev, a0)
    close(cache.c_prev, c0)


# ---------------------------------------------------- agreement with the layers
def rnn_layer(p: dict[str, np.ndarray]) -> nn.RNN:
    layer = nn.RNN(n_x, n_a, dtype=np.float64, rng=0)
    layer.load_state_dict({"weight_ih_l0": p["Wax"], "weight_hh_l0": p["Waa"],
                           "bias_ih_l0": p["ba"][:, 0], "bias_hh_l0": np.zeros(n_a)})
    return layer


def lstm_layer(p: dict[str, np.ndarray]) -> nn.LSTM:
    layer = nn.LSTM(n_x, n_a, dtype=np.float64, rng=0)
    layer.load_state_dict({
        "weight_hh_l0": np.concatenate([p[f"W{g}"][:, :n_a] for g in GATES]),
        "weight_ih_l0": np.concatenate([p[f"W{g}"][:, n_a:] for g in GATES]),
        "bias_ih_l0": np.concatenate([p[f"b{g}"][:, 0] for g in GATES]),
        "bias_hh_l0": np.zeros(4 * n_a),
    })
    return layer


def test_rnn_forward_and_backward_agree_with_nn_rnn() -> None:
    x, a0, p = rnn_setup()
    da = np.random.default_rng(2).standard_normal((n_a, m, T_x))
    a, y_pred, caches = Fn.rnn_forward(x, a0, p)
    grads = Fn.rnn_backward(da, caches)

    layer = rnn_layer(p)
    hs = layer.forward(np.ascontiguousarray(x.transpose(1, 2, 0)), a0.T[None].copy())
    close(a, hs.transpose(2, 0, 1), "a")
    close(y_pred, course_softmax(np.einsum("ya,amt->ymt", p["Wya"], a) + p["by"][:, :, None]))
    dxs = layer.backward(np.ascontiguousarray(da.transpose(1, 2, 0)))
    close(grads["dx"], dxs.transpose(2, 0, 1), "dx")
    close(grads["da0"], layer.dh0[0].T, "da0")
    close(grads["dWax"], layer.grads["weight_ih_l0"], "dWax")
    close(grads["dWaa"], layer.grads["weight_hh_l0"], "dWaa")
    close(grads["dba"], layer.grads["bias_ih_l0"][:, None], "dba")


def test_lstm_forward_and_backward_agree_with_nn_lstm() -> None:
    x, a0, _, p = lstm_setup()
    da = np.random.default_rng(2).standard_normal((n_a, m, T_x))
    a, y, c, caches = Fn.lstm_forward(x, a0, p)
    grads = Fn.lstm_backward(da, caches)

    layer = lstm_layer(p)
    state = (a0.T[None].copy(), np.zeros((1, m, n_a)))
    hs = layer.forward(np.ascontiguousarray(x.transpose(1, 2, 0)), state)
    close(a, hs.transpose(2, 0, 1), "a")
    close(c[:, :, -1], layer.c_n[0].T, "c at the last step")
    close(y, course_softmax(np.einsum("ya,amt->ymt", p["Wy"], a) + p["by"][:, :, None]))
    dxs = layer.backward(np.ascontiguousarray(da.transpose(1, 2, 0)))
    close(grads["dx"], dxs.transpose(2, 0, 1), "dx")
    close(grads["da0"], layer.dh0[0].T, "da0")
    g_ih, g_hh, g_b = (layer.grads[k] for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0"))
    for k, gate in enumerate(GATES):
        rows = slice(k * n_a, (k + 1) * n_a)
        close(grads[f"dW{gate}"], np.concatenate([g_hh[rows], g_ih[rows]], axis=1), gate)
        close(grads[f"db{gate}"], g_b[rows][:, None], gate)
    assert set(grads) == {"dx", "da0", *(f"{w}{g}" for w in ("dW", "db") for g in GATES)}


# ---------------------------------------------- cell functions vs sequence ones
def test_rnn_cell_functions_agree_with_sequence_functions() -> None:
    x, a0, p = rnn_setup()
    da = np.random.default_rng(2).standard_normal((n_a, m, T_x))
    a, y_pred, caches = Fn.rnn_forward(x, a0, p)
    a_next, cell_caches = a0, []
    for t in range(T_x):
        a_next, yt, cache = Fn.rnn_cell_forward(x[:, :, t], a_next, p)
        close(a_next, a[:, :, t])
        close(yt, y_pred[:, :, t])
        cell_caches.append(cache)
    seq = Fn.rnn_backward(da, caches)
    total = {k: np.zeros_like(seq[k]) for k in ("dWax", "dWaa", "dba")}
    da_prev = np.zeros((n_a, m))
    for t in reversed(range(T_x)):
        g = Fn.rnn_cell_backward(da[:, :, t] + da_prev, cell_caches[t])
        close(g["dxt"], seq["dx"][:, :, t], f"dx at t={t}")
        da_prev = g["da_prev"]
        for k in total:
            total[k] += g[k]  # summed over time (the seed's loop overwrote them)
    close(da_prev, seq["da0"])
    for k, v in total.items():
        close(v, seq[k], k)


def test_lstm_cell_functions_agree_with_sequence_functions() -> None:
    x, a0, _, p = lstm_setup()
    da = np.random.default_rng(2).standard_normal((n_a, m, T_x))
    a, y, c, caches = Fn.lstm_forward(x, a0, p)
    a_next, c_next, cell_caches = a0, np.zeros((n_a, m)), []
    for t in range(T_x):
        a_next, c_next, yt, cache = Fn.lstm_cell_forward(x[:, :, t], a_next, c_next, p)
        close(a_next, a[:, :, t])
        close(c_next, c[:, :, t])
        close(yt, y[:, :, t])
        seq_step = caches[0][t]
        for k, got in enumerate(cache[:9]):
            close(got, seq_step[k], f"cache field {k} at t={t}")
        cell_caches.append(cache)
    seq = Fn.lstm_backward(da, caches)
    total = {k: np.zeros_like(v) for k, v in seq.items() if k not in ("dx", "da0")}
    da_prev, dc_prev = np.zeros((n_a, m)), np.zeros((n_a, m))
    for t in reversed(range(T_x)):
        g = Fn.lstm_cell_backward(da[:, :, t] + da_prev, dc_prev, cell_caches[t])
        close(g["dxt"], seq["dx"][:, :, t], f"dx at t={t}")
        da_prev, dc_prev = g["da_prev"], g["dc_prev"]
        for k in total:
            total[k] += g[k]
    close(da_prev, seq["da0"])
    for k, v in total.items():
        close(v, seq[k], k)


# ---------------------------------------------------------- finite differences
def test_rnn_backward_matches_finite_differences() -> None:
    x, a0, p = rnn_setup(3)
    da = np.random.default_rng(4).standard_normal((n_a, m, T_x))
    _, _, caches = Fn.rnn_forward(x, a0, p)
    g = Fn.rnn_backward(da, caches)

    def loss() -> float:
        return float((Fn.rnn_forward(x, a0, p)[0] * da).sum())

    assert_gradients(loss, {"dx": (x, g["dx"]), "da0": (a0, g["da0"]),
                            "dWax": (p["Wax"], g["dWax"]), "dWaa": (p["Waa"], g["dWaa"]),
                            "dba": (p["ba"], g["dba"])})


def test_rnn_cell_backward_matches_finite_differences() -> None:
    x, a0, p = rnn_setup(5)
    xt = x[:, :, 0].copy()
    da_next = np.random.default_rng(6).standard_normal((n_a, m))
    _, _, cache = Fn.rnn_cell_forward(xt, a0, p)
    g = Fn.rnn_cell_backward(da_next, cache)

    def loss() -> float:
        return float((Fn.rnn_cell_forward(xt, a0, p)[0] * da_next).sum())

    assert_gradients(loss, {"dxt": (xt, g["dxt"]), "da_prev": (a0, g["da_prev"]),
                            "dWax": (p["Wax"], g["dWax"]), "dWaa": (p["Waa"], g["dWaa"]),
                            "dba": (p["ba"], g["dba"])})


def test_lstm_backward_matches_finite_differences() -> None:
    x, a0, _, p = lstm_setup(7)
    da = np.random.default_rng(8).standard_normal((n_a, m, T_x))
    _, _, _, caches = Fn.lstm_forward(x, a0, p)
    g = Fn.lstm_backward(da, caches)

    def loss() -> float:
        return float((Fn.lstm_forward(x, a0, p)[0] * da).sum())

    checks = {"dx": (x, g["dx"]), "da0": (a0, g["da0"])}
    for gate in GATES:
        checks[f"dW{gate}"] = (p[f"W{gate}"], g[f"dW{gate}"])
        checks[f"db{gate}"] = (p[f"b{gate}"], g[f"db{gate}"])
    assert_gradients(loss, checks)


def test_lstm_cell_backward_matches_finite_differences() -> None:
    x, a0, c0, p = lstm_setup(9)
    xt = x[:, :, 0].copy()
    rng = np.random.default_rng(10)
    da_next, dc_next = rng.standard_normal((n_a, m)), rng.standard_normal((n_a, m))
    *_, cache = Fn.lstm_cell_forward(xt, a0, c0, p)
    g = Fn.lstm_cell_backward(da_next, dc_next, cache)

    def loss() -> float:
        a_next, c_next, _, _ = Fn.lstm_cell_forward(xt, a0, c0, p)
        return float((a_next * da_next).sum() + (c_next * dc_next).sum())

    checks = {"dxt": (xt, g["dxt"]), "da_prev": (a0, g["da_prev"]),
              "dc_prev": (c0, g["dc_prev"])}
    for gate in GATES:
        checks[f"dW{gate}"] = (p[f"W{gate}"], g[f"dW{gate}"])
        checks[f"db{gate}"] = (p[f"b{gate}"], g[f"db{gate}"])
    assert_gradients(loss, checks)


def test_backward_twice_gives_the_same_gradients() -> None:
    x, a0, _, p = lstm_setup()
    da = np.random.default_rng(2).standard_normal((n_a, m, T_x))
    _, _, _, caches = Fn.lstm_forward(x, a0, p)
    first = Fn.lstm_backward(da, caches)
    second = Fn.lstm_backward(da, caches)
    for k in first:
        np.testing.assert_array_equal(first[k], second[k], err_msg=k)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("name", ["Waa", "Wax", "Wya", "ba", "by"])
def test_rnn_missing_parameter_is_named(name: str) -> None:
    x, a0, p = rnn_setup()
    del p[name]
    with pytest.raises(KeyError, match=f"parameters: missing '{name}'"):
        Fn.rnn_forward(x, a0, p)


@pytest.mark.parametrize(("name", "shape", "expected"), [
    ("Wax", (n_x, n_a), (n_a, n_x)),
    ("Waa", (n_a, n_a + 1), (n_a, n_a)),
    ("ba", (n_a,), (n_a, 1)),
    ("Wya", (n_y, n_a + 1), (n_y, n_a)),
    ("by", (n_y + 1, 1), (n_y, 1)),
])
def test_rnn_bad_parameter_shape_is_named(name: str, shape: tuple[int, ...],
                                          expected: tuple[int, ...]) -> None:
    x, a0, p = rnn_setup()
    p[name] = np.zeros(shape)
    message = (rf"parameters\['{name}'\]: expected shape {expected}".replace("(", r"\(")
               .replace(")", r"\)"))
    with pytest.raises(ValueError, match=message):
        Fn.rnn_forward(x, a0, p)
    with pytest.raises(ValueError, match=message):
        Fn.rnn_cell_forward(x[:, :, 0], a0, p)


@pytest.mark.parametrize("name", ["Wf", "Wi", "Wc", "Wo", "bf", "bo", "Wy", "by"])
def test_lstm_missing_parameter_is_named(name: str) -> None:
    x, a0, _, p = lstm_setup()
    del p[name]
    with pytest.raises(KeyError, match=f"parameters: missing '{name}'"):
        Fn.lstm_forward(x, a0, p)


@pytest.mark.parametrize(("name", "shape"), [("Wf", (n_a, n_x)), ("Wo", (n_a, n_a)),
                                              ("bi", (1, n_a)), ("Wy", (n_a, n_y))])
def test_lstm_bad_parameter_shape_is_named(name: str, shape: tuple[int, ...]) -> None:
    x, a0, c0, p = lstm_setup()
    p[name] = np.zeros(shape)
    with pytest.raises(ValueError, match=rf"parameters\['{name}'\]: expected shape"):
        Fn.lstm_forward(x, a0, p)
    with pytest.raises(ValueError, match=rf"parameters\['{name}'\]: expected shape"):
        Fn.lstm_cell_forward(x[:, :, 0], a0, c0, p)


def test_bad_inputs_are_named() -> None:
    x, a0, p = rnn_setup()
    with pytest.raises(TypeError, match="parameters: expected a dict, got list"):
        Fn.rnn_forward(x, a0, [p])
    with pytest.raises(ValueError, match=r"a0: expected shape \(5, 10\), got \(5, 3\)"):
        Fn.rnn_forward(x, a0[:, :3], p)
    with pytest.raises(ValueError, match=r"x: expected a 3-D array .*got shape \(3, 10\)"):
        Fn.rnn_forward(x[:, :, 0], a0, p)
    with pytest.raises(ValueError, match=r"xt: expected a 2-D array .*got shape \(3, 10, 4\)"):
        Fn.rnn_cell_forward(x, a0, p)
    with pytest.raises(TypeError, match=r"expected dtype float32 .*got float64"):
        Fn.rnn_forward(x.astype(np.float32), a0, p)
    _, _, caches = Fn.rnn_forward(x, a0, p)
    with pytest.raises(ValueError, match=r"da: expected shape \(5, 10, 4\), got \(5, 10, 2\)"):
        Fn.rnn_backward(np.zeros((n_a, m, 2)), caches)
    _, _, cache = Fn.rnn_cell_forward(x[:, :, 0], a0, p)
    with pytest.raises(ValueError, match=r"da_next: expected shape \(5, 10\)"):
        Fn.rnn_cell_backward(np.zeros((n_a, 2)), cache)

    x, a0, c0, p = lstm_setup()
    with pytest.raises(ValueError, match=r"c_prev: expected shape \(5, 10\), got \(5, 2\)"):
        Fn.lstm_cell_forward(x[:, :, 0], a0, c0[:, :2], p)
    with pytest.raises(ValueError, match=r"x: expected a 3-D array"):
        Fn.lstm_forward(x[:, :, 0], a0, p)
    *_, cache = Fn.lstm_cell_forward(x[:, :, 0], a0, c0, p)
    with pytest.raises(ValueError, match=r"dc_next: expected shape \(5, 10\)"):
        Fn.lstm_cell_backward(np.zeros((n_a, m)), np.zeros((n_a, 1)), cache)


def test_float32_runs_in_float32() -> None:
    x, a0, p = rnn_setup()
    p32 = {k: v.astype(np.float32) for k, v in p.items()}
    a, y_pred, caches = Fn.rnn_forward(x.astype(np.float32), a0.astype(np.float32), p32)
    assert a.dtype == np.float32 and y_pred.dtype == np.float32
    a64, _, _ = Fn.rnn_forward(x, a0, p)
    np.testing.assert_allclose(a, a64, atol=1e-5)
    grads = Fn.rnn_backward(np.ones_like(a), caches)
    assert all(v.dtype == np.float32 for v in grads.values())
