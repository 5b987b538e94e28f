"""The per-step products of a time loop through packed weights (numba, float32, CPU).

A scan multiplies the batch's rows by the same ``W_hh`` at every step. :class:`PackedProducts`
packs each weight it meets once per scan (:mod:`rnnlab.fast.numba_gemm`) and then runs every
step's product through the packed kernel, with the panels shared out between threads.
The scan calls :meth:`PackedProducts.begin` before each pass, since the weights may have
changed since the last one; the panel buffers are kept and reused.

The panels are 32 columns wide, for the kernel's AVX-512 form, on a CPU with AVX-512,
and 16, for its AVX2 form, elsewhere (:func:`panel_width`); the two give the same bits.

When it is used (:func:`packed_plan`): numba's kernels are on, the arrays are NumPy
float32, the CPU has AVX2 and FMA, and the per-step product is large enough. The
thresholds come from whole training steps timed against the BLAS forms (``python
benchmarks/bench_loop_products.py``; the figures are in ``benchmarks/RESULTS.md``): a loop
on one thread packs from :data:`PACKED_MIN_MACS`, a loop on more threads packs and shares
from :data:`PACKED_SHARE_MACS` (below that, handing half of each product to a pool thread
and waiting for it costs more than it saves). Sharing needs the other cores free, so a
shared pass first ends OpenBLAS's idle workers
(:func:`rnnlab.fast.threads.release_blas_threads`); where that cannot be done the products
stay with BLAS. A loop on one thread without lengths (an LSTM, an Elman RNN, or a GRU with
the reset after the product) runs whole in one compiled call and packs at every size
(:mod:`rnnlab.fast.loop`). ``RNNLAB_PACKED=0`` keeps every per-step product in BLAS, and
such loops in Python; ``RNNLAB_PACKED=1`` packs them at every size (shared from
:data:`PACKED_SHARE_MACS`).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from rnnlab.fast.config import flag
from rnnlab.fast.threads import can_release_blas_threads, release_blas_threads, run_together

#: a loop on one thread runs per-step products from this size (multiply-adds) packed
PACKED_MIN_MACS = 4_000_000
#: a loop on several threads runs them packed, shared between its threads, from this size
PACKED_SHARE_MACS = 16_000_000

#: work a thread takes at a time when threads share a product, in multiply-adds (smaller
#: chunks mean more taking and more output cache lines written by both threads, larger
#: ones an uneven finish: ``python benchmarks/bench_loop_products.py --chunks``)
CHUNK_MACS = 2_000_000

#: the panel width every pass packs to, where a test forces one of
#: :data:`rnnlab.fast.numba_gemm.WIDTHS` (None: :func:`panel_width` asks the CPU)
FORCED_WIDTH: int | None = None


@functools.cache
def _host_features() -> dict[str, bool]:
    """The host CPU's features as LLVM reports them (empty when llvmlite cannot say)."""
    try:
        from llvmlite import binding  # optional extra: numba's compiler

        return {name: bool(on) for name, on in binding.get_host_cpu_features().items()}
    except Exception:  # pragma: no cover - llvmlite without the query
        return {}


def fast_on_this_cpu() -> bool:
    """Whether the host CPU has the AVX2 and FMA instructions the packed kernel is
    written for (on other CPUs it is correct but not faster than BLAS)."""
    features = _host_features()
    return features.get("avx2", False) and features.get("fma", False)


def wide_on_this_cpu() -> bool:
    """Whether the host CPU has AVX-512 (``avx512f``, with ``avx512vl``), for the packed
    kernel's wide form: 32 vector registers of 16 floats."""
    features = _host_features()
    return features.get("avx512f", False) and features.get("avx512vl", False)


def panel_width(gemm: Any) -> int:
    """The width of the panels a pass packs to, which chooses the packed kernel
    (:mod:`rnnlab.fast.numba_gemm`): ``gemm.NR_WIDE`` (AVX-512 vectors) on a CPU with
    AVX-512, else ``gemm.NR`` (AVX2); :data:`FORCED_WIDTH` overrides."""
    if FORCED_WIDTH is not None:
        return FORCED_WIDTH
    return int(gemm.NR_WIDE if wide_on_this_cpu() else gemm.NR)


def _forced() -> bool | None:
    """``RNNLAB_PACKED``: True for on, False for off, None for ``auto``."""
    return flag("RNNLAB_PACKED")


def packed_allowed(kernels: Any) -> bool:
    """Whether per-step products may go through packed weights at all: the compiled
    ``kernels`` are on, the CPU has AVX2 and FMA (or ``RNNLAB_PACKED=1`` asks for it
    anyway), and ``RNNLAB_PACKED`` is not ``0``."""
    if kernels is None or not hasattr(kernels, "gemm"):
        return False
    forced = _forced()
    return forced if forced is not None else fast_on_this_cpu()


def packed_plan(kernels: Any, macs: int, threads: int) -> int:
    """How many threads run the packed per-step products of a scan with these compiled
    ``kernels`` (``None`` for the NumPy path), products of ``macs`` multiply-adds, in a
    loop that may use ``threads``: 0 when BLAS keeps them (see the module docstring)."""
    if not packed_allowed(kernels):
        return 0
    shared = max(1, threads) if macs >= PACKED_SHARE_MACS else 1
    if _forced():
        return shared
    if threads <= 1:
        return 1 if macs >= PACKED_MIN_MACS else 0
    return shared if shared > 1 and can_release_blas_threads() else 0


class PackedProducts:
    """``out = a @ B (+ add)`` for the per-step products of one scan pass.

    ``threads`` is how many threads share each product: the calling thread and
    ``threads - 1`` of the pool's take chunks of :data:`CHUNK_MACS` of work from a shared
    counter until none is left.
    """

    def __init__(self, gemm: Any, threads: int) -> None:
        self.gemm = gemm
        self.threads = max(1, int(threads))
        self.width = panel_width(gemm)
        # (K, P, width, i) -> panels, reused; i counts the weights of one shape in a pass
        self._buffers: dict[tuple[int, int, int, int], Any] = {}
        self._current: dict[tuple[Any, ...], Any] = {}  # weights packed in this pass
        self._counter = np.zeros(1, np.int64)  # the next chunk of panels, shared by threads

    def begin(self, threads: int) -> None:
        """Start a pass: every weight is packed again on first use, to the panel width of
        :func:`panel_width`. A pass on several threads first stops BLAS's idle workers,
        which would hold the cores."""
        self.threads = max(1, int(threads))
        self.width = panel_width(self.gemm)
        self._current.clear()
        if self.threads > 1:
            release_blas_threads()

    def panels(self, B: Any) -> Any:
        """``B`` ``(K, M)`` packed (:func:`rnnlab.fast.numba_gemm.pack`), once per pass."""
        key = (B.ctypes.data, B.shape, B.strides)
        panels = self._current.get(key)
        if panels is None:
            K, M = B.shape
            P = self.gemm.panel_count(M, self.width)
            slot = (K, P, self.width, len([k for k in self._current if k[1] == B.shape]))
            panels = self._buffers.get(slot)
            if panels is None:
                panels = self._buffers[slot] = np.empty((P, K, self.width), np.float32)
            self.gemm.pack(B, panels)
            self._current[key] = panels
        return panels

    def matmul(self, a: Any, B: Any, out: Any, add: Any = None) -> None:
        """``out = a @ B (+ add)``; ``a (N, K)``, ``out`` and ``add`` ``(N, M)`` with
        contiguous rows."""
        panels = self.panels(B)
        has_add = add is not None
        add_arr = add if has_add else out
        run = self.gemm.matmul_panels
        P = panels.shape[0]
        if self.threads == 1 or P < 2:
            run(a, panels, out, add_arr, has_add, 0, P)
            return
        counter = self._counter
        counter[0] = 0
        shared = self.gemm.matmul_shared
        chunk = max(1, CHUNK_MACS // max(1, a.shape[0] * a.shape[1] * panels.shape[2]))
        run_together(lambda: shared(a, panels, out, add_arr, has_add, counter, chunk),
                     self.threads)
