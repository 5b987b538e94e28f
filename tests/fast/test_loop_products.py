"""The time loop's per-step products in their two forms, and the zero-gradient shortcut of
``Module.matmul_into_grad``.

``RNNLAB_LOOP_TRANSPOSED=1`` makes every scan compute ``h @ W^T`` as ``(W @ h^T)^T`` (and
``d @ W`` as ``(W^T @ d^T)^T``); the default picks it with two or more BLAS threads. The
torch fixture tests run both forms; here every cell kind, GRU's ``reset_after=False``
included, is compared form against form, forward and backward.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from tests.lmsteps import train_steps

from rnnlab import nn
from rnnlab.fast.loop import BackPlan, Plan, loop_transposed
from rnnlab.fast.threads import blas_threads
from rnnlab.nn.trace import BackTrace, Trace

LAYERS = {
    "rnn_tanh": lambda: nn.RNN(5, 7, num_layers=2, dtype=np.float64, rng=0),
    "rnn_relu": lambda: nn.RNN(5, 7, nonlinearity="relu", dtype=np.float64, rng=0),
    "lstm_bi": lambda: nn.LSTM(5, 7, num_layers=2, bidirectional=True, dtype=np.float64,
                               rng=0),
    "gru": lambda: nn.GRU(5, 7, num_layers=2, dtype=np.float64, rng=0),
    "gru_reset_before": lambda: nn.GRU(5, 7, reset_after=False, bidirectional=True,
                                       dtype=np.float64, rng=0),
}


def run(make: Any, transposed: str, monkeypatch: pytest.MonkeyPatch,
        lengths: Any = None) -> tuple[Any, ...]:
    monkeypatch.setenv("RNNLAB_LOOP_TRANSPOSED", transposed)
    layer = make()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 6, 5))
    out = layer.forward(x, None, lengths)
    dx = layer.backward(rng.standard_normal(out.shape))
    return (out, dx, layer.dh0, *(g.copy() for g in layer.grads.values()))


@pytest.mark.parametrize("lengths", [None, np.array([6, 2, 4])], ids=["full", "lengths"])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_transposed_products_give_the_same_layer(name: str, lengths: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    plain = run(LAYERS[name], "0", monkeypatch, lengths)
    transposed = run(LAYERS[name], "1", monkeypatch, lengths)
    for a, b in zip(plain, transposed, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)


def test_transposed_lm_training_matches_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several float32 SGD steps of a 2-layer LSTM LM, one form against the other."""
    from rnnlab.models import RNNLM
    from rnnlab.optim import SGD

    rng = np.random.default_rng(2)
    ids = rng.integers(0, 30, (4, 9)).astype(np.int32)
    runs = []
    for transposed in ("0", "1"):
        monkeypatch.setenv("RNNLAB_LOOP_TRANSPOSED", transposed)
        model = RNNLM(30, 8, 16, num_layers=2, rng=0)
        runs.append(train_steps(model, SGD(model, lr=1.0), ids, 6, 1.0))
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-5)
    assert runs[1][0][-1] < runs[1][0][0]
    for name, value in runs[0][1].items():
        np.testing.assert_allclose(runs[1][1][name], value, rtol=1e-4, atol=1e-6,
                                   err_msg=name)


@pytest.mark.parametrize("transposed", [False, True])
def test_trace_products(transposed: bool) -> None:
    rng = np.random.default_rng(3)
    tr = Trace(np, 2, 3, 4, 5, 4, np.float64, True)
    bw = BackTrace(np, 2, 3, 5, 4, np.float64, False)
    rec, brec = Plan(tr), BackPlan(bw)
    rec.transposed = brec.transposed = transposed
    h, W, add = rng.standard_normal((3, 5)), rng.standard_normal((20, 5)), \
        rng.standard_normal((3, 20))
    out = np.empty((3, 20))
    rec.times_wt(h, W, out)
    np.testing.assert_allclose(out, h @ W.T, rtol=1e-14)
    rec.times_wt(h, W, out, add=add)
    np.testing.assert_allclose(out, h @ W.T + add, rtol=1e-14)
    rec.times_wt(h, W[:10], out[:, :10])  # row blocks of W into column blocks of out
    np.testing.assert_allclose(out[:, :10], h @ W[:10].T, rtol=1e-14)
    d, back = rng.standard_normal((3, 20)), np.empty((3, 5))
    brec.times_w(d, W, back)
    np.testing.assert_allclose(back, d @ W, rtol=1e-14)
    brec.times_w(d[:, 10:], W[10:], back)
    np.testing.assert_allclose(back, d[:, 10:] @ W[10:], rtol=1e-14)
    assert not rec._scratch or transposed  # the plain form needs no scratch


def test_loop_transposed_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RNNLAB_LOOP_TRANSPOSED", raising=False)
    assert loop_transposed(1) is False  # one BLAS thread: the plain form
    assert loop_transposed(2) is True
    with blas_threads(1):  # no limit given, but the enclosing block allows one thread
        assert loop_transposed(None) is False
    monkeypatch.setenv("RNNLAB_LOOP_TRANSPOSED", "1")
    assert loop_transposed(1) is True
    monkeypatch.setenv("RNNLAB_LOOP_TRANSPOSED", "off")
    assert loop_transposed(4) is False


# ------------------------------------------------------------ matmul_into_grad
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_into_grad_zero_nonzero_and_negative_zero(dtype: Any) -> None:
    layer = nn.Linear(4, 3, dtype=dtype, rng=0)
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((3, 6)).astype(dtype), rng.standard_normal((6, 4)).astype(dtype)
    grad = layer.grads["weight"]
    grad.fill(0)
    layer.matmul_into_grad(grad, a, b)  # all zeros: written directly, exactly the product
    np.testing.assert_array_equal(grad, a @ b)
    layer.matmul_into_grad(grad, a, b)  # now added
    np.testing.assert_allclose(grad, 2 * (a @ b), rtol=1e-6)
    grad.fill(-0.0)  # -0.0 is not all-zero bits: takes the adding path, same value
    layer.matmul_into_grad(grad, a, b)
    np.testing.assert_array_equal(grad, np.float64(-0.0) + (a @ b))
    strided = np.zeros((3, 8), dtype=dtype)[:, ::2]  # not contiguous: the adding path
    layer.matmul_into_grad(strided, a, b)
    np.testing.assert_array_equal(strided, a @ b)


def test_loop_threads_by_kernel_form(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the packed kernel has its AVX-512 form, a loop whose products are below
    ``WIDE_LOOP_SHARE_MACS`` runs on one thread (whole, compiled); with the AVX2 form
    from ``LOOP_SHARE_MACS`` it keeps every BLAS thread."""
    from rnnlab.fast import loop

    monkeypatch.delenv("RNNLAB_LOOP_THREADS", raising=False)
    mid = loop.LOOP_SHARE_MACS
    assert loop.loop_threads(mid) is None
    assert loop.loop_threads(mid, wide=True) == 1
    assert loop.loop_threads(loop.WIDE_LOOP_SHARE_MACS, wide=True) is None
    assert loop.loop_threads(mid - 1) == 1
    monkeypatch.setenv("RNNLAB_LOOP_THREADS", "all")
    assert loop.loop_threads(mid - 1, wide=True) is None


@pytest.mark.parametrize("width,whole", [(16, False), (32, True)])
def test_mid_sized_lstm_plan_follows_the_width(width: int, whole: bool,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """D's sizes (products of 8.4 M multiply-adds) under two BLAS threads: BLAS with the
    AVX2 form, one whole compiled loop with the AVX-512 form."""
    pytest.importorskip("numba")
    from rnnlab.fast.loop import plan_of

    monkeypatch.delenv("RNNLAB_LOOP_THREADS", raising=False)
    monkeypatch.delenv("RNNLAB_PACKED", raising=False)
    monkeypatch.setattr("rnnlab.fast.packed.FORCED_WIDTH", width)
    monkeypatch.setattr("rnnlab.fast.packed.fast_on_this_cpu", lambda: True)
    monkeypatch.setattr("rnnlab.fast.loop.blas_thread_count", lambda: 2)
    layer = nn.LSTM(8, 256, rng=0)
    layer.forward(np.ones((32, 2, 8), np.float32))
    (trace,) = layer._traces.values()
    plan = plan_of(trace)
    assert plan.whole is whole and (plan.limit == 1) is whole
