"""BPTTBatcher: stream layout, continuity, exact resume, memmaps, errors, properties."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.data import BPTTBatcher, DataError, open_ids, save_ids


def test_layout_matches_the_definition():
    ids = np.arange(23, dtype=np.int32)  # n = 22 // 3 = 7
    b = BPTTBatcher(ids, batch_size=3, bptt=3)
    assert (b.stream_length, len(b), b.tokens) == (7, 3, 21)
    batches = list(b)
    assert [x.shape for x, _ in batches] == [(3, 3), (3, 3), (3, 1)]
    x0, y0 = batches[0]
    np.testing.assert_array_equal(x0, [[0, 1, 2], [7, 8, 9], [14, 15, 16]])
    np.testing.assert_array_equal(y0, x0 + 1)
    for x, y in batches:
        assert x.dtype == y.dtype == np.int32
        assert x.flags.c_contiguous and y.flags.c_contiguous and x.flags.owndata


def test_windows_continue_each_stream():
    ids = np.random.default_rng(1).integers(0, 50, size=1001).astype(np.int32)
    b = BPTTBatcher(ids, batch_size=4, bptt=7)
    xs, ys = zip(*b, strict=True)
    stream_x, stream_y = np.concatenate(xs, axis=1), np.concatenate(ys, axis=1)
    n = 1000 // 4
    for row in range(4):
        np.testing.assert_array_equal(stream_x[row], ids[row * n:row * n + n])
        np.testing.assert_array_equal(stream_y[row], ids[row * n + 1:row * n + n + 1])
    for k in range(len(xs) - 1):  # window k + 1 starts where window k's targets end
        np.testing.assert_array_equal(xs[k + 1][:, 0], ys[k][:, -1])


def test_drop_last_and_int64():
    ids = np.arange(23)
    b = BPTTBatcher(ids, 3, 3, drop_last=True, dtype=np.int64)
    assert len(b) == 2 and b.tokens == 18
    assert all(x.shape == (3, 3) and x.dtype == np.int64 for x, _ in b)


def test_position_epochs_and_exact_resume():
    ids = np.arange(200, dtype=np.int32)
    ref = [x.copy() for x, _ in BPTTBatcher(ids, 4, 5)]
    b = BPTTBatcher(ids, 4, 5)
    seen = []
    for k, (x, _) in enumerate(b):
        seen.append(x)
        if k == 3:
            break
    assert b.position == 4
    state = json.loads(json.dumps(b.state_dict()))  # survives a checkpoint file
    resumed = BPTTBatcher(ids, 4, 5)
    resumed.load_state_dict(state)
    rest = [x for x, _ in resumed]
    assert len(seen) + len(rest) == len(ref)
    for got, want in zip(seen + rest, ref, strict=True):
        np.testing.assert_array_equal(got, want)
    assert (resumed.position, resumed.epoch) == (0, 1)
    assert len(list(resumed)) == len(ref) and resumed.epoch == 2
    resumed.position = 5
    resumed.reset()
    assert resumed.position == 0


def test_state_after_last_batch_starts_next_epoch():
    b = BPTTBatcher(np.arange(50), 2, 8)
    it = iter(b)
    for _ in range(len(b)):
        next(it)
    state = b.state_dict()
    assert state["position"] == len(b)
    c = BPTTBatcher(np.arange(50), 2, 8)
    c.load_state_dict(state)
    assert list(c) == [] and (c.position, c.epoch) == (0, 1)
    assert len(list(c)) == len(b)


def test_random_access_batch():
    b = BPTTBatcher(np.arange(41), 4, 3)
    np.testing.assert_array_equal(b.batch(-1)[0], b.batch(len(b) - 1)[0])
    with pytest.raises(IndexError, match=r"index expected in \[0, 4\), got 4"):
        b.batch(4)
    with pytest.raises(TypeError, match="index expected an int"):
        b.batch(1.0)


def test_memmap_input_is_sliced_not_loaded(tmp_path):
    ids = np.random.default_rng(2).integers(0, 1000, size=10_001)
    mm = open_ids(save_ids(tmp_path / "ids.npy", ids))
    b = BPTTBatcher(mm, batch_size=8, bptt=35)
    assert isinstance(b._inputs, np.memmap) and np.shares_memory(b._inputs, mm)
    assert np.shares_memory(b._targets, mm)
    for (x, y), (xr, yr) in zip(b, BPTTBatcher(ids.astype(np.int32), 8, 35), strict=True):
        assert type(x) is np.ndarray and not np.shares_memory(x, mm)
        np.testing.assert_array_equal(x, xr)
        np.testing.assert_array_equal(y, yr)


def test_list_input_and_repr():
    b = BPTTBatcher([1, 2, 3, 4, 5], 2, 1)
    assert len(b) == 2 and "windows=2" in repr(b)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((np.arange(3), 3, 2), {}, DataError, r"3 ids are too few for batch_size=3 .*at least"),
        ((np.arange(10), 3, 4), {"drop_last": True}, DataError, "shorter than bptt=4"),
        ((np.zeros((2, 5), dtype=np.int32), 1, 1), {}, ValueError, "1-D array"),
        ((np.zeros(5), 1, 1), {}, TypeError, "integer dtype, got float64"),
        ((np.arange(5), 0, 1), {}, ValueError, "batch_size expected an int >= 1, got 0"),
        ((np.arange(5), 1, True), {}, TypeError, "bptt expected an int, got bool"),
        ((np.arange(5), 1, 1), {"dtype": np.float32}, TypeError, "dtype expected an integer"),
    ],
)
def test_constructor_errors(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        BPTTBatcher(*args, **kwargs)


def test_load_state_dict_errors():
    b = BPTTBatcher(np.arange(100), 4, 5)
    other = BPTTBatcher(np.arange(100), 4, 6).state_dict()
    with pytest.raises(DataError, match="saved with bptt=6, this batcher has bptt=5"):
        b.load_state_dict(other)
    with pytest.raises(DataError, match=r"position expected an int in \[0, 5\], got 9"):
        b.load_state_dict({"position": 9})
    with pytest.raises(DataError, match="expected a dict from state_dict"):
        b.load_state_dict([1])


@settings(max_examples=80, deadline=None)
@given(length=st.integers(2, 300), batch_size=st.integers(1, 9), bptt=st.integers(1, 40),
       drop_last=st.booleans(), seed=st.integers(0, 2**16))
def test_property_windows_tile_streams_and_targets_are_next_ids(length, batch_size, bptt,
                                                               drop_last, seed):
    n = (length - 1) // batch_size
    ids = np.random.default_rng(seed).integers(0, 2**31 - 1, size=length)
    if n < 1 or (drop_last and n < bptt):
        with pytest.raises(DataError):
            BPTTBatcher(ids, batch_size, bptt, drop_last=drop_last)
        return
    b = BPTTBatcher(ids, batch_size, bptt, drop_last=drop_last)
    batches = list(b)
    assert len(batches) == len(b)
    covered = 0
    for k, (x, y) in enumerate(batches):
        assert x.shape == y.shape and x.shape[0] == batch_size
        assert x.shape[1] == bptt or (k == len(b) - 1 and not drop_last)
        start = k * bptt
        for row in range(batch_size):
            base = row * n + start
            np.testing.assert_array_equal(x[row], ids[base:base + x.shape[1]])
            np.testing.assert_array_equal(y[row], ids[base + 1:base + 1 + x.shape[1]])
        covered += x.size
    assert covered == b.tokens
    assert covered == (batch_size * n if not drop_last else batch_size * bptt * (n // bptt))
