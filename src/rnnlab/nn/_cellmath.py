"""The maths of one recurrent step, forward and backward, for every cell kind.

This file is the only place where the cell equations are written. The time loop
(:mod:`rnnlab.nn.scan`), the one-step cells (:mod:`rnnlab.nn.cells`), the sequence layers
(:mod:`rnnlab.nn.recurrent`) and the course-style functions (:mod:`rnnlab.functional`)
all call into it.

Notation (row layout, batch ``N``, hidden ``H``, ``G`` gates)::

    xw_t = x_t W_ih^T + b_ih (+ the part of b_hh that can be folded in)   (N, G*H)
    hw_t = h_{t-1} W_hh^T (+ b_hh)                                         (N, G*H)

RNN (``G = 1``)::

    h_t = act(xw_t + hw_t),  act = tanh or relu

LSTM (``G = 4``, gate order i, f, g, o as in PyTorch)::

    i, f, o = sigmoid(.), g = tanh(.)   of the four blocks of xw_t + hw_t
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

GRU (``G = 3``, gate order r, z, n as in PyTorch); ``reset_after=True`` (PyTorch, cuDNN)::

    r, z = sigmoid(xw_t[r,z] + hw_t[r,z])
    n = tanh(xw_t[n] + r * (h_{t-1} W_hn^T + b_hn))
    h_t = (1 - z) * n + z * h_{t-1}

``reset_after=False`` (the textbook form: reset applied before the hidden product)::

    n = tanh(xw_t[n] + (r * h_{t-1}) W_hn^T + b_hn)

Sigmoids are computed as ``0.5 * tanh(0.5 x) + 0.5`` so that all gates of a step take a
single ``tanh`` call. Each step's buffers live in a :class:`Trace` (forward) and a
:class:`BackTrace` (backward); the step functions write into them and allocate nothing.
A step's backward reads the forward trace and never writes to it.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any


class Trace:
    """Forward record of one direction of one layer, time-major.

    ``h`` and ``c`` have ``T + 1`` rows: for a forward scan row 0 is the initial state
    and row ``t + 1`` the state after step ``t``; for a reverse scan row ``T`` is the
    initial state and row ``t`` the state after step ``t``.
    """

    def __init__(self, xp: ModuleType, T: int, N: int, D: int, H: int, G: int,
                 dtype: Any, has_cell: bool) -> None:
        self.xp, self.T, self.N, self.D, self.H, self.G = xp, T, N, D, H, G
        self.dtype = dtype
        self.xw = xp.empty((T, N, G * H), dtype=dtype)
        self.h = xp.empty((T + 1, N, H), dtype=dtype)
        self.c = xp.empty((T + 1, N, H), dtype=dtype) if has_cell else None
        self.tmp = xp.empty((N, G * H), dtype=dtype)
        self.X: Any = None  # (T, N, D) input of this scan, kept by reference
        self.mask: Any = None  # (T, N, 1) 1.0 where the step is real, or None
        self.keep: Any = None  # (T, N, 1) bool, True where the state is carried over
        self.reverse = False
        self.math_buffers: dict[str, Any] = {}
        #: compiled kernels for this call (rnnlab._kernels), or None for the NumPy path
        self.kernels: Any = None
        #: run the per-step products transposed (see :meth:`times_wt`); set by the scan
        self.transposed = False
        #: a :class:`rnnlab.nn._packed.PackedProducts` when the scan runs the per-step
        #: products through packed weights, else None; set by the scan
        self.packed: Any = None
        #: the scan ran its whole loop in one compiled call (:meth:`CellMath.scan`), and
        #: its backward does the same; set by the scan
        self.whole = False

    def fits(self, T: int, N: int, D: int, H: int, G: int, dtype: Any) -> bool:
        return (self.T, self.N, self.D, self.H, self.G, self.dtype) == (T, N, D, H, G, dtype)

    def buffer(self, name: str, shape: tuple[int, ...], dtype: Any = None) -> Any:
        buf = self.math_buffers.get(name)
        if buf is None or tuple(buf.shape) != shape:
            buf = self.xp.empty(shape, dtype=self.dtype if dtype is None else dtype)
            self.math_buffers[name] = buf
        return buf

    def kernel_scratch(self, width: int) -> Any:
        """Float ``(N, width)`` scratch of the compiled kernels, one per width (a GRU step
        needs two widths, which must not take turns reallocating one buffer)."""
        return self.buffer(f"k_e{width}", (self.N, width))

    def times_wt(self, v: Any, W: Any, out: Any, add: Any = None) -> None:
        """``out = v @ W^T (+ add)``, the per-step product of a forward step (see
        :func:`_step_product`)."""
        if self.packed is not None:
            self.packed.matmul(v, W.T, out, add)
            return
        tmp = self.buffer(f"wt_forward_{W.shape[0]}", (W.shape[0], v.shape[0])) \
            if self.transposed else None
        _step_product(self.xp, v, W.T, out, tmp, add)

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
    """Backward work arrays of one direction (reused across calls of the same shape)."""

    def __init__(self, xp: ModuleType, T: int, N: int, H: int, G: int, dtype: Any,
                 separate_hidden: bool) -> None:
        self.xp, self.T, self.N, self.H, self.G, self.dtype = xp, T, N, H, G, dtype
        self.dxw = xp.empty((T, N, G * H), dtype=dtype)
        # d/d(hw_t); the same array as dxw unless the cell treats them differently (GRU).
        self.dhw = xp.empty((T, N, G * H), dtype=dtype) if separate_hidden else self.dxw
        self.dh = xp.empty((N, H), dtype=dtype)  # total gradient into h_t at the current step
        self.dh_next = xp.empty((N, H), dtype=dtype)  # carried to the previous step
        self.dc_next = xp.empty((N, H), dtype=dtype)
        self.t1 = xp.empty((N, H), dtype=dtype)
        self.t2 = xp.empty((N, H), dtype=dtype)
        self.tg = xp.empty((N, G * H), dtype=dtype)
        #: the forward trace's :attr:`Trace.transposed`, set by the scan
        self.transposed = False
        #: this pass's :class:`rnnlab.nn._packed.PackedProducts` (its own, never the
        #: forward trace's), or None; set by the scan
        self.packed: Any = None
        #: the pass ran its whole loop in one compiled call (:meth:`CellMath.scan_back`)
        self.whole = False
        self._scratch: dict[tuple[int, int], Any] = {}

    def fits(self, T: int, N: int, H: int, G: int, dtype: Any) -> bool:
        return (self.T, self.N, self.H, self.G, self.dtype) == (T, N, H, G, dtype)

    def times_w(self, d: Any, W: Any, out: Any) -> None:
        """``out = d @ W``, the per-step product of a backward step, in the forward's form
        (:func:`_step_product`); its scratch is kept here, the forward trace is read only."""
        if self.packed is not None:
            self.packed.matmul(d, W, out)
            return
        tmp = None
        if self.transposed:
            shape = (W.shape[1], d.shape[0])
            tmp = self._scratch.get(shape)
            if tmp is None:
                tmp = self._scratch[shape] = self.xp.empty(shape, dtype=self.dtype)
        _step_product(self.xp, d, W, out, tmp)


def _step_product(xp: ModuleType, a: Any, B: Any, out: Any, tmp: Any, add: Any = None) -> None:
    """``out = a @ B (+ add)`` for the small ``(N, K) @ (K, M)`` products of a time step.

    With a scratch ``tmp`` ``(M, N)`` it is computed as ``B^T @ a^T`` and copied back
    transposed (adding ``add`` on the way). The result is the same up to rounding, but
    OpenBLAS then splits the long ``M`` side between its threads rather than the short
    batch side: on two threads the ``(20, H) @ (H, 4H)`` products of an LSTM ran 1.0-1.35
    times as fast this way (on one thread 0.8-1.03 times, so a scan passes a scratch only
    with two or more threads; see :func:`rnnlab.backend.loop_transposed` and
    ``benchmarks/bench_loop_products.py``).
    """
    if tmp is None:
        xp.matmul(a, B, out=out)
        if add is not None:
            out += add
        return
    xp.matmul(B.T, a.T, out=tmp)
    if add is None:
        xp.copyto(out, tmp.T)
    else:
        xp.add(tmp.T, add, out=out)


class CellMath:
    """One cell kind's step equations. Subclasses set ``n_gates`` and ``has_cell``."""

    n_gates = 1
    has_cell = False
    #: True when d/d(hw) differs from d/d(xw) and needs its own buffer.
    separate_hidden = False

    def foldable_hh_bias(self, H: int) -> slice:
        """The part of ``b_hh`` that may be added once into ``xw`` instead of every step."""
        return slice(0, self.n_gates * H)

    def step(self, tr: Trace, t: int, W_hh: Any, b_hh_rest: Any) -> None:
        """Write ``tr.h[cur]`` (and ``tr.c[cur]``) from ``tr.h[prev]`` and ``tr.xw[t]``."""
        raise NotImplementedError

    def step_back(self, tr: Trace, bw: BackTrace, t: int, W_hh: Any) -> None:
        """From ``bw.dh`` (and ``bw.dc_next``) write ``bw.dxw[t]``, ``bw.dhw[t]``, and the
        gradients for the previous step into ``bw.dh_next`` (and ``bw.dc_next``)."""
        raise NotImplementedError

    def compiled_loop(self) -> bool:
        """Whether the compiled kernels can run this cell's whole time loop in one call
        (:meth:`scan`, :meth:`scan_back`)."""
        return False

    def scan(self, tr: Trace, panels: Any, b_hh_rest: Any) -> None:
        """Every :meth:`step` of ``tr`` in one compiled call; ``panels`` is ``W_hh^T``
        packed (:mod:`rnnlab._numba_gemm`). Only when :meth:`compiled_loop`."""
        raise NotImplementedError

    def scan_back(self, tr: Trace, bw: BackTrace, dH: Any, panels: Any) -> None:
        """Every :meth:`step_back` in one compiled call, ``bw.dh`` being ``dH[t]`` (when
        given) plus the gradient carried in ``bw.dh_next``; ``panels`` is ``W_hh`` packed."""
        raise NotImplementedError

    def hidden_weight_grad(self, tr: Trace, bw: BackTrace, acc: Any, g_hh: Any) -> None:
        """``g_hh += sum_t dhw_t^T h_{t-1}`` as one product over all steps."""
        T, N, H = tr.T, tr.N, tr.H
        acc(g_hh, bw.dhw.reshape(T * N, -1).T, tr.previous.reshape(T * N, H))


def _sigmoid(tr: Trace, a: Any) -> None:
    """``a <- sigmoid(a)``: compiled, or ``0.5 * tanh(0.5 a) + 0.5`` (no temporaries)."""
    if tr.kernels is not None:
        tr.kernels.sigmoid_(a, tr.kernel_scratch(a.shape[1]))
        return
    a *= 0.5
    tr.xp.tanh(a, out=a)
    a *= 0.5
    a += 0.5


class RNNMath(CellMath):
    """Elman cell: ``h_t = act(xw_t + hw_t)`` with ``act`` tanh or relu."""

    n_gates = 1

    def __init__(self, nonlinearity: str = "tanh") -> None:
        self.nonlinearity = nonlinearity

    def step(self, tr: Trace, t: int, W_hh: Any, b_hh_rest: Any) -> None:
        xp = tr.xp
        prev, cur = tr.rows(t)
        h = tr.h[cur]
        tr.times_wt(tr.h[prev], W_hh, h, add=tr.xw[t])
        if self.nonlinearity == "relu":
            xp.maximum(h, 0, out=h)
        elif tr.kernels is not None:
            tr.kernels.tanh_(h, tr.kernel_scratch(tr.H))
        else:
            xp.tanh(h, out=h)

    def compiled_loop(self) -> bool:
        return True

    def scan(self, tr: Trace, panels: Any, b_hh_rest: Any) -> None:
        tr.kernels.rnn_scan(tr.xw, tr.h, panels, tr.kernel_scratch(tr.H),
                            self.nonlinearity == "relu", tr.reverse)

    def scan_back(self, tr: Trace, bw: BackTrace, dH: Any, panels: Any) -> None:
        tr.kernels.rnn_scan_back(tr.h, tr.h if dH is None else dH, dH is not None,
                                 bw.dh_next, bw.dxw, panels, self.nonlinearity == "relu",
                                 tr.reverse)

    def step_back(self, tr: Trace, bw: BackTrace, t: int, W_hh: Any) -> None:
        xp = tr.xp
        h = tr.h[tr.rows(t)[1]]
        da = bw.dxw[t]
        if self.nonlinearity == "tanh":
            xp.multiply(h, h, out=da)
            xp.subtract(1, da, out=da)
            da *= bw.dh
        else:
            xp.greater(h, 0, out=da)
            da *= bw.dh
        bw.times_w(da, W_hh, bw.dh_next)


class LSTMMath(CellMath):
    """LSTM cell, PyTorch gate order i, f, g, o."""

    n_gates = 4
    has_cell = True

    def _gate_scales(self, tr: Trace) -> tuple[Any, Any, Any]:
        """Per-column constants: pre-scale, post-offset, and ``p`` of ``a (q - a) + p``."""
        key = ("scales", tr.H, tr.dtype, tr.xp)
        cached = getattr(self, "_scales", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        xp, H = tr.xp, tr.H
        scale = xp.full((4 * H,), 0.5, dtype=tr.dtype)
        scale[2 * H : 3 * H] = 1.0
        offset = xp.full((4 * H,), 0.5, dtype=tr.dtype)
        offset[2 * H : 3 * H] = 0.0
        # derivative of each activation from its value a: sigmoid a(1 - a), tanh 1 - a^2,
        # written for all columns at once as a * (q - a) + p
        q = xp.ones((4 * H,), dtype=tr.dtype)
        q[2 * H : 3 * H] = 0.0
        p = xp.zeros((4 * H,), dtype=tr.dtype)
        p[2 * H : 3 * H] = 1.0
        self._scales = (key, (scale, offset, (q, p)))
        return self._scales[1]

    def step(self, tr: Trace, t: int, W_hh: Any, b_hh_rest: Any) -> None:
        xp, H = tr.xp, tr.H
        prev, cur = tr.rows(t)
        scale, offset, _ = self._gate_scales(tr)
        acts = tr.buffer("acts", (tr.T, tr.N, 4 * H))
        tc_all = tr.buffer("tanh_c", (tr.T, tr.N, H))
        a = acts[t]
        tr.times_wt(tr.h[prev], W_hh, a, add=tr.xw[t])
        if tr.kernels is not None:  # the same equations, fused in one compiled sweep
            tr.kernels.lstm_forward(a, tr.c[prev], tr.c[cur], tc_all[t], tr.h[cur],
                                    tr.kernel_scratch(4 * H))
            return
        # all four gates with one tanh: sigmoid(x) = 0.5 tanh(x / 2) + 0.5
        a *= scale
        xp.tanh(a, out=a)
        a *= scale
        a += offset
        i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
        c = tr.c[cur]
        xp.multiply(f, tr.c[prev], out=c)
        ig = tr.tmp[:, :H]
        xp.multiply(i, g, out=ig)
        c += ig
        tc = tc_all[t]
        xp.tanh(c, out=tc)
        xp.multiply(o, tc, out=tr.h[cur])

    def compiled_loop(self) -> bool:
        return True

    def scan(self, tr: Trace, panels: Any, b_hh_rest: Any) -> None:
        acts = tr.buffer("acts", (tr.T, tr.N, 4 * tr.H))
        tc_all = tr.buffer("tanh_c", (tr.T, tr.N, tr.H))
        tr.kernels.lstm_scan(tr.xw, tr.h, tr.c, acts, tc_all, panels,
                             tr.kernel_scratch(4 * tr.H), tr.reverse)

    def scan_back(self, tr: Trace, bw: BackTrace, dH: Any, panels: Any) -> None:
        tc_all = tr.math_buffers["tanh_c"]
        tr.kernels.lstm_scan_back(tr.math_buffers["acts"], tc_all, tr.c,
                                  tc_all if dH is None else dH, dH is not None, bw.dh,
                                  bw.dh_next, bw.dc_next, bw.dxw, panels, tr.reverse)

    def step_back(self, tr: Trace, bw: BackTrace, t: int, W_hh: Any) -> None:
        xp, H = tr.xp, tr.H
        prev, _ = tr.rows(t)
        _, _, (q, p) = self._gate_scales(tr)
        a = tr.math_buffers["acts"][t]
        tc = tr.math_buffers["tanh_c"][t]
        i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
        dh, dc, t1 = bw.dh, bw.dc_next, bw.t1
        dA = bw.dxw[t]
        if tr.kernels is not None:
            tr.kernels.lstm_backward(a, tc, tr.c[prev], dh, dc, dA)
            bw.times_w(dA, W_hh, bw.dh_next)
            return
        di, df, dg, do = dA[:, :H], dA[:, H : 2 * H], dA[:, 2 * H : 3 * H], dA[:, 3 * H :]
        # dc_t = dc_next + dh * o * (1 - tanh(c)^2)
        xp.multiply(tc, tc, out=t1)
        xp.subtract(1, t1, out=t1)
        t1 *= o
        t1 *= dh
        dc += t1
        # gradients with respect to the gate activations
        xp.multiply(dh, tc, out=do)
        xp.multiply(dc, g, out=di)
        xp.multiply(dc, tr.c[prev], out=df)
        xp.multiply(dc, i, out=dg)
        dc *= f  # dc_{t-1}
        # through the activations: a (q - a) + p
        deriv = bw.tg
        xp.subtract(q, a, out=deriv)
        deriv *= a
        deriv += p
        dA *= deriv
        bw.times_w(dA, W_hh, bw.dh_next)


class GRUMath(CellMath):
    """GRU cell, PyTorch gate order r, z, n; ``reset_after`` picks the form (see module doc)."""

    n_gates = 3

    def __init__(self, reset_after: bool = True) -> None:
        self.reset_after = reset_after
        self.separate_hidden = reset_after

    def foldable_hh_bias(self, H: int) -> slice:
        # with reset_after, b_hn is multiplied by r and must stay inside the step
        return slice(0, 2 * H) if self.reset_after else slice(0, 3 * H)

    def compiled_loop(self) -> bool:
        return self.reset_after

    def scan(self, tr: Trace, panels: Any, b_hh_rest: Any) -> None:
        T, N, H = tr.T, tr.N, tr.H
        acts = tr.buffer("acts", (T, N, 3 * H))
        hn_all = tr.buffer("hn", (T, N, H))
        has_rest = b_hh_rest is not None
        tr.kernels.gru_scan(tr.xw, tr.h, acts, hn_all, tr.tmp, panels,
                            b_hh_rest if has_rest else tr.tmp[0], has_rest,
                            tr.kernel_scratch(2 * H), tr.kernel_scratch(H),
                            tr.reverse)

    def scan_back(self, tr: Trace, bw: BackTrace, dH: Any, panels: Any) -> None:
        hn_all = tr.math_buffers["hn"]
        tr.kernels.gru_scan_back(tr.math_buffers["acts"], tr.h, hn_all,
                                 hn_all if dH is None else dH, dH is not None, bw.dh,
                                 bw.dh_next, bw.t1, bw.dxw, bw.dhw, panels, tr.reverse)

    def step(self, tr: Trace, t: int, W_hh: Any, b_hh_rest: Any) -> None:
        xp, H = tr.xp, tr.H
        prev, cur = tr.rows(t)
        h_prev = tr.h[prev]
        acts = tr.buffer("acts", (tr.T, tr.N, 3 * H))
        a = acts[t]
        rz, n = a[:, : 2 * H], a[:, 2 * H :]
        xw = tr.xw[t]
        if self.reset_after:
            hn_all = tr.buffer("hn", (tr.T, tr.N, H))  # h W_hn^T + b_hn, needed by backward
            hw = tr.tmp
            tr.times_wt(h_prev, W_hh, hw)
            xp.add(xw[:, : 2 * H], hw[:, : 2 * H], out=rz)
            _sigmoid(tr, rz)
            hn = hn_all[t]
            if b_hh_rest is None:
                hn[...] = hw[:, 2 * H :]
            else:
                xp.add(hw[:, 2 * H :], b_hh_rest, out=hn)
            xp.multiply(rz[:, :H], hn, out=n)
        else:
            rh_all = tr.buffer("rh", (tr.T, tr.N, H))  # r * h_{t-1}, needed by backward
            tr.times_wt(h_prev, W_hh[: 2 * H], rz, add=xw[:, : 2 * H])
            _sigmoid(tr, rz)
            rh = rh_all[t]
            xp.multiply(rz[:, :H], h_prev, out=rh)
            tr.times_wt(rh, W_hh[2 * H :], n)
        n += xw[:, 2 * H :]
        if tr.kernels is not None:
            tr.kernels.tanh_(n, tr.kernel_scratch(H))
        else:
            xp.tanh(n, out=n)
        # h_t = (1 - z) n + z h_{t-1} = n + z (h_{t-1} - n)
        h = tr.h[cur]
        xp.subtract(h_prev, n, out=h)
        h *= rz[:, H:]
        h += n

    def step_back(self, tr: Trace, bw: BackTrace, t: int, W_hh: Any) -> None:
        xp, H = tr.xp, tr.H
        prev, _ = tr.rows(t)
        h_prev = tr.h[prev]
        a = tr.math_buffers["acts"][t]
        r, z, n = a[:, :H], a[:, H : 2 * H], a[:, 2 * H :]
        dh, t1, t2 = bw.dh, bw.t1, bw.t2
        dA = bw.dxw[t]
        if tr.kernels is not None and self.reset_after:
            dhw = bw.dhw[t]
            tr.kernels.gru_backward(a, h_prev, tr.math_buffers["hn"][t], dh, dA, dhw, t1)
            bw.times_w(dhw, W_hh, bw.dh_next)
            bw.dh_next += t1
            return
        dr, dz, dn = dA[:, :H], dA[:, H : 2 * H], dA[:, 2 * H :]
        # dz = dh (h_{t-1} - n) z (1 - z)
        xp.subtract(h_prev, n, out=dz)
        dz *= dh
        xp.subtract(1, z, out=t1)
        t1 *= z
        dz *= t1
        # dn_pre = dh (1 - z) (1 - n^2)
        xp.subtract(1, z, out=dn)
        dn *= dh
        xp.multiply(n, n, out=t1)
        xp.subtract(1, t1, out=t1)
        dn *= t1
        # r (1 - r), the sigmoid derivative of the reset gate
        xp.subtract(1, r, out=t2)
        t2 *= r
        if self.reset_after:
            hn = tr.math_buffers["hn"][t]
            dhw = bw.dhw[t]
            xp.multiply(dn, hn, out=dr)
            dr *= t2
            dhw[:, : 2 * H] = dA[:, : 2 * H]
            xp.multiply(dn, r, out=dhw[:, 2 * H :])
            bw.times_w(dhw, W_hh, bw.dh_next)
        else:
            drh = t1
            bw.times_w(dn, W_hh[2 * H :], drh)
            xp.multiply(drh, h_prev, out=dr)
            dr *= t2
            bw.times_w(dA[:, : 2 * H], W_hh[: 2 * H], bw.dh_next)
            drh *= r
            bw.dh_next += drh
        # the direct path h_t = ... + z h_{t-1}
        xp.multiply(dh, z, out=t1)
        bw.dh_next += t1

    def hidden_weight_grad(self, tr: Trace, bw: BackTrace, acc: Any, g_hh: Any) -> None:
        if self.reset_after:
            super().hidden_weight_grad(tr, bw, acc, g_hh)
            return
        T, N, H = tr.T, tr.N, tr.H
        dA = bw.dxw.reshape(T * N, 3 * H)
        acc(g_hh[: 2 * H], dA[:, : 2 * H].T, tr.previous.reshape(T * N, H))
        acc(g_hh[2 * H :], dA[:, 2 * H :].T, tr.math_buffers["rh"].reshape(T * N, H))


def make_math(kind: str, *, nonlinearity: str = "tanh", reset_after: bool = True) -> CellMath:
    """The :class:`CellMath` for ``kind`` in ``{"rnn", "lstm", "gru"}``."""
    if kind == "rnn":
        return RNNMath(nonlinearity)
    if kind == "lstm":
        return LSTMMath()
    if kind == "gru":
        return GRUMath(reset_after)
    raise ValueError(f"cell: expected 'rnn', 'lstm' or 'gru', got {kind!r}")
