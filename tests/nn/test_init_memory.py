"""Weight initialisation without float64 copies of the weights (issue 26, item 10).

The numbers are drawn in float64 a chunk at a time and written straight into the weights,
so an initialisation needs the weights plus one chunk, not a float64 copy and a cast copy
besides. The values are those of one float64 draw cast afterwards, as before: seeded
models start from the same weights as they always did.
"""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

import rnnlab.nn.init as init
from rnnlab.models import RNNLM
from rnnlab.nn.init import fill_normal, fill_uniform, normal_init, uniform_init

MiB = 2**20


def peak_bytes(fn):
    """(result, the peak of traced allocations while ``fn`` ran, in bytes)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = fn()
        return result, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(37, 29), (5, 3, 7), (1, 1001), (999,), ()])
def test_chunked_draws_equal_one_draw_cast(monkeypatch, dtype, shape):
    monkeypatch.setattr(init, "CHUNK", 100)  # many chunks, rows split across them
    expected = np.random.default_rng(7).uniform(-0.3, 0.3, size=shape).astype(dtype)
    got = uniform_init(np.random.default_rng(7), shape, 0.3, np.dtype(dtype), np)
    assert got.dtype == dtype and got.shape == shape
    np.testing.assert_array_equal(got, expected)

    expected = (np.random.default_rng(8).standard_normal(shape) / math.sqrt(29)).astype(dtype)
    got = normal_init(np.random.default_rng(8), shape, np.dtype(dtype), np,
                      divisor=math.sqrt(29))
    np.testing.assert_array_equal(got, expected)


def test_fill_works_in_place_on_views(monkeypatch):
    monkeypatch.setattr(init, "CHUNK", 10)
    base = np.zeros((6, 40), dtype=np.float32)
    view = base[:, ::2]  # not contiguous: filled a block of rows at a time
    assert fill_uniform(view, np.random.default_rng(1), 0.5) is view
    np.testing.assert_array_equal(
        view, np.random.default_rng(1).uniform(-0.5, 0.5, (6, 20)).astype(np.float32))
    assert not base[:, 1::2].any()
    narrow = base[:, ::8]  # rows of 5: blocks of two rows
    fill_uniform(narrow, np.random.default_rng(3), 2.0)
    np.testing.assert_array_equal(
        narrow, np.random.default_rng(3).uniform(-2, 2, (6, 5)).astype(np.float32))
    fill_normal(base, np.random.default_rng(2), divisor=100)
    np.testing.assert_array_equal(
        base, (np.random.default_rng(2).standard_normal((6, 40)) / 100).astype(np.float32))


def test_bad_arguments_are_named():
    with pytest.raises(TypeError, match="fill_uniform: out expected an array, got list"):
        fill_uniform([0.0], np.random.default_rng(0), 1.0)
    with pytest.raises(TypeError, match="fill_uniform: out expected a floating dtype, got int64"):
        fill_uniform(np.zeros(3, np.int64), np.random.default_rng(0), 1.0)
    with pytest.raises(ValueError, match="fill_normal: divisor expected a finite float > 0, "
                                         "got 0"):
        fill_normal(np.zeros(3), np.random.default_rng(0), divisor=0)


def test_uniform_init_peak_is_the_weights_and_one_chunk():
    shape = (1000, 2000)  # 8 MB of float32 weights; a float64 draw alone would be 16 MB
    weights, peak = peak_bytes(lambda: uniform_init(np.random.default_rng(0), shape, 0.1,
                                                    np.dtype(np.float32), np))
    assert peak <= weights.nbytes + init.CHUNK * 8 + MiB // 4, (peak / weights.nbytes)


@pytest.mark.parametrize("kind", ["pytorch", "book", "init_range"])
def test_model_build_peak_is_weights_and_gradients(kind):
    """Building a model holds its weights and their gradients (2x the weights); the
    drawing on top is bounded by one chunk (it was a float64 copy and a cast copy of the
    largest matrix: about 3x)."""
    kwargs = {"init": "book"} if kind == "book" else \
        {"init_range": 0.05} if kind == "init_range" else {}
    model, peak = peak_bytes(lambda: RNNLM(3000, 200, 200, 2, rng=0, **kwargs))
    weights = sum(p.nbytes for _, p in model.named_parameters())
    assert peak <= 2 * weights + init.CHUNK * 8 + MiB, peak / weights


def test_seeded_models_keep_their_initial_weights():
    """The values of the old code (one float64 draw per matrix, cast afterwards)."""
    model = RNNLM(50, 8, 12, 2, rng=3)
    rng = np.random.default_rng(3)
    rng.standard_normal((50, 8))  # Embedding's own draw, overwritten below
    layers = [[rng.uniform(-1 / math.sqrt(12), 1 / math.sqrt(12), size=shape)
               for shape in ((48, 8 if layer == 0 else 12), (48, 12), (48,), (48,))]
              for layer in range(2)]
    rng.uniform(-1 / math.sqrt(12), 1 / math.sqrt(12), size=(50, 12))  # decoder weight
    rng.uniform(-1 / math.sqrt(12), 1 / math.sqrt(12), size=(50,))  # decoder bias
    emb = rng.uniform(-0.1, 0.1, size=(50, 8)).astype(np.float32)
    dec = rng.uniform(-0.1, 0.1, size=(50, 12)).astype(np.float32)
    np.testing.assert_array_equal(model.embedding.params["weight"], emb)
    np.testing.assert_array_equal(model.decoder.params["weight"], dec)
    params = {name: p for name, p in model.named_parameters()}
    np.testing.assert_array_equal(params["rnn.weight_hh_l1"], layers[1][1].astype(np.float32))
    np.testing.assert_array_equal(params["rnn.bias_ih_l0"], layers[0][2].astype(np.float32))

    book = RNNLM(50, 8, 12, 1, init="book", rng=4)
    twin = RNNLM(50, 8, 12, 1, init="book", rng=4)
    for (name, a), (_, b) in zip(book.named_parameters(), twin.named_parameters(),
                                 strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)
