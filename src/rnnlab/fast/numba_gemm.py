"""Few-row float32 matrix products against a packed weight (numba; see :mod:`rnnlab.fast.kernels`).

The per-step products of a time loop multiply a few rows, the batch, by the same weight
at every step: ``(N, K) @ (K, M)`` with ``N`` about 20 and ``K``, ``M`` in the hundreds.
A BLAS call copies ("packs") the weight into its blocked layout on every call, and with
20 rows that copy costs about as much as the arithmetic. Here a scan packs the weight
once, into column panels of ``w`` columns::

    panels[p, k, j] = B[k, w p + j]      (P, K, w), P = ceil(M / w), zero past M

and each step runs a register-blocked kernel over them: a tile of rows by ``w`` columns
is held in two vector registers per row while ``k`` runs over the panel, each step of
``k`` loading two vectors of the panel and broadcasting one value of ``a`` per row into
fused multiply-adds. The panel width is the kernel's choice, and the panels carry it:

* ``w = 16`` (:data:`NR`): 8-float vectors (``llvm.fma.v8f32``, AVX2), tiles of up to
  :data:`MR` = 6 rows, twelve accumulators of the sixteen AVX2 registers;
* ``w = 32`` (:data:`NR_WIDE`): 16-float vectors (``llvm.fma.v16f32``, AVX-512), tiles
  of up to :data:`MR_WIDE` = 12 rows, 24 accumulators of the 32 AVX-512 registers.

:func:`matmul_panels` runs the kernel of its panels' width, so which one a scan uses
is decided where it packs (:func:`rnnlab.fast.packed.panel_width`: the wide one on CPUs
with AVX-512). The vector types are written out in the IR, so LLVM keeps them whole
whatever vector width it prefers for its own loops (it prefers 256 bits on many
AVX-512 CPUs, and numba inherits that); on a CPU without AVX-512 the wide kernel is
still correct, each vector split in two. Each panel stays in the core's cache while the
tiles of all rows pass over it, so the weight is read once per product.

The tile is written in LLVM IR through a numba intrinsic, because numba's own loops do
not keep a tile of accumulators in registers. The scans use this path only where the
CPU has FMA and AVX2 (:func:`rnnlab.fast.packed.fast_on_this_cpu`).

Each output element is the sum over ``k`` in increasing order, in float32 with one
rounding per fused multiply-add, whichever the width: the same products as BLAS, summed
in another order, so results agree with ``a @ B`` to float32 rounding, and the two
widths give the same bits (``tests/fast/test_packed_gemm.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from rnnlab.fast.kernels import JitOptions

#: columns per panel (two 8-float vectors) and rows per register tile, AVX2
NR = 16
MR = 6
#: columns per panel (two 16-float vectors) and rows per register tile, AVX-512
NR_WIDE = 32
MR_WIDE = 12
#: the panel widths :func:`matmul_panels` has a kernel for
WIDTHS = (NR, NR_WIDE)

_F32 = ir.FloatType()
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_OPTS: JitOptions = {"nogil": True, "boundscheck": False, "cache": True}


def _make_tile(rows: int, lanes: int) -> Any:
    """The intrinsic ``tile(a, lda, b, k, c, ldc, d, ldd)`` for a tile of ``rows`` rows
    and ``2 lanes`` columns, two vectors of ``lanes`` floats per row.

    Arguments are addresses (bytes) and strides (elements) of float32 data::

        c[r, j] = sum_{q < k} a[r, q] * b[q, j]  (+ d[r, j] when d != 0)
        for r < rows, j < 2 lanes;  a[r, q] at a + 4 (r lda + q),
        b[q, j] at b + 4 (2 lanes q + j), c[r, j] at c + 4 (r ldc + j),
        d[r, j] at d + 4 (r ldd + j).  k >= 1.
    """
    nv = 2
    width = nv * lanes
    vec = ir.VectorType(_F32, lanes)

    @intrinsic
    def tile(typingctx, a, lda, b, k, c, ldc, d, ldd):
        sig = types.void(types.intp, types.intp, types.intp, types.intp,
                         types.intp, types.intp, types.intp, types.intp)

        def codegen(context, builder, signature, args):
            a_addr, lda_, b_addr, k_, c_addr, ldc_, d_addr, ldd_ = args
            fptr = _F32.as_pointer()
            vptr = vec.as_pointer()
            A = builder.inttoptr(a_addr, fptr)
            B = builder.inttoptr(b_addr, fptr)
            fma = builder.module.declare_intrinsic(
                f"llvm.fma.v{lanes}f32", (), ir.FunctionType(vec, [vec, vec, vec]))
            undef = ir.Constant(vec, ir.Undefined)
            splat = ir.Constant(ir.VectorType(_I32, lanes), [0] * lanes)

            def const(v: int) -> ir.Constant:
                return ir.Constant(_I64, v)

            entry = builder.block
            loop = builder.append_basic_block("tile.loop")
            done = builder.append_basic_block("tile.done")
            builder.branch(loop)

            builder.position_at_end(loop)
            q = builder.phi(_I64)
            acc = [builder.phi(vec) for _ in range(rows * nv)]
            q.add_incoming(const(0), entry)
            for x in acc:
                x.add_incoming(ir.Constant(vec, None), entry)
            row_b = builder.mul(q, const(width))
            bv = [builder.load(builder.bitcast(
                builder.gep(B, [builder.add(row_b, const(lanes * v))]), vptr), align=4)
                for v in range(nv)]
            new = []
            for r in range(rows):
                s = builder.load(builder.gep(A, [builder.add(builder.mul(const(r), lda_), q)]),
                                 align=4)
                av = builder.shuffle_vector(builder.insert_element(undef, s, ir.Constant(_I32, 0)),
                                            undef, splat)
                for v in range(nv):
                    new.append(builder.call(fma, [av, bv[v], acc[r * nv + v]]))
            q_next = builder.add(q, const(1))
            tail = builder.block
            q.add_incoming(q_next, tail)
            for x, n in zip(acc, new, strict=True):
                x.add_incoming(n, tail)
            builder.cbranch(builder.icmp_signed("<", q_next, k_), loop, done)

            builder.position_at_end(done)
            C = builder.inttoptr(c_addr, fptr)
            D = builder.inttoptr(d_addr, fptr)
            with builder.if_else(builder.icmp_unsigned("!=", d_addr, const(0))) as (with_d, plain):
                with with_d:
                    for r in range(rows):
                        for v in range(nv):
                            off_d = builder.add(builder.mul(const(r), ldd_), const(lanes * v))
                            dv = builder.load(builder.bitcast(builder.gep(D, [off_d]), vptr),
                                              align=4)
                            off_c = builder.add(builder.mul(const(r), ldc_), const(lanes * v))
                            builder.store(builder.fadd(new[r * nv + v], dv),
                                          builder.bitcast(builder.gep(C, [off_c]), vptr), align=4)
                with plain:
                    for r in range(rows):
                        for v in range(nv):
                            off_c = builder.add(builder.mul(const(r), ldc_), const(lanes * v))
                            builder.store(new[r * nv + v],
                                          builder.bitcast(builder.gep(C, [off_c]), vptr), align=4)
            return context.get_dummy_value()

        return sig, codegen

    return tile


_TILE1, _TILE2, _TILE3, _TILE4, _TILE5, _TILE6 = (_make_tile(r, 8) for r in range(1, MR + 1))
(_WIDE1, _WIDE2, _WIDE3, _WIDE4, _WIDE5, _WIDE6, _WIDE7, _WIDE8, _WIDE9, _WIDE10, _WIDE11,
 _WIDE12) = (_make_tile(r, 16) for r in range(1, MR_WIDE + 1))


@njit(**_OPTS)
def _tile(rows, a, lda, b, k, c, ldc, d, ldd):
    if rows == 6:
        _TILE6(a, lda, b, k, c, ldc, d, ldd)
    elif rows == 5:
        _TILE5(a, lda, b, k, c, ldc, d, ldd)
    elif rows == 4:
        _TILE4(a, lda, b, k, c, ldc, d, ldd)
    elif rows == 3:
        _TILE3(a, lda, b, k, c, ldc, d, ldd)
    elif rows == 2:
        _TILE2(a, lda, b, k, c, ldc, d, ldd)
    else:
        _TILE1(a, lda, b, k, c, ldc, d, ldd)


@njit(**_OPTS)
def _tile_wide(rows, a, lda, b, k, c, ldc, d, ldd):
    if rows == 12:
        _WIDE12(a, lda, b, k, c, ldc, d, ldd)
    elif rows == 11:
        _WIDE11(a, lda, b, k, c, ldc, d, ldd)
    elif rows == 10:
        _WIDE10(a, lda, b, k, c, ldc, d, ldd)
    elif rows == 9:
        _WIDE9(a, lda, b, k, c, ldc, d, ldd)
    elif rows == 8:
        _WIDE8(a, lda, b, k, c, ldc, d, ldd)
    elif rows == 7:
        _WIDE7(a, lda, b, k, c, ldc, d, ldd)
    elif rows == 6:
        _WIDE6(a, lda, b, k, c, ldc, d, ldd)
    elif rows == 5:
        _WIDE5(a, lda, b, k, c, ldc, d, ldd)
    elif rows == 4:
        _WIDE4(a, lda, b, k, c, ldc, d, ldd)
    elif rows == 3:
        _WIDE3(a, lda, b, k, c, ldc, d, ldd)
    elif rows == 2:
        _WIDE2(a, lda, b, k, c, ldc, d, ldd)
    else:
        _WIDE1(a, lda, b, k, c, ldc, d, ldd)


@intrinsic
def _fetch_add(typingctx, addr):
    """``old = *addr; *addr += 1`` atomically on an int64 at address ``addr``; returns old."""
    sig = types.int64(types.intp)

    def codegen(context, builder, signature, args):
        ptr = builder.inttoptr(args[0], _I64.as_pointer())
        return builder.atomic_rmw("add", ptr, ir.Constant(_I64, 1), "monotonic")

    return sig, codegen


@njit(**_OPTS)
def _tile_rows(left, most):
    """Rows of the next tile of at most ``most`` rows when ``left`` rows remain: the rows
    split evenly into as few tiles as possible (20 rows in tiles of at most 6: 5, 5, 5, 5
    rather than 6, 6, 6, 2; a tile of 2 rows keeps only 4 accumulators, too few to hide
    the latency of the multiply-adds)."""
    tiles = (left + most - 1) // most
    return (left + tiles - 1) // tiles


@njit(**_OPTS)
def _run_tiles(wide, N, a0, lda, b, k, c0, ldc, d0, ldd):
    """The tiles of one panel over all ``N`` rows (``d0 = 0``: no ``d``)."""
    r0 = 0
    while r0 < N:
        rows = _tile_rows(N - r0, MR_WIDE if wide else MR)
        a = a0 + r0 * lda * 4
        c = c0 + r0 * ldc * 4
        d = d0 + r0 * ldd * 4 if d0 != 0 else 0
        if wide:
            _tile_wide(rows, a, lda, b, k, c, ldc, d, ldd)
        else:
            _tile(rows, a, lda, b, k, c, ldc, d, ldd)
        r0 += rows


def panel_count(cols: int, width: int = NR) -> int:
    """How many panels of ``width`` columns (one of :data:`WIDTHS`) hold ``cols`` columns."""
    if width not in WIDTHS:
        raise ValueError(f"panel_count: width expected one of {WIDTHS}, got {width!r}")
    return -(-cols // width)


@njit(**_OPTS)
def pack(b, panels):
    """``panels (P, K, w) <- b (K, M)`` in panel order, zero past column ``M``, ``w`` the
    panels' width; ``b`` may have any strides, and the loops read it along its contiguous
    side. (For C's large weights a pack costs a small part of a scan's products.)"""
    K, M = b.shape
    P, _, w = panels.shape
    if b.strides[1] <= b.strides[0]:  # rows of b are contiguous (b = W): read row by row
        for q in range(K):
            for p in range(P):
                for j in range(w):
                    m = p * w + j
                    panels[p, q, j] = b[q, m] if m < M else np.float32(0.0)
    else:  # columns of b are contiguous (b = W.T): w of them side by side
        for p in range(P):
            for q in range(K):
                for j in range(w):
                    m = p * w + j
                    panels[p, q, j] = b[q, m] if m < M else np.float32(0.0)


@njit(**_OPTS)
def matmul_panels(a, panels, out, add, has_add, p0, p1):
    """``out[:, cols] = a @ B[:, cols] (+ add[:, cols])`` for the columns of panels
    ``p0 <= p < p1``; ``a (N, K)``, ``out`` and ``add`` ``(N, M)`` float32 with contiguous
    rows, ``panels`` from :func:`pack` of ``B (K, M)``, of a width in :data:`WIDTHS`
    (which chooses the kernel). ``add`` is ignored unless ``has_add``. The kernel reads
    raw addresses, so the layout is checked here (float32 is the caller's promise: the
    scans use this path only for float32)."""
    N, K = a.shape
    M = out.shape[1]
    w = panels.shape[2]
    if (out.shape[0] != N or panels.shape[1] != K or (w != NR and w != NR_WIDE)
            or panels.shape[0] * w < M or p1 > panels.shape[0]
            or (has_add and (add.shape[0] != N or add.shape[1] != M))):
        raise ValueError("matmul_panels: shapes of a, panels, out and add do not match")
    if N == 0:
        return
    if ((K > 1 and a.strides[1] != 4) or (M > 1 and out.strides[1] != 4)
            or (has_add and M > 1 and add.strides[1] != 4)):
        raise ValueError("matmul_panels: a, out and add need contiguous float32 rows")
    if K == 0:
        for n in range(N):
            for m in range(p0 * w, min(p1 * w, M)):
                out[n, m] = add[n, m] if has_add else np.float32(0.0)
        return
    wide = w == NR_WIDE
    lda = a.strides[0] // 4
    ldc = out.strides[0] // 4
    ldd = add.strides[0] // 4
    a0 = a.ctypes.data
    b0 = panels.ctypes.data
    c0 = out.ctypes.data
    d0 = add.ctypes.data
    for p in range(p0, p1):
        col = p * w
        b = b0 + p * K * w * 4
        if col + w <= M:
            _run_tiles(wide, N, a0, lda, b, K, c0 + col * 4, ldc,
                       d0 + col * 4 if has_add else 0, ldd)
        else:  # the last, partial panel: through a scratch
            last = np.empty((N, w), np.float32)
            _run_tiles(wide, N, a0, lda, b, K, last.ctypes.data, w, 0, 0)
            for n in range(N):
                for j in range(M - col):
                    out[n, col + j] = last[n, j] + add[n, col + j] if has_add else last[n, j]


@njit(**_OPTS)
def matmul_shared(a, panels, out, add, has_add, counter, chunk):
    """:func:`matmul_panels` over all panels, taking ``chunk`` panels at a time from the
    shared ``counter`` (an int64 array of one element, zero at the start): any number of
    threads may run it at once, and each takes the next chunk when it is free, so a
    thread that gets less of the CPU simply does fewer chunks."""
    P = panels.shape[0]
    addr = counter.ctypes.data
    while True:
        p0 = _fetch_add(addr) * chunk
        if p0 >= P:
            return
        matmul_panels(a, panels, out, add, has_add, p0, min(P, p0 + chunk))
