"""``Cell.back_cache``: the one-step cells keep the work arrays of their last backward,
so that a reader (tutorial 5) can see the gradient of the pre-activations."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rnnlab import nn


@pytest.mark.parametrize("make", [
    lambda: nn.RNNCell(3, 4, dtype=np.float64, rng=0),
    lambda: nn.LSTMCell(3, 4, dtype=np.float64, rng=0),
    lambda: nn.GRUCell(3, 4, dtype=np.float64, rng=0),
    lambda: nn.GRUCell(3, 4, reset_after=False, dtype=np.float64, rng=0),
], ids=["rnn", "lstm", "gru_after", "gru_before"])
def test_back_cache_holds_the_pre_activation_gradient(make: Any) -> None:
    cell = make()
    rng = np.random.default_rng(1)
    x, h = rng.standard_normal((2, 3)), rng.standard_normal((2, 4))
    assert cell.back_cache is None
    if isinstance(cell, nn.LSTMCell):
        cell.forward(x, (h, h))
        dx, _, _ = cell.backward(rng.standard_normal((2, 4)), rng.standard_normal((2, 4)))
    else:
        cell.forward(x, h)
        dx, _ = cell.backward(rng.standard_normal((2, 4)))
    da = cell.back_cache.dxw[0]
    assert da.shape == (2, cell.params["weight_ih"].shape[0])
    # dx = da W_ih and db_ih = sum over rows of da: the buffer is the step's gradient
    np.testing.assert_allclose(dx, da @ cell.params["weight_ih"], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(cell.grads["bias_ih"], da.sum(axis=0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(cell.grads["bias_hh"], cell.back_cache.dhw[0].sum(axis=0),
                               rtol=1e-12, atol=1e-14)
