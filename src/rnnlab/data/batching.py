"""Batches for truncated backpropagation through time (BPTT).

The id sequence of length ``L`` is cut into ``N = batch_size`` contiguous **streams** of
``n = (L - 1) // N`` tokens; stream ``b`` is ``ids[b*n : b*n + n]`` and its targets are
the next tokens ``ids[b*n + 1 : b*n + n + 1]``. The streams are read side by side in
windows of ``T = bptt`` steps: window ``k`` is ``x = inputs[:, k*T : (k+1)*T]`` and
``y = targets[:, k*T : (k+1)*T]``, both ``(N, T)``. Row ``b`` of window ``k + 1``
continues exactly where row ``b`` of window ``k`` ended, so a model that carries its
hidden state from one window to the next sees every stream as one long sequence. The
last window is shorter (``n % T`` steps) unless ``drop_last=True`` drops it. Up to
``N`` tokens at the end of the sequence are never a target (``L - 1 - N*n < N``).

The streams are views (``reshape`` of a slice, never a copy), so ``ids`` may be a
:class:`numpy.memmap` of any size: each batch copies only its ``N`` rows of ``T`` ids
out of the map into a fresh C-contiguous int32 array (the default ``dtype``; int64 on
request). Nothing else reads the ids, so the batcher does not check their range.

Resuming: ``position`` is the index of the next window. Iteration starts there and
advances ``position`` *before* yielding, so ``state_dict()`` taken after a training step
on a batch points at the following one; when the epoch ends, ``position`` goes back to
0 and ``epoch`` grows by one. ``load_state_dict`` restores both (and checks that the
batcher has the same shape), so training resumes at exactly the same window.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from rnnlab.data.errors import DataError
from rnnlab.data.tokens import ID_DTYPE


def _positive_int(value: Any, arg: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"BPTTBatcher: {arg} expected an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"BPTTBatcher: {arg} expected an int >= 1, got {value}")
    return int(value)


class BPTTBatcher:
    """Windows ``(x, y)`` of ``N`` parallel streams for truncated BPTT.

    Parameters
    ----------
    ids : array ``(L,)`` of integers
        Token ids: a numpy array or memmap (used in place), or a list (converted).
    batch_size : int
        ``N``, the number of parallel streams.
    bptt : int
        ``T``, the window length in steps.
    drop_last : bool
        Drop the last, shorter window (every batch is then exactly ``(N, T)``).
    dtype : numpy integer dtype
        Dtype of the batches (default int32).

    Attributes
    ----------
    position : int
        Index of the next window to yield, in ``[0, len(self)]``.
    epoch : int
        Number of completed passes.
    stream_length : int
        ``n``, the tokens per stream.
    tokens : int
        Target tokens per pass (``N * n``, or ``N * T * len(self)`` with ``drop_last``).
    """

    def __init__(self, ids: Any, batch_size: int, bptt: int, *, drop_last: bool = False,
                 dtype: DTypeLike = ID_DTYPE) -> None:
        if not isinstance(ids, np.ndarray):
            if type(ids).__module__.startswith("cupy"):
                raise TypeError("BPTTBatcher: ids expected a host (numpy) array, got a CuPy "
                                "array; batches are moved to the device by the trainer")
            ids = np.asarray(ids)
        if ids.ndim != 1:
            raise ValueError(f"BPTTBatcher: ids expected a 1-D array, got shape {ids.shape}")
        if ids.dtype.kind not in "iu":
            raise TypeError(f"BPTTBatcher: ids expected an integer dtype, got {ids.dtype}")
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.bptt = _positive_int(bptt, "bptt")
        self.drop_last = bool(drop_last)
        self.dtype = np.dtype(dtype)
        if self.dtype.kind not in "iu":
            raise TypeError(f"BPTTBatcher: dtype expected an integer dtype, got {self.dtype}")
        length = int(ids.shape[0])
        n = (length - 1) // self.batch_size
        if n < 1:
            raise DataError(f"BPTTBatcher: {length:,} ids are too few for batch_size="
                            f"{self.batch_size} (need at least batch_size + 1 = "
                            f"{self.batch_size + 1})")
        if self.drop_last and n < self.bptt:
            raise DataError(f"BPTTBatcher: streams of {n:,} tokens are shorter than bptt="
                            f"{self.bptt} and drop_last=True leaves no batch; lower "
                            f"batch_size or bptt")
        self.stream_length = n
        span = self.batch_size * n
        self._inputs = ids[:span].reshape(self.batch_size, n)
        self._targets = ids[1:span + 1].reshape(self.batch_size, n)
        self._num_ids = length
        self._len = n // self.bptt if self.drop_last else -(-n // self.bptt)
        self.position = 0
        self.epoch = 0

    @property
    def tokens(self) -> int:
        """Target tokens in one pass over all windows."""
        if self.drop_last:
            return self.batch_size * self.bptt * self._len
        return self.batch_size * self.stream_length

    def __len__(self) -> int:
        return self._len

    def batch(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Window ``index`` (random access; ``position`` is not touched).

        Returns
        -------
        x, y : ndarray ``(N, T_k)`` C-contiguous copies, ``T_k = T`` except possibly last
        """
        if isinstance(index, bool) or not isinstance(index, int | np.integer):
            raise TypeError(f"BPTTBatcher.batch: index expected an int, "
                            f"got {type(index).__name__}")
        if not -self._len <= index < self._len:
            raise IndexError(f"BPTTBatcher.batch: index expected in [0, {self._len}), "
                             f"got {index}")
        index = int(index) % self._len
        start = index * self.bptt
        stop = min(start + self.bptt, self.stream_length)
        x = np.array(self._inputs[:, start:stop], dtype=self.dtype, order="C")
        y = np.array(self._targets[:, start:stop], dtype=self.dtype, order="C")
        return x, y

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield the windows from ``position`` to the end, then start a new epoch."""
        while self.position < self._len:
            index = self.position
            self.position += 1
            yield self.batch(index)
        self.position = 0
        self.epoch += 1

    def reset(self) -> None:
        """Go back to the first window (``epoch`` unchanged)."""
        self.position = 0

    def state_dict(self) -> dict[str, int | bool]:
        """JSON-able state: ``position`` and ``epoch``, with the shape to check on load."""
        return {"position": self.position, "epoch": self.epoch, "batch_size": self.batch_size,
                "bptt": self.bptt, "drop_last": self.drop_last, "num_ids": self._num_ids}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore ``position`` and ``epoch`` from :meth:`state_dict`.

        Raises ``DataError`` when the state was saved by a batcher of another shape (ids
        length, batch size, bptt or drop_last): resuming there would misalign the streams.
        """
        if not isinstance(state, Mapping) or "position" not in state:
            raise DataError(f"BPTTBatcher.load_state_dict: expected a dict from state_dict(), "
                            f"got {state!r}")
        mine = self.state_dict()
        for key in ("batch_size", "bptt", "drop_last", "num_ids"):
            if key in state and state[key] != mine[key]:
                raise DataError(f"BPTTBatcher.load_state_dict: the state was saved with "
                                f"{key}={state[key]!r}, this batcher has {key}={mine[key]!r}")
        position = state["position"]
        if (isinstance(position, bool) or not isinstance(position, int | np.integer)
                or not 0 <= position <= self._len):
            raise DataError(f"BPTTBatcher.load_state_dict: position expected an int in "
                            f"[0, {self._len}], got {position!r}")
        epoch = state.get("epoch", self.epoch)
        if isinstance(epoch, bool) or not isinstance(epoch, int | np.integer) or epoch < 0:
            raise DataError(f"BPTTBatcher.load_state_dict: epoch expected an int >= 0, "
                            f"got {epoch!r}")
        self.position = int(position)
        self.epoch = int(epoch)

    def __repr__(self) -> str:
        return (f"BPTTBatcher(batch_size={self.batch_size}, bptt={self.bptt}, "
                f"drop_last={self.drop_last}, windows={self._len}, position={self.position}, "
                f"tokens={self.tokens:,})")
