"""The same code on CuPy arrays (skipped without CuPy and a CUDA device)."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab import optim
from rnnlab.backend import gpu_available, to_numpy

pytestmark = pytest.mark.gpu

CASES = [
    (optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    (optim.Momentum, {"lr": 0.05}),
    (optim.Nesterov, {"lr": 0.05}),
    (optim.AdaGrad, {"lr": 0.1, "weight_decay": 0.01}),
    (optim.RMSprop, {"centered": True, "momentum": 0.9, "weight_decay": 0.01}),
    (optim.Adam, {"lr": 0.01, "amsgrad": True, "weight_decay": 0.01}),
    (optim.AdamW, {"lr": 0.01}),
]


@pytest.fixture
def cp():
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed")
    if not gpu_available():
        pytest.skip("no usable CUDA device")
    return cupy


@pytest.mark.parametrize(("cls", "kwargs"), CASES, ids=[c.__name__ for c, _ in CASES])
def test_gpu_matches_cpu_and_state_moves(cls, kwargs, cp, quadratic):
    problem = quadratic(seed=2)
    cpu = problem.triples()
    gpu = [(n, cp.asarray(p), cp.zeros_like(cp.asarray(g))) for n, p, g in cpu]
    opt_c, opt_g = cls(cpu, **kwargs), cls(gpu, **kwargs)
    for t in range(10):
        problem.fill(cpu, t)
        for (_, _, gc), (_, _, gg) in zip(cpu, gpu, strict=True):
            gg[...] = cp.asarray(gc)
        optim.clip_grad_norm(cpu, 2.0)
        optim.clip_grad_norm(gpu, 2.0)
        opt_c.step()
        opt_g.step()
    for (_, pc, _), (_, pg, _) in zip(cpu, gpu, strict=True):
        assert isinstance(pg, cp.ndarray)
        np.testing.assert_allclose(to_numpy(pg), pc, rtol=1e-11, atol=1e-12)
    state = opt_g.state_dict()
    for bufs in state["state"].values():
        assert all(isinstance(b, cp.ndarray) for b in bufs.values())
    opt_c.load_state_dict(state)  # CuPy arrays into a CPU optimizer
    opt_g.load_state_dict(opt_c.state_dict())  # and numpy arrays back onto the GPU
    for bufs in opt_g.state.values():
        assert all(isinstance(b, cp.ndarray) for b in bufs.values())


def test_gpu_clip_value(cp):
    g = cp.asarray([-3.0, 0.5, 2.0])
    optim.clip_grad_value([g], 1.0)
    np.testing.assert_array_equal(to_numpy(g), [-1.0, 0.5, 1.0])
