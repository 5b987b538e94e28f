"""The optional compiled kernels agree with the NumPy path (both paths are tested)."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab import nn
from rnnlab.fast import kernels as _kernels
from rnnlab.fast.loop import plan_of

pytest.importorskip("numba", reason="numba is not installed (the optional 'fast' extra)")

KINDS = [(nn.RNN, {}), (nn.RNN, {"nonlinearity": "relu"}), (nn.LSTM, {}), (nn.GRU, {}),
         (nn.GRU, {"reset_after": False})]


def run_layer(cls, kw, monkeypatch, kernels: str):
    monkeypatch.setenv("RNNLAB_KERNELS", kernels)
    rng = np.random.default_rng(0)
    layer = cls(6, 9, num_layers=2, bidirectional=True, rng=1, **kw)
    xs = rng.standard_normal((5, 7, 6)).astype(np.float32) * 2
    dhs = rng.standard_normal((5, 7, 18)).astype(np.float32)
    lengths = np.array([7, 3, 5, 1, 7])
    hs = layer.forward(xs, lengths=lengths)
    dxs = layer.backward(dhs)
    return hs, dxs, {k: v.copy() for k, v in layer.grads.items()}, layer.dh0


@pytest.mark.parametrize("cls,kw", KINDS)
def test_layers_agree_with_numpy_path(cls, kw, monkeypatch):
    fast = run_layer(cls, kw, monkeypatch, "auto")
    slow = run_layer(cls, kw, monkeypatch, "0")
    for a, b in zip(fast[:2], slow[:2], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)
    for name in slow[2]:
        np.testing.assert_allclose(fast[2][name], slow[2][name], rtol=1e-4, atol=5e-5,
                                   err_msg=name)
    np.testing.assert_allclose(fast[3], slow[3], rtol=1e-4, atol=2e-5)


def test_kernels_only_for_numpy_float32(monkeypatch):
    monkeypatch.setenv("RNNLAB_KERNELS", "auto")
    assert _kernels.for_arrays(np, np.float32) is not None
    assert _kernels.for_arrays(np, np.float64) is None
    monkeypatch.setenv("RNNLAB_KERNELS", "0")
    assert _kernels.for_arrays(np, np.float32) is None


def test_vectorised_exp_accuracy():
    K = _kernels.get()
    x = np.linspace(-79, 79, 200_001).astype(np.float32)
    y = x.copy()
    K.vexp(y)
    exact = np.exp(x.astype(np.float64))
    assert np.max(np.abs(y - exact) / exact) < 3e-7  # about two float32 ulps
    big = np.array([-1e4, 1e4, 0.0], np.float32)
    K.vexp(big)
    assert np.all(np.isfinite(big)) and big[2] == 1.0


def _xent_reference(logits, targets, reduction):
    """Loss and gradient of softmax cross-entropy in float64 (ignore index -100)."""
    V = logits.shape[-1]
    z = logits.astype(np.float64).reshape(-1, V)
    t = targets.reshape(-1)
    valid = t != -100
    z = np.where(valid[:, None], z, 0.0)
    z -= z.max(axis=1, keepdims=True)
    rows, tt = np.arange(t.size), np.where(valid, t, 0)
    losses = np.log(np.exp(z).sum(axis=1)) - z[rows, tt]
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    p[rows, tt] -= 1
    p[~valid] = 0
    scale = 1.0 / valid.sum() if reduction == "mean" else 1.0
    return float(losses[valid].sum() * scale), (p * scale).reshape(logits.shape)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_agrees(reduction, monkeypatch):
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((6, 40, 300)).astype(np.float32) * 4
    logits[0, 0, 5] = 1e4
    logits[1, 2] = np.nan  # an ignored row: must not leak
    targets = rng.integers(0, 300, (6, 40))
    targets[1, 2] = targets[4, 7] = -100
    ref_loss, ref = _xent_reference(logits, targets, reduction)
    at_target = np.zeros(ref.shape, bool)
    np.put_along_axis(at_target, np.where(targets == -100, 0, targets)[..., None], True, -1)
    at_target &= (targets != -100)[..., None]
    out = {}
    for mode in ("auto", "0"):
        monkeypatch.setenv("RNNLAB_KERNELS", mode)
        loss = nn.SoftmaxCrossEntropy(reduction=reduction)
        out[mode] = (loss.forward(logits, targets), loss.backward().copy())
    for mode, (value, grad) in out.items():
        assert np.isfinite(value)
        assert value == pytest.approx(ref_loss, rel=1e-6), mode
        # each entry p * scale to a few float32 ulps; at the target p - 1 cancels, so
        # there the error is a few ulps of the scale (float32 sums of 300 terms)
        np.testing.assert_allclose(grad[~at_target], ref[~at_target], rtol=1e-5, atol=1e-30,
                                   err_msg=mode)
        scale = 1.0 if reduction == "sum" else 1.0 / (targets != -100).sum()
        np.testing.assert_allclose(grad[at_target], ref[at_target], rtol=1e-5, atol=4e-7 * scale,
                                   err_msg=mode)
        assert not grad[1, 2].any()
    assert out["auto"][0] == pytest.approx(out["0"][0], rel=1e-6)


def test_lm_training_step_agrees(monkeypatch):
    from rnnlab.models import RNNLM

    results = {}
    for mode in ("auto", "0"):
        monkeypatch.setenv("RNNLAB_KERNELS", mode)
        model = RNNLM(50, 8, 16, 2, "lstm", rng=0)
        ids = np.random.default_rng(1).integers(0, 50, (4, 12))
        losses = []
        for _ in range(5):
            model.zero_grad()
            losses.append(model.forward_loss(ids[:, :-1], ids[:, 1:]))
            model.backward()
            for _, p, g in model.named_parameters_and_grads():
                p -= 0.5 * g
        results[mode] = losses
    np.testing.assert_allclose(results["auto"], results["0"], rtol=1e-5)


@pytest.mark.parametrize("padding_idx", [None, 2])
def test_embedding_scatter_agrees(padding_idx, monkeypatch):
    """The compiled scatter-add sums repeated ids exactly as the sorted NumPy path does."""
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 7, size=(6, 40))  # every id repeated many times
    ids[0, :5] = 2
    dout = rng.standard_normal((6, 40, 5)).astype(np.float32)
    grads = {}
    for mode in ("auto", "0"):
        monkeypatch.setenv("RNNLAB_KERNELS", mode)
        emb = nn.Embedding(7, 5, padding_idx=padding_idx, rng=0)
        emb.forward(ids)
        emb.backward(dout)
        emb.forward(ids[:, ::2])  # a second, non-contiguous batch accumulates
        emb.backward(dout[:, ::2])
        grads[mode] = emb.grads["weight"].copy()
    expected = np.zeros((7, 5), np.float64)
    for i, d in ((ids, dout), (ids[:, ::2], dout[:, ::2])):
        np.add.at(expected, i.reshape(-1), d.reshape(-1, 5).astype(np.float64))
    if padding_idx is not None:
        expected[padding_idx] = 0
    np.testing.assert_allclose(grads["auto"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grads["auto"], grads["0"], rtol=1e-5, atol=1e-5)


def test_cross_entropy_threads_give_the_same_bits(monkeypatch):
    """The compiled sweep on two threads (blocks claimed from a shared counter, so the
    split differs from run to run) gives the bits of one thread, loss included."""
    monkeypatch.setenv("RNNLAB_KERNELS", "auto")
    rng = np.random.default_rng(5)
    logits = (rng.standard_normal((211, 3001)) * 3).astype(np.float32)  # 4.8 blocks' worth
    targets = rng.integers(0, 3001, 211)
    targets[::17] = -100
    out = {}
    for workers in ("1", "2"):
        monkeypatch.setenv("RNNLAB_CPU_WORKERS", workers)
        for trial in range(5):
            loss = nn.SoftmaxCrossEntropy()
            out[workers, trial] = (loss.forward(logits, targets), loss.backward().tobytes())
    assert len(set(out.values())) == 1


def _run_whole(cls, kw, monkeypatch, *, kernels: str, packed: str, upstream: bool):
    """A 2-layer bidirectional layer without lengths, forward and backward from a given
    initial state; returns its outputs, gradients and whether its scans ran whole."""
    monkeypatch.setenv("RNNLAB_KERNELS", kernels)
    monkeypatch.setenv("RNNLAB_PACKED", packed)
    monkeypatch.setenv("RNNLAB_LOOP_THREADS", "1")
    rng = np.random.default_rng(7)
    layer = cls(6, 9, num_layers=2, bidirectional=True, rng=1, **kw)
    xs = rng.standard_normal((5, 7, 6)).astype(np.float32) * 2
    h0 = rng.standard_normal((4, 5, 9)).astype(np.float32)
    state = (h0, rng.standard_normal((4, 5, 9)).astype(np.float32)) if cls is nn.LSTM else h0
    hs = layer.forward(xs, state)
    dhs = rng.standard_normal(hs.shape).astype(np.float32) if upstream else np.zeros_like(hs)
    dh_n = rng.standard_normal((4, 5, 9)).astype(np.float32)
    dstate = (dh_n, rng.standard_normal((4, 5, 9)).astype(np.float32)) \
        if cls is nn.LSTM else dh_n
    dxs = layer.backward(dhs if upstream else None, dstate)
    whole = {plan_of(tr).whole for tr in layer._traces.values()}
    d0 = (layer.dh0, layer.dc0) if cls is nn.LSTM else (layer.dh0,)
    return hs, dxs, {k: v.copy() for k, v in layer.grads.items()}, d0, whole


WHOLE_KINDS = [(nn.LSTM, {}), (nn.RNN, {}), (nn.RNN, {"nonlinearity": "relu"}), (nn.GRU, {})]


@pytest.mark.parametrize("upstream", [True, False])
@pytest.mark.parametrize("cls,kw", WHOLE_KINDS)
def test_whole_loop_kernels_agree(cls, kw, upstream, monkeypatch):
    """One compiled call per scan (one thread, no lengths) gives what the step-by-step
    loop gives, with the compiled step kernels and with NumPy's, in both directions."""
    if not _packed_fast():
        pytest.skip("the packed kernels are not used on this CPU (no AVX2/FMA)")
    whole = _run_whole(cls, kw, monkeypatch, kernels="auto", packed="auto", upstream=upstream)
    steps = _run_whole(cls, kw, monkeypatch, kernels="auto", packed="0", upstream=upstream)
    slow = _run_whole(cls, kw, monkeypatch, kernels="0", packed="auto", upstream=upstream)
    assert whole[4] == {True} and steps[4] == {False} and slow[4] == {False}
    for other in (steps, slow):
        for a, b in zip(whole[:2], other[:2], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)
        for name in other[2]:
            np.testing.assert_allclose(whole[2][name], other[2][name], rtol=1e-4, atol=5e-5,
                                       err_msg=name)
        for a, b in zip(whole[3], other[3], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)


def _packed_fast() -> bool:
    from rnnlab.fast.packed import fast_on_this_cpu

    return fast_on_this_cpu()


@pytest.mark.parametrize("cls,kw", WHOLE_KINDS)
def test_whole_backward_beside_a_side_job(cls, kw, monkeypatch):
    """Beside a side job (``run_beside``) a backward loop is on one thread, so it runs
    whole even after a forward that ran step by step on two threads; same gradients."""
    from rnnlab.fast import threads

    if not _packed_fast():
        pytest.skip("the packed kernels are not used on this CPU (no AVX2/FMA)")
    monkeypatch.setenv("RNNLAB_KERNELS", "auto")
    monkeypatch.setenv("RNNLAB_LOOP_THREADS", "2")  # the forward loop: two BLAS threads
    rng = np.random.default_rng(11)
    xs = rng.standard_normal((5, 7, 6)).astype(np.float32)
    dhs = rng.standard_normal((5, 7, 9)).astype(np.float32)
    results = []
    for beside in (False, True):
        layer = cls(6, 9, num_layers=2, rng=1, **kw)
        layer.forward(xs)
        if beside:
            dxs = threads.run_beside(lambda add, layer=layer: layer.backward(dhs),
                                     [lambda: None])
        else:
            dxs = layer.backward(dhs)
        traces = list(layer._traces.values())
        wholes = {plan_of(bw).whole for bw in layer._back_traces.values()}
        assert {plan_of(tr).whole for tr in traces} == {False}
        assert wholes == ({True} if beside else {False})
        results.append((dxs, {k: v.copy() for k, v in layer.grads.items()}))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-4, atol=2e-5)
    for name, grad in results[0][1].items():
        np.testing.assert_allclose(results[1][1][name], grad, rtol=1e-4, atol=5e-5,
                                   err_msg=name)


def test_gru_reset_before_keeps_the_python_loop(monkeypatch):
    """The textbook GRU (reset before the product, two products a step) has no compiled
    loop: its scans go step by step."""
    monkeypatch.setenv("RNNLAB_KERNELS", "auto")
    monkeypatch.setenv("RNNLAB_LOOP_THREADS", "1")
    layer = nn.GRU(6, 9, reset_after=False, rng=1)
    layer.forward(np.ones((2, 3, 6), np.float32))
    assert {plan_of(tr).whole for tr in layer._traces.values()} == {False}
