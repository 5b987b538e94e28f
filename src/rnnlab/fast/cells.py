"""The engine's cell steps: the equations of :mod:`rnnlab.nn.cells`, written for speed.

Each class here computes exactly what its reference in ``rnnlab/nn/cells/`` computes, and
keeps the same buffers in the trace under the same names with the same meaning (the gate
values ``acts``, the LSTM's ``tanh_c``, the GRU's ``hn`` or ``rh``), so a backward of
either kind can follow a forward of either kind. What differs is only how:

* no temporaries: every step writes into the trace's buffers and the plan's scratch;
* all four LSTM gates take one ``tanh`` call, as ``sigmoid(x) = 0.5 tanh(x / 2) + 0.5``
  on the sigmoid columns, and their derivatives one pass, as ``a (q - a) + p`` with
  per-column constants (``a (1 - a)`` for a sigmoid, ``1 - a^2`` for a tanh);
* with the compiled kernels (numba on the CPU for float32, CuPy's on a GPU) a step's
  gate maths is one fused kernel, and a loop on one thread is one compiled call over
  the whole sequence (:meth:`FastCell.scan`);
* the per-step product goes through the plan (:class:`rnnlab.fast.loop.Plan`): BLAS,
  BLAS transposed (:func:`_step_product`), or packed weights (:mod:`rnnlab.fast.packed`).

``rec`` is the forward pass's plan and ``brec`` the backward's; the trace ``tr`` and
back trace ``bw`` are the reference's buffers.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

# the reference's Trace and BackTrace (rnnlab.nn.trace), by their attributes: the engine
# imports nothing from the layers
Trace = Any
BackTrace = Any


def _step_product(xp: ModuleType, a: Any, B: Any, out: Any, tmp: Any, add: Any = None) -> None:
    """``out = a @ B (+ add)`` for the small ``(N, K) @ (K, M)`` products of a time step.

    With a scratch ``tmp`` ``(M, N)`` it is computed as ``B^T @ a^T`` and copied back
    transposed (adding ``add`` on the way). The result is the same up to rounding, but
    OpenBLAS then splits the long ``M`` side between its threads rather than the short
    batch side, which is faster with two or more threads and slower with one (so a plan
    passes a scratch only with two or more threads: :func:`rnnlab.fast.loop.plan_forward`,
    ``benchmarks/bench_loop_products.py --products``).
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


class FastCell:
    """One cell family's steps for the engine. Subclasses set ``n_gates``."""

    n_gates = 1

    def step(self, tr: Trace, rec: Any, t: int, W_hh: Any, b_hh_rest: Any) -> None:
        """Write ``tr.h[cur]`` (and ``tr.c[cur]``) from ``tr.h[prev]`` and ``tr.xw[t]``."""
        raise NotImplementedError

    def step_back(self, tr: Trace, rec: Any, bw: BackTrace, brec: Any, t: int,
                  W_hh: Any) -> None:
        """From ``bw.dh`` (and ``bw.dc_next``) write ``bw.dxw[t]``, ``bw.dhw[t]``, and the
        gradients for the previous step into ``bw.dh_next`` (and ``bw.dc_next``)."""
        raise NotImplementedError

    def compiled_loop(self) -> bool:
        """Whether the compiled kernels can run this cell's whole time loop in one call
        (:meth:`scan`, :meth:`scan_back`)."""
        return False

    def scan(self, tr: Trace, rec: Any, panels: Any, b_hh_rest: Any) -> None:
        """Every :meth:`step` of ``tr`` in one compiled call; ``panels`` is ``W_hh^T``
        packed (:mod:`rnnlab.fast.numba_gemm`). Only when :meth:`compiled_loop`."""
        raise NotImplementedError

    def scan_back(self, tr: Trace, rec: Any, bw: BackTrace, brec: Any, dH: Any,
                  panels: Any) -> None:
        """Every :meth:`step_back` in one compiled call, ``bw.dh`` being ``dH[t]`` (when
        given) plus the gradient carried in ``bw.dh_next``; ``panels`` is ``W_hh`` packed."""
        raise NotImplementedError


def _sigmoid(tr: Trace, rec: Any, a: Any) -> None:
    """``a <- sigmoid(a)``: compiled, or ``0.5 * tanh(0.5 a) + 0.5`` (no temporaries)."""
    if rec.kernels is not None:
        rec.kernels.sigmoid_(a, rec.kernel_scratch(a.shape[1]))
        return
    a *= 0.5
    tr.xp.tanh(a, out=a)
    a *= 0.5
    a += 0.5


class RNNSteps(FastCell):
    """Elman cell: ``h_t = act(xw_t + hw_t)`` with ``act`` tanh or relu."""

    n_gates = 1

    def __init__(self, nonlinearity: str = "tanh") -> None:
        self.nonlinearity = nonlinearity

    def step(self, tr: Trace, rec: Any, t: int, W_hh: Any, b_hh_rest: Any) -> None:
        xp = tr.xp
        prev, cur = tr.rows(t)
        h = tr.h[cur]
        rec.times_wt(tr.h[prev], W_hh, h, add=tr.xw[t])
        if self.nonlinearity == "relu":
            xp.maximum(h, 0, out=h)
        elif rec.kernels is not None:
            rec.kernels.tanh_(h, rec.kernel_scratch(tr.H))
        else:
            xp.tanh(h, out=h)

    def compiled_loop(self) -> bool:
        return True

    def scan(self, tr: Trace, rec: Any, panels: Any, b_hh_rest: Any) -> None:
        rec.kernels.rnn_scan(tr.xw, tr.h, panels, rec.kernel_scratch(tr.H),
                            self.nonlinearity == "relu", tr.reverse)

    def scan_back(self, tr: Trace, rec: Any, bw: BackTrace, brec: Any, dH: Any,
                  panels: Any) -> None:
        rec.kernels.rnn_scan_back(tr.h, tr.h if dH is None else dH, dH is not None,
                                 bw.dh_next, bw.dxw, panels, self.nonlinearity == "relu",
                                 tr.reverse)

    def step_back(self, tr: Trace, rec: Any, bw: BackTrace, brec: Any, t: int,
                  W_hh: Any) -> None:
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
        brec.times_w(da, W_hh, bw.dh_next)


class LSTMSteps(FastCell):
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

    def step(self, tr: Trace, rec: Any, t: int, W_hh: Any, b_hh_rest: Any) -> None:
        xp, H = tr.xp, tr.H
        prev, cur = tr.rows(t)
        scale, offset, _ = self._gate_scales(tr)
        acts = tr.buffer("acts", (tr.T, tr.N, 4 * H))
        tc_all = tr.buffer("tanh_c", (tr.T, tr.N, H))
        a = acts[t]
        rec.times_wt(tr.h[prev], W_hh, a, add=tr.xw[t])
        if rec.kernels is not None:  # the same equations, fused in one compiled sweep
            rec.kernels.lstm_forward(a, tr.c[prev], tr.c[cur], tc_all[t], tr.h[cur],
                                    rec.kernel_scratch(4 * H))
            return
        # all four gates with one tanh: sigmoid(x) = 0.5 tanh(x / 2) + 0.5
        a *= scale
        xp.tanh(a, out=a)
        a *= scale
        a += offset
        i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
        c = tr.c[cur]
        xp.multiply(f, tr.c[prev], out=c)
        ig = rec.tmp[:, :H]
        xp.multiply(i, g, out=ig)
        c += ig
        tc = tc_all[t]
        xp.tanh(c, out=tc)
        xp.multiply(o, tc, out=tr.h[cur])

    def compiled_loop(self) -> bool:
        return True

    def scan(self, tr: Trace, rec: Any, panels: Any, b_hh_rest: Any) -> None:
        acts = tr.buffer("acts", (tr.T, tr.N, 4 * tr.H))
        tc_all = tr.buffer("tanh_c", (tr.T, tr.N, tr.H))
        rec.kernels.lstm_scan(tr.xw, tr.h, tr.c, acts, tc_all, panels,
                             rec.kernel_scratch(4 * tr.H), tr.reverse)

    def scan_back(self, tr: Trace, rec: Any, bw: BackTrace, brec: Any, dH: Any,
                  panels: Any) -> None:
        tc_all = tr.buffers["tanh_c"]
        rec.kernels.lstm_scan_back(tr.buffers["acts"], tc_all, tr.c,
                                  tc_all if dH is None else dH, dH is not None, bw.dh,
                                  bw.dh_next, bw.dc_next, bw.dxw, panels, tr.reverse)

    def step_back(self, tr: Trace, rec: Any, bw: BackTrace, brec: Any, t: int,
                  W_hh: Any) -> None:
        xp, H = tr.xp, tr.H
        prev, _ = tr.rows(t)
        _, _, (q, p) = self._gate_scales(tr)
        a = tr.buffers["acts"][t]
        tc = tr.buffers["tanh_c"][t]
        i, f, g, o = a[:, :H], a[:, H : 2 * H], a[:, 2 * H : 3 * H], a[:, 3 * H :]
        dh, dc, t1 = bw.dh, bw.dc_next, brec.t1
        dA = bw.dxw[t]
        if rec.kernels is not None:
            rec.kernels.lstm_backward(a, tc, tr.c[prev], dh, dc, dA)
            brec.times_w(dA, W_hh, bw.dh_next)
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
        deriv = brec.tg
        xp.subtract(q, a, out=deriv)
        deriv *= a
        deriv += p
        dA *= deriv
        brec.times_w(dA, W_hh, bw.dh_next)


class GRUSteps(FastCell):
    """GRU cell, PyTorch gate order r, z, n; ``reset_after`` picks the form (see module doc)."""

    n_gates = 3

    def __init__(self, reset_after: bool = True) -> None:
        self.reset_after = reset_after
        self.separate_hidden = reset_after

    def compiled_loop(self) -> bool:
        return self.reset_after

    def scan(self, tr: Trace, rec: Any, panels: Any, b_hh_rest: Any) -> None:
        T, N, H = tr.T, tr.N, tr.H
        acts = tr.buffer("acts", (T, N, 3 * H))
        hn_all = tr.buffer("hn", (T, N, H))
        has_rest = b_hh_rest is not None
        rec.kernels.gru_scan(tr.xw, tr.h, acts, hn_all, rec.tmp, panels,
                            b_hh_rest if has_rest else rec.tmp[0], has_rest,
                            rec.kernel_scratch(2 * H), rec.kernel_scratch(H),
                            tr.reverse)

    def scan_back(self, tr: Trace, rec: Any, bw: BackTrace, brec: Any, dH: Any,
                  panels: Any) -> None:
        hn_all = tr.buffers["hn"]
        rec.kernels.gru_scan_back(tr.buffers["acts"], tr.h, hn_all,
                                 hn_all if dH is None else dH, dH is not None, bw.dh,
                                 bw.dh_next, brec.t1, bw.dxw, bw.dhw, panels, tr.reverse)

    def step(self, tr: Trace, rec: Any, t: int, W_hh: Any, b_hh_rest: Any) -> None:
        xp, H = tr.xp, tr.H
        prev, cur = tr.rows(t)
        h_prev = tr.h[prev]
        acts = tr.buffer("acts", (tr.T, tr.N, 3 * H))
        a = acts[t]
        rz, n = a[:, : 2 * H], a[:, 2 * H :]
        xw = tr.xw[t]
        if self.reset_after:
            hn_all = tr.buffer("hn", (tr.T, tr.N, H))  # h W_hn^T + b_hn, needed by backward
            hw = rec.tmp
            rec.times_wt(h_prev, W_hh, hw)
            xp.add(xw[:, : 2 * H], hw[:, : 2 * H], out=rz)
            _sigmoid(tr, rec, rz)
            hn = hn_all[t]
            if b_hh_rest is None:
                hn[...] = hw[:, 2 * H :]
            else:
                xp.add(hw[:, 2 * H :], b_hh_rest, out=hn)
            xp.multiply(rz[:, :H], hn, out=n)
        else:
            rh_all = tr.buffer("rh", (tr.T, tr.N, H))  # r * h_{t-1}, needed by backward
            rec.times_wt(h_prev, W_hh[: 2 * H], rz, add=xw[:, : 2 * H])
            _sigmoid(tr, rec, rz)
            rh = rh_all[t]
            xp.multiply(rz[:, :H], h_prev, out=rh)
            rec.times_wt(rh, W_hh[2 * H :], n)
        n += xw[:, 2 * H :]
        if rec.kernels is not None:
            rec.kernels.tanh_(n, rec.kernel_scratch(H))
        else:
            xp.tanh(n, out=n)
        # h_t = (1 - z) n + z h_{t-1} = n + z (h_{t-1} - n)
        h = tr.h[cur]
        xp.subtract(h_prev, n, out=h)
        h *= rz[:, H:]
        h += n

    def step_back(self, tr: Trace, rec: Any, bw: BackTrace, brec: Any, t: int,
                  W_hh: Any) -> None:
        xp, H = tr.xp, tr.H
        prev, _ = tr.rows(t)
        h_prev = tr.h[prev]
        a = tr.buffers["acts"][t]
        r, z, n = a[:, :H], a[:, H : 2 * H], a[:, 2 * H :]
        dh, t1, t2 = bw.dh, brec.t1, brec.t2
        dA = bw.dxw[t]
        if rec.kernels is not None and self.reset_after:
            dhw = bw.dhw[t]
            rec.kernels.gru_backward(a, h_prev, tr.buffers["hn"][t], dh, dA, dhw, t1)
            brec.times_w(dhw, W_hh, bw.dh_next)
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
            hn = tr.buffers["hn"][t]
            dhw = bw.dhw[t]
            xp.multiply(dn, hn, out=dr)
            dr *= t2
            dhw[:, : 2 * H] = dA[:, : 2 * H]
            xp.multiply(dn, r, out=dhw[:, 2 * H :])
            brec.times_w(dhw, W_hh, bw.dh_next)
        else:
            drh = t1
            brec.times_w(dn, W_hh[2 * H :], drh)
            xp.multiply(drh, h_prev, out=dr)
            dr *= t2
            brec.times_w(dA[:, : 2 * H], W_hh[: 2 * H], bw.dh_next)
            drh *= r
            bw.dh_next += drh
        # the direct path h_t = ... + z h_{t-1}
        xp.multiply(dh, z, out=t1)
        bw.dh_next += t1


def fast_cell(cell: Any) -> FastCell:
    """The engine's steps for the reference cell ``cell`` (:mod:`rnnlab.nn.cells`)."""
    if cell.kind == "rnn":
        return RNNSteps(cell.nonlinearity)
    if cell.kind == "lstm":
        return LSTMSteps()
    if cell.kind == "gru":
        return GRUSteps(cell.reset_after)
    raise ValueError(f"cell: expected an RNN, LSTM or GRU cell, got {cell!r}")
