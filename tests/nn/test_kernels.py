"""The optional compiled kernels agree with the NumPy path (both paths are tested)."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab import _kernels, nn

pytest.importorskip("numba", reason="numba is not installed (the optional 'fast' extra)")

KINDS = [(nn.RNN, {}), (nn.RNN, {"nonlinearity": "relu"}), (nn.LSTM, {}), (nn.GRU, {}),
         (nn.GRU, {"reset_after": False})]


def run_layer(cls, kw, monkeypatch, kernels: str):
    monkeypatch.setenv("RNNLAB_KERNELS", kernels)
    rng = np.random.default_rng(0)
    layer = cls(6, 9, num_layers=2, bidirectional=True, rng=1, **kw)
    xs = rng.standard_normal((5, 7, 6)).astype(np.float32) * 2
    dhs = rng.standard_normal((5, 7, 18)).astype(np.float32)
    lengths = np.array([7, 3, 5, 1, 7])
    hs = layer.forward(xs, lengths=lengths)
    dxs = layer.backward(dhs)
    return hs, dxs, {k: v.copy() for k, v in layer.grads.items()}, layer.dh0


@pytest.mark.parametrize("cls,kw", KINDS)
def test_layers_agree_with_numpy_path(cls, kw, monkeypatch):
    fast = run_layer(cls, kw, monkeypatch, "auto")
    slow = run_layer(cls, kw, monkeypatch, "numpy")
    for a, b in zip(fast[:2], slow[:2], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)
    for name in slow[2]:
        np.testing.assert_allclose(fast[2][name], slow[2][name], rtol=1e-4, atol=5e-5,
                                   err_msg=name)
    np.testing.assert_allclose(fast[3], slow[3], rtol=1e-4, atol=2e-5)


def test_kernels_only_for_numpy_float32(monkeypatch):
    monkeypatch.setenv("RNNLAB_KERNELS", "auto")
    assert _kernels.for_arrays(np, np.float32) is not None
    assert _kernels.for_arrays(np, np.float64) is None
    monkeypatch.setenv("RNNLAB_KERNELS", "numpy")
    assert _kernels.for_arrays(np, np.float32) is None


def test_vectorised_exp_accuracy():
    K = _kernels.get()
    x = np.linspace(-79, 79, 200_001).astype(np.float32)
    y = x.copy()
    K.vexp(y, np.empty(y.size, np.int32))
    exact = np.exp(x.astype(np.float64))
    assert np.max(np.abs(y - exact) / exact) < 3e-7  # about two float32 ulps
    big = np.array([-1e4, 1e4, 0.0], np.float32)
    K.vexp(big, np.empty(3, np.int32))
    assert np.all(np.isfinite(big)) and big[2] == 1.0


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_agrees(reduction, monkeypatch):
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((6, 40, 300)).astype(np.float32) * 4
    logits[0, 0, 5] = 1e4
    logits[1, 2] = np.nan  # an ignored row: must not leak
    targets = rng.integers(0, 300, (6, 40))
    targets[1, 2] = targets[4, 7] = -100
    out = {}
    for mode in ("auto", "numpy"):
        monkeypatch.setenv("RNNLAB_KERNELS", mode)
        loss = nn.SoftmaxCrossEntropy(reduction=reduction)
        out[mode] = (loss.forward(logits, targets), loss.backward())
    assert np.isfinite(out["auto"][0])
    assert out["auto"][0] == pytest.approx(out["numpy"][0], rel=1e-6)
    np.testing.assert_allclose(out["auto"][1], out["numpy"][1], rtol=1e-5, atol=1e-8)
    assert not out["auto"][1][1, 2].any()


def test_lm_training_step_agrees(monkeypatch):
    from rnnlab.models import RNNLM

    results = {}
    for mode in ("auto", "numpy"):
        monkeypatch.setenv("RNNLAB_KERNELS", mode)
        model = RNNLM(50, 8, 16, 2, "lstm", rng=0)
        ids = np.random.default_rng(1).integers(0, 50, (4, 12))
        losses = []
        for _ in range(5):
            model.zero_grad()
            losses.append(model.forward_loss(ids[:, :-1], ids[:, 1:]))
            model.backward()
            for _, p, g in model.named_parameters():
                p -= 0.5 * g
        results[mode] = losses
    np.testing.assert_allclose(results["auto"], results["numpy"], rtol=1e-5)


@pytest.mark.parametrize("padding_idx", [None, 2])
def test_embedding_scatter_agrees(padding_idx, monkeypatch):
    """The compiled scatter-add sums repeated ids exactly as the sorted NumPy path does."""
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 7, size=(6, 40))  # every id repeated many times
    ids[0, :5] = 2
    dout = rng.standard_normal((6, 40, 5)).astype(np.float32)
    grads = {}
    for mode in ("auto", "numpy"):
        monkeypatch.setenv("RNNLAB_KERNELS", mode)
        emb = nn.Embedding(7, 5, padding_idx=padding_idx, rng=0)
        emb.forward(ids)
        emb.backward(dout)
        emb.forward(ids[:, ::2])  # a second, non-contiguous batch accumulates
        emb.backward(dout[:, ::2])
        grads[mode] = emb.grads["weight"].copy()
    expected = np.zeros((7, 5), np.float64)
    for i, d in ((ids, dout), (ids[:, ::2], dout[:, ::2])):
        np.add.at(expected, i.reshape(-1), d.reshape(-1, 5).astype(np.float64))
    if padding_idx is not None:
        expected[padding_idx] = 0
    np.testing.assert_allclose(grads["auto"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grads["auto"], grads["numpy"], rtol=1e-5, atol=1e-5)
