"""Few-row float32 matrix products against a packed weight (numba; see :mod:`rnnlab.fast.kernels`).

The per-step products of a time loop multiply a few rows, the batch, by the same weight
at every step: ``(N, K) @ (K, M)`` with ``N`` about 20 and ``K``, ``M`` in the hundreds.
A BLAS call copies ("packs") the weight into its blocked layout on every call, and with
20 rows that copy costs about as much as the arithmetic. Here a scan packs the weight
once, into column panels of 16::

    panels[p, k, j] = B[k, 16 p + j]      (P, K, 16), P = ceil(M / 16), zero past M

and each step runs a register-blocked kernel over them: a tile of up to 6 rows by 16
columns is held in twelve 8-float vector registers while ``k`` runs over the panel, each
step of ``k`` loading two vectors of the panel and broadcasting one value of ``a`` per
row into fused multiply-adds. Each panel (about 40 kB at ``K = 650``) stays in the core's
cache while the tiles of all rows pass over it, so the weight is read once per product.

The tile is written in LLVM IR through a numba intrinsic, because numba's own loops do
not keep a tile of accumulators in registers. ``llvm.fma.v8f32`` compiles to two AVX2
``vfmadd`` instructions' worth of work on x86-64 (and to NEON pairs elsewhere); the
scans use this path only where the CPU has FMA and AVX2 (:func:`fast_on_this_cpu`).

Each output element is the sum over ``k`` in increasing order, in float32 with one
rounding per fused multiply-add: the same products as BLAS, summed in another order, so
results agree with ``a @ B`` to float32 rounding (``tests/nn/test_packed_gemm.py``).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

#: columns per panel (two 8-float vectors) and rows per register tile
NR = 16
MR = 6

_F32 = ir.FloatType()
_I32 = ir.IntType(32)
_I64 = ir.IntType(64)
_VEC = ir.VectorType(_F32, 8)
_OPTS = {"nogil": True, "boundscheck": False, "cache": True}


def _make_tile(rows: int):
    """The intrinsic ``tile(a, lda, b, k, c, ldc, d, ldd)`` for a tile of ``rows`` rows.

    Arguments are addresses (bytes) and strides (elements) of float32 data::

        c[r, j] = sum_{q < k} a[r, q] * b[q, j]  (+ d[r, j] when d != 0)
        for r < rows, j < 16;  a[r, q] at a + 4 (r lda + q), b[q, j] at b + 4 (16 q + j),
        c[r, j] at c + 4 (r ldc + j), d[r, j] at d + 4 (r ldd + j).  k >= 1.
    """
    nv = NR // 8

    @intrinsic
    def tile(typingctx, a, lda, b, k, c, ldc, d, ldd):
        sig = types.void(types.intp, types.intp, types.intp, types.intp,
                         types.intp, types.intp, types.intp, types.intp)

        def codegen(context, builder, signature, args):
            a_addr, lda_, b_addr, k_, c_addr, ldc_, d_addr, ldd_ = args
            fptr = _F32.as_pointer()
            vptr = _VEC.as_pointer()
            A = builder.inttoptr(a_addr, fptr)
            B = builder.inttoptr(b_addr, fptr)
            fma = builder.module.declare_intrinsic(
                "llvm.fma.v8f32", (), ir.FunctionType(_VEC, [_VEC, _VEC, _VEC]))
            undef = ir.Constant(_VEC, ir.Undefined)
            splat = ir.Constant(ir.VectorType(_I32, 8), [0] * 8)

            def const(v: int) -> ir.Constant:
                return ir.Constant(_I64, v)

            entry = builder.block
            loop = builder.append_basic_block("tile.loop")
            done = builder.append_basic_block("tile.done")
            builder.branch(loop)

            builder.position_at_end(loop)
            q = builder.phi(_I64)
            acc = [builder.phi(_VEC) for _ in range(rows * nv)]
            q.add_incoming(const(0), entry)
            for x in acc:
                x.add_incoming(ir.Constant(_VEC, None), entry)
            row_b = builder.mul(q, const(NR))
            bv = [builder.load(builder.bitcast(builder.gep(B, [builder.add(row_b, const(8 * v))]),
                                               vptr), align=4) for v in range(nv)]
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
                            off_d = builder.add(builder.mul(const(r), ldd_), const(8 * v))
                            dv = builder.load(builder.bitcast(builder.gep(D, [off_d]), vptr),
                                              align=4)
                            off_c = builder.add(builder.mul(const(r), ldc_), const(8 * v))
                            builder.store(builder.fadd(new[r * nv + v], dv),
                                          builder.bitcast(builder.gep(C, [off_c]), vptr), align=4)
                with plain:
                    for r in range(rows):
                        for v in range(nv):
                            off_c = builder.add(builder.mul(const(r), ldc_), const(8 * v))
                            builder.store(new[r * nv + v],
                                          builder.bitcast(builder.gep(C, [off_c]), vptr), align=4)
            return context.get_dummy_value()

        return sig, codegen

    return tile


_TILE1, _TILE2, _TILE3, _TILE4, _TILE5, _TILE6 = (_make_tile(r) for r in range(1, MR + 1))


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


@intrinsic
def _fetch_add(typingctx, addr):
    """``old = *addr; *addr += 1`` atomically on an int64 at address ``addr``; returns old."""
    sig = types.int64(types.intp)

    def codegen(context, builder, signature, args):
        ptr = builder.inttoptr(args[0], _I64.as_pointer())
        return builder.atomic_rmw("add", ptr, ir.Constant(_I64, 1), "monotonic")

    return sig, codegen


@njit(**_OPTS)
def _tile_rows(left):
    """Rows of the next tile when ``left`` rows remain: the rows split evenly into as few
    tiles as possible (20 rows: 5, 5, 5, 5 rather than 6, 6, 6, 2; a tile of 2 rows
    keeps only 4 accumulators, too few to hide the latency of the multiply-adds)."""
    tiles = (left + MR - 1) // MR
    return (left + tiles - 1) // tiles


def panel_count(cols: int) -> int:
    """How many 16-column panels hold ``cols`` columns."""
    return -(-cols // NR)


@njit(**_OPTS)
def pack(b, panels):
    """``panels (P, K, 16) <- b (K, M)`` in panel order, zero past column ``M``; ``b`` may
    have any strides, and the loops read it along its contiguous side. (For C's
    large weights a pack costs a small part of a scan's products.)"""
    K, M = b.shape
    P = panels.shape[0]
    if b.strides[1] <= b.strides[0]:  # rows of b are contiguous (b = W): read row by row
        for q in range(K):
            for p in range(P):
                for j in range(NR):
                    m = p * NR + j
                    panels[p, q, j] = b[q, m] if m < M else np.float32(0.0)
    else:  # columns of b are contiguous (b = W.T): 16 of them side by side
        for p in range(P):
            for q in range(K):
                for j in range(NR):
                    m = p * NR + j
                    panels[p, q, j] = b[q, m] if m < M else np.float32(0.0)


@njit(**_OPTS)
def matmul_panels(a, panels, out, add, has_add, p0, p1):
    """``out[:, cols] = a @ B[:, cols] (+ add[:, cols])`` for the columns of panels
    ``p0 <= p < p1``; ``a (N, K)``, ``out`` and ``add`` ``(N, M)`` float32 with contiguous
    rows, ``panels`` from :func:`pack` of ``B (K, M)``. ``add`` is ignored unless
    ``has_add``. The kernel reads raw addresses, so the layout is checked here (float32
    is the caller's promise: the scans use this path only for float32)."""
    N, K = a.shape
    M = out.shape[1]
    if (out.shape[0] != N or panels.shape[1] != K or panels.shape[2] != NR
            or panels.shape[0] * NR < M or p1 > panels.shape[0]
            or (has_add and (add.shape[0] != N or add.shape[1] != M))):
        raise ValueError("matmul_panels: shapes of a, panels, out and add do not match")
    if N == 0:
        return
    if ((K > 1 and a.strides[1] != 4) or (M > 1 and out.strides[1] != 4)
            or (has_add and M > 1 and add.strides[1] != 4)):
        raise ValueError("matmul_panels: a, out and add need contiguous float32 rows")
    if K == 0:
        for n in range(N):
            for m in range(p0 * NR, min(p1 * NR, M)):
                out[n, m] = add[n, m] if has_add else np.float32(0.0)
        return
    lda = a.strides[0] // 4
    ldc = out.strides[0] // 4
    ldd = add.strides[0] // 4
    a0 = a.ctypes.data
    b0 = panels.ctypes.data
    c0 = out.ctypes.data
    d0 = add.ctypes.data
    for p in range(p0, p1):
        col = p * NR
        b = b0 + p * K * NR * 4
        if col + NR <= M:
            r0 = 0
            while r0 < N:
                rows = _tile_rows(N - r0)
                _tile(rows, a0 + r0 * lda * 4, lda, b, K, c0 + (r0 * ldc + col) * 4, ldc,
                      d0 + (r0 * ldd + col) * 4 if has_add else 0, ldd)
                r0 += rows
        else:  # the last, partial panel: through a scratch
            last = np.empty((N, NR), np.float32)
            r0 = 0
            while r0 < N:
                rows = _tile_rows(N - r0)
                _tile(rows, a0 + r0 * lda * 4, lda, b, K, last.ctypes.data + r0 * NR * 4, NR,
                      0, 0)
                r0 += rows
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
