"""State dicts: bit-exact resume (with a schedule), JSON hyper-parameters, validation."""

from __future__ import annotations

import copy
import io
import json

import numpy as np
import pytest

from rnnlab import optim

CASES = [
    (optim.SGD, {"lr": 0.1}),
    (optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (optim.SGD, {"lr": 0.1, "momentum": 0.9, "dampening": 0.2}),
    (optim.Momentum, {"lr": 0.05, "weight_decay": 0.01}),
    (optim.Nesterov, {"lr": 0.05}),
    (optim.AdaGrad, {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.01}),
    (optim.RMSprop, {"centered": True, "momentum": 0.9, "weight_decay": 0.01}),
    (optim.RMSprop, {}),
    (optim.Adam, {"lr": 0.01, "amsgrad": True, "weight_decay": 0.01}),
    (optim.Adam, {"lr": 0.01}),
    (optim.AdamW, {"lr": 0.01, "amsgrad": True}),
]
IDS = [f"{c.__name__}-{'-'.join(k)}" for c, k in CASES]


def _save_load(state):
    """Through a checkpoint: hyper-parameters via JSON, arrays via ``np.savez``."""
    meta = json.loads(json.dumps({k: state[k] for k in ("type", "hyper", "step")}))
    buf = io.BytesIO()
    flat = {f"{n}/{b}": a for n, bufs in state["state"].items() for b, a in bufs.items()}
    np.savez(buf, **flat)
    buf.seek(0)
    arrays = np.load(buf)
    restored = {n: {} for n in state["state"]}
    for key in arrays.files:
        name, bname = key.split("/")
        restored[name][bname] = arrays[key]
    return {**meta, "state": restored}


def _run(problem, triples, opt, sched, steps):
    for t in steps:
        problem.fill(triples, t)
        opt.step()
        opt.zero_grad()
        sched.step()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("cls", "kwargs"), CASES, ids=IDS)
def test_resume_is_bit_exact(cls, kwargs, dtype, quadratic):
    problem = quadratic(seed=7, dtype=dtype)
    k, j = 12, 5
    full = problem.triples()
    opt = cls(full, **kwargs)
    sched = optim.CosineAnnealing(opt, total_steps=k, warmup_steps=2, eta_min=1e-4)
    _run(problem, full, opt, sched, range(k))

    first = problem.triples()
    opt1 = cls(first, **kwargs)
    sched1 = optim.CosineAnnealing(opt1, total_steps=k, warmup_steps=2, eta_min=1e-4)
    _run(problem, first, opt1, sched1, range(j))
    opt_state = _save_load(opt1.state_dict())
    sched_state = json.loads(json.dumps(sched1.state_dict()))

    second = [(n, p.copy(), np.zeros_like(p)) for n, p, _ in first]
    opt2 = cls(second, **{**kwargs, "lr": 123.0})  # lr comes back from the state dict
    sched2 = optim.CosineAnnealing(opt2, total_steps=k, warmup_steps=2, eta_min=1e-4)
    opt2.load_state_dict(opt_state)
    sched2.load_state_dict(sched_state)
    assert opt2.lr == opt1.lr and opt2.step_count == j
    _run(problem, second, opt2, sched2, range(j, k))

    for (_, a, _), (_, b, _) in zip(full, second, strict=True):
        assert np.array_equal(a, b)
    assert opt2.step_count == opt.step_count and opt2.lr == opt.lr
    for name in opt.param_names:
        assert sorted(opt.state[name]) == sorted(opt2.state[name])
        for key, buf in opt.state[name].items():
            assert np.array_equal(buf, opt2.state[name][key])
            assert buf.dtype == dtype


def test_state_dict_layout_and_snapshot(quadratic):
    problem = quadratic()
    triples = problem.triples()
    opt = optim.Adam(triples, lr=0.01, betas=(0.8, 0.99))
    state = opt.state_dict()
    assert state == {"type": "Adam", "step": 0, "state": {"p0": {}, "p1": {}, "p2": {}},
                     "hyper": {"lr": 0.01, "betas": [0.8, 0.99], "eps": 1e-8,
                               "weight_decay": 0.0, "amsgrad": False}}
    assert json.loads(json.dumps(state["hyper"])) == state["hyper"]
    problem.fill(triples, 0)
    opt.step()
    snap = opt.state_dict()
    kept = copy.deepcopy(snap)
    opt.step()
    assert np.array_equal(snap["state"]["p0"]["exp_avg"], kept["state"]["p0"]["exp_avg"])
    assert snap["step"] == 1


def _stepped(quadratic):
    problem = quadratic()
    triples = problem.triples()
    opt = optim.SGD(triples, lr=0.1, momentum=0.9)
    problem.fill(triples, 0)
    opt.step()
    return opt


def _mutations():
    def set_(path, value):
        def apply(d):
            target = d
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
        return apply

    def drop(path):
        def apply(d):
            target = d
            for key in path[:-1]:
                target = target[key]
            del target[path[-1]]
        return apply

    f32 = np.zeros((3, 4), np.float32)
    return [
        (set_(["type"], "Adam"), ValueError, r"type expected 'SGD', got 'Adam'"),
        (drop(["step"]), ValueError, r"missing keys \['step'\]"),
        (set_(["extra"], 1), ValueError, r"unexpected keys \['extra'\]"),
        (set_(["step"], -1), ValueError, r"step expected an integer >= 0, got -1"),
        (set_(["step"], 1.5), TypeError, r"step expected an integer >= 0, got 1.5"),
        (set_(["hyper", "lr"], -0.1), ValueError, r"lr expected a finite number >= 0, got -0.1"),
        (drop(["hyper", "nesterov"]), ValueError, r"hyper expected keys .*missing keys "
                                                  r"\['nesterov'\]"),
        (set_(["state", "q"], {}), ValueError, r"state expected keys .*unexpected keys "
                                               r"\['q'\]"),
        (drop(["state", "p1"]), ValueError, r"missing keys \['p1'\]"),
        (set_(["state", "p0", "velocity"], np.zeros((3, 4))), ValueError,
         r"state\['p0'\]\['velocity'\] expected a buffer name in \['momentum_buffer'\], "
         r"got 'velocity'"),
        (set_(["state", "p0", "momentum_buffer"], np.zeros((4, 3))), ValueError,
         r"state\['p0'\]\['momentum_buffer'\] expected shape \(3, 4\), got \(4, 3\)"),
        (set_(["state", "p0", "momentum_buffer"], f32), ValueError,
         r"expected dtype float64, got float32"),
        (set_(["state", "p2"], [1, 2]), TypeError, r"state\['p2'\] expected a mapping"),
    ]


@pytest.mark.parametrize(("mutate", "exc", "match"), _mutations())
def test_load_state_dict_rejects_mismatch_and_changes_nothing(mutate, exc, match, quadratic):
    opt = _stepped(quadratic)
    good = opt.state_dict()
    bad = copy.deepcopy(good)
    mutate(bad)
    opt.lr = 0.5  # differs from the dict, must survive a failed load
    before = opt.state_dict()
    with pytest.raises(exc, match=match):
        opt.load_state_dict(bad)
    after = opt.state_dict()
    assert after["hyper"] == before["hyper"] and after["step"] == before["step"]
    for name, bufs in before["state"].items():
        for key, buf in bufs.items():
            assert np.array_equal(after["state"][name][key], buf)


def test_load_state_dict_message_names_owner(quadratic):
    opt = _stepped(quadratic)
    with pytest.raises(TypeError, match=r"SGD.load_state_dict: state_dict expected a mapping"):
        opt.load_state_dict([1, 2])


def test_load_accepts_missing_buffers_before_first_step(quadratic):
    problem = quadratic()
    fresh = optim.Adam(problem.triples())
    opt = optim.Adam(problem.triples())
    opt.load_state_dict(fresh.state_dict())
    assert opt.step_count == 0 and opt.state == {"p0": {}, "p1": {}, "p2": {}}
