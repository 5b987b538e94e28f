"""Recurrent.step_gradients: the per-step gradient of the pre-activations of the last
backward, the rows every weight gradient is a product of."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab import nn


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_weight_gradients_are_products_of_the_step_gradients(kind: str) -> None:
    rng = np.random.default_rng(0)
    layer = {"rnn": nn.RNN, "lstm": nn.LSTM}[kind](3, 4, num_layers=2, dtype=np.float64,
                                                   rng=1)
    xs = rng.standard_normal((2, 5, 3))
    hs = layer.forward(xs)
    layer.zero_grad()
    layer.backward(rng.standard_normal(hs.shape))
    da = layer.step_gradients(0)
    assert da.shape == (2, 5, layer.cell.n_gates * 4)
    np.testing.assert_allclose(np.einsum("ntg,ntd->gd", da, xs),
                               layer.grads["weight_ih_l0"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(da.sum(axis=(0, 1)), layer.grads["bias_ih_l0"], rtol=1e-12,
                               atol=1e-14)
    da[...] = 0  # a copy: the layer's buffers stay as they were
    assert np.any(layer.step_gradients(0) != 0)
    assert layer.step_gradients(-1).shape == layer.step_gradients(1).shape


def test_tanh_rnn_step_gradient_is_dh_times_one_minus_h_squared() -> None:
    rng = np.random.default_rng(2)
    layer = nn.RNN(2, 3, dtype=np.float64, rng=0)
    hs = layer.forward(rng.standard_normal((1, 1, 2)))
    dhs = rng.standard_normal(hs.shape)
    layer.backward(dhs)
    np.testing.assert_allclose(layer.step_gradients(), dhs * (1 - hs ** 2), rtol=1e-13)


def test_step_gradients_refusals() -> None:
    layer = nn.RNN(2, 3, bidirectional=True, dtype=np.float64)
    with pytest.raises(RuntimeError, match="no backward"):
        layer.step_gradients()
    with pytest.raises(ValueError, match="layer"):
        layer.step_gradients(layer=1)
    with pytest.raises(ValueError, match="direction"):
        layer.step_gradients(direction=2)
    hs = layer.forward(np.ones((1, 2, 2)))
    layer.backward(np.ones_like(hs))
    assert layer.step_gradients(direction=1).shape == (1, 2, 3)
