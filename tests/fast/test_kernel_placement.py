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

from rnnlab.fast import kernels as _kernels

pytest.importorskip("numba", reason="numba is not installed (the optional 'fast' extra)")

N, H, V = 5, 23, 97


def _cases(rng: np.random.Generator) -> dict[str, tuple[Callable[..., Any], list[Any]]]:
    """kernel name -> (call, its array arguments in order): each an array of initial
    values, or ``(shape, dtype)`` for one that starts at zero."""
    K = _kernels.get()
    f32 = np.float32

    def normal(*shape: int, scale: float = 2.0) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(f32)

    def unit(*shape: int) -> np.ndarray:  # gate activations in (0, 1)
        return rng.random(shape).astype(f32)

    targets = rng.integers(0, V, N)
    valid = np.array([True, True, False, True, True])
    ids = rng.integers(0, 7, 3 * N)
    nh, g3, g4 = ((N, H), f32), ((N, 3 * H), f32), ((N, 4 * H), f32)
    return {
        "vexp": (K.vexp, [normal(N * H, scale=20)]),
        "xent_blocks": (lambda z, losses: K.xent_blocks(z, targets, valid, 0.1, losses, 2,
                                                         np.zeros(1, np.int64)),
                        [normal(N, V), ((N,), np.float64)]),
        "lstm_forward": (K.lstm_forward, [normal(N, 4 * H), normal(N, H), nh, nh, nh, g4]),
        "lstm_backward": (K.lstm_backward, [unit(N, 4 * H), normal(N, H), normal(N, H),
                                            normal(N, H), normal(N, H), g4]),
        "sigmoid_": (K.sigmoid_, [normal(N, 3 * H), g3]),
        "tanh_": (K.tanh_, [normal(N, 3 * H), g3]),
        "gru_backward": (K.gru_backward, [unit(N, 3 * H), normal(N, H), normal(N, H),
                                          normal(N, H), g3, g3, nh]),
        "scatter_add_rows": (lambda t, rows: K.scatter_add_rows(t, ids, rows),
                             [normal(7, H), normal(3 * N, H)]),
        "sub_scaled": (lambda p, g: K.sub_scaled(p, g, 0.37), [normal(N * H), normal(N * H)]),
    }


def _spec(arg: Any) -> tuple[tuple[int, ...], Any]:
    return (arg.shape, arg.dtype) if isinstance(arg, np.ndarray) else arg


def _words(arg: Any) -> int:
    """Four-byte words an argument takes in the shared buffer."""
    shape, dtype = _spec(arg)
    return int(np.prod(shape)) * np.dtype(dtype).itemsize // 4


def _run(call: Callable[..., Any], args: list[Any], offsets: list[int]) -> list[np.ndarray]:
    """Place each argument at its element offset inside one 4-byte-aligned buffer, fill
    it, call the kernel; return copies of every argument and the result."""
    specs = [_spec(a) for a in args]
    sizes = [_words(a) for a in args]
    pool = np.zeros(max(o + s for o, s in zip(offsets, sizes, strict=True)) + 16, np.float32)
    arrays = []
    for (shape, dtype), arg, offset, size in zip(specs, args, offsets, sizes, strict=True):
        view = pool[offset:offset + size].view(np.uint8).view(dtype).reshape(shape)
        view[...] = arg if isinstance(arg, np.ndarray) else 0
        arrays.append(view)
    result = call(*arrays)
    return [a.copy() for a in arrays] + ([] if result is None else [np.asarray(result)])


@pytest.mark.parametrize("name", ["vexp", "xent_blocks", "lstm_forward", "lstm_backward",
                                  "sigmoid_", "tanh_", "gru_backward", "scatter_add_rows",
                                  "sub_scaled"])
def test_kernel_bits_do_not_depend_on_placement(name: str) -> None:
    rng = np.random.default_rng(0)
    call, args = _cases(rng)[name]
    sizes = [_words(a) for a in args]
    far = [sum(sizes[:k]) + 4096 * k for k in range(len(sizes))]
    expected = _run(call, args, far)
    for trial in range(300):
        order = rng.permutation(len(sizes))
        offsets, at = [0] * len(sizes), int(rng.integers(0, 16))
        for k in order:  # one after the other, 0-39 elements apart
            offsets[k] = at
            at += sizes[k] + int(rng.integers(0, 40))
        got = _run(call, args, offsets)
        for k, (g, e) in enumerate(zip(got, expected, strict=True)):
            same = g.tobytes() == e.tobytes()
            assert same, (
                f"{name}: output {k} changed with the arrays at element offsets {offsets} "
                f"(trial {trial})")
