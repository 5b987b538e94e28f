"""On a CUDA device: the fused CUDA kernels agree with the generic CuPy path."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab import nn
from rnnlab.backend import to_numpy

pytestmark = pytest.mark.gpu


def run(cls, kw, cupy, monkeypatch, mode, dtype):
    monkeypatch.setenv("RNNLAB_KERNELS", mode)
    rng = np.random.default_rng(0)
    layer = cls(6, 9, num_layers=2, rng=1, dtype=dtype, device="gpu", **kw)
    xs = cupy.asarray(rng.standard_normal((5, 7, 6)).astype(dtype))
    dhs = cupy.asarray(rng.standard_normal((5, 7, 9)).astype(dtype))
    hs = layer.forward(xs, lengths=np.array([7, 3, 5, 1, 7]))
    dxs = layer.backward(dhs)
    return to_numpy(hs), to_numpy(dxs), {k: to_numpy(v) for k, v in layer.grads.items()}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls,kw", [(nn.RNN, {}), (nn.LSTM, {}), (nn.GRU, {}),
                                    (nn.GRU, {"reset_after": False})])
def test_fused_cells_agree(real_gpu, monkeypatch, cls, kw, dtype):
    fused = run(cls, kw, real_gpu, monkeypatch, "auto", dtype)
    plain = run(cls, kw, real_gpu, monkeypatch, "0", dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for a, b in zip(fused[:2], plain[:2], strict=True):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    for name in plain[2]:
        np.testing.assert_allclose(fused[2][name], plain[2][name], rtol=tol * 10,
                                   atol=tol * 10, err_msg=name)


def test_fused_cross_entropy_agrees(real_gpu, monkeypatch):
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((6, 40, 300)).astype(np.float32) * 4
    logits[1, 2] = np.nan
    targets = rng.integers(0, 300, (6, 40))
    targets[1, 2] = -100
    out = {}
    for mode in ("auto", "0"):
        monkeypatch.setenv("RNNLAB_KERNELS", mode)
        loss = nn.SoftmaxCrossEntropy(device="gpu")
        value = loss.forward(real_gpu.asarray(logits), real_gpu.asarray(targets))
        out[mode] = (value, to_numpy(loss.backward()))
    assert out["auto"][0] == pytest.approx(out["0"][0], rel=1e-5)
    np.testing.assert_allclose(out["auto"][1], out["0"][1], rtol=1e-4, atol=1e-7)
