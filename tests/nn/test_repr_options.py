"""Issue 22, item 4: a layer's repr shows every option that differs from its default."""

from __future__ import annotations

import pytest

from rnnlab import nn


@pytest.mark.parametrize("layer, expected", [
    (nn.RNN(4, 3), "RNN(4, 3)"),
    (nn.RNN(4, 3, nonlinearity="relu"), "RNN(4, 3, nonlinearity='relu')"),
    (nn.LSTM(4, 3, 2, bias=False, dropout=0.25, bidirectional=True, stateful=True),
     "LSTM(4, 3, num_layers=2, bias=False, dropout=0.25, bidirectional=True, stateful=True)"),
    (nn.GRU(4, 3, reset_after=False), "GRU(4, 3, reset_after=False)"),
    (nn.GRU(4, 3, check_finite=True), "GRU(4, 3, check_finite=True)"),
    (nn.RNNCell(4, 3), "RNNCell(4, 3)"),
    (nn.RNNCell(4, 3, nonlinearity="relu"), "RNNCell(4, 3, nonlinearity='relu')"),
    (nn.RNNCell(4, 3, bias=False), "RNNCell(4, 3, bias=False)"),
    (nn.GRUCell(4, 3, reset_after=False), "GRUCell(4, 3, reset_after=False)"),
    (nn.LSTMCell(4, 3, bias=False), "LSTMCell(4, 3, bias=False)"),
])
def test_repr_shows_non_default_options(layer, expected):
    assert repr(layer) == expected


def test_repr_round_trips_through_the_constructor():
    for layer in (nn.RNN(4, 3, 2, nonlinearity="relu", bidirectional=True),
                  nn.GRUCell(4, 3, bias=False, reset_after=False)):
        rebuilt = eval(repr(layer), {**vars(nn)})
        assert repr(rebuilt) == repr(layer)
