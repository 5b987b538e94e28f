"""The gradient reduction of CuPy arrays goes through host memory: one device-to-host
and one host-to-device copy per step (tested with the fake CuPy module on the CPU)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mpi4py", reason="mpi4py is not installed (pip install 'rnnlab[mpi]')")

from gpu.fakegpu import cupy_fake
from rnnlab.train.distributed import MPIWorld, flatten_grads, unflatten_grads


class TwoRanks:
    """A communicator whose Allreduce doubles the buffer (two ranks of equal gradients)
    and checks that it is handed host memory."""

    def __init__(self):
        self.calls = 0

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 2

    def Allreduce(self, send, recv=None, op=None):
        assert type(recv) is np.ndarray, type(recv)  # host memory, not a device array
        recv *= 2
        self.calls += 1


def test_cupy_gradients_are_staged_through_the_host_once_each_way(monkeypatch):
    world = MPIWorld(TwoRanks())
    grads = [("a", cupy_fake.asarray(np.arange(6.0).reshape(2, 3))),
             ("b", cupy_fake.asarray(np.ones(4)))]
    to_host, to_device = [], []
    get = cupy_fake.ndarray.get
    monkeypatch.setattr(cupy_fake.ndarray, "get", lambda self: to_host.append(1) or get(self),
                        raising=False)
    asarray = cupy_fake.asarray
    monkeypatch.setattr(cupy_fake, "asarray", lambda a, *k, **kw: to_device.append(1)
                        or asarray(a, *k, **kw))
    buffer = flatten_grads(grads, cupy_fake, np.float64, 3)
    buffer[-3:] = 0
    out = world.allreduce_grads(buffer, cupy_fake)
    assert isinstance(out, cupy_fake.ndarray)
    assert (len(to_host), len(to_device), world.comm.calls) == (1, 1, 1)
    unflatten_grads(out, grads, 0.5)
    np.testing.assert_array_equal(grads[0][1].get(), np.arange(6.0).reshape(2, 3))
    assert world.reductions == 1


@pytest.mark.parametrize("axis", [0, 1])
def test_gpu_dropout_masks_are_a_ranks_rows_of_the_global_draw(axis):
    """On a GPU a mask is drawn by a device generator seeded from the host generator; a
    rank's sharded generator draws the global batch's mask there and keeps its rows, so
    rank r of 2 gets exactly the rows one process would give it, and the host generator
    moves on as in one process."""
    from rnnlab.backend import random_uniform
    from rnnlab.train.distributed import Rows, ShardedRNG

    full_shape = (3, 4, 5) if axis == 1 else (4, 3, 5)
    one_rng = np.random.default_rng(9)
    one = random_uniform(one_rng, full_shape, np.dtype(np.float64), cupy_fake)
    for rank in (0, 1):
        rng = np.random.default_rng(9)
        sharded = ShardedRNG(rng, Rows(2 * rank, 2 * rank + 2, 4), axis)
        shape = (3, 2, 5) if axis == 1 else (2, 3, 5)
        part = random_uniform(sharded, shape, np.dtype(np.float64), cupy_fake)
        assert isinstance(part, cupy_fake.ndarray)
        rows = slice(2 * rank, 2 * rank + 2)
        want = one[:, rows] if axis == 1 else one[rows]
        np.testing.assert_array_equal(np.asarray(part.view(np.ndarray)),
                                      np.asarray(want.view(np.ndarray)))
        assert rng.random() == _after_one_seed(9)


def _after_one_seed(seed):
    rng = np.random.default_rng(seed)
    rng.integers(0, 2**63 - 1)
    return rng.random()
