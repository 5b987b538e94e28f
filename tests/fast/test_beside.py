"""Work run beside the model on the second core (``threads.run_beside``).

The runner itself (every part once, errors, the one-thread mode inside it), its policy,
``Linear.backward_split`` against ``Linear.backward``, and ``RNNLM.backward`` with the
output layer's weight gradient beside the recurrent backward against the plain order:
the same gradients, bit-identical from run to run, and the same training.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
from tests.lmsteps import train_steps

from rnnlab import nn
from rnnlab.fast import threads
from rnnlab.fast.loop import plan_of
from rnnlab.models import RNNLM
from rnnlab.optim import SGD


def test_every_part_runs_once_and_main_returns() -> None:
    seen: list[int] = []
    lock = threading.Lock()
    inside = []

    def part(k: int) -> None:
        inside.append(threads.solo())
        with lock:
            seen.append(k)

    def main(add: Any) -> str:
        inside.append(threads.solo())
        for k in range(23, 30):  # parts handed over as main goes
            add(lambda k=k: part(k))
        return "done"

    threads_before = threads.blas_thread_count()
    parts = [lambda k=k: part(k) for k in range(23)]
    assert threads.run_beside(main, parts) == "done"
    assert sorted(seen) == list(range(30))
    assert all(inside) and not threads.solo()
    assert threads.blas_thread_count() == threads_before
    seen.clear()
    assert threads.run_beside(main) == "done"  # no parts to start with: all on this thread
    assert sorted(seen) == list(range(23, 30))


def test_inside_run_beside_everything_keeps_to_one_thread() -> None:
    calls: list[Any] = []

    def main(add: Any) -> None:
        calls.append(threads.blas_thread_count())
        calls.append(threads.release_blas_threads())  # the side job may be inside BLAS
        calls.append(threads.parallel_chunks(lambda a, b: (a, b, threading.get_ident()),
                                             10_000, min_chunk=1))
        counted = []
        threads.run_together(lambda: counted.append(1), 4)
        calls.append(len(counted))
        calls.append(threads.run_beside(lambda add: "nested", [lambda: calls.append("p")]))
        calls.append(threads.beside_pays(10**12, 1))

    threads.run_beside(main, [lambda: None])
    n_blas, released, chunks, together, part, nested, pays = calls  # the part ran first
    assert n_blas == 1 and released is False and together == 1
    assert chunks == [(0, 10_000, threading.get_ident())]
    assert nested == "nested" and part == "p" and pays is False


def test_errors_come_back_and_the_mode_ends() -> None:
    ran = []

    def fail(add: Any) -> None:
        add(lambda: ran.append(2))
        raise RuntimeError("main failed")

    with pytest.raises(RuntimeError, match="main failed"):
        threads.run_beside(fail, [lambda: ran.append(1)] * 5)
    assert not threads.solo()

    def bad_part() -> None:
        raise ValueError("part failed")

    with pytest.raises(ValueError, match="part failed"):
        threads.run_beside(lambda add: None, [bad_part])
    assert not threads.solo()
    assert threads.run_beside(lambda add: 3, [lambda: None]) == 3  # usable again


def test_beside_pays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RNNLAB_BESIDE", raising=False)
    monkeypatch.setattr(threads, "cpu_workers", lambda: 2)
    monkeypatch.setattr(threads, "can_release_blas_threads", lambda: True)
    big = threads.BESIDE_MIN_MACS
    assert threads.beside_pays(3 * big, 2 * big)  # 1.5 times the main work: yes
    assert not threads.beside_pays(3 * big - 1, 2 * big)
    assert threads.beside_pays(8 * big, big)  # up to eight times
    assert not threads.beside_pays(8 * big + 1, big)
    assert not threads.beside_pays(big - 1, big // 2)  # too small to be worth a thread
    monkeypatch.setenv("RNNLAB_BESIDE", "1")
    assert threads.beside_pays(1, 10**12)
    monkeypatch.setenv("RNNLAB_BESIDE", "0")
    assert not threads.beside_pays(10**12, 1)
    monkeypatch.setenv("RNNLAB_BESIDE", "1")  # forced, but no second core / no release
    monkeypatch.setattr(threads, "cpu_workers", lambda: 1)
    assert not threads.beside_pays(10**12, 1)
    monkeypatch.setattr(threads, "cpu_workers", lambda: 2)
    monkeypatch.setattr(threads, "can_release_blas_threads", lambda: False)
    assert not threads.beside_pays(10**12, 1)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_backward_split_matches_backward(bias: bool, dtype: Any,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rnnlab.nn.linear.PART_MACS", 1)  # parts of 16 rows: 71 = 4x16 + 7
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 9)).astype(dtype)
    dy = rng.standard_normal((3, 5, 71)).astype(dtype)
    one, two = (nn.Linear(9, 71, bias=bias, rng=1, dtype=dtype) for _ in range(2))
    for name, g in one.grads.items():  # gradients already holding something: parts add
        g[...] = rng.standard_normal(g.shape)
        two.grads[name][...] = g
    one(x)
    two(x)
    dx = one.backward(dy)
    dx2, parts = two.backward_split(dy)
    assert len(parts) == 5
    for part in reversed(parts):  # any order
        part()
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(dx2, dx, rtol=tol, atol=tol)
    for name in one.grads:
        np.testing.assert_allclose(two.grads[name], one.grads[name], rtol=tol, atol=tol)
    with pytest.raises(ValueError, match=r"backward_split.*dy"):
        two.backward_split(dy[:, :, :70])


def lm_run(mode: str, monkeypatch: pytest.MonkeyPatch, *, cell: str = "lstm",
           dtype: str = "float32", vocab: int = 97, dropout: float = 0.0,
           steps: int = 8) -> tuple[list[float], dict[str, np.ndarray]]:
    """``steps`` SGD steps of a small LM with ``RNNLAB_BESIDE=mode``; the losses and the
    final parameters."""
    monkeypatch.setenv("RNNLAB_BESIDE", mode)
    monkeypatch.setattr(threads, "cpu_workers", lambda: 2)
    monkeypatch.setattr(threads, "can_release_blas_threads", lambda: True)
    monkeypatch.setattr("rnnlab.nn.linear.PART_MACS", 2_000)  # several parts
    ids = (np.arange(41)[None] * 7 + np.arange(6)[:, None] * 5) % vocab  # next = this + 7
    model = RNNLM(vocab, 10, 23, num_layers=2, cell=cell, dropout=dropout, dtype=dtype,
                  rng=0)
    return train_steps(model, SGD(model, lr=5.0), ids, steps, 5.0, reset=True)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_lm_beside_trains_like_the_plain_order(cell: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    plain = lm_run("0", monkeypatch, cell=cell)
    beside = lm_run("1", monkeypatch, cell=cell)
    again = lm_run("1", monkeypatch, cell=cell)
    np.testing.assert_allclose(beside[0], plain[0], rtol=1e-5)
    for name in plain[1]:
        np.testing.assert_allclose(beside[1][name], plain[1][name], rtol=1e-4, atol=1e-5,
                                   err_msg=name)
        np.testing.assert_array_equal(again[1][name], beside[1][name], err_msg=name)
    assert beside[0][-1] < beside[0][0]


def test_lm_beside_float64_dropout_and_token_table(monkeypatch: pytest.MonkeyPatch) -> None:
    # float64 with dropout (the masks come from the model's own generator)
    plain = lm_run("0", monkeypatch, dtype="float64", dropout=0.3, steps=4)
    beside = lm_run("1", monkeypatch, dtype="float64", dropout=0.3, steps=4)
    np.testing.assert_allclose(beside[0], plain[0], rtol=1e-12)
    for name in plain[1]:
        np.testing.assert_allclose(beside[1][name], plain[1][name], rtol=1e-10,
                                   atol=1e-12, err_msg=name)
    # a vocabulary smaller than the batch's tokens: the embedding goes through the table
    plain = lm_run("0", monkeypatch, vocab=11, steps=4)
    beside = lm_run("1", monkeypatch, vocab=11, steps=4)
    for name in plain[1]:
        np.testing.assert_allclose(beside[1][name], plain[1][name], rtol=1e-4, atol=1e-5,
                                   err_msg=name)


def test_lm_uses_the_side_job_only_where_it_may(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = threads.run_beside
    monkeypatch.setattr("rnnlab.fast.threads.run_beside",
                        lambda main, parts: calls.append(len(parts)) or real(main, parts))
    monkeypatch.setenv("RNNLAB_BESIDE", "1")
    monkeypatch.setattr(threads, "cpu_workers", lambda: 2)
    monkeypatch.setattr(threads, "can_release_blas_threads", lambda: True)
    ids = np.arange(24).reshape(3, 8) % 13
    for tie, expected in ((False, 1), (True, 0)):  # tied: the embedding shares the gradient
        calls.clear()
        model = RNNLM(13, 8, 8, tie_weights=tie, rng=0)
        model.forward_loss(ids[:, :-1], ids[:, 1:])
        model.backward()
        assert len(calls) == expected
    monkeypatch.setenv("RNNLAB_BESIDE", "0")
    calls.clear()
    model.forward_loss(ids[:, :-1], ids[:, 1:])
    model.backward()
    assert calls == []


def test_recurrent_backward_beside_keeps_to_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """A forward pass planned for two threads (shared packed products) runs its backward
    on one thread when it runs beside a side job, with the same result."""
    pytest.importorskip("numba", reason="numba is not installed (the optional 'fast' extra)")
    from rnnlab.fast.kernels import for_arrays

    if for_arrays(np, np.float32) is None:
        pytest.skip("the compiled kernels are off (RNNLAB_KERNELS)")
    monkeypatch.setenv("RNNLAB_PACKED", "1")
    monkeypatch.setenv("RNNLAB_LOOP_THREADS", "all")
    monkeypatch.setattr("rnnlab.fast.loop.blas_thread_count", lambda: 2)
    monkeypatch.setattr("rnnlab.fast.packed.PACKED_SHARE_MACS", 0)
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((4, 7, 5)).astype(np.float32)
    dhs = rng.standard_normal((4, 7, 19)).astype(np.float32)
    results = []
    for beside in (False, True):
        layer = nn.LSTM(5, 19, rng=3)
        layer.forward(xs)
        (trace,) = layer._traces.values()
        assert plan_of(trace).packed.threads == 2
        if beside:
            dxs = threads.run_beside(lambda add, layer=layer: layer.backward(dhs, defer=add),
                                     [lambda: None])
        else:
            dxs = layer.backward(dhs)
        (back,) = layer._back_traces.values()
        assert plan_of(back).packed.threads == (1 if beside else 2)
        results.append((dxs, {k: g.copy() for k, g in layer.grads.items()}))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-5, atol=1e-6)
    for name in results[0][1]:
        np.testing.assert_allclose(results[1][1][name], results[0][1][name], rtol=1e-5,
                                   atol=1e-6, err_msg=name)


KINDS = [(nn.RNN, {}), (nn.LSTM, {}), (nn.GRU, {}), (nn.GRU, {"reset_after": False})]


@pytest.mark.parametrize("cls,kw", KINDS)
def test_deferred_weight_gradients(cls: Any, kw: dict) -> None:
    """``Recurrent.backward(defer=...)`` hands over every product that only adds into a
    weight gradient: the input gradient comes at once, the weight gradients when the
    parts run (in any order), equal to the plain backward's."""
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((5, 7, 6))
    dhs = rng.standard_normal((5, 7, 2 * 9))
    lengths = np.array([7, 3, 5, 1, 6])
    plain, deferred = (cls(6, 9, num_layers=2, bidirectional=True, dtype=np.float64, rng=2,
                           **kw) for _ in range(2))
    for layer in (plain, deferred):
        layer.forward(xs, lengths=lengths)
    dxs = plain.backward(dhs)
    parts: list[Any] = []
    dxs2 = deferred.backward(dhs, defer=parts.append)
    np.testing.assert_array_equal(dxs2, dxs)
    np.testing.assert_array_equal(deferred.dh0, plain.dh0)
    assert parts and all(not g.any() for g in deferred.grads.values())  # nothing added yet
    for part in reversed(parts):
        part()
    for name, g in plain.grads.items():
        np.testing.assert_allclose(deferred.grads[name], g, rtol=1e-12, atol=1e-14,
                                   err_msg=name)


def test_deferred_gradients_through_the_token_table() -> None:
    rng = np.random.default_rng(1)
    E = rng.standard_normal((11, 4))
    ids = rng.integers(0, 11, (3, 8))
    dhs = rng.standard_normal((3, 8, 5))
    grads = []
    for defer in (False, True):
        layer = nn.LSTM(4, 5, dtype=np.float64, rng=0)
        dE = np.zeros_like(E)
        layer.forward_tokens(ids, E, dE)
        parts: list[Any] = []
        layer.backward(dhs, defer=parts.append if defer else None)
        assert bool(parts) == defer
        for part in parts:
            part()
        grads.append((dE, dict(layer.grads)))
    np.testing.assert_allclose(grads[1][0], grads[0][0], rtol=1e-12)
    for name, g in grads[0][1].items():
        np.testing.assert_allclose(grads[1][1][name], g, rtol=1e-12, err_msg=name)
