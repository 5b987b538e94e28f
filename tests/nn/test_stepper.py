"""Stepper: one step at a time gives exactly what the time loop gives."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab import nn
from rnnlab.nn.stepper import Stepper

KINDS = [(nn.RNN, {}), (nn.RNN, {"nonlinearity": "relu"}), (nn.LSTM, {}), (nn.GRU, {}),
         (nn.GRU, {"reset_after": False})]


@pytest.mark.parametrize("cls,kw", KINDS)
def test_steps_equal_the_sequence_forward(cls, kw):
    rng = np.random.default_rng(0)
    layer = cls(3, 5, num_layers=2, rng=1, dtype=np.float64, **kw)
    xs = rng.standard_normal((4, 6, 3))
    hs = layer.forward(xs)
    stepper = Stepper(layer, batch=4)
    for t in range(6):
        np.testing.assert_allclose(stepper.step(xs[:, t]), hs[:, t], rtol=1e-12, atol=1e-12)
    h, c = stepper.get_state()
    np.testing.assert_allclose(h, layer.h_n, rtol=1e-12, atol=1e-12)
    if layer.has_cell:
        np.testing.assert_allclose(c, layer.c_n, rtol=1e-12, atol=1e-12)


def test_table_rows_state_and_reorder():
    rng = np.random.default_rng(1)
    emb = nn.Embedding(7, 3, rng=0, dtype=np.float64)
    lstm = nn.LSTM(3, 4, rng=2, dtype=np.float64)
    ids = rng.integers(0, 7, (2, 5))
    hs = lstm.forward(emb.forward(ids))
    stepper = Stepper(lstm, batch=2)
    stepper.table = stepper.input_table(emb.params["weight"])
    for t in range(5):
        out = stepper.step(rows=ids[:, t])
    np.testing.assert_allclose(out, hs[:, -1], rtol=1e-12, atol=1e-12)
    h, c = stepper.get_state()
    stepper.reorder(np.array([1, 1]))
    h2, _ = stepper.get_state()
    np.testing.assert_array_equal(h2[:, 0], h[:, 1])
    stepper.set_state(h, c)
    np.testing.assert_array_equal(stepper.get_state()[0], h)
    stepper.reset()
    assert not stepper.get_state()[0].any()


def test_bidirectional_is_refused():
    with pytest.raises(ValueError, match="bidirectional"):
        Stepper(nn.GRU(2, 3, bidirectional=True), batch=1)
