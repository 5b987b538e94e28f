"""The compiled kernels give the same bits wherever their arrays lie in memory.

LLVM vectorises a kernel's loops and, where it cannot prove that two arrays do not
overlap, keeps a scalar copy of the loop that runs when their addresses are close. The
two copies must compute the same bits; with every fast-math flag they did not (the
reciprocal flag let the vector copy of ``1 / (1 + e)`` round otherwise), so a run's
results hung on where the allocator put its buffers: two identical training runs, or a
resumed one, could part in the last bit. Each kernel runs here with its arrays placed
in one buffer, in random orders and with small gaps (close enough to take the scalar
copies), against one placement far apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from rnnlab import _kernels

pytest.importorskip("numba", reason="numba is not installed (the optional 'fast' extra)")

N, H, V = 5, 23, 97


def _inputs(rng: np.random.Generator) -> dict[str, tuple[Callable[..., Any], list[Any]]]:
    """kernel name -> (call, the initial values of its array arguments in order; None:
    zeros). The arguments' shapes and dtypes are in :func:`_shapes`."""
    K = _kernels.get()
    f32 = np.float32

    def normal(*shape: int, scale: float = 2.0) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(f32)

    targets = rng.integers(0, V, N)
    valid = np.array([True, True, False, True, True])
    ids = rng.integers(0, 7, 3 * N)
    return {
        "vexp": (lambda x, kk: K.vexp(x, kk), [normal(N * H, scale=20), None]),
        "xent_rows": (lambda z, kk: K.xent_rows(z, targets, valid, 0.1, kk),
                      [normal(N, V), None]),
        "lstm_forward": (lambda a, cp, c, tc, h, e, kk: K.lstm_forward(a, cp, c, tc, h, e, kk),
                         [normal(N, 4 * H), normal(N, H), None, None, None,
                          np.zeros((N, 4 * H), f32), None]),
        "lstm_backward": (lambda a, tc, cp, dh, dc, da: K.lstm_backward(a, tc, cp, dh, dc, da),
                          [rng.random((N, 4 * H)).astype(f32), normal(N, H), normal(N, H),
                           normal(N, H), normal(N, H), None]),
        "sigmoid_": (lambda a, e, kk: K.sigmoid_(a, e, kk),
                     [normal(N, 3 * H), np.zeros((N, 3 * H), f32), None]),
        "tanh_": (lambda a, e, kk: K.tanh_(a, e, kk),
                  [normal(N, 3 * H), np.zeros((N, 3 * H), f32), None]),
        "gru_backward": (lambda a, hp, hn, dh, da, dhw, dd:
                         K.gru_backward(a, hp, hn, dh, da, dhw, dd),
                         [rng.random((N, 3 * H)).astype(f32), normal(N, H), normal(N, H),
                          normal(N, H), None, None, None]),
        "scatter_add_rows": (lambda t, rows: K.scatter_add_rows(t, ids, rows),
                             [normal(7, H), normal(3 * N, H)]),
        "sub_scaled": (lambda p, g: K.sub_scaled(p, g, 0.37), [normal(N * H), normal(N * H)]),
    }


def _shapes(name: str) -> list[tuple[tuple[int, ...], Any]]:
    f32, i32 = np.float32, np.int32
    return {
        "vexp": [((N * H,), f32), ((N * H,), i32)],
        "xent_rows": [((N, V), f32), ((V,), i32)],
        "lstm_forward": [((N, 4 * H), f32), ((N, H), f32), ((N, H), f32), ((N, H), f32),
                         ((N, H), f32), ((N, 4 * H), f32), ((N * 4 * H,), i32)],
        "lstm_backward": [((N, 4 * H), f32)] + [((N, H), f32)] * 4 + [((N, 4 * H), f32)],
        "sigmoid_": [((N, 3 * H), f32), ((N, 3 * H), f32), ((N * 3 * H,), i32)],
        "tanh_": [((N, 3 * H), f32), ((N, 3 * H), f32), ((N * 3 * H,), i32)],
        "gru_backward": [((N, 3 * H), f32)] + [((N, H), f32)] * 3
                        + [((N, 3 * H), f32), ((N, 3 * H), f32), ((N, H), f32)],
        "scatter_add_rows": [((7, H), f32), ((3 * N, H), f32)],
        "sub_scaled": [((N * H,), f32), ((N * H,), f32)],
    }[name]


def _run(call: Callable[..., Any], shapes: list[Any], initial: list[Any],
         offsets: list[int]) -> list[np.ndarray]:
    """Place each array at its element offset inside one 4-byte-aligned buffer, fill it,
    call the kernel; return copies of every array and the result."""
    sizes = [int(np.prod(shape)) for shape, _ in shapes]
    pool = np.zeros(max(o + s for o, s in zip(offsets, sizes, strict=True)) + 16, np.float32)
    arrays = []
    for (shape, dtype), offset, size, init in zip(shapes, offsets, sizes, initial,
                                                  strict=True):
        view = pool[offset:offset + size].view(dtype).reshape(shape)
        view[...] = 0 if init is None else init
        arrays.append(view)
    result = call(*arrays)
    return [a.copy() for a in arrays] + ([] if result is None else [np.asarray(result)])


@pytest.mark.parametrize("name", ["vexp", "xent_rows", "lstm_forward", "lstm_backward",
                                  "sigmoid_", "tanh_", "gru_backward", "scatter_add_rows",
                                  "sub_scaled"])
def test_kernel_bits_do_not_depend_on_placement(name: str) -> None:
    rng = np.random.default_rng(0)
    call, initial = _inputs(rng)[name]
    shapes = _shapes(name)
    sizes = [int(np.prod(shape)) for shape, _ in shapes]
    far = [sum(sizes[:k]) + 4096 * k for k in range(len(sizes))]
    expected = _run(call, shapes, initial, far)
    for trial in range(300):
        order = rng.permutation(len(sizes))
        offsets, at = [0] * len(sizes), int(rng.integers(0, 16))
        for k in order:  # one after the other, 0-39 elements apart
            offsets[k] = at
            at += sizes[k] + int(rng.integers(0, 40))
        got = _run(call, shapes, initial, offsets)
        for k, (g, e) in enumerate(zip(got, expected, strict=True)):
            same = g.tobytes() == e.tobytes()
            assert same, (
                f"{name}: output {k} changed with the arrays at element offsets {offsets} "
                f"(trial {trial})")
