"""The engine's minGRU / minLSTM kernels equal the reference: states, outputs, every
gradient and the recorded gradient flow, for both cells, 1-2 layers, both directions,
with and without lengths, a given initial state and dropout off, against both of the
reference's modes.

Tolerances, and why: in float64 the kernels compute the reference's sequential mode with
the same formulas in the same order (only the libm behind ``exp`` and ``log1p`` differs
from NumPy's): agreement to 1e-12 relative, against the log-space mode too (the
reference's own parallel == sequential bound). In float32 the kernels use the engine's
exponential (about two float32 ulps) and write minLSTM's normalised gates with one
division instead of the log form: 2e-5 relative to the largest value.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from rnnlab import fast, nn

pytest.importorskip("numba")

CELLS = {"mingru": nn.MinGRU, "minlstm": nn.MinLSTM}


@pytest.fixture(autouse=True)
def _follow_environment() -> Iterator[None]:
    yield
    fast.set_enabled(None)


def _run(cell: str, dtype: type, layers: int, bidirectional: bool, lengths: bool,
         mode: str, engine: bool, T: int = 7) -> list[np.ndarray]:
    fast.set_enabled(engine)
    rng = np.random.default_rng(3)
    N, D, H = 5, 4, 6
    layer = CELLS[cell](D, H, layers, bidirectional=bidirectional, mode=mode, rng=2,
                        dtype=dtype)
    K = 2 if bidirectional else 1
    xs = (rng.standard_normal((N, T, D)) * 2).astype(dtype)
    h0 = rng.standard_normal((layers * K, N, H)).astype(dtype)
    dhs = rng.standard_normal((N, T, K * H)).astype(dtype)
    dstate = rng.standard_normal((layers * K, N, H)).astype(dtype)
    lens = np.array([T, 2, T - 1, 1, 4]) if lengths else None
    hs = layer.forward(xs, h0, lengths=lens)
    ran = [("engine" in run) for entry in layer._cache["layers"] for run in entry["runs"]]
    assert all(ran) if engine else not any(ran)
    dxs = layer.backward(dhs, dstate, record=True)
    return ([hs, layer.h_n, dxs, layer.dh0, *layer.dh_states]
            + [layer.grads[k].copy() for k in sorted(layer.grads)])


CASES = [(cell, layers, bi, lengths) for cell in CELLS for layers in (1, 2)
         for bi in (False, True) for lengths in (False, True)]


def _close(engine: list[np.ndarray], reference: list[np.ndarray], rtol: float) -> None:
    for k, (e, r) in enumerate(zip(engine, reference, strict=True)):
        scale = max(float(np.abs(r).max()), 1e-30)
        err = float(np.abs(e - r).max()) / scale
        assert err <= rtol, f"output {k}: relative error {err:.3g} > {rtol:g}"


@pytest.mark.parametrize("mode", ["sequential", "parallel"])
@pytest.mark.parametrize("cell,layers,bidirectional,lengths", CASES)
def test_engine_equals_reference_float64(cell: str, layers: int, bidirectional: bool,
                                         lengths: bool, mode: str) -> None:
    args = (cell, np.float64, layers, bidirectional, lengths, mode)
    _close(_run(*args, engine=True), _run(*args, engine=False), 1e-12)


@pytest.mark.parametrize("cell,layers,bidirectional,lengths", CASES)
def test_engine_equals_reference_float32(cell: str, layers: int, bidirectional: bool,
                                         lengths: bool) -> None:
    args = (cell, np.float32, layers, bidirectional, lengths, "sequential")
    _close(_run(*args, engine=True), _run(*args, engine=False), 2e-5)


@pytest.mark.parametrize("cell", list(CELLS))
def test_rows_split_over_threads_give_the_same_bits(cell: str) -> None:
    """Large enough for the engine to split the batch rows over its threads (each row is
    its own loop over time, so the split cannot change a bit): the same as one call."""
    from rnnlab.fast import numba_minrnn

    G = 2 if cell == "mingru" else 3
    rng = np.random.default_rng(0)
    T, N, H = 64, 8, 512
    P = rng.standard_normal((T, N, G * H)).astype(np.float32)
    h0 = rng.standard_normal((N, H)).astype(np.float32)
    fast.set_enabled(True)
    h = fast.engine_for(np, np.float32).min_forward(cell, P, h0, None, False)
    whole = np.empty_like(h)
    numba_minrnn.KERNELS[cell][0](P, h0, np.ones((T, N), np.uint8), False, whole, 0, N)
    np.testing.assert_array_equal(h, whole)


def test_minlstm_float32_extreme_gates() -> None:
    """Pre-activations far beyond the engine exponential's clamp (|k| up to 300): the
    normalised gates still follow the reference's log form (computed in float64)."""
    rng = np.random.default_rng(1)
    T, N, H = 5, 3, 4
    P = (rng.uniform(-300, 300, (T, N, 3 * H))).astype(np.float32)
    P[:, 0, : 2 * H] = rng.uniform(-300, -100, (T, 2 * H))  # both gates far below zero
    h0 = np.ones((N, H), np.float32)
    fast.set_enabled(True)
    h = fast.engine_for(np, np.float32).min_forward("minlstm", P, h0, None, False)
    from rnnlab.nn import minrnn_math as m

    a, b, _ = m.minlstm_gates(np, P.astype(np.float64), False)
    ref = m.scan_sequential(np, a, b, h0.astype(np.float64))
    assert np.isfinite(h).all()
    np.testing.assert_allclose(h, ref, rtol=1e-5, atol=1e-5 * float(np.abs(ref).max()))


def test_long_sequence_float32() -> None:
    """T = 4,096 in float32 through the engine: finite, and equal to the reference's
    sequential mode to float32 rounding."""
    args = ("mingru", np.float32, 1, False, False, "sequential")
    engine = _run(*args, engine=True, T=4096)
    assert all(np.isfinite(x).all() for x in engine)
    _close(engine, _run(*args, engine=False, T=4096), 1e-4)


def test_kernels_off_runs_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RNNLAB_KERNELS", "0")
    fast.set_enabled(True)
    layer = nn.MinGRU(3, 4, rng=0)
    layer.forward(np.ones((2, 3, 3), layer.dtype))
    assert "engine" not in layer._cache["layers"][0]["runs"][0]
