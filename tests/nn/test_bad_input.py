"""Every bad input raises ``ValueError`` / ``TypeError`` (``RuntimeError`` for a backward
before any forward) whose message names the layer, the argument, what was expected and
what was given."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab import nn

f32, f64 = np.float32, np.float64
SEQ = {"RNN": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}


def esc(text: str) -> str:
    return re.escape(text)


def zeros(*shape: int, dtype: Any = f32) -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


def state(name: str, h: np.ndarray, c: np.ndarray | None = None) -> Any:
    return (h, h.copy() if c is None else c) if name == "LSTM" else h


# ----------------------------------------------------------------- constructors
@pytest.mark.parametrize(("make", "error", "message"), [
    (lambda: nn.RNN(3, 0), ValueError, "RNN: hidden_size expected an int >= 1, got 0"),
    (lambda: nn.LSTM(0, 4), ValueError, "LSTM: input_size expected an int >= 1, got 0"),
    (lambda: nn.GRU(3, 2.5), TypeError, "GRU: hidden_size expected an int, got float"),
    (lambda: nn.GRU(True, 2), TypeError, "GRU: input_size expected an int, got bool"),
    (lambda: nn.LSTM(3, 4, num_layers=0), ValueError,
     "LSTM: num_layers expected an int >= 1, got 0"),
    (lambda: nn.LSTM(3, 4, dropout=1.5), ValueError,
     "LSTM: dropout expected a float in [0, 1), got 1.5"),
    (lambda: nn.GRU(3, 4, dropout=-0.1), ValueError,
     "GRU: dropout expected a float in [0, 1), got -0.1"),
    (lambda: nn.RNN(3, 4, dropout="0.1"), TypeError,
     "RNN: dropout expected a float in [0, 1), got str"),
    (lambda: nn.RNN(3, 4, nonlinearity="sigmoid"), ValueError,
     "RNN: nonlinearity expected 'tanh' or 'relu', got 'sigmoid'"),
    (lambda: nn.LSTM(3, 4, nonlinearity="relu"), TypeError,
     "LSTM: nonlinearity expected only for RNN"),
    (lambda: nn.LSTM(3, 4, reset_after=False), TypeError,
     "LSTM: reset_after expected only for GRU, got False"),
    (lambda: nn.RNNCell(3, 4, nonlinearity="gelu"), ValueError,
     "RNNCell: nonlinearity expected 'tanh' or 'relu', got 'gelu'"),
    (lambda: nn.GRUCell(3, 4, nonlinearity="relu"), TypeError,
     "GRUCell: nonlinearity expected only for RNNCell"),
    (lambda: nn.LSTMCell(3, -1), ValueError, "LSTMCell: hidden_size expected an int >= 1, got -1"),
    (lambda: nn.RNN(3, 4, dtype=np.float16), TypeError,
     "RNN: dtype: expected float32 or float64, got float16"),
    (lambda: nn.Linear(3, 4, dtype="int32"), TypeError,
     "Linear: dtype: expected float32 or float64, got int32"),
    (lambda: nn.Linear(3, 4, device="tpu"), ValueError,
     "Linear: device: expected 'cpu' or 'gpu', got 'tpu'"),
    (lambda: nn.Linear(0, 4), ValueError, "Linear: in_features expected an int >= 1, got 0"),
    (lambda: nn.Embedding(5, 0), ValueError,
     "Embedding: embedding_dim expected an int >= 1, got 0"),
    (lambda: nn.Embedding(5, 2, padding_idx=5), ValueError,
     "Embedding: padding_idx expected in [0, 5), got 5"),
    (lambda: nn.Dropout(1.0), ValueError, "Dropout: p expected a float in [0, 1), got 1.0"),
    (lambda: nn.LockedDropout(True), TypeError,
     "LockedDropout: p expected a float in [0, 1), got bool"),
    (lambda: nn.SoftmaxCrossEntropy(reduction="none"), ValueError,
     "SoftmaxCrossEntropy: reduction expected 'mean' or 'sum', got 'none'"),
    (lambda: nn.MSELoss(reduction="max"), ValueError,
     "MSELoss: reduction expected 'mean' or 'sum', got 'max'"),
])
def test_bad_constructor_arguments(make: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=esc(message)):
        make()


def test_bad_rng_is_rejected() -> None:
    with pytest.raises(TypeError, match=esc("rng: expected a numpy.random.Generator")):
        nn.GRU(3, 4, rng="seed")


# ------------------------------------------------------- sequence layer inputs
@pytest.mark.parametrize("name", sorted(SEQ))
def test_sequence_forward_bad_inputs(name: str) -> None:
    layer = SEQ[name](3, 4)
    good = zeros(2, 5, 3)
    cases: list[tuple[Any, type, str]] = [
        (lambda: layer.forward(zeros(5, 3)), ValueError,
         f"{name}.forward: xs expected a 3-D array, got shape (5, 3)"),
        (lambda: layer.forward(zeros(2, 5, 4)), ValueError,
         f"{name}.forward: xs expected last dimension 3, got shape (2, 5, 4)"),
        (lambda: layer.forward(good.astype(f64)), TypeError,
         f"{name}.forward: xs expected dtype float32 (the layer's dtype), got float64"),
        (lambda: layer.forward(good.astype(np.int64)), TypeError,
         f"{name}.forward: xs expected dtype float32, got int64"),
        (lambda: layer.forward(good.tolist()), TypeError,
         f"{name}.forward: xs expected an array, got list"),
        (lambda: layer.forward(zeros(0, 5, 3)), ValueError,
         f"{name}.forward: xs expected N >= 1 and T >= 1, got shape (0, 5, 3)"),
        (lambda: layer.forward(good, state(name, zeros(1, 3, 4))), ValueError,
         f"{name}.forward: state" + ("[0] (h)" if name == "LSTM" else "")
         + " expected shape (1, 2, 4), got (1, 3, 4)"),
        (lambda: layer.forward(good, state(name, zeros(1, 2, 4, dtype=f64))), TypeError,
         "expected dtype float32 (the layer's dtype), got float64"),
        (lambda: layer.forward(good, lengths=[1, 2, 3]), ValueError,
         f"{name}.forward: lengths expected shape (2,), got (3,)"),
        (lambda: layer.forward(good, lengths=np.array([1.0, 2.0])), TypeError,
         f"{name}.forward: lengths expected integers, got dtype float64"),
        (lambda: layer.forward(good, lengths=[1, 6]), ValueError,
         f"{name}.forward: lengths expected values in [0, 5], got 1..6"),
        (lambda: layer.forward(good, lengths=[-1, 2]), ValueError,
         f"{name}.forward: lengths expected values in [0, 5], got -1..2"),
    ]
    if name == "LSTM":
        cases += [
            (lambda: layer.forward(good, zeros(1, 2, 4)), TypeError,
             "LSTM.forward: state expected a tuple (h, c), got ndarray"),
            (lambda: layer.forward(good, (zeros(1, 2, 4), zeros(1, 2, 5))), ValueError,
             "LSTM.forward: state[1] (c) expected shape (1, 2, 4), got (1, 2, 5)"),
        ]
    else:
        cases.append((lambda: layer.forward(good, (zeros(1, 2, 4), zeros(1, 2, 4))),
                      TypeError, f"{name}.forward: state expected an array h, got a tuple"))
    for call, error, message in cases:
        with pytest.raises(error, match=esc(message)):
            call()


@pytest.mark.parametrize("name", sorted(SEQ))
def test_sequence_backward_bad_inputs(name: str) -> None:
    layer = SEQ[name](3, 4, bidirectional=True)
    with pytest.raises(RuntimeError, match=esc(f"{name}.backward: called before forward")):
        layer.backward(zeros(2, 5, 8))
    layer.forward(zeros(2, 5, 3))
    cases: list[tuple[Any, type, str]] = [
        (lambda: layer.backward(zeros(2, 5, 4)), ValueError,
         f"{name}.backward: dhs expected shape (2, 5, 8), got (2, 5, 4)"),
        (lambda: layer.backward(zeros(2, 5, 8, dtype=f64)), TypeError,
         f"{name}.backward: dhs expected dtype float32 (the layer's dtype), got float64"),
        (lambda: layer.backward(zeros(2, 5, 8).tolist()), TypeError,
         f"{name}.backward: dhs expected an array of shape (2, 5, 8), got list"),
        (lambda: layer.backward(None, state(name, zeros(1, 2, 4))), ValueError,
         f"{name}.backward: dstate" + ("[0] (h)" if name == "LSTM" else "")
         + " expected shape (2, 2, 4), got (1, 2, 4)"),
    ]
    if name == "LSTM":
        cases.append((lambda: layer.backward(None, zeros(2, 2, 4)), TypeError,
                      "LSTM.backward: dstate expected a tuple (h, c), got ndarray"))
    for call, error, message in cases:
        with pytest.raises(error, match=esc(message)):
            call()


@pytest.mark.parametrize("name", sorted(SEQ))
def test_set_state_and_stateful_bad_inputs(name: str) -> None:
    layer = SEQ[name](3, 4, num_layers=2, stateful=True)
    with pytest.raises(ValueError, match=esc(f"{name}.set_state: state")):
        layer.set_state(state(name, zeros(1, 2, 4)))
    if name == "LSTM":
        with pytest.raises(TypeError, match=esc("LSTM.set_state: state expected a tuple (h, c), "
                                                "got ndarray")):
            layer.set_state(zeros(2, 2, 4))
    layer.set_state(state(name, zeros(2, 2, 4)))
    with pytest.raises(ValueError, match=esc("carries a state for batch size 2, got batch "
                                             "size 3; call reset_state() first")):
        layer.forward(zeros(3, 5, 3))


@pytest.mark.parametrize("name", sorted(SEQ))
def test_check_finite_rejects_nan_and_inf(name: str) -> None:
    layer = SEQ[name](3, 4, check_finite=True)
    xs = zeros(2, 5, 3)
    xs[1, 2, 0] = np.nan
    with pytest.raises(ValueError, match=esc(f"{name}.forward: xs contains NaN or infinity "
                                             "(check_finite is on)")):
        layer.forward(xs)
    h = zeros(1, 2, 4)
    h[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match=esc("state") + r".* contains NaN or infinity"):
        layer.forward(zeros(2, 5, 3), state(name, h))
    # off by default: NaN simply propagates
    out = SEQ[name](3, 4).forward(xs)
    assert np.isnan(out).any()


# ------------------------------------------------- random wrong shapes (hypothesis)
@settings(max_examples=40, deadline=None)
@given(name=st.sampled_from(sorted(SEQ)),
       shape=st.lists(st.integers(0, 4), min_size=0, max_size=5))
def test_any_wrong_input_shape_is_reported(name: str, shape: list[int]) -> None:
    layer = SEQ[name](3, 2)
    ok = len(shape) == 3 and shape[2] == 3 and shape[0] >= 1 and shape[1] >= 1
    xs = zeros(*shape)
    if ok:
        assert layer.forward(xs).shape == (shape[0], shape[1], 2)
        return
    with pytest.raises(ValueError, match=esc(f"{name}.forward: xs expected ") + ".*"
                       + esc(f"got shape {tuple(shape)}")):
        layer.forward(xs)


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(sorted(SEQ)),
       shape=st.lists(st.integers(1, 4), min_size=1, max_size=4),
       which=st.sampled_from(["state", "dstate", "dhs"]))
def test_any_wrong_state_or_gradient_shape_is_reported(name: str, shape: list[int],
                                                       which: str) -> None:
    layer = SEQ[name](3, 2, num_layers=2)
    expected = (2, 3, 2) if which != "dhs" else (3, 4, 2)
    if tuple(shape) == expected:
        return
    if which == "state":
        with pytest.raises(ValueError, match=esc(f"expected shape {expected}, got "
                                                 f"{tuple(shape)}")):
            layer.forward(zeros(3, 4, 3), state(name, zeros(*shape)))
        return
    layer.forward(zeros(3, 4, 3))
    with pytest.raises(ValueError, match=esc(f"expected shape {expected}, got {tuple(shape)}")):
        if which == "dhs":
            layer.backward(zeros(*shape))
        else:
            layer.backward(None, state(name, zeros(*shape)))


# ------------------------------------------------------------------------ cells
def test_cell_bad_inputs() -> None:
    rnn, lstm, gru = nn.RNNCell(3, 4), nn.LSTMCell(3, 4), nn.GRUCell(3, 4)
    x = zeros(2, 3)
    for cell in (rnn, lstm, gru):
        with pytest.raises(RuntimeError, match=esc(f"{cell.name}.backward: called before "
                                                   "forward")):
            cell.backward(zeros(2, 4))
        with pytest.raises(ValueError, match=esc(f"{cell.name}.forward: x expected a 2-D "
                                                 "array, got shape (1, 2, 3)")):
            cell.forward(zeros(1, 2, 3))
        with pytest.raises(ValueError, match=esc(f"{cell.name}.forward: x expected last "
                                                 "dimension 3, got shape (2, 5)")):
            cell.forward(zeros(2, 5))
        with pytest.raises(TypeError, match=esc(f"{cell.name}.forward: x expected dtype "
                                                "float32 (the layer's dtype), got float64")):
            cell.forward(x.astype(f64))
    with pytest.raises(ValueError, match=esc("RNNCell.forward: h expected shape (2, 4), got "
                                             "(3, 4)")):
        rnn.forward(x, zeros(3, 4))
    with pytest.raises(TypeError, match=esc("GRUCell.forward: h expected dtype float32")):
        gru.forward(x, zeros(2, 4, dtype=f64))
    with pytest.raises(TypeError, match=esc("LSTMCell.forward: state expected a tuple (h, c), "
                                            "got ndarray")):
        lstm.forward(x, zeros(2, 4))
    with pytest.raises(ValueError, match=esc("LSTMCell.forward: state[1] (c) expected shape "
                                             "(2, 4), got (2, 3)")):
        lstm.forward(x, (zeros(2, 4), zeros(2, 3)))
    lstm.forward(x)
    with pytest.raises(ValueError, match=esc("LSTMCell.backward: dh expected shape (2, 4), "
                                             "got (2, 5)")):
        lstm.backward(zeros(2, 5))
    with pytest.raises(ValueError, match=esc("LSTMCell.backward: dc expected shape (2, 4), "
                                             "got (1, 4)")):
        lstm.backward(zeros(2, 4), zeros(1, 4))
    with pytest.raises(ValueError, match=esc("RNNCell.forward: x contains NaN or infinity")):
        nn.RNNCell(3, 4, check_finite=True).forward(np.full((2, 3), np.nan, dtype=f32))


# ------------------------------------------------------ linear, embedding, dropout
def test_linear_bad_inputs() -> None:
    layer = nn.Linear(3, 2)
    with pytest.raises(RuntimeError, match=esc("Linear.backward: called before forward")):
        layer.backward(zeros(4, 2))
    with pytest.raises(ValueError, match=esc("Linear.forward: x expected a 2-D or 3-D array, "
                                             "got shape (3,)")):
        layer.forward(zeros(3))
    with pytest.raises(ValueError, match=esc("Linear.forward: x expected last dimension 3, got "
                                             "shape (4, 2)")):
        layer.forward(zeros(4, 2))
    with pytest.raises(TypeError, match=esc("Linear.forward: x expected dtype float32, got "
                                            "int32")):
        layer.forward(np.zeros((4, 3), dtype=np.int32))
    layer.forward(zeros(4, 3))
    with pytest.raises(ValueError, match=esc("Linear.backward: dy expected shape (4, 2), got "
                                             "(4, 3)")):
        layer.backward(zeros(4, 3))


def test_embedding_bad_inputs() -> None:
    layer = nn.Embedding(5, 2)
    with pytest.raises(RuntimeError, match=esc("Embedding.backward: called before forward")):
        layer.backward(zeros(3, 2))
    with pytest.raises(TypeError, match=esc("Embedding.forward: ids expected an integer dtype, "
                                            "got float64")):
        layer.forward(np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match=esc("Embedding.forward: ids expected an integer array, "
                                            "got list")):
        layer.forward([1, 2])
    with pytest.raises(ValueError, match=esc("Embedding.forward: ids expected ids in [0, 5), "
                                             "got 5")):
        layer.forward(np.array([[0, 5]]))
    with pytest.raises(ValueError, match=esc("Embedding.forward: ids expected ids in [0, 5), "
                                             "got -1")):
        layer.forward(np.array([-1, 2]))
    with pytest.raises(ValueError, match=esc("Embedding.forward: ids expected a 1-D or 2-D "
                                             "array, got shape (1, 1, 1)")):
        layer.forward(np.zeros((1, 1, 1), dtype=np.int64))
    layer.forward(np.array([[1, 2, 3]]))
    with pytest.raises(ValueError, match=esc("Embedding.backward: dout expected shape (1, 3, "
                                             "2), got (3, 2)")):
        layer.backward(zeros(3, 2))


@settings(max_examples=20, deadline=None)
@given(bad=st.one_of(st.integers(-50, -1), st.integers(7, 50)))
def test_any_out_of_range_token_id_is_reported(bad: int) -> None:
    layer = nn.Embedding(7, 2)
    ids = np.array([[0, 3, bad, 6]])
    with pytest.raises(ValueError, match=esc(f"Embedding.forward: ids expected ids in [0, 7), "
                                             f"got {bad}")):
        layer.forward(ids)


def test_dropout_bad_inputs() -> None:
    drop, locked = nn.Dropout(0.5), nn.LockedDropout(0.5)
    for layer in (drop, locked):
        with pytest.raises(RuntimeError, match=esc(f"{layer.name}.backward: called before "
                                                   "forward")):
            layer.backward(zeros(2, 3, 4))
        with pytest.raises(TypeError, match=esc(f"{layer.name}.forward: x expected dtype "
                                                "float32 (the layer's dtype), got float64")):
            layer.forward(zeros(2, 3, 4, dtype=f64))
    with pytest.raises(ValueError, match=esc("LockedDropout.forward: x expected a 3-D array, "
                                             "got shape (2, 3)")):
        locked.forward(zeros(2, 3))
    drop.forward(zeros(2, 3, 4))
    with pytest.raises(ValueError, match=esc("Dropout.backward: dout expected shape (2, 3, 4), "
                                             "got (2, 3)")):
        drop.backward(zeros(2, 3))


# ----------------------------------------------------------------------- losses
def test_cross_entropy_bad_inputs() -> None:
    ce = nn.SoftmaxCrossEntropy()
    with pytest.raises(RuntimeError, match=esc("SoftmaxCrossEntropy.backward: called before "
                                               "forward")):
        ce.backward()
    logits = zeros(2, 3, 4)
    cases: list[tuple[Any, type, str]] = [
        (lambda: ce.forward(zeros(4), np.array([0])), ValueError,
         "SoftmaxCrossEntropy.forward: logits expected a 2-D or 3-D array, got shape (4,)"),
        (lambda: ce.forward(np.zeros((2, 4), dtype=np.int64), np.array([0, 1])), TypeError,
         "SoftmaxCrossEntropy.forward: logits expected dtype float32, got int64"),
        (lambda: ce.forward(logits, np.zeros((3, 2), dtype=np.int64)), ValueError,
         "SoftmaxCrossEntropy.forward: targets expected shape (2, 3) (logits without the "
         "class axis), got (3, 2)"),
        (lambda: ce.forward(logits, np.zeros((2, 3))), TypeError,
         "SoftmaxCrossEntropy.forward: targets expected an integer dtype, got float64"),
        (lambda: ce.forward(logits, [[0, 1, 2], [0, 1, 2]]), TypeError,
         "SoftmaxCrossEntropy.forward: targets expected an integer array, got list"),
        (lambda: ce.forward(logits, np.array([[0, 1, 4], [0, 1, 2]])), ValueError,
         "SoftmaxCrossEntropy.forward: targets expected class ids in [0, 4) or the ignore "
         "index -100, got 4"),
        (lambda: ce.forward(logits, np.array([[0, 1, -1], [0, 1, 2]])), ValueError,
         "targets expected class ids in [0, 4) or the ignore index -100, got -1"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=esc(message)):
            call()
    ce.forward(logits, np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(TypeError, match=esc("SoftmaxCrossEntropy.backward: dloss expected a "
                                            "float, got str")):
        ce.backward("1.0")
    with pytest.raises(ValueError, match=esc("SoftmaxCrossEntropy.forward: logits contains NaN "
                                             "or infinity (check_finite is on)")):
        nn.SoftmaxCrossEntropy(check_finite=True).forward(np.full((1, 3), np.nan),
                                                          np.array([0]))


def test_mse_bad_inputs() -> None:
    mse = nn.MSELoss()
    with pytest.raises(RuntimeError, match=esc("MSELoss.backward: called before forward")):
        mse.backward()
    with pytest.raises(ValueError, match=esc("MSELoss.forward: target expected shape (2, 3), "
                                             "got (3, 2)")):
        mse.forward(zeros(2, 3), zeros(3, 2))
    with pytest.raises(TypeError, match=esc("MSELoss.forward: target expected dtype float32")):
        mse.forward(zeros(2, 3), zeros(2, 3, dtype=f64))
    with pytest.raises(TypeError, match=esc("MSELoss.forward: pred expected an array, got "
                                            "list")):
        mse.forward([1.0], zeros(1))
    mse.forward(zeros(2, 3), zeros(2, 3))
    with pytest.raises(TypeError, match=esc("MSELoss.backward: dloss expected a float, got "
                                            "bool")):
        mse.backward(True)
