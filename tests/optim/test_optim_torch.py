"""Live agreement with PyTorch: optimizers, clipping and schedules (skipped without torch)."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab import optim
from rnnlab.nn import Linear

torch = pytest.importorskip("torch", reason="PyTorch is not installed; live checks skipped")

STEPS = 20

OPT_CASES = [
    ("SGD", {"lr": 0.1}, "SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "weight_decay": 0.05}, "SGD", {"lr": 0.1, "weight_decay": 0.05}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}, "SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.01},
     "SGD", {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
     "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("Momentum", {"lr": 0.05}, "SGD", {"lr": 0.05, "momentum": 0.9}),
    ("Momentum", {"lr": 0.05, "momentum": 0.7, "weight_decay": 0.02},
     "SGD", {"lr": 0.05, "momentum": 0.7, "weight_decay": 0.02}),
    ("Nesterov", {"lr": 0.05}, "SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("Nesterov", {"lr": 0.05, "momentum": 0.6, "weight_decay": 0.02},
     "SGD", {"lr": 0.05, "momentum": 0.6, "nesterov": True, "weight_decay": 0.02}),
    ("AdaGrad", {"lr": 0.1}, "Adagrad", {"lr": 0.1}),
    ("AdaGrad", {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.1,
                 "initial_accumulator_value": 0.5, "eps": 1e-6},
     "Adagrad", {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.1,
                 "initial_accumulator_value": 0.5, "eps": 1e-6}),
    ("RMSprop", {}, "RMSprop", {}),
    ("RMSprop", {"momentum": 0.9, "weight_decay": 0.1},
     "RMSprop", {"momentum": 0.9, "weight_decay": 0.1}),
    ("RMSprop", {"centered": True, "alpha": 0.9}, "RMSprop", {"centered": True, "alpha": 0.9}),
    ("RMSprop", {"lr": 0.003, "centered": True, "momentum": 0.5, "weight_decay": 0.1,
                 "eps": 1e-6},
     "RMSprop", {"lr": 0.003, "centered": True, "momentum": 0.5, "weight_decay": 0.1,
                 "eps": 1e-6}),
    ("Adam", {"lr": 0.05}, "Adam", {"lr": 0.05}),
    ("Adam", {"lr": 0.05, "betas": (0.5, 0.9), "eps": 1e-6, "weight_decay": 0.1},
     "Adam", {"lr": 0.05, "betas": (0.5, 0.9), "eps": 1e-6, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.05, "amsgrad": True}, "Adam", {"lr": 0.05, "amsgrad": True}),
    ("Adam", {"lr": 0.05, "amsgrad": True, "weight_decay": 0.1},
     "Adam", {"lr": 0.05, "amsgrad": True, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.05}, "AdamW", {"lr": 0.05}),
    ("AdamW", {"lr": 0.05, "weight_decay": 0.3, "amsgrad": True},
     "AdamW", {"lr": 0.05, "weight_decay": 0.3, "amsgrad": True}),
]


def _ids(case):
    return f"{case[0]}-" + "-".join(f"{k}={v}" for k, v in case[1].items())


def _torch_grads(problem, tparams, t):
    for p, a, c, n in zip(tparams, problem.a, problem.c, problem.noise_at(t), strict=True):
        p.grad = (torch.from_numpy(a) * (p.detach() - torch.from_numpy(c))
                  + torch.from_numpy(n))


@pytest.mark.parametrize("case", OPT_CASES, ids=[_ids(c) for c in OPT_CASES])
def test_optimizer_matches_torch(case, quadratic):
    name, kwargs, tname, tkwargs = case
    problem = quadratic(seed=3)
    triples = problem.triples()
    opt = getattr(optim, name)(triples, **kwargs)
    tparams = [torch.tensor(p, requires_grad=True) for p in problem.start]
    topt = getattr(torch.optim, tname)(tparams, **tkwargs)
    # The velocity forms follow PyTorch only while lr is constant (see rnnlab.optim.sgd).
    change_lr = name not in ("Momentum", "Nesterov")
    for t in range(STEPS):
        if change_lr and t == STEPS // 2:
            opt.lr = opt.lr * 0.3
            for group in topt.param_groups:
                group["lr"] = group["lr"] * 0.3
        problem.fill(triples, t)
        _torch_grads(problem, tparams, t)
        opt.step()
        topt.step()
    for (_, p, _), tp in zip(triples, tparams, strict=True):
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_optimizer_on_module_matches_torch():
    layer = Linear(4, 3, dtype="float64", rng=0)
    tlayer = torch.nn.Linear(4, 3, dtype=torch.float64)
    with torch.no_grad():
        tlayer.weight.copy_(torch.from_numpy(layer.params["weight"]))
        tlayer.bias.copy_(torch.from_numpy(layer.params["bias"]))
    opt = optim.Adam(layer, lr=0.01, weight_decay=0.01)
    topt = torch.optim.Adam(tlayer.parameters(), lr=0.01, weight_decay=0.01)
    rng = np.random.default_rng(5)
    for _ in range(10):
        x = rng.standard_normal((6, 4))
        dy = rng.standard_normal((6, 3))
        opt.zero_grad()
        layer.forward(x)
        layer.backward(dy)
        topt.zero_grad()
        (tlayer(torch.from_numpy(x)) * torch.from_numpy(dy)).sum().backward()
        opt.step()
        topt.step()
    np.testing.assert_allclose(layer.params["weight"], tlayer.weight.detach().numpy(),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.params["bias"], tlayer.bias.detach().numpy(),
                               rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------- clipping
@pytest.mark.parametrize("max_norm", [0.5, 3.0, 1e3])
def test_clip_grad_norm_matches_torch(max_norm):
    rng = np.random.default_rng(11)
    grads = [rng.standard_normal(s) for s in [(4, 5), (7,), (2, 2, 3)]]
    tparams = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for tp, g in zip(tparams, grads, strict=True):
        tp.grad = torch.tensor(g)
    total = optim.clip_grad_norm(grads, max_norm)
    ttotal = torch.nn.utils.clip_grad_norm_(tparams, max_norm)
    assert total == pytest.approx(float(ttotal), rel=1e-13)
    for g, tp in zip(grads, tparams, strict=True):
        np.testing.assert_allclose(g, tp.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_clip_grad_value_matches_torch():
    rng = np.random.default_rng(12)
    grads = [3 * rng.standard_normal(s) for s in [(4, 5), (7,)]]
    tparams = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for tp, g in zip(tparams, grads, strict=True):
        tp.grad = torch.tensor(g)
    optim.clip_grad_value(grads, 1.5)
    torch.nn.utils.clip_grad_value_(tparams, 1.5)
    for g, tp in zip(grads, tparams, strict=True):
        np.testing.assert_array_equal(g, tp.grad.numpy())


# ---------------------------------------------------------------------- schedules
def _torch_opt(lr):
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)


def _dummy(lr):
    return optim.SGD([("w", np.zeros(1), np.zeros(1))], lr=lr)


def _torch_lrs(topt, sched, n, *args):
    lrs = [topt.param_groups[0]["lr"]]
    for _ in range(n):
        topt.step()  # PyTorch warns if the scheduler steps first
        sched.step(*args)
        lrs.append(topt.param_groups[0]["lr"])
    return lrs


def _our_lrs(opt, sched, n):
    lrs = [opt.lr]
    for _ in range(n):
        sched.step()
        lrs.append(opt.lr)
    return lrs


def test_step_lr_matches_torch():
    topt = _torch_opt(0.7)
    expected = _torch_lrs(topt, torch.optim.lr_scheduler.StepLR(topt, 3, gamma=0.4), 25)
    opt = _dummy(0.7)
    got = _our_lrs(opt, optim.StepLR(opt, 3, gamma=0.4), 25)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("start_epoch", [1, 4])
def test_exponential_decay_is_shifted_exponential_lr(start_epoch):
    topt = _torch_opt(1.3)
    expected = _torch_lrs(topt, torch.optim.lr_scheduler.ExponentialLR(topt, gamma=0.8), 20)
    opt = _dummy(1.3)
    got = _our_lrs(opt, optim.ExponentialDecay(opt, 0.8, start_epoch=start_epoch), 20)
    shifted = [expected[max(0, n - start_epoch + 1)] for n in range(21)]
    np.testing.assert_allclose(got, shifted, rtol=1e-12)


@pytest.mark.parametrize("eta_min", [0.0, 0.01])
def test_cosine_matches_torch(eta_min):
    topt = _torch_opt(0.5)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=40, eta_min=eta_min)
    expected = _torch_lrs(topt, sched, 40)
    opt = _dummy(0.5)
    got = _our_lrs(opt, optim.CosineAnnealing(opt, 40, eta_min=eta_min), 40)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-14)


PLATEAU_METRICS = [10.0, 9.0, 9.5, 9.0, 8.9, 8.95, 8.99, 9.1, 8.0, 8.0, 8.1, 7.0, 7.5,
                   7.4, 7.3, 7.2, 7.3, 7.1, 7.15, 7.12]


@pytest.mark.parametrize("kwargs", [
    {},
    {"patience": 2},
    {"patience": 1, "cooldown": 2, "threshold": 0.01},
    {"patience": 1, "threshold": 0.05, "threshold_mode": "abs", "min_lr": 0.3},
    {"mode": "max", "factor": 0.5},
])
def test_plateau_matches_torch(kwargs):
    # eps=0: PyTorch otherwise skips cuts smaller than 1e-8 (ReduceOnPlateau has no eps).
    tkw = {"factor": 0.25, "patience": 0, "threshold": 0.0, "eps": 0.0, **kwargs}
    topt = _torch_opt(2.0)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **tkw)
    opt = _dummy(2.0)
    sched = optim.ReduceOnPlateau(opt, **kwargs)
    for metric in PLATEAU_METRICS:
        topt.step()
        tsched.step(metric)
        sched.step(metric)
        assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-15)
