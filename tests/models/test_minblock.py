"""The minGRU/minLSTM block (norm, min layer, feed-forward, residuals): finite differences
of the whole stack in float64, and its stepper equal to the stack over a sequence."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.gradcheck import check_module
from rnnlab.models.minblock import MinBlockStack, gelu, gelu_grad


def test_gelu_derivative() -> None:
    u = np.linspace(-4, 4, 41)
    eps = 1e-6
    numeric = (gelu(np, u + eps)[0] - gelu(np, u - eps)[0]) / (2 * eps)
    np.testing.assert_allclose(gelu_grad(u, gelu(np, u)[1]), numeric, atol=1e-9)


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
@pytest.mark.parametrize("mode", ["parallel", "sequential"])
def test_stack_gradients_by_finite_differences(cell: str, mode: str) -> None:
    stack = MinBlockStack(cell, 5, 2, ff_mult=2, mode=mode, stateful=False, rng=3,
                          dtype="float64")
    rng = np.random.default_rng(4)
    for _, param in stack.named_parameters():  # norms away from ones and zeros
        param[...] = rng.standard_normal(param.shape) * 0.5 + (param.ndim == 1)
    xs = rng.standard_normal((3, 6, 5))
    h0 = np.abs(rng.standard_normal((2, 3, 5)))
    report = check_module(stack, xs, h0)
    assert report.passed, report.format()
    names = {row.name for row in report}
    assert {"block1.ff2.weight", "block0.norm1.weight", "norm.bias", "input", "h0"} <= names


@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_stepper_equals_the_stack(cell: str) -> None:
    stack = MinBlockStack(cell, 6, 3, rng=0, dtype="float64")
    stack.eval()
    xs = np.random.default_rng(1).standard_normal((2, 9, 6))
    out = stack(xs)
    stepper = stack.stepper(2)
    steps = np.stack([stepper.step(xs[:, t]) for t in range(9)], axis=1)
    np.testing.assert_allclose(steps, out, rtol=0, atol=1e-12)
    np.testing.assert_allclose(stepper.get_state()[0], stack.h_n, rtol=0, atol=1e-12)
    # stateful: the next window continues from the carried state
    np.testing.assert_allclose(stack.get_state()[0], stack.h_n)
    more = stack(xs[:, :2])
    np.testing.assert_allclose(more[:, 0], stepper.step(xs[:, 0]), atol=1e-12)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="cell"):
        MinBlockStack("lstm", 4)
    with pytest.raises(ValueError, match="mode"):
        MinBlockStack("mingru", 4, mode="fast")
    with pytest.raises(ValueError, match="ff_mult"):
        MinBlockStack("mingru", 4, ff_mult=0)
    stack = MinBlockStack("mingru", 4, 2)
    with pytest.raises(ValueError, match="state"):
        stack.set_state(np.zeros((3, 1, 4), dtype=np.float32))
