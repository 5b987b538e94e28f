"""Torch-free checks of the update rules: closed forms, convergence, in-place behaviour."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from rnnlab import optim
from rnnlab.nn import Linear, Module


def _one(p, g):
    return [("w", p, g)]


def _rand(seed, shape=(4, 3), dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)


def test_sgd_one_step_plain_and_weight_decay():
    p0, g = _rand(0)
    p = p0.copy()
    optim.SGD(_one(p, g), lr=0.1).step()
    np.testing.assert_allclose(p, p0 - 0.1 * g, rtol=1e-15)
    p = p0.copy()
    optim.SGD(_one(p, g), lr=0.1, weight_decay=0.2).step()
    np.testing.assert_allclose(p, p0 - 0.1 * (g + 0.2 * p0), rtol=1e-15)


def test_sgd_momentum_dampening_by_hand():
    p0, _ = _rand(1)
    rng = np.random.default_rng(2)
    gs = [rng.standard_normal(p0.shape) for _ in range(3)]
    p, g = p0.copy(), np.zeros_like(p0)
    opt = optim.SGD(_one(p, g), lr=0.1, momentum=0.9, dampening=0.25)
    ref, buf = p0.copy(), None
    for gt in gs:
        g[...] = gt
        opt.step()
        buf = gt.copy() if buf is None else 0.9 * buf + 0.75 * gt
        ref = ref - 0.1 * buf
    np.testing.assert_allclose(p, ref, rtol=1e-14)
    np.testing.assert_allclose(opt.state["w"]["momentum_buffer"], buf, rtol=1e-14)


@pytest.mark.parametrize("cls", [optim.Momentum, optim.Nesterov])
def test_velocity_forms_by_hand(cls):
    p0, _ = _rand(3)
    rng = np.random.default_rng(4)
    p, g = p0.copy(), np.zeros_like(p0)
    opt = cls(_one(p, g), lr=0.1, momentum=0.8)
    ref, v = p0.copy(), np.zeros_like(p0)
    for t in range(4):
        lr = 0.1 if t < 2 else 0.03  # the velocity keeps old steps at their own rate
        opt.lr = lr
        g[...] = rng.standard_normal(p0.shape)
        opt.step()
        v_old = v
        v = 0.8 * v - lr * g
        # Nesterov in the other algebraic form: θ + μ² v_old − (1 + μ) η g.
        ref = ref + v if cls is optim.Momentum else ref + 0.64 * v_old - 1.8 * lr * g
    np.testing.assert_allclose(p, ref, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(opt.state["w"]["velocity"], v, rtol=1e-13, atol=1e-15)


def test_adam_first_step_is_lr_times_sign():
    p0, g = _rand(5)
    p = p0.copy()
    optim.Adam(_one(p, g), lr=0.01).step()
    np.testing.assert_allclose(p, p0 - 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-14)
    np.testing.assert_allclose(p, p0 - 0.01 * np.sign(g), rtol=0, atol=1e-7)


def test_amsgrad_keeps_running_max():
    p, g = _rand(6)
    opt = optim.Adam(_one(p, g), lr=0.01, amsgrad=True)
    seen = np.zeros_like(p)
    for scale in [3.0, 0.1, 0.1, 2.0]:
        g *= 0
        g += scale
        opt.step()
        seen = np.maximum(seen, opt.state["w"]["exp_avg_sq"])
        np.testing.assert_array_equal(opt.state["w"]["max_exp_avg_sq"], seen)


def test_adamw_decay_is_decoupled():
    p0 = _rand(7)[0]
    p, g = p0.copy(), np.zeros_like(p0)
    optim.AdamW(_one(p, g), lr=0.1, weight_decay=0.5).step()
    np.testing.assert_array_equal(p, p0 * (1 - 0.1 * 0.5))  # zero gradient: pure decay
    p = p0.copy()
    optim.Adam(_one(p, g), lr=0.1, weight_decay=0.5).step()
    np.testing.assert_allclose(p, p0 - 0.1 * np.sign(p0), rtol=0, atol=1e-5)  # L2 in g


def test_adagrad_accumulates_squares():
    p0, _ = _rand(8)
    rng = np.random.default_rng(9)
    p, g = p0.copy(), np.zeros_like(p0)
    opt = optim.AdaGrad(_one(p, g), lr=0.5, initial_accumulator_value=0.1, lr_decay=0.5)
    acc, ref = np.full_like(p0, 0.1), p0.copy()
    for t in range(1, 4):
        g[...] = rng.standard_normal(p0.shape)
        opt.step()
        acc += g * g
        ref -= 0.5 / (1 + (t - 1) * 0.5) * g / (np.sqrt(acc) + 1e-10)
    np.testing.assert_allclose(opt.state["w"]["sum"], acc, rtol=1e-14)
    np.testing.assert_allclose(p, ref, rtol=1e-14)


def test_rmsprop_first_step_plain_and_centered():
    p0, g = _rand(10)
    p = p0.copy()
    optim.RMSprop(_one(p, g), lr=0.01, alpha=0.9).step()
    np.testing.assert_allclose(p, p0 - 0.01 * g / (np.sqrt(0.1 * g * g) + 1e-8), rtol=1e-14)
    p = p0.copy()
    optim.RMSprop(_one(p, g), lr=0.01, alpha=0.9, centered=True).step()
    r = np.sqrt(0.1 * g * g - (0.1 * g) ** 2) + 1e-8
    np.testing.assert_allclose(p, p0 - 0.01 * g / r, rtol=1e-12)


CONVERGENCE = [
    (optim.SGD, {"lr": 0.3}, 1e-6),
    (optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True}, 1e-6),
    (optim.SGD, {"lr": 0.1, "momentum": 0.5, "dampening": 0.5}, 1e-6),
    (optim.Momentum, {"lr": 0.1}, 1e-4),
    (optim.Nesterov, {"lr": 0.1}, 1e-6),
    (optim.AdaGrad, {"lr": 0.5}, 1e-6),
    (optim.RMSprop, {"lr": 0.02}, 1e-1),  # constant-size steps near the optimum
    (optim.RMSprop, {"lr": 0.01, "centered": True, "momentum": 0.5}, 1e-3),
    (optim.Adam, {"lr": 0.05}, 1e-4),
    (optim.Adam, {"lr": 0.05, "amsgrad": True}, 1e-4),
    (optim.AdamW, {"lr": 0.05, "weight_decay": 0.0}, 1e-4),
]


@pytest.mark.parametrize(("cls", "kwargs", "tol"), CONVERGENCE,
                         ids=[f"{c.__name__}-{k}" for c, k, _ in CONVERGENCE])
def test_converges_on_quadratic(cls, kwargs, tol, quadratic):
    problem = quadratic(seed=1, noise=0.0)
    triples = problem.triples()
    opt = cls(triples, **kwargs)
    start = problem.distance(triples)
    for t in range(300):
        problem.fill(triples, t)
        opt.step()
    assert problem.distance(triples) < min(tol, start)


ALL = [
    (optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    (optim.SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.1}),
    (optim.Momentum, {"weight_decay": 0.1}),
    (optim.Nesterov, {"weight_decay": 0.1}),
    (optim.AdaGrad, {"weight_decay": 0.1}),
    (optim.RMSprop, {"centered": True, "momentum": 0.9, "weight_decay": 0.1}),
    (optim.Adam, {"amsgrad": True, "weight_decay": 0.1}),
    (optim.AdamW, {"amsgrad": True}),
]


@pytest.mark.parametrize(("cls", "kwargs"), ALL, ids=[c.__name__ for c, _ in ALL])
def test_step_is_in_place_without_temporaries(cls, kwargs):
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(s).astype(np.float32) for s in [(300, 200), (200,)]]
    grads = [rng.standard_normal(p.shape).astype(np.float32) for p in params]
    ids = [id(a) for a in params + grads]
    opt = cls([(f"p{i}", p, g) for i, (p, g) in enumerate(zip(params, grads, strict=True))],
              **kwargs)
    opt.step()  # creates the state and the scratch (the dampened momentum's scratch
    opt.step()  # only at the second step, when the buffer exists)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        opt.step()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 20_000, f"a step allocated {peak} bytes (one parameter is 240000)"
    assert [id(a) for a in params + grads] == ids
    for p in params:
        assert p.dtype == np.float32
    for bufs in opt.state.values():
        for buf in bufs.values():
            assert buf.dtype == np.float32


def test_lazy_state_and_zero_grad():
    p, g = _rand(11)
    opt = optim.Adam(_one(p, g))
    assert opt.state == {"w": {}} and opt.step_count == 0
    opt.step()
    assert sorted(opt.state["w"]) == ["exp_avg", "exp_avg_sq"] and opt.step_count == 1
    opt.zero_grad()
    assert not g.any()


def test_module_params_and_tied_weights():
    class Tied(Module):
        def __init__(self):
            super().__init__(dtype="float64")
            self.enc = Linear(3, 3, dtype="float64", rng=0)
            self.dec = Linear(3, 3, dtype="float64", rng=1)
            self.dec.tie("weight", self.enc, "weight")

    model = Tied()
    opt = optim.SGD(model, lr=0.5)
    assert opt.param_names == ("enc.weight", "enc.bias", "dec.bias")
    w0 = model.enc.params["weight"].copy()
    model.enc.grads["weight"][...] = 1.0
    opt.step()  # the shared array moves once
    np.testing.assert_array_equal(model.dec.params["weight"], w0 - 0.5)


def test_pairs_are_named_by_position():
    p, g = _rand(12)
    q, h = _rand(13, (2,))
    opt = optim.SGD([(p, g), (q, h)], lr=0.1)
    assert opt.param_names == ("0", "1")


def test_hyper_parameters_are_plain_checked_attributes():
    p, g = _rand(14)
    opt = optim.RMSprop(_one(p, g), lr=0.1)
    opt.lr = 0.05
    opt.momentum = 0.5
    assert opt.hyper["lr"] == 0.05 and opt.momentum == 0.5
    with pytest.raises(ValueError, match=r"RMSprop: lr expected a finite number >= 0, got -1"):
        opt.lr = -1
    assert opt.lr == 0.05
    assert "RMSprop(1 parameters" in repr(opt)

