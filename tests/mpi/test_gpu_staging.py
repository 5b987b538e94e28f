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
