"""The per-step buffers of one scan (one direction of one layer), and nothing else.

A :class:`Trace` is the forward record the backward reads; a :class:`BackTrace` holds the
backward's work arrays. Both are reused from call to call while the sizes stay the same.
Everything is time-major: step ``t`` of ``xw`` is ``xw[t]``, of shape ``(N, G*H)``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from numpy.typing import DTypeLike

from rnnlab.backend import Array


class Trace:
    """Forward record of one scan.

    ``h`` and ``c`` have ``T + 1`` rows: for a forward scan row 0 is the initial state and
    row ``t + 1`` the state after step ``t``; for a reverse scan row ``T`` is the initial
    state and row ``t`` the state after step ``t`` (:meth:`rows`).

    ======  ==============  ==============================================
    xw      (T, N, G*H)     input projection ``x_t W_ih^T + b`` of each step
    h       (T+1, N, H)     hidden states
    c       (T+1, N, H)     cell states (LSTM only, else None)
    X       (T, N, D)       the scan's input, kept by reference
    mask    (T, N, 1)       1.0 where step ``t`` of row ``n`` is real (with lengths)
    keep    (T, N, 1)       its boolean complement: the state is carried over
    ======  ==============  ==============================================

    A cell keeps what its backward needs under a name (:meth:`buffer`), e.g. the LSTM's
    gate activations ``acts`` ``(T, N, 4H)`` and ``tanh_c`` ``(T, N, H)``.
    """

    def __init__(self, xp: ModuleType, T: int, N: int, D: int, H: int, G: int,
                 dtype: DTypeLike, has_cell: bool) -> None:
        self.xp, self.T, self.N, self.D, self.H, self.G = xp, T, N, D, H, G
        self.dtype = dtype
        self.xw = xp.empty((T, N, G * H), dtype=dtype)
        self.h = xp.empty((T + 1, N, H), dtype=dtype)
        self.c = xp.empty((T + 1, N, H), dtype=dtype) if has_cell else None
        self.X: Any = None
        self.mask: Any = None
        self.keep: Any = None
        self.reverse = False
        self.buffers: dict[str, Any] = {}

    @property
    def cell_states(self) -> Array:
        """``c`` ``(T+1, N, H)`` of a cell with a cell state (the LSTM's)."""
        if self.c is None:
            raise RuntimeError("Trace.cell_states: this trace holds no cell state (has_cell "
                               "was False)")
        return self.c

    def fits(self, T: int, N: int, D: int, H: int, G: int, dtype: DTypeLike) -> bool:
        return (self.T, self.N, self.D, self.H, self.G, self.dtype) == (T, N, D, H, G, dtype)

    def buffer(self, name: str, shape: tuple[int, ...], dtype: DTypeLike | None = None) -> Any:
        """The array kept under ``name`` (allocated, contents undefined, when new or when
        its shape changed)."""
        buf = self.buffers.get(name)
        if buf is None or tuple(buf.shape) != shape:
            buf = self.xp.empty(shape, dtype=self.dtype if dtype is None else dtype)
            self.buffers[name] = buf
        return buf

    def rows(self, t: int) -> tuple[int, int]:
        """``(prev, cur)`` rows of ``h`` / ``c`` for time step ``t``."""
        return (t + 1, t) if self.reverse else (t, t + 1)

    @property
    def outputs(self) -> Any:
        """``(T, N, H)`` view of the states after each step, in time order."""
        return self.h[: self.T] if self.reverse else self.h[1:]

    @property
    def previous(self) -> Any:
        """``(T, N, H)`` view of the state each step started from, in time order."""
        return self.h[1:] if self.reverse else self.h[: self.T]


class BackTrace:
    """Backward work arrays of one scan.

    ======== ============  =========================================================
    dxw      (T, N, G*H)   dL/d(xw_t), the gradient of each step's pre-activations
    dhw      (T, N, G*H)   dL/d(hw_t) where it differs from ``dxw`` (the GRU), else
                           the same array
    dh       (N, H)        dL/dh_t at the current step (upstream plus carried)
    dh_next  (N, H)        dL/dh_{t-1}, carried to the previous step
    dc_next  (N, H)        dL/dc_{t-1} (LSTM)
    ======== ============  =========================================================
    """

    def __init__(self, xp: ModuleType, T: int, N: int, H: int, G: int, dtype: DTypeLike,
                 separate_hidden: bool) -> None:
        self.xp, self.T, self.N, self.H, self.G, self.dtype = xp, T, N, H, G, dtype
        self.dxw = xp.empty((T, N, G * H), dtype=dtype)
        self.dhw = xp.empty((T, N, G * H), dtype=dtype) if separate_hidden else self.dxw
        self.dh = xp.empty((N, H), dtype=dtype)
        self.dh_next = xp.empty((N, H), dtype=dtype)
        self.dc_next = xp.empty((N, H), dtype=dtype)
        self.buffers: dict[Any, Any] = {}

    def fits(self, T: int, N: int, H: int, G: int, dtype: DTypeLike) -> bool:
        return (self.T, self.N, self.H, self.G, self.dtype) == (T, N, H, G, dtype)

    def buffer(self, name: Any, shape: tuple[int, ...]) -> Any:
        """A work array kept under ``name`` (contents undefined)."""
        buf = self.buffers.get(name)
        if buf is None or tuple(buf.shape) != shape:
            buf = self.buffers[name] = self.xp.empty(shape, dtype=self.dtype)
        return buf
