"""Dropout, LockedDropout, recurrent dropout between layers, SoftmaxCrossEntropy, MSELoss:
behaviour beyond the gradient checks."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab import nn


# -------------------------------------------------------------------- dropout
@pytest.mark.parametrize("cls", [nn.Dropout, nn.LockedDropout])
def test_dropout_is_the_identity_in_eval(cls: type) -> None:
    layer = cls(0.5, rng=0, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    layer.eval()
    y = layer.forward(x)
    assert y is x  # as in PyTorch: inactive dropout hands its input through, no copy
    d = np.ones_like(x)
    assert layer.backward(d) is d


@pytest.mark.parametrize("cls", [nn.Dropout, nn.LockedDropout])
def test_dropout_p0_is_the_identity_in_training(cls: type) -> None:
    layer = cls(0.0, rng=0)
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_array_equal(layer.forward(x), x)


@pytest.mark.parametrize("cls", [nn.Dropout, nn.LockedDropout])
@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_scaling_and_rate(cls: type, p: float) -> None:
    layer = cls(p, rng=1, dtype=np.float64)
    x = np.ones((40, 50, 100))
    y = layer.forward(x)
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1.0 / (1.0 - p), rtol=1e-15)
    assert abs(kept.mean() - (1 - p)) < 0.02
    assert abs(y.mean() - 1.0) < 0.06  # unbiased in expectation
    dy = np.random.default_rng(0).standard_normal(x.shape)
    np.testing.assert_array_equal(layer.backward(dy), dy * y)  # the same mask


def test_locked_dropout_shares_its_mask_over_time() -> None:
    layer = nn.LockedDropout(0.5, rng=2, dtype=np.float64)
    x = np.random.default_rng(1).uniform(1, 2, size=(4, 7, 6))
    y = layer.forward(x)
    mask = y / x
    np.testing.assert_allclose(mask, np.broadcast_to(mask[:, :1], mask.shape), rtol=1e-15)
    assert (mask == 0).any() and (mask != 0).any()
    plain = nn.Dropout(0.5, rng=2, dtype=np.float64).forward(x) / x
    assert not np.allclose(plain, plain[:, :1])  # ordinary dropout does not share it


def test_dropout_masks_follow_the_seed_and_change_per_call() -> None:
    x = np.ones((3, 4, 5), dtype=np.float32)
    a, b = nn.Dropout(0.5, rng=9), nn.Dropout(0.5, rng=9)
    first = a.forward(x)
    np.testing.assert_array_equal(first, b.forward(x))
    assert not np.array_equal(first, a.forward(x))


def test_recurrent_dropout_between_layers_only_in_training() -> None:
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((2, 5, 3))
    layer = nn.LSTM(3, 4, num_layers=2, dropout=0.5, dtype=np.float64, rng=1)
    ref = nn.LSTM(3, 4, num_layers=2, dtype=np.float64, rng=1)
    layer.eval()
    np.testing.assert_array_equal(layer.forward(xs), ref.forward(xs))
    layer.train()
    assert not np.allclose(layer.forward(xs), ref.forward(xs))
    # one layer: nothing to drop between layers (as PyTorch)
    single = nn.GRU(3, 4, dropout=0.5, dtype=np.float64, rng=1)
    np.testing.assert_array_equal(single.forward(xs),
                                  nn.GRU(3, 4, dtype=np.float64, rng=1).forward(xs))


def test_recurrent_dropout_mask_is_used_in_backward() -> None:
    rng = np.random.default_rng(3)
    xs = rng.standard_normal((2, 5, 3))
    layer = nn.RNN(3, 4, num_layers=2, dropout=0.5, dtype=np.float64, rng=1)
    out = layer.forward(xs)
    dx1 = layer.backward(np.ones_like(out))
    dx2 = layer.backward(np.ones_like(out))  # no new mask is drawn by backward
    np.testing.assert_array_equal(dx1, dx2)


# -------------------------------------------------------------- cross-entropy
def reference_ce(logits: np.ndarray, targets: np.ndarray, ignore: int) -> float:
    V = logits.shape[-1]
    x, t = logits.reshape(-1, V), targets.reshape(-1)
    keep = t != ignore
    x, t = x[keep], t[keep]
    shifted = x - x.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(t)), t].mean())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_is_finite_for_huge_logits(dtype: type) -> None:
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [1e4, 1e4, 1e4]], dtype=dtype)
    targets = np.array([1, 2, 0])
    ce = nn.SoftmaxCrossEntropy()
    loss = ce.forward(logits, targets)
    np.testing.assert_allclose(loss, (2e4 + np.log(2) + np.log(3)) / 3, rtol=1e-6)
    grad = ce.backward()
    assert grad.dtype == dtype and np.isfinite(grad).all()
    expected = np.array([[1, -1, 0], [0, 0.5, -0.5], [-2 / 3, 1 / 3, 1 / 3]]) / 3
    np.testing.assert_allclose(grad, expected, atol=1e-7)


@pytest.mark.parametrize("garbage", [np.nan, np.inf, -np.inf, 1e300])
def test_ignored_rows_never_leak(garbage: float) -> None:
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 4, 5))
    targets = np.array([[1, -100, 3, -100], [0, 4, -100, 2]])
    clean = reference_ce(logits, targets, -100)
    dirty = logits.copy()
    dirty[targets == -100] = garbage
    dirty[0, 1, 2] = 0.0  # a mixed row
    ce = nn.SoftmaxCrossEntropy()
    np.testing.assert_allclose(ce.forward(dirty, targets), clean, rtol=1e-14)
    grad = ce.backward()
    assert np.isfinite(grad).all()
    assert not grad[targets == -100].any()
    ce2 = nn.SoftmaxCrossEntropy()
    ce2.forward(logits, targets)
    np.testing.assert_allclose(grad, ce2.backward(), rtol=1e-14)


def test_ignore_index_is_never_used_as_a_class() -> None:
    ce = nn.SoftmaxCrossEntropy(ignore_index=7)  # 7 would be out of range as a class
    logits = np.random.default_rng(1).standard_normal((4, 3))
    targets = np.array([0, 7, 2, 7])
    assert np.isclose(ce.forward(logits, targets), reference_ce(logits, targets, 7))
    ce0 = nn.SoftmaxCrossEntropy(ignore_index=0)  # a real class id used as the ignore index
    assert np.isclose(ce0.forward(logits, targets % 7), reference_ce(logits, targets % 7, 0))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_all_ignored_gives_zero_loss_and_zero_gradient(reduction: str) -> None:
    ce = nn.SoftmaxCrossEntropy(reduction=reduction)
    logits = np.full((2, 3, 4), np.nan)
    loss = ce.forward(logits, np.full((2, 3), -100))
    assert loss == 0.0 and isinstance(loss, float)
    grad = ce.backward()
    assert grad.shape == (2, 3, 4) and not grad.any()


def test_cross_entropy_reductions_and_scaling() -> None:
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((3, 5, 6))
    targets = rng.integers(0, 6, size=(3, 5))
    targets[0, :2] = -100
    mean_ce, sum_ce = nn.SoftmaxCrossEntropy(), nn.SoftmaxCrossEntropy(reduction="sum")
    mean = mean_ce.forward(logits, targets)
    total = sum_ce.forward(logits, targets)
    np.testing.assert_allclose(total, mean * 13, rtol=1e-14)
    np.testing.assert_allclose(sum_ce.backward(2.0), mean_ce.backward(26.0), rtol=1e-14)


def test_cross_entropy_backward_twice_is_identical_and_does_not_touch_the_cache() -> None:
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((4, 5))
    targets = np.array([1, -100, 4, 0])
    ce = nn.SoftmaxCrossEntropy()
    ce.forward(logits, targets)
    first = ce.backward()
    first_copy = first.copy()
    first[...] = 99  # the caller owns the result
    np.testing.assert_array_equal(ce.backward(), first_copy)


def test_losses_follow_the_input_dtype() -> None:
    logits = np.zeros((2, 3), dtype=np.float32)
    ce = nn.SoftmaxCrossEntropy()
    ce.forward(logits, np.array([0, 1]))
    assert ce.backward().dtype == np.float32
    mse = nn.MSELoss()
    mse.forward(np.zeros(3), np.ones(3))
    assert mse.backward().dtype == np.float64


def test_mse_value() -> None:
    mse = nn.MSELoss()
    assert mse.forward(np.array([1.0, 2.0]), np.array([0.0, 0.0])) == 2.5
    np.testing.assert_array_equal(mse.backward(), [1.0, 2.0])
    assert nn.MSELoss(reduction="sum").forward(np.array([[1.0, 2.0]]), np.zeros((1, 2))) == 5.0
