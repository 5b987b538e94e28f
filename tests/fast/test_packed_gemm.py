"""The packed per-step products (``rnnlab.fast.numba_gemm``, ``rnnlab.fast.packed``).

The kernel, in each panel width (16 columns: the AVX2 form, 32: the AVX-512 form, which
runs on any CPU with AVX2, its vectors split in two where there is no AVX-512), against a
float64 reference over shapes that exercise every tile height, the partial last panel,
``K = 0`` and strided operands; the two widths against each other, bit for bit; the
choice of width by CPU; the shared-counter form on several
threads against one thread, bit for bit; the per-pass packing; and whole layers and a
training run with the packed products against the BLAS ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rnnlab import nn
from rnnlab.fast import threads
from rnnlab.fast.loop import plan_of

pytest.importorskip("numba", reason="numba is not installed (the optional 'fast' extra)")

from tests.lmsteps import train_steps

from rnnlab.fast import numba_gemm as G
from rnnlab.fast import packed as _packed
from rnnlab.fast.packed import PACKED_MIN_MACS, PACKED_SHARE_MACS, PackedProducts, packed_plan


def packed(B: np.ndarray, width: int = G.NR) -> np.ndarray:
    panels = np.full((G.panel_count(B.shape[1], width), B.shape[0], width), np.nan,
                     np.float32)
    G.pack(B, panels)
    return panels


def reference(a: np.ndarray, B: np.ndarray, add: Any = None) -> np.ndarray:
    out = a.astype(np.float64) @ B.astype(np.float64)
    return out if add is None else out + add


@pytest.mark.parametrize("width", G.WIDTHS)
@pytest.mark.parametrize("N", [1, 2, 5, 6, 7, 11, 12, 13, 20, 25])
@pytest.mark.parametrize("K,M", [(1, 1), (3, 16), (17, 33), (64, 100), (130, 48), (9, 64)])
def test_kernel_matches_float64(N: int, K: int, M: int, width: int) -> None:
    rng = np.random.default_rng(N * 1000 + K * 10 + M)
    a = rng.standard_normal((N, K)).astype(np.float32)
    W = rng.standard_normal((M, K)).astype(np.float32)
    add = rng.standard_normal((N, M)).astype(np.float32)
    for B in (W.T, np.ascontiguousarray(W.T)):  # both packing orders
        panels = packed(B, width)
        assert np.all(panels[:, :, : M % width or width][-1] == B[:, (len(panels) - 1) * width:])
        out = np.full((N, M), np.nan, np.float32)
        G.matmul_panels(a, panels, out, out, False, 0, len(panels))
        tol = 1e-6 * np.sqrt(K) * (np.abs(a) @ np.abs(B)).max()
        np.testing.assert_allclose(out, reference(a, B), rtol=0, atol=tol)
        G.matmul_panels(a, panels, out, add, True, 0, len(panels))
        np.testing.assert_allclose(out, reference(a, B, add), rtol=0, atol=tol)


def test_padding_columns_are_zero() -> None:
    B = np.ones((4, 20), np.float32)
    panels = packed(B)
    assert panels.shape == (2, 4, 16)
    assert np.all(panels[1, :, :4] == 1) and np.all(panels[1, :, 4:] == 0)
    wide = packed(B, G.NR_WIDE)
    assert wide.shape == (1, 4, 32)
    assert np.all(wide[0, :, :20] == 1) and np.all(wide[0, :, 20:] == 0)
    with pytest.raises(ValueError, match="width expected one of"):
        G.panel_count(20, 8)


@pytest.mark.parametrize("N,K,M", [(20, 650, 2600), (20, 2600, 650), (32, 256, 1024),
                                   (7, 100, 400), (13, 37, 70)])
def test_widths_give_the_same_bits(N: int, K: int, M: int) -> None:
    """Each output element is the same chain of fused multiply-adds in both kernels."""
    rng = np.random.default_rng(K + M)
    a = rng.standard_normal((N, K)).astype(np.float32)
    B = rng.standard_normal((K, M)).astype(np.float32)
    add = rng.standard_normal((N, M)).astype(np.float32)
    outs = []
    for width in G.WIDTHS:
        panels = packed(B, width)
        out = np.full((N, M), np.nan, np.float32)
        G.matmul_panels(a, panels, out, add, True, 0, len(panels))
        outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_panel_width_follows_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_packed, "wide_on_this_cpu", lambda: True)
    assert _packed.panel_width(G) == G.NR_WIDE
    assert PackedProducts(G, 1).width == G.NR_WIDE
    monkeypatch.setattr(_packed, "wide_on_this_cpu", lambda: False)
    assert _packed.panel_width(G) == G.NR
    monkeypatch.setattr(_packed, "FORCED_WIDTH", G.NR_WIDE)
    assert _packed.panel_width(G) == G.NR_WIDE
    products = PackedProducts(G, 1)
    monkeypatch.setattr(_packed, "FORCED_WIDTH", G.NR)
    products.begin(1)  # each pass packs to the width of its start
    a, W = np.ones((3, 5), np.float32), np.ones((40, 5), np.float32)
    out = np.empty((3, 40), np.float32)
    products.matmul(a, W.T, out)
    assert products.panels(W.T).shape == (3, 5, G.NR)
    np.testing.assert_array_equal(out, 5)


def test_strided_operands_and_column_blocks() -> None:
    """Row views of a larger ``a``, a column block of ``out`` and of ``add`` (as the GRU
    without reset-after uses them), and panels of a row block of a weight."""
    rng = np.random.default_rng(5)
    big_a = rng.standard_normal((9, 40)).astype(np.float32)
    a = big_a[2:8, 5:30]  # row stride 40, K = 25
    W = rng.standard_normal((90, 25)).astype(np.float32)
    B = W[:60].T  # (25, 60), strided
    out = np.full((6, 90), np.nan, np.float32)
    add = rng.standard_normal((6, 90)).astype(np.float32)
    panels = packed(B)
    G.matmul_panels(a, panels, out[:, :60], add[:, :60], True, 0, len(panels))
    np.testing.assert_allclose(out[:, :60], reference(a, B, add[:, :60]), atol=1e-4)
    assert np.isnan(out[:, 60:]).all()  # nothing written past the block


@pytest.mark.parametrize("width", G.WIDTHS)
def test_empty_inner_dimension(width: int) -> None:
    a = np.zeros((3, 0), np.float32)
    panels = np.zeros((-(-20 // width), 0, width), np.float32)
    out = np.full((3, 20), np.nan, np.float32)
    add = np.arange(60, dtype=np.float32).reshape(3, 20)
    G.matmul_panels(a, panels, out, add, True, 0, len(panels))
    np.testing.assert_array_equal(out, add)
    G.matmul_panels(a, panels, out, add, False, 0, len(panels))
    np.testing.assert_array_equal(out, 0)


@pytest.mark.parametrize("width", G.WIDTHS)
@pytest.mark.parametrize("threads", [2, 3])
def test_threads_give_the_same_bits(threads: int, width: int,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_packed, "FORCED_WIDTH", width)
    rng = np.random.default_rng(6)
    a = rng.standard_normal((20, 70)).astype(np.float32)
    W = rng.standard_normal((300, 70)).astype(np.float32)
    add = rng.standard_normal((20, 300)).astype(np.float32)
    one, many = np.empty((20, 300), np.float32), np.empty((20, 300), np.float32)
    PackedProducts(G, 1).matmul(a, W.T, one, add)
    products = PackedProducts(G, threads)
    for _ in range(5):  # the shared counter is reset for every product
        many.fill(np.nan)
        products.matmul(a, W.T, many, add)
        np.testing.assert_array_equal(many, one)


def test_each_pass_packs_again_and_reuses_buffers() -> None:
    rng = np.random.default_rng(7)
    a = rng.standard_normal((4, 8)).astype(np.float32)
    W1, W2 = (rng.standard_normal((24, 8)).astype(np.float32) for _ in range(2))
    out = np.empty((4, 24), np.float32)
    products = PackedProducts(G, 1)
    products.begin(1)
    products.matmul(a, W1.T, out)
    products.matmul(a, W2.T, out)  # another weight of the same shape: its own panels
    np.testing.assert_allclose(out, a @ W2.T, rtol=1e-5, atol=1e-5)
    products.matmul(a, W1.T, out)
    np.testing.assert_allclose(out, a @ W1.T, rtol=1e-5, atol=1e-5)
    buffers = [id(b) for b in products._buffers.values()]
    assert len(buffers) == 2
    W1 *= 2  # the optimizer changed the weight in place: the next pass sees it
    products.matmul(a, W1.T, out)  # same pass: still the packed old values
    np.testing.assert_allclose(out, a @ (W1 / 2).T, rtol=1e-5, atol=1e-5)
    products.begin(1)
    products.matmul(a, W1.T, out)
    np.testing.assert_allclose(out, a @ W1.T, rtol=1e-5, atol=1e-5)
    assert [id(b) for b in products._buffers.values()] == buffers  # no new allocation


def test_packed_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    from rnnlab.fast import kernels as _kernels

    kernels = _kernels.get()
    big, mid, small = PACKED_SHARE_MACS, PACKED_MIN_MACS, PACKED_MIN_MACS - 1
    monkeypatch.delenv("RNNLAB_PACKED", raising=False)
    assert packed_plan(None, big, 1) == 0  # the NumPy path
    monkeypatch.setattr("rnnlab.fast.packed.fast_on_this_cpu", lambda: True)
    monkeypatch.setattr("rnnlab.fast.packed.can_release_blas_threads", lambda: False)
    assert packed_plan(kernels, mid, 1) == 1
    assert packed_plan(kernels, small, 1) == 0
    assert packed_plan(kernels, big, 2) == 0  # BLAS threads would spin on: keep BLAS
    monkeypatch.setattr("rnnlab.fast.packed.can_release_blas_threads", lambda: True)
    assert packed_plan(kernels, big, 2) == 2
    assert packed_plan(kernels, big - 1, 2) == 0  # too small to share: BLAS
    monkeypatch.setattr("rnnlab.fast.packed.fast_on_this_cpu", lambda: False)
    assert packed_plan(kernels, big, 1) == 0
    monkeypatch.setenv("RNNLAB_PACKED", "1")  # every size; shared only when large
    assert packed_plan(kernels, 1, 4) == 1
    assert packed_plan(kernels, big, 4) == 4
    monkeypatch.setenv("RNNLAB_PACKED", "0")
    assert packed_plan(kernels, big, 1) == 0


def test_run_together_runs_every_call_and_raises() -> None:
    import threading

    seen = []
    lock = threading.Lock()

    def work() -> None:
        with lock:
            seen.append(threading.get_ident())

    threads.run_together(work, 3)
    assert len(seen) == 3 and threading.get_ident() in seen

    def fail() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        threads.run_together(fail, 2)


KINDS = [(nn.RNN, {}), (nn.LSTM, {}), (nn.GRU, {}), (nn.GRU, {"reset_after": False})]


def run_layer(cls: Any, kw: dict, mode: str, monkeypatch: pytest.MonkeyPatch) -> tuple:
    monkeypatch.setenv("RNNLAB_PACKED", mode)
    rng = np.random.default_rng(0)
    layer = cls(6, 21, num_layers=2, bidirectional=True, rng=1, **kw)  # 21: partial panels
    xs = rng.standard_normal((7, 9, 6)).astype(np.float32)
    dhs = rng.standard_normal((7, 9, 42)).astype(np.float32)
    lengths = np.array([9, 3, 5, 1, 9, 8, 2])
    outs = []
    for _ in range(2):  # a second call packs again (the weights changed in between)
        hs = layer.forward(xs, lengths=lengths)
        dxs = layer.backward(dhs)
        outs.append((hs, dxs, {k: v.copy() for k, v in layer.grads.items()}, layer.dh0))
        for name, g in layer.grads.items():
            layer.params[name] -= 0.1 * g
            g.fill(0)
    return outs


@pytest.mark.parametrize("width", G.WIDTHS)
@pytest.mark.parametrize("cls,kw", KINDS)
def test_layers_agree_with_blas_products(cls: Any, kw: dict, width: int,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_packed, "FORCED_WIDTH", width)
    fast = run_layer(cls, kw, "1", monkeypatch)
    slow = run_layer(cls, kw, "0", monkeypatch)
    for f, s in zip(fast, slow, strict=True):
        np.testing.assert_allclose(f[0], s[0], rtol=1e-4, atol=2e-5)
        np.testing.assert_allclose(f[1], s[1], rtol=1e-4, atol=2e-5)
        for name in s[2]:
            np.testing.assert_allclose(f[2][name], s[2][name], rtol=1e-4, atol=5e-5,
                                       err_msg=name)
        np.testing.assert_allclose(f[3], s[3], rtol=1e-4, atol=2e-5)


def test_packed_products_are_used_and_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RNNLAB_PACKED", "1")
    layer = nn.LSTM(4, 8, rng=0)
    layer.forward(np.ones((2, 3, 4), np.float32))
    layer.backward(np.ones((2, 3, 8), np.float32))
    (trace,) = layer._traces.values()
    (back,) = layer._back_traces.values()
    assert plan_of(trace).packed is not None and plan_of(back).packed is not None
    # the backward packs into its own buffers
    assert plan_of(back).packed is not plan_of(trace).packed
    monkeypatch.setenv("RNNLAB_PACKED", "0")
    layer.forward(np.ones((2, 3, 4), np.float32))
    layer.backward(np.ones((2, 3, 8), np.float32))
    assert plan_of(trace).packed is None and plan_of(back).packed is None
    monkeypatch.setenv("RNNLAB_PACKED", "1")
    double = nn.LSTM(4, 8, dtype=np.float64, rng=0)  # float64: always the BLAS path
    double.forward(np.ones((2, 3, 4)))
    assert plan_of(next(iter(double._traces.values()))).packed is None


def test_lm_training_with_packed_products(monkeypatch: pytest.MonkeyPatch) -> None:
    """Twelve float32 Adam steps of a 2-layer LSTM LM, two threads sharing the products,
    against the BLAS products: the same losses to float32 rounding, and it learns."""
    from rnnlab.models import RNNLM
    from rnnlab.optim import Adam

    ids = ((np.arange(13)[None] * 3 + np.arange(6)[:, None]) % 40).astype(np.int32)
    monkeypatch.setenv("RNNLAB_LOOP_THREADS", "all")  # small products, but all threads,
    monkeypatch.setattr("rnnlab.fast.loop.blas_thread_count", lambda: 2)  # and two of them
    monkeypatch.setattr("rnnlab.fast.packed.PACKED_SHARE_MACS", 0)  # shared even when small
    runs = []
    for mode in ("1", "0"):
        monkeypatch.setenv("RNNLAB_PACKED", mode)
        model = RNNLM(40, 12, 37, num_layers=2, rng=0)
        losses, _ = train_steps(model, Adam(model, lr=0.03), ids, 12, 1.0, reset=True)
        if mode == "1":
            trace = next(iter(model.rnn._traces.values()))
            assert plan_of(trace).packed is not None and plan_of(trace).packed.threads == 2
        runs.append(losses)
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-5, atol=1e-5)
    assert runs[0][-1] < 0.85 * runs[0][0]


def test_kernel_rejects_bad_layouts() -> None:
    a = np.ones((3, 8), np.float32)
    panels = packed(np.ones((8, 20), np.float32))
    out = np.empty((3, 20), np.float32)
    with pytest.raises(ValueError, match="contiguous float32 rows"):
        G.matmul_panels(np.ones((3, 16), np.float32)[:, ::2], panels, out, out, False, 0, 2)
    with pytest.raises(ValueError, match="contiguous float32 rows"):
        G.matmul_panels(a, panels, np.empty((3, 40), np.float32)[:, ::2], out, False, 0, 2)
    with pytest.raises(ValueError, match="do not match"):
        G.matmul_panels(np.ones((3, 9), np.float32), panels, out, out, False, 0, 2)
    with pytest.raises(ValueError, match="do not match"):
        G.matmul_panels(a, panels, np.empty((3, 40), np.float32), out, False, 0, 2)
    with pytest.raises(ValueError, match="do not match"):
        G.matmul_panels(a, panels, out, np.ones((2, 20), np.float32), True, 0, 2)
    with pytest.raises(ValueError, match="do not match"):
        G.matmul_panels(a, panels, out, out, False, 0, 3)
    with pytest.raises(ValueError, match="do not match"):  # no kernel for 8 columns
        G.matmul_panels(a, np.zeros((3, 8, 8), np.float32), out, out, False, 0, 3)


def test_release_blas_threads_then_blas_works_again() -> None:
    from threadpoolctl import threadpool_limits

    if not threads.can_release_blas_threads():
        pytest.skip("numpy's BLAS is not OpenBLAS on its own pthreads: nothing to release")
    rng = np.random.default_rng(8)
    a, b = rng.standard_normal((300, 200)), rng.standard_normal((200, 250))
    expected = a @ b
    with threadpool_limits(2, user_api="blas"):  # the suite runs BLAS on one thread
        before = a @ b  # workers started
        assert threads.release_blas_threads() is True
        assert threads.release_blas_threads() is True  # nothing left to end: harmless
        after = a @ b  # started again
    np.testing.assert_allclose(before, expected, rtol=1e-12)
    np.testing.assert_allclose(after, expected, rtol=1e-12)


def test_empty_batch_and_inner_dimension_through_the_products() -> None:
    products = PackedProducts(G, 2)
    out = np.full((0, 20), np.nan, np.float32)
    products.matmul(np.zeros((0, 8), np.float32), np.ones((8, 20), np.float32), out)
    out = np.full((3, 20), np.nan, np.float32)
    products.matmul(np.zeros((3, 0), np.float32), np.zeros((0, 20), np.float32), out)
    np.testing.assert_array_equal(out, 0)


def test_release_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RNNLAB_RELEASE_BLAS", "0")
    assert threads.can_release_blas_threads() is False
    assert threads.release_blas_threads() is False
