"""The engine's loops equal the reference's: forward, backward and every gradient, for
every cell kind, layer count and direction, with and without lengths, with and without
the token input, and for the one-step stepper.

Tolerances, and why: float64 agrees to 1e-12 relative (the engine computes a sigmoid as
``0.5 tanh(x/2) + 0.5`` in place and may run a step's product transposed; the reference
writes ``(1 + tanh(x/2)) / 2`` and ``h @ W^T``: the same maths, rounded in another order).
The Elman RNN in float64 is the same arithmetic on both sides and agrees bit for bit.
float32 runs the compiled kernels (when numba is installed), whose exponential is a
polynomial accurate to about two float32 ulps: agreement to 1e-4 relative, 5e-5 absolute
on values of order one. The per-step products of float32 go through the packed kernel in
each panel width it has (:data:`rnnlab.fast.numba_gemm.WIDTHS`: the AVX2 and the AVX-512
form), forced through ``rnnlab.fast.packed.FORCED_WIDTH``: both run on any x86-64 CPU
with AVX2 (the wide one with each vector split in two where there is no AVX-512).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from rnnlab import fast, nn
from rnnlab.nn.stepper import Stepper

KINDS = {
    "rnn-tanh": (nn.RNN, {}),
    "rnn-relu": (nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTM, {}),
    "gru": (nn.GRU, {}),
    "gru-reset-before": (nn.GRU, {"reset_after": False}),
}


@pytest.fixture(autouse=True)
def _follow_environment() -> Iterator[None]:
    yield
    fast.set_enabled(None)


def _run(kind: str, dtype: type, layers: int, bidirectional: bool, lengths: bool,
         tokens: bool, engine: bool) -> list[np.ndarray]:
    fast.set_enabled(engine)
    cls, kw = KINDS[kind]
    rng = np.random.default_rng(7)
    N, T, D, H, V = 5, 6, 4, 7, 3
    layer = cls(D, H, layers, bidirectional=bidirectional, rng=1, dtype=dtype, **kw)
    K = 2 if bidirectional else 1
    dhs = rng.standard_normal((N, T, K * H)).astype(dtype)
    h0 = rng.standard_normal((layers * K, N, H)).astype(dtype) * 0.5
    state = (h0, h0 * 0.3) if kind == "lstm" else h0
    if tokens:
        E = rng.standard_normal((V, D)).astype(dtype)
        dE = np.zeros_like(E)
        ids = rng.integers(0, V, (N, T))
        hs = layer.forward_tokens(ids, E, dE, state=state)
        layer.backward(dhs)
        dxs = dE
    else:
        xs = rng.standard_normal((N, T, D)).astype(dtype)
        hs = layer.forward(xs, state, lengths=np.array([6, 2, 5, 1, 6]) if lengths else None)
        dxs = layer.backward(dhs)
    out = [hs, layer.h_n, dxs, layer.dh0]
    if kind == "lstm":
        out += [layer.c_n, layer.dc0]
    return out + [layer.grads[k].copy() for k in sorted(layer.grads)]


CASES = [(kind, layers, bi, lengths, tokens)
         for kind in KINDS for layers in (1, 2) for bi in (False, True)
         for lengths, tokens in ((False, False), (True, False), (False, True))]


#: float64 never packs; float32 in each panel width (16: AVX2, 32: AVX-512)
DTYPES = [(np.float64, None), (np.float32, 16), (np.float32, 32)]


@pytest.mark.parametrize("dtype,width", DTYPES)
@pytest.mark.parametrize("kind,layers,bidirectional,lengths,tokens", CASES)
def test_engine_equals_reference(kind: str, layers: int, bidirectional: bool, lengths: bool,
                                 tokens: bool, dtype: type, width: int | None,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("rnnlab.fast.packed.FORCED_WIDTH", width)
    args = (kind, dtype, layers, bidirectional, lengths, tokens)
    reference = _run(*args, engine=False)
    engine = _run(*args, engine=True)
    for k, (e, r) in enumerate(zip(engine, reference, strict=True)):
        if dtype is np.float64 and kind.startswith("rnn"):
            np.testing.assert_array_equal(e, r, err_msg=f"output {k}")
        elif dtype is np.float64:
            np.testing.assert_allclose(e, r, rtol=1e-12, atol=1e-14, err_msg=f"output {k}")
        else:
            np.testing.assert_allclose(e, r, rtol=1e-4, atol=5e-5, err_msg=f"output {k}")


@pytest.mark.parametrize("kind", list(KINDS))
def test_stepper_engine_equals_reference(kind: str) -> None:
    cls, kw = KINDS[kind]
    xs = np.random.default_rng(3).standard_normal((4, 5, 3))
    outs = []
    for engine in (False, True):
        fast.set_enabled(engine)
        layer = cls(3, 6, 2, rng=2, dtype=np.float64, **kw)
        stepper = Stepper(layer, 4)
        outs.append(np.stack([stepper.step(xs[:, t]).copy() for t in range(5)]))
    np.testing.assert_allclose(outs[1], outs[0], rtol=1e-12, atol=1e-14)


def test_reference_alone_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RNNLAB_FAST", "0")
    assert fast.engine_for(np, np.float32) is fast.REFERENCE
    monkeypatch.setenv("RNNLAB_FAST", "on")
    assert fast.engine_for(np, np.float32) is not fast.REFERENCE
    fast.set_enabled(False)
    assert fast.engine_for(np, np.float32) is fast.REFERENCE
    fast.set_enabled(None)
    monkeypatch.setenv("RNNLAB_FAST", "maybe")
    with pytest.raises(ValueError, match="RNNLAB_FAST: expected one of"):
        fast.engine_for(np, np.float32)
    with pytest.raises(TypeError, match="set_enabled"):
        fast.set_enabled("no")  # type: ignore[arg-type]


@pytest.mark.parametrize("name,value", [("RNNLAB_KERNELS", "numpy"), ("RNNLAB_PACKED", "2"),
                                        ("RNNLAB_CPU_WORKERS", "0"),
                                        ("RNNLAB_CPU_WORKERS", "100000"),
                                        ("RNNLAB_LOOP_THREADS", "many")])
def test_unknown_switch_words_are_refused(name: str, value: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        fast.settings()


def test_switch_vocabulary() -> None:
    from rnnlab.fast.config import parse

    for word, expected in (("1", True), ("ON", True), ("true", True), ("yes", True),
                           ("0", False), ("off", False), ("False", False), ("no", False)):
        assert parse({"RNNLAB_KERNELS": word}).kernels is expected
        assert parse({"RNNLAB_PACKED": word}).packed is expected
    assert parse({"RNNLAB_PACKED": "auto"}).packed is None
    assert parse({"RNNLAB_CPU_WORKERS": "64"}).cpu_workers == 64
    assert parse({"RNNLAB_LOOP_THREADS": "all"}).loop_threads == "all"
