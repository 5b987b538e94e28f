"""The engine's parameter update (``Engine.sub_scaled``): one compiled sweep or cache-sized
blocks, with the same roundings per element as the reference's work array."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab import optim


def _sgd_by_work_arrays(p, g, buf, lr, mu=0.0, dampening=0.0, weight_decay=0.0,
                        nesterov=False):
    """One SGD step written with whole-array work arrays, rounding as the blocked path
    must: every product rounded to the dtype before it is added or subtracted."""
    d = g
    if weight_decay:
        d = np.multiply(p, weight_decay).astype(p.dtype)
        d += g
    if mu == 0:
        p -= np.multiply(d, lr).astype(p.dtype)
        return buf
    if buf is None:
        buf = d.copy()
    else:
        buf *= mu
        buf += np.multiply(d, 1.0 - dampening).astype(p.dtype) if dampening else d
    if nesterov:
        p -= np.multiply(d, lr).astype(p.dtype)
        p -= np.multiply(buf, lr * mu).astype(p.dtype)
    else:
        p -= np.multiply(buf, lr).astype(p.dtype)
    return buf


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", [
    {},
    {"weight_decay": 0.01},
    {"momentum": 0.9},
    {"momentum": 0.9, "dampening": 0.25, "weight_decay": 0.01},
    {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
], ids=["plain", "decay", "momentum", "dampened", "nesterov"])
@pytest.mark.parametrize("kernels", ["auto", "0"])
def test_sgd_blocked_update_is_bit_identical(dtype, kw, kernels, monkeypatch):
    """SGD subtracts ``lr * g`` (and with Nesterov ``lr * mu * b``) from contiguous
    parameters in one compiled sweep (numba, float32) or block by block through a small
    scratch: the same roundings per element as through a whole work array, so the same
    bits."""
    from rnnlab.fast.engine import UPDATE_BLOCK

    monkeypatch.setenv("RNNLAB_KERNELS", kernels)

    rng = np.random.default_rng(5)
    # a ragged last block; exactly one block and a small one (both the whole-array path)
    shapes = [(3, UPDATE_BLOCK + 7), (UPDATE_BLOCK,), (5, 4)]
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
    strided = rng.standard_normal((UPDATE_BLOCK + 3, 2)).astype(dtype)
    params.append(strided[:, 0])  # not contiguous: the whole-array path
    grads.append(rng.standard_normal(UPDATE_BLOCK + 3).astype(dtype))
    expected = [p.copy() for p in params]
    bufs = [None] * len(params)
    opt = optim.SGD([(f"p{i}", p, g) for i, (p, g) in enumerate(zip(params, grads,
                                                                      strict=True))],
                    lr=0.37, **kw)
    for _ in range(3):
        opt.step()
        for i, (e, g) in enumerate(zip(expected, grads, strict=True)):
            bufs[i] = _sgd_by_work_arrays(e, g, bufs[i], 0.37, kw.get("momentum", 0.0),
                                          kw.get("dampening", 0.0),
                                          kw.get("weight_decay", 0.0),
                                          kw.get("nesterov", False))
        for p, e in zip(params, expected, strict=True):
            np.testing.assert_array_equal(p, e)
    np.testing.assert_array_equal(strided[:, 0], expected[-1])  # written through the view


@pytest.mark.parametrize("kernels", ["auto", "0"])
def test_plain_sgd_needs_no_parameter_sized_work_array(kernels, monkeypatch):
    from rnnlab.fast.engine import UPDATE_BLOCK

    monkeypatch.setenv("RNNLAB_KERNELS", kernels)
    # the compiled sweep needs no scratch at all, the blocks one block's worth (the
    # engine's, per thread); the optimizer keeps no work array
    p = np.zeros(3 * UPDATE_BLOCK + 1, dtype=np.float32)
    for kw in ({}, {"momentum": 0.9}):
        opt = optim.SGD([("p", p, np.ones_like(p))], lr=0.1, **kw)
        opt.step()
        opt.step()
        assert [a.size for a in opt._pool.values()] == []


def test_compiled_sgd_sweep_rounds_like_numpy_on_special_values(monkeypatch):
    """The compiled ``p -= f32(lr) * g`` keeps NumPy's roundings exactly, also for
    infinities, NaN, signed zeros, subnormals and products that overflow or underflow."""
    from rnnlab.fast import kernels as _kernels

    pytest.importorskip("numba", reason="numba is not installed (the optional 'fast' extra)")
    monkeypatch.setenv("RNNLAB_KERNELS", "auto")
    tiny = np.finfo(np.float32).smallest_subnormal
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, tiny, -tiny, 3e38, -3e38,
                        1e-38, 1.0, -1.0], np.float32)
    rng = np.random.default_rng(11)
    p0 = np.concatenate([np.repeat(special, special.size),
                         rng.standard_normal(5000).astype(np.float32)])
    g = np.concatenate([np.tile(special, special.size),
                        (rng.standard_normal(5000) * 10.0 ** rng.integers(-40, 38, 5000))
                        .astype(np.float32)])
    for lr in (0.37, 20.0, 1e-30, 3.0e38, 0.0):
        p = p0.copy()
        with np.errstate(all="ignore"):
            optim.SGD([("p", p, g)], lr=lr).step()
            expected = p0 - np.multiply(g, lr)
        assert _kernels.for_arrays(np, np.float32) is not None
        np.testing.assert_array_equal(p.view(np.uint32)[~np.isnan(p)],
                                      expected.view(np.uint32)[~np.isnan(expected)])
        np.testing.assert_array_equal(np.isnan(p), np.isnan(expected))
