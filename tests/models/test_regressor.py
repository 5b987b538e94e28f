"""SequenceRegressor: shapes, what many-to-one reads, lengths and masking, state
continuation, finite-difference gradients of every parameter and of the inputs, learning."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.gradcheck import assert_gradients
from rnnlab.models.regressor import SequenceRegressor
from rnnlab.nn import MSELoss

D, H, OUT = 3, 4, 2


def make(cell: str = "lstm", **kw) -> SequenceRegressor:
    args = {"input_size": D, "hidden_size": H, "output_size": OUT, "cell": cell, "rng": 0,
            **kw}
    return SequenceRegressor(**args)


def data(N: int = 3, T: int = 5, dtype=np.float32, seed: int = 1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((N, T, D)).astype(dtype)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("many_to_many", [False, True])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_shapes_and_dtype(cell, many_to_many, bidirectional):
    model = make(cell, many_to_many=many_to_many, bidirectional=bidirectional, num_layers=2)
    xs = data()
    pred = model.forward(xs)
    assert pred.shape == ((3, 5, OUT) if many_to_many else (3, OUT))
    assert pred.dtype == np.float32
    loss = model.forward_loss(xs, np.zeros_like(pred))
    dxs = model.backward()
    assert np.isfinite(loss) and dxs.shape == xs.shape and dxs.dtype == np.float32
    assert model.head.params["weight"].shape == (OUT, (2 if bidirectional else 1) * H)


def test_many_to_one_reads_the_last_step_of_a_unidirectional_layer():
    model = make("gru", num_layers=2)
    xs = data()
    pred = model.forward(xs)
    hs = model.rnn.forward(xs)
    expected = hs[:, -1] @ model.head.params["weight"].T + model.head.params["bias"]
    np.testing.assert_allclose(pred, expected, rtol=1e-6, atol=1e-6)


def test_bidirectional_many_to_one_reads_both_final_states():
    model = make("rnn", bidirectional=True)
    xs = data()
    pred = model.forward(xs)
    hs = model.rnn.forward(xs)  # (N, T, 2H): forward half ends at T-1, reverse at 0
    feats = np.concatenate([hs[:, -1, :H], hs[:, 0, H:]], axis=1)
    expected = feats @ model.head.params["weight"].T + model.head.params["bias"]
    np.testing.assert_allclose(pred, expected, rtol=1e-6, atol=1e-6)


def test_loss_without_lengths_is_mse():
    model = make(many_to_many=True)
    xs = data()
    targets = np.random.default_rng(2).standard_normal((3, 5, OUT)).astype(np.float32)
    loss = model.forward_loss(xs, targets)
    assert loss == pytest.approx(MSELoss().forward(model.forward(xs), targets), rel=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_many_to_one_with_lengths_matches_truncated_sequences(cell):
    model = make(cell, dtype=np.float64)
    xs = data(dtype=np.float64)
    lengths = np.array([5, 2, 4])
    pred = model.forward(xs, lengths=lengths)
    for row, n in enumerate(lengths):
        alone = model.forward(xs[row : row + 1, :n])
        np.testing.assert_allclose(pred[row], alone[0], rtol=1e-10, atol=1e-12)


def test_many_to_many_lengths_mask_the_loss_and_the_gradients():
    model = make(many_to_many=True, dtype=np.float64)
    xs = data(dtype=np.float64)
    targets = np.random.default_rng(3).standard_normal((3, 5, OUT))
    lengths = np.array([5, 2, 3])
    loss = model.forward_loss(xs, targets, lengths=lengths)
    model.zero_grad()
    dxs = model.backward()
    # the loss is the mean over the valid steps only
    pred = model.forward(xs, lengths=lengths)
    valid = np.arange(5)[None, :] < lengths[:, None]
    expected = np.mean((pred - targets)[valid] ** 2)
    assert loss == pytest.approx(expected, rel=1e-12)
    assert np.all(dxs[~valid] == 0)
    # garbage in padded steps changes nothing
    xs2, targets2 = xs.copy(), targets.copy()
    xs2[~valid] = 1e3
    targets2[~valid] = -1e3
    assert model.forward_loss(xs2, targets2, lengths=lengths) == pytest.approx(loss, rel=1e-12)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_final_state_continues_a_sequence(cell):
    model = make(cell, many_to_many=True, num_layers=2, dtype=np.float64)
    xs = data(T=7, dtype=np.float64)
    whole = model.forward(xs)
    first = model.forward(xs[:, :4])
    state = model.final_state()
    second = model.forward(xs[:, 4:], state=state)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, rtol=1e-10,
                               atol=1e-12)


CONFIGS = [
    ("lstm", {"many_to_many": False, "bidirectional": True}, None),
    ("rnn", {"many_to_many": False, "bidirectional": True, "num_layers": 2}, None),
    ("rnn", {"many_to_many": True, "num_layers": 2, "nonlinearity": "relu"}, [4, 4, 2]),
    ("gru", {"many_to_many": True}, None),
    ("rnn", {"many_to_many": False, "num_layers": 2}, [4, 2, 3]),
    ("lstm", {"many_to_many": True, "bidirectional": True}, [4, 1, 3]),
    ("gru", {"many_to_many": False, "bidirectional": True}, [2, 4, 4]),
]


@pytest.mark.parametrize(("cell", "kw", "lengths"), CONFIGS)
def test_gradients_match_finite_differences(cell, kw, lengths):
    model = make(cell, dtype=np.float64, **kw)
    rng = np.random.default_rng(4)
    xs = rng.standard_normal((3, 4, D))  # N = 3 sequences of T = 4 steps
    out_shape = (3, 4, OUT) if kw["many_to_many"] else (3, OUT)
    targets = rng.standard_normal(out_shape)
    lengths = None if lengths is None else np.array(lengths)

    model.zero_grad()
    model.forward_loss(xs, targets, lengths=lengths)
    dxs = model.backward(dloss=1.5)

    def f() -> float:
        return 1.5 * model.forward_loss(xs, targets, lengths=lengths)

    checks = {name: (param, grad.copy())
              for name, param, grad in model.named_parameters_and_grads()}
    checks["xs"] = (xs, dxs)
    assert_gradients(f, checks)


def test_backward_pred_takes_any_gradient_of_the_predictions():
    model = make("gru", dtype=np.float64)
    xs = data(dtype=np.float64)
    weights = np.random.default_rng(5).standard_normal((3, OUT))
    model.zero_grad()
    model.forward(xs)
    dxs = model.backward_pred(weights)

    def f() -> float:
        return float(np.sum(model.forward(xs) * weights))

    checks = {name: (param, grad.copy())
              for name, param, grad in model.named_parameters_and_grads()}
    checks["xs"] = (xs, dxs)
    assert_gradients(f, checks)


def test_learns_a_running_sum():
    """Many-to-one: predict the sum of a short sequence of numbers."""
    from rnnlab.optim import Adam

    rng = np.random.default_rng(6)
    model = SequenceRegressor(1, 16, 1, cell="gru", rng=7)
    optimizer = Adam(model, lr=0.02)
    xs = rng.uniform(-1, 1, (64, 6, 1)).astype(np.float32)
    ys = xs.sum(axis=1)
    first = model.forward_loss(xs, ys)
    for _ in range(150):
        model.forward_loss(xs, ys)
        optimizer.zero_grad()
        model.backward()
        optimizer.step()
    assert model.forward_loss(xs, ys) < 0.05 * first


def test_errors():
    with pytest.raises(ValueError, match="cell expected one of"):
        SequenceRegressor(1, 2, cell="transformer")
    with pytest.raises(ValueError, match="output_size expected an int >= 1"):
        SequenceRegressor(1, 2, output_size=0)
    model = make()
    with pytest.raises(RuntimeError, match="called before forward_loss"):
        model.backward()
    with pytest.raises(RuntimeError, match="called before forward"):
        model.backward_pred(np.zeros((3, OUT), np.float32))
    with pytest.raises(RuntimeError, match="final_state: called before forward"):
        model.final_state()
    model.forward_loss(data(), np.zeros((3, OUT), np.float32))
    model.forward(data())  # a plain forward: its loss is unknown, so backward() refuses
    with pytest.raises(RuntimeError, match="called before forward_loss"):
        model.backward()
    with pytest.raises(ValueError, match="targets expected shape"):
        model.forward_loss(data(), np.zeros((3, 5, OUT), np.float32))
    with pytest.raises(ValueError, match="nonlinearity"):
        SequenceRegressor(1, 2, cell="rnn", nonlinearity="sigmoid")
    assert "many_to_one" in repr(model)
