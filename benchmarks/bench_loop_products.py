"""The forms of the time loop's per-step products, side by side in one process.

    python benchmarks/bench_loop_products.py                 # C, D, Zaremba, B; 20 rounds
    python benchmarks/bench_loop_products.py --models C --rounds 30
    python benchmarks/bench_loop_products.py --products      # the products alone

One training step (zero_grad, forward, loss, backward, clipping at 0.25, SGD) of each
model with the per-step products in three forms, taking turns in a rotating order:

* ``plain``: BLAS, ``h @ W^T`` (``RNNLAB_PACKED=0 RNNLAB_LOOP_TRANSPOSED=0``);
* ``transposed``: BLAS, ``(W @ h^T)^T`` (``RNNLAB_PACKED=0 RNNLAB_LOOP_TRANSPOSED=1``, see
  ``rnnlab.fast.cells._step_product``);
* ``packed``: the packed kernel (``RNNLAB_PACKED=1``, see ``rnnlab.fast.packed``), shared
  between as many threads as the loop would give BLAS from ``PACKED_SHARE_MACS``
  multiply-adds per product, on the calling thread alone below;
* ``packed-1``: the packed kernel on the calling thread alone at every size.

It prints the median step of each and the speed-up over ``plain``. Below
``LOOP_SHARE_MACS`` (B) the loop keeps one BLAS thread, where ``plain`` and
``transposed`` are the same code path: their ratio there shows the noise of the
measurement.

``--products`` times the forward product of one step alone instead (``h @ W^T + xw``
through the scan's ``Trace.times_wt`` in each form), on one and on two threads, for each
model's sizes; the packed kernel in the panel width this CPU gets
(``rnnlab.fast.packed.panel_width``: 32 columns of AVX-512 vectors where the CPU has
AVX-512, else 16 of AVX2 ones) and, as ``packed-16``, in the AVX2 form.

``--widths`` times whole steps with the packed kernel's AVX2 form (``FORCED_WIDTH`` 16)
and its AVX-512 form (32) taking turns, every other setting the engine's own.

``--release`` times whole steps of A, B, Zaremba and C with ``RNNLAB_RELEASE_BLAS=1``
and ``0`` taking turns: whether ending OpenBLAS's idle workers before rnnlab's own
threaded work (the loss's row sweeps, the shared packed products) pays.

``--beside`` times whole steps of A, B, Zaremba, C and D with ``RNNLAB_BESIDE=1`` and ``0``
taking turns: the weight gradients (the output layer's, then each recurrent layer's as its
loop ends) on the second core beside the recurrent backward's chain of input gradients
(``rnnlab.fast.threads.run_beside``, ``RNNLM.backward``), against the plain order.

``--whole`` times whole steps of A, B and B-GRU (B with a GRU) with ``RNNLAB_PACKED=0``
and unset taking turns: the time loops as Python loops over the step kernels with BLAS
products, against one compiled call per loop (``rnnlab.fast.loop``, ``FastCell.scan``); it
also prints the time of the recurrent layer's scans (``scan_forward`` +
``scan_backward``, the input projection and weight-gradient products included) within
those steps. For Zaremba's model only the backward's loops differ (they run beside the
weight gradients, on one thread); for C ``RNNLAB_PACKED=0`` also moves the forward's
shared packed products back to BLAS. (In the default forms, ``packed`` and ``packed-1``
of a loop on one thread, such as B's, are that compiled call too.)

``--chunks`` times C's two per-step products (forward ``(20, 650) @ (650, 2600)``,
backward ``(20, 2600) @ (2600, 650)``) packed and shared by two threads, for several
chunk sizes (``rnnlab.fast.packed.CHUNK_MACS``), next to one thread.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

MODELS = {  # vocab, embedding, hidden, layers, batch, T, cell
    "A": (10000, 100, 100, 1, 20, 35, "rnn"),
    "C": (10000, 650, 650, 2, 20, 35, "lstm"),
    "D": (65, 256, 256, 1, 32, 100, "lstm"),
    "Zaremba": (10000, 200, 200, 2, 20, 20, "lstm"),
    "B": (10000, 100, 100, 1, 20, 35, "lstm"),
    "B-GRU": (10000, 100, 100, 1, 20, 35, "gru"),  # B with a GRU 100
}


def _median_us(fn: Callable[[], None], reps: int = 200) -> float:
    for _ in range(20):
        fn()
    runs = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        runs.append((time.perf_counter() - start) / reps)
    return float(np.median(runs)) * 1e6


def products(names: list[str]) -> None:
    """Time the engine's own per-step product (``Plan.times_wt``) in each form."""
    from threadpoolctl import threadpool_limits

    from rnnlab.fast import kernels as _kernels
    from rnnlab.fast.loop import Plan
    from rnnlab.fast.packed import PackedProducts
    from rnnlab.nn.trace import Trace

    kernels = _kernels.get()
    rng = np.random.default_rng(0)
    from rnnlab.fast import packed as _packed

    width = _packed.panel_width(kernels.gemm) if kernels is not None else 0
    print(f"packed: panels of {width} columns on this CPU")
    print(f"{'model':<9}{'threads':>8}{'plain us':>10}{'transposed us':>15}{'packed us':>11}"
          f"{'packed-16 us':>14}{'transposed':>12}{'packed':>8}{'packed-16':>11}")
    for name in names:
        _, D, H, _, N, _, _ = MODELS[name]
        tr = Plan(Trace(np, 1, N, D, H, 4, np.float32, True))
        h = rng.standard_normal((N, H)).astype(np.float32)
        W = rng.standard_normal((4 * H, H)).astype(np.float32)
        xw = rng.standard_normal((N, 4 * H)).astype(np.float32)
        out = np.empty((N, 4 * H), np.float32)
        timed = {}
        for threads in (1, 2):
            with threadpool_limits(threads):
                for form in ("plain", "transposed", "packed", "packed-16"):
                    tr.transposed = form == "transposed"
                    tr.packed = None
                    if form.startswith("packed"):
                        if kernels is None:
                            timed[form] = float("nan")
                            continue
                        _packed.FORCED_WIDTH = 16 if form == "packed-16" else None
                        tr.packed = PackedProducts(kernels.gemm, threads)
                        tr.packed.begin(threads)  # as a scan does: frees the cores
                        _packed.FORCED_WIDTH = None
                    timed[form] = _median_us(partial(tr.times_wt, h, W, out, add=xw))
            plain = timed["plain"]
            print(f"{name:<9}{threads:>8}{plain:>10.0f}{timed['transposed']:>15.0f}"
                  f"{timed['packed']:>11.0f}{timed['packed-16']:>14.0f}"
                  f"{plain / timed['transposed']:>11.2f}x{plain / timed['packed']:>7.2f}x"
                  f"{plain / timed['packed-16']:>10.2f}x", flush=True)


def chunks(rounds: int = 300) -> None:
    """Time C's packed per-step products on two threads for several chunk sizes."""
    from rnnlab.fast import kernels as _kernels
    from rnnlab.fast import packed as _packed

    kernels = _kernels.get()
    if kernels is None:
        print("numba is not installed: no packed products to time")
        return
    saved = _packed.CHUNK_MACS
    sizes = [200_000, 400_000, 1_600_000, 2_000_000, 3_200_000, 2**62]
    rng = np.random.default_rng(0)
    print(f"{'product':<28}"
          + "".join(f"{size / 1e6 if size < 2**62 else 'whole':>10}" for size in sizes)
          + f"{'1 thread':>10}   (us; chunks in M multiply-adds)")
    for N, K, M in ((20, 650, 2600), (20, 2600, 650)):
        B = rng.standard_normal((K, M)).astype(np.float32)
        a = rng.standard_normal((N, K)).astype(np.float32)
        out = np.empty((N, M), np.float32)
        two, one = _packed.PackedProducts(kernels.gemm, 2), _packed.PackedProducts(kernels.gemm, 1)
        times: dict[Any, list[float]] = {size: [] for size in [*sizes, "one"]}
        for _ in range(rounds):
            for size in sizes:
                _packed.CHUNK_MACS = size
                start = time.perf_counter()
                two.matmul(a, B, out)
                times[size].append(time.perf_counter() - start)
            start = time.perf_counter()
            one.matmul(a, B, out)
            times["one"].append(time.perf_counter() - start)
        print(f"{f'({N}, {K}) @ ({K}, {M})':<28}"
              + "".join(f"{np.median(times[size]) * 1e6:>10.0f}" for size in [*sizes, "one"]),
              flush=True)
    _packed.CHUNK_MACS = saved


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", help="default C,D,Zaremba,B (--release: A,B,Zaremba,C; "
                   "--beside: A,B,Zaremba,C,D)")
    p.add_argument("--rounds", type=int, default=20, help="timed steps per form")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--products", action="store_true",
                   help="time one step's forward product alone, on 1 and 2 threads")
    p.add_argument("--release", action="store_true",
                   help="whole steps with and without ending BLAS's idle workers first")
    p.add_argument("--beside", action="store_true",
                   help="whole steps with and without the weight gradients beside the "
                   "recurrent backward")
    p.add_argument("--whole", action="store_true",
                   help="whole steps with the time loops in Python and in one compiled call")
    p.add_argument("--widths", action="store_true",
                   help="whole steps with the packed kernel's AVX2 and AVX-512 forms")
    p.add_argument("--chunks", action="store_true",
                   help="time C's packed products on 2 threads for several chunk sizes")
    args = p.parse_args()
    if args.models is None:
        args.models = ("A,B,Zaremba,C" if args.release else "A,B,Zaremba,C,D" if args.beside
                       else "A,B,B-GRU" if args.whole else "C,D,Zaremba,B")
    if args.products:
        products(args.models.split(","))
        return 0
    if args.chunks:
        chunks()
        return 0
    from threadpoolctl import threadpool_limits

    from rnnlab.fast import packed as _packed
    from rnnlab.models import RNNLM
    from rnnlab.nn import recurrent
    from rnnlab.optim import SGD, clip_grad_norm

    share = _packed.PACKED_SHARE_MACS
    in_loops = [0.0]  # seconds in the recurrent layer's scans during the current step

    def timed(fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*a: Any, **k: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                in_loops[0] += time.perf_counter() - start
        return run

    widths = {"AVX2 (16)": 16, "AVX-512 (32)": 32}
    if args.whole:
        recurrent.scan_forward = timed(recurrent.scan_forward)
        recurrent.scan_backward = timed(recurrent.scan_backward)
        forms = {"python": ({"RNNLAB_PACKED": "0"}, share),
                 "whole": ({"RNNLAB_PACKED": "auto"}, share)}
    elif args.widths:
        forms = {name: ({}, share) for name in widths}
    elif args.beside:
        forms = {"plain": ({"RNNLAB_BESIDE": "0"}, share),
                 "beside": ({"RNNLAB_BESIDE": "1"}, share)}
    elif args.release:
        forms = {"keep": ({"RNNLAB_RELEASE_BLAS": "0"}, share),
                 "release": ({"RNNLAB_RELEASE_BLAS": "1"}, share)}
    else:
        forms = {"plain": ({"RNNLAB_PACKED": "0", "RNNLAB_LOOP_TRANSPOSED": "0"}, share),
                 "transposed": ({"RNNLAB_PACKED": "0", "RNNLAB_LOOP_TRANSPOSED": "1"}, share),
                 "packed": ({"RNNLAB_PACKED": "1", "RNNLAB_LOOP_TRANSPOSED": "0"}, share),
                 "packed-1": ({"RNNLAB_PACKED": "1", "RNNLAB_LOOP_TRANSPOSED": "0"}, 2**62)}
    order = list(forms)
    rng = np.random.default_rng(0)
    print(f"{args.threads} BLAS thread(s), median of {args.rounds} steps per form")
    print(f"{'model':<9}" + "".join(f"{form + ' ms':>15}" for form in forms)
          + "".join(f"{form:>12}" for form in order[1:]) + f"   (speed-up over {order[0]})"
          + ("".join(f"{form + ' loops ms':>18}" for form in forms) if args.whole else ""))
    with threadpool_limits(args.threads):
        for name in args.models.split(","):
            V, E, H, L, N, T, cell = MODELS[name]
            model = RNNLM(V, embedding_dim=E, hidden_size=H, num_layers=L, cell=cell, rng=0)
            opt = SGD(model, lr=0.1)
            x = rng.integers(0, V, (N, T)).astype(np.int32)
            y = rng.integers(0, V, (N, T)).astype(np.int32)
            times: dict[str, list[float]] = {form: [] for form in forms}
            loops: dict[str, list[float]] = {form: [] for form in forms}
            for i in range(args.rounds + 3):
                for form in order[i % len(order):] + order[: i % len(order)]:
                    os.environ.update(forms[form][0])
                    _packed.PACKED_SHARE_MACS = forms[form][1]
                    _packed.FORCED_WIDTH = widths.get(form) if args.widths else None
                    in_loops[0] = 0.0
                    start = time.perf_counter()
                    model.zero_grad()
                    model.forward_loss(x, y)
                    model.backward()
                    clip_grad_norm(model, 0.25)
                    opt.step()
                    if i >= 3:  # warm-up
                        times[form].append(time.perf_counter() - start)
                        loops[form].append(in_loops[0])
            ms = {form: float(np.median(t)) * 1e3 for form, t in times.items()}
            print(f"{name:<9}" + "".join(f"{ms[form]:>15.1f}" for form in forms)
                  + "".join(f"{ms[order[0]] / ms[form]:>11.3f}x" for form in order[1:])
                  + "".join(f"{float(np.median(loops[form])) * 1e3:>18.2f}" for form in forms
                            if args.whole), flush=True)
    _packed.PACKED_SHARE_MACS = share
    _packed.FORCED_WIDTH = None
    for variables, _ in forms.values():
        for var in variables:
            os.environ.pop(var, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
