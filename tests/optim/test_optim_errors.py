"""Bad input: each error is a ValueError/TypeError naming the argument, expected and got."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnnlab import optim


def _triples():
    return [("w", np.zeros((2, 3)), np.zeros((2, 3)))]


ALL = [optim.SGD, optim.Momentum, optim.Nesterov, optim.AdaGrad, optim.RMSprop, optim.Adam,
       optim.AdamW]


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
@pytest.mark.parametrize(("lr", "exc", "match"), [
    (-0.1, ValueError, r"lr expected a finite number >= 0, got -0.1"),
    (math.nan, ValueError, r"lr expected a finite number >= 0, got nan"),
    (math.inf, ValueError, r"lr expected a finite number >= 0, got inf"),
    ("0.1", TypeError, r"lr expected a finite number >= 0, got '0.1' \(str\)"),
    (True, TypeError, r"lr expected a finite number >= 0, got True \(bool\)"),
])
def test_bad_lr(cls, lr, exc, match):
    with pytest.raises(exc, match=f"{cls.__name__}: {match}"):
        cls(_triples(), lr=lr)


@pytest.mark.parametrize("cls", [optim.Adam, optim.AdamW], ids=lambda c: c.__name__)
@pytest.mark.parametrize(("betas", "exc", "match"), [
    ((0.9, 1.0), ValueError, r"betas\[1\] expected a finite number in \[0, 1\), got 1.0"),
    ((-0.1, 0.9), ValueError, r"betas\[0\] expected a finite number in \[0, 1\), got -0.1"),
    ((0.9, math.nan), ValueError, r"betas\[1\] expected .* got nan"),
    ((0.9, 0.99, 0.9), TypeError, r"betas expected a pair of numbers in \[0, 1\), got"),
    (0.9, TypeError, r"betas expected a pair"),
    ("ab", TypeError, r"betas expected a pair"),
])
def test_bad_betas(cls, betas, exc, match):
    with pytest.raises(exc, match=match):
        cls(_triples(), betas=betas)


@pytest.mark.parametrize(("cls", "kwargs", "exc", "match"), [
    (optim.SGD, {"momentum": -0.5}, ValueError, r"SGD: momentum expected a finite number in "
                                                r"\[0, 1\), got -0.5"),
    (optim.SGD, {"momentum": 1.0}, ValueError, r"momentum expected .* got 1.0"),
    (optim.SGD, {"dampening": 2.0}, ValueError, r"dampening expected .*\[0, 1\], got 2.0"),
    (optim.SGD, {"weight_decay": -1e-4}, ValueError, r"weight_decay expected a finite number "
                                                     r">= 0, got -0.0001"),
    (optim.SGD, {"nesterov": True}, ValueError, r"nesterov=True expected momentum > 0 and "
                                                r"dampening == 0, got momentum=0.0"),
    (optim.SGD, {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, ValueError,
     r"got momentum=0.9 and dampening=0.1"),
    (optim.SGD, {"nesterov": 1}, TypeError, r"nesterov expected True or False, got 1"),
    (optim.Momentum, {"momentum": math.inf}, ValueError, r"Momentum: momentum expected"),
    (optim.AdaGrad, {"eps": math.nan}, ValueError, r"AdaGrad: eps expected a finite number "
                                                   r">= 0, got nan"),
    (optim.AdaGrad, {"lr_decay": -1}, ValueError, r"lr_decay expected .* got -1"),
    (optim.AdaGrad, {"initial_accumulator_value": -1}, ValueError,
     r"initial_accumulator_value expected"),
    (optim.RMSprop, {"alpha": 1.5}, ValueError, r"RMSprop: alpha expected a finite number in "
                                                r"\[0, 1\], got 1.5"),
    (optim.RMSprop, {"centered": "yes"}, TypeError, r"centered expected True or False"),
    (optim.Adam, {"eps": -1e-8}, ValueError, r"Adam: eps expected .* got -1e-08"),
    (optim.Adam, {"amsgrad": None}, TypeError, r"amsgrad expected True or False, got None"),
    (optim.AdamW, {"weight_decay": math.inf}, ValueError, r"AdamW: weight_decay expected"),
])
def test_bad_hyper_parameters(cls, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        cls(_triples(), **kwargs)


P = np.zeros((2, 3))
G = np.zeros((2, 3))


@pytest.mark.parametrize(("params", "exc", "match"), [
    (42, TypeError, r"SGD: params expected an rnnlab.nn.Module or an iterable of "
                    r"\(name, param, grad\) triples, got int"),
    ("weights", TypeError, r"params expected an rnnlab.nn.Module .* got str"),
    ({"w": P}, TypeError, r"got dict"),
    (P, TypeError, r"got ndarray"),
    ([], ValueError, r"params expected at least one parameter, got none"),
    ([P], TypeError, r"params\[0\] expected a \(name, param, grad\) triple or a \(param, "
                     r"grad\) pair, got an array of shape \(2, 3\)"),
    ([(1, P)], TypeError, r"params\[0\] \('0'\) expected a parameter array and a gradient "
                          r"array, got int and an array"),
    ([("w", P)], TypeError, r"SGD: params got a \(name, param\) pair at params\[0\] \('w'\), as "
                            r"module.named_parameters\(\) yields, which carries no gradients"),
    ([("w", P, np.zeros(3))], ValueError, r"params\[0\] \('w'\) expected a gradient like its "
                                          r"parameter \(numpy float64 \(2, 3\)\), got numpy "
                                          r"float64 \(3,\)"),
    ([("w", P, G.astype(np.float32))], ValueError, r"got numpy float32 \(2, 3\)"),
    ([("w", np.zeros(3, int), np.zeros(3, int))], TypeError,
     r"expected a floating parameter, got dtype int64"),
    ([("w", P, G), ("w", np.zeros(2), np.zeros(2))], ValueError,
     r"params expected unique names, got 'w' twice"),
    ([("w", P, G), ("v", P, G)], ValueError, r"params expected each array once, got the array "
                                             r"of 'w' again as 'v'"),
])
def test_bad_params(params, exc, match):
    with pytest.raises(exc, match=match):
        optim.SGD(params, lr=0.1)


def _dummy():
    return optim.SGD(_triples(), lr=0.1)


@pytest.mark.parametrize(("make", "exc", "match"), [
    (lambda o: optim.StepLR(o, 0), ValueError, r"StepLR: step_size expected an integer >= 1, "
                                               r"got 0"),
    (lambda o: optim.StepLR(o, 2.0), TypeError, r"step_size expected an integer >= 1, got 2.0"),
    (lambda o: optim.StepLR(o, 2, gamma=0), ValueError, r"gamma expected a finite number > 0, "
                                                        r"got 0"),
    (lambda o: optim.ExponentialDecay(o, 0.5, start_epoch=0), ValueError,
     r"ExponentialDecay: start_epoch expected an integer >= 1, got 0"),
    (lambda o: optim.ExponentialDecay(o, math.nan), ValueError, r"gamma expected .* got nan"),
    (lambda o: optim.CosineAnnealing(o, 10, warmup_steps=10), ValueError,
     r"CosineAnnealing: warmup_steps expected < total_steps \(10\), got 10"),
    (lambda o: optim.CosineAnnealing(o, 0), ValueError, r"total_steps expected an integer >= 1"),
    (lambda o: optim.CosineAnnealing(o, 10, eta_min=-1), ValueError, r"eta_min expected"),
    (lambda o: optim.ReduceOnPlateau(o, factor=1.0), ValueError,
     r"ReduceOnPlateau: factor expected a finite number in \(0, 1\), got 1.0"),
    (lambda o: optim.ReduceOnPlateau(o, patience=-1), ValueError, r"patience expected an "
                                                                  r"integer >= 0, got -1"),
    (lambda o: optim.ReduceOnPlateau(o, mode="avg"), ValueError,
     r"mode expected one of \['min', 'max'\], got 'avg'"),
    (lambda o: optim.ReduceOnPlateau(o, threshold_mode="pct"), ValueError, r"threshold_mode"),
    (lambda o: optim.StepLR(object(), 2), TypeError,
     r"StepLR: optimizer expected an optimizer with a numeric lr attribute .* got object"),
    (lambda o: optim.ReduceOnPlateau(None), TypeError, r"got NoneType"),
    (lambda o: optim.ReduceOnPlateau(o).step("low"), TypeError,
     r"ReduceOnPlateau.step: metric expected a number, got str"),
])
def test_bad_schedule_arguments(make, exc, match):
    with pytest.raises(exc, match=match):
        make(_dummy())


@pytest.mark.parametrize(("call", "exc", "match"), [
    (lambda: optim.clip_grad_norm([G], 0), ValueError,
     r"clip_grad_norm: max_norm expected a number \(inf allowed\) > 0, got 0"),
    (lambda: optim.clip_grad_norm([G], math.nan), ValueError, r"max_norm expected .* got nan"),
    (lambda: optim.clip_grad_norm([G], -math.inf), ValueError, r"got -inf"),
    (lambda: optim.clip_grad_value([G], -1.0), ValueError,
     r"clip_grad_value: clip_value expected a finite number > 0, got -1.0"),
    (lambda: optim.clip_grad_value([G], math.inf), ValueError, r"clip_value expected"),
    (lambda: optim.clip_grad_norm("grads", 1.0), TypeError, r"clip_grad_norm: params expected "
                                                           r".* got str"),
    (lambda: optim.clip_grad_norm([G, "g"], 1.0), TypeError,
     r"params\[1\] expected a gradient array, a \(param, grad\) pair or a \(name, param, "
     r"grad\) triple, got str"),
    (lambda: optim.clip_grad_value([np.zeros(3, int)], 1.0), TypeError,
     r"expected floating gradients, got dtype int64"),
])
def test_bad_clip_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ------------------------------------------ a module's parameters hold no gradients
def _model():
    from rnnlab import nn

    model = nn.Linear(3, 2, rng=0, dtype=np.float64)
    model.grads["weight"] += 10.0
    return model


@pytest.mark.parametrize("what", ["parameters", "named_parameters"])
@pytest.mark.parametrize("call", [
    lambda params: optim.SGD(params, lr=0.1),
    lambda params: optim.Adam(params, lr=0.1),
    lambda params: optim.clip_grad_norm(params, 1.0),
    lambda params: optim.clip_grad_value(params, 0.5),
], ids=["SGD", "Adam", "clip_grad_norm", "clip_grad_value"])
def test_parameters_without_gradients_are_refused(call, what):
    """PyTorch's ``model.parameters()`` / ``model.named_parameters()`` carry the gradients
    on each tensor; here they are the weights alone: refused with what to pass instead,
    never taken as gradients (clipping would scale the weights)."""
    model = _model()
    before = {n: p.copy() for n, p in model.named_parameters()}
    with pytest.raises(TypeError, match=r"carries no gradients \(as in PyTorch\); pass the "
                                        r"module itself or module.named_parameters_and_grads"
                                        r"\(\)"):
        call(getattr(model, what)())
    for name, param in model.named_parameters():
        np.testing.assert_array_equal(param, before[name])


def test_a_module_and_its_triples_are_taken():
    model = _model()
    assert optim.clip_grad_norm(model, 1.0) == pytest.approx(10.0 * np.sqrt(6))
    model.grads["weight"][...] = 10.0
    assert optim.clip_grad_norm(model.named_parameters_and_grads(), 1.0) == pytest.approx(
        10.0 * np.sqrt(6))
    assert np.linalg.norm(model.grads["weight"]) == pytest.approx(1.0, rel=1e-5)
    weight = model.params["weight"].copy()
    optim.SGD(model.named_parameters_and_grads(), lr=0.5).step()
    np.testing.assert_allclose(model.params["weight"], weight - 0.5 * model.grads["weight"])
