"""LayerNorm: finite differences in float64, PyTorch's values and gradients, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.gradcheck import check_module
from rnnlab.nn.layernorm import LayerNorm


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 6)])
def test_gradients_by_finite_differences(shape: tuple[int, ...], affine: bool) -> None:
    ln = LayerNorm(shape[-1], elementwise_affine=affine, dtype="float64")
    rng = np.random.default_rng(1)
    if affine:  # away from the initial ones and zeros
        ln.params["weight"][...] = rng.standard_normal(shape[-1])
        ln.params["bias"][...] = rng.standard_normal(shape[-1])
    report = check_module(ln, rng.standard_normal(shape) * 3 + 1)
    assert report.passed, report.format()
    assert len(report) == (3 if affine else 1)


def test_equals_torch() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 10))
    dy = rng.standard_normal(x.shape)
    ref = torch.nn.LayerNorm(10, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(rng.standard_normal(10)))
        ref.bias.copy_(torch.from_numpy(rng.standard_normal(10)))
    ln = LayerNorm(10, dtype="float64")
    ln.load_state_dict({k: v.detach().numpy() for k, v in ref.state_dict().items()})
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = ref(xt)
    yt.backward(torch.from_numpy(dy))
    y = ln(x)
    dx = ln.backward(dy)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ln.grads["weight"], ref.weight.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(ln.grads["bias"], ref.bias.grad.numpy(), atol=1e-12)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="normalized_shape"):
        LayerNorm(0)
    with pytest.raises(ValueError, match="eps"):
        LayerNorm(4, eps=0.0)
    with pytest.raises(TypeError, match="elementwise_affine"):
        LayerNorm(4, elementwise_affine=1)  # type: ignore[arg-type]
    ln = LayerNorm(4)
    with pytest.raises(ValueError, match="x"):
        ln(np.zeros((2, 5), dtype=np.float32))
    with pytest.raises(RuntimeError):
        LayerNorm(4).backward(np.zeros((2, 4), dtype=np.float32))
