"""Gradient clipping without PyTorch: the norm rule, input forms, non-finite gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab import optim
from rnnlab.nn import Linear


def _grads(seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return [scale * rng.standard_normal(s) for s in [(4, 5), (7,), (2, 3)]]


def _norm(grads):
    return math.sqrt(sum(float((g * g).sum()) for g in grads))


def test_clip_scales_to_max_norm():
    grads = _grads()
    before = [g.copy() for g in grads]
    total = optim.clip_grad_norm(grads, 1.0)
    assert total == pytest.approx(_norm(before), rel=1e-14)
    coef = 1.0 / (total + 1e-6)
    for g, b in zip(grads, before, strict=True):
        np.testing.assert_allclose(g, b * coef, rtol=1e-15)
    assert _norm(grads) == pytest.approx(1.0, rel=1e-5)


def test_no_clip_leaves_grads_untouched():
    grads = _grads()
    before = [g.copy() for g in grads]
    total = optim.clip_grad_norm(grads, 100.0)
    assert total == pytest.approx(_norm(before), rel=1e-14)
    for g, b in zip(grads, before, strict=True):
        assert np.array_equal(g, b)
    assert optim.clip_grad_norm(grads, math.inf) == total  # measure only


@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_non_finite_norm_is_returned_and_nothing_scaled(bad):
    grads = _grads()
    grads[1][3] = bad
    before = [g.copy() for g in grads]
    total = optim.clip_grad_norm(grads, 1.0)
    assert math.isnan(total) if math.isnan(bad) else total == math.inf
    for g, b in zip(grads, before, strict=True):
        assert np.array_equal(g, b, equal_nan=True)


def test_float32_overflowing_squares_still_clip():
    g = np.full((10, 10), 1e20, np.float32)
    total = optim.clip_grad_norm([g], 5.0)
    assert total == pytest.approx(1e21, rel=1e-6)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, 0.5, rtol=1e-5)


def test_all_input_forms_agree():
    ref = _grads(3)
    expected = optim.grad_norm(ref)
    params = [np.zeros_like(g) for g in ref]
    forms = [
        lambda gs: gs,
        lambda gs: [(p, g) for p, g in zip(params, gs, strict=True)],
        lambda gs: [(f"p{i}", p, g) for i, (p, g) in enumerate(zip(params, gs, strict=True))],
    ]
    for form in forms:
        grads = [g.copy() for g in ref]
        assert optim.clip_grad_norm(form(grads), 0.1) == pytest.approx(expected, rel=1e-15)
        assert _norm(grads) == pytest.approx(0.1, rel=1e-5)
    single = ref[0].copy()
    assert optim.clip_grad_norm(single, 1e9) == pytest.approx(_norm([ref[0]]), rel=1e-14)


def test_module_and_shared_gradient_counted_once():
    layer = Linear(3, 2, dtype="float64", rng=0)
    layer.grads["weight"][...] = 3.0
    layer.grads["bias"][...] = 4.0
    assert optim.clip_grad_norm(layer, 1e9) == pytest.approx(math.sqrt(6 * 9 + 2 * 16))
    g = np.full(4, 2.0)
    assert optim.clip_grad_norm([g, g], 1.0) == pytest.approx(4.0)
    np.testing.assert_allclose(g, 0.5 * 4.0 / (4.0 + 1e-6))  # scaled once, not twice


def test_clip_grad_value():
    g = np.array([-3.0, -0.5, 0.0, 0.7, 2.0, np.nan])
    optim.clip_grad_value([g], 1.0)
    np.testing.assert_array_equal(g, [-1.0, -0.5, 0.0, 0.7, 1.0, np.nan])
    h = np.array([5.0], np.float32)
    optim.clip_grad_value(h, 0.25)
    assert h.dtype == np.float32 and h[0] == np.float32(0.25)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), scale=st.floats(1e-3, 1e3),
       max_norm=st.floats(1e-2, 1e2))
def test_clip_property(seed, scale, max_norm):
    grads = _grads(seed, scale)
    before = [g.copy() for g in grads]
    total = optim.clip_grad_norm(grads, max_norm)
    after = _norm(grads)
    assert after <= max_norm * (1 + 1e-9)
    assert after == pytest.approx(total * min(1.0, max_norm / (total + 1e-6)), rel=1e-12)
    ratio = grads[0].ravel()[0] / before[0].ravel()[0]
    for g, b in zip(grads, before, strict=True):
        np.testing.assert_allclose(g, b * ratio, rtol=1e-12)  # direction preserved
