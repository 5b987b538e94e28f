"""The two forms of the time loop's per-step products, side by side in one process.

    python benchmarks/bench_loop_products.py                 # C, D, Zaremba, B; 20 pairs
    python benchmarks/bench_loop_products.py --models C --pairs 30
    python benchmarks/bench_loop_products.py --products      # the products alone

One training step (zero_grad, forward, loss, backward, clipping at 0.25, SGD) of each
model with ``RNNLAB_LOOP_TRANSPOSED=0`` (``h @ W^T``) and ``=1`` (``(W @ h^T)^T``, see
``rnnlab.nn._cellmath.Trace.times_wt``), alternating plain/transposed and
transposed/plain, on the given number of BLAS threads; prints the medians and their ratio.
B's per-step products are below ``LOOP_SHARE_MACS`` and run on one thread, where the two
forms are the same code path: its ratio shows the noise of the measurement.

``--products`` times the forward product of one step alone instead (the scan's
``Trace.times_wt``: ``h @ W^T + xw`` against ``(W @ h^T)^T + xw``), on one and on two
threads, for each model's sizes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from functools import partial

import numpy as np

MODELS = {  # vocab, embedding, hidden, layers, batch, T
    "C": (10000, 650, 650, 2, 20, 35),
    "D": (65, 256, 256, 1, 32, 100),
    "Zaremba": (10000, 200, 200, 2, 20, 20),
    "B": (10000, 100, 100, 1, 20, 35),
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
    """Time the scan's own ``Trace.times_wt`` in each form."""
    from threadpoolctl import threadpool_limits

    from rnnlab.nn._cellmath import Trace

    rng = np.random.default_rng(0)
    print(f"{'model':<9}{'threads':>8}{'plain us':>10}{'transposed us':>15}{'speed-up':>10}")
    for name in names:
        _, D, H, _, N, _ = MODELS[name]
        tr = Trace(np, 1, N, D, H, 4, np.float32, True)
        h = rng.standard_normal((N, H)).astype(np.float32)
        W = rng.standard_normal((4 * H, H)).astype(np.float32)
        xw = rng.standard_normal((N, 4 * H)).astype(np.float32)
        out = np.empty((N, 4 * H), np.float32)
        timed = {}
        for threads in (1, 2):
            with threadpool_limits(threads):
                for form in (False, True):
                    tr.transposed = form
                    timed[form] = _median_us(partial(tr.times_wt, h, W, out, add=xw))
            plain, transposed = timed[False], timed[True]
            print(f"{name:<9}{threads:>8}{plain:>10.0f}{transposed:>15.0f}"
                  f"{plain / transposed:>9.2f}x", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="C,D,Zaremba,B")
    p.add_argument("--pairs", type=int, default=20, help="timed steps per form")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--products", action="store_true",
                   help="time one step's forward product alone, on 1 and 2 threads")
    args = p.parse_args()
    if args.products:
        products(args.models.split(","))
        return 0
    from threadpoolctl import threadpool_limits

    from rnnlab.models import RNNLM
    from rnnlab.optim import SGD, clip_grad_norm

    rng = np.random.default_rng(0)
    print(f"{'model':<9}{'plain ms':>10}{'transposed ms':>15}{'speed-up':>10}")
    with threadpool_limits(args.threads):
        for name in args.models.split(","):
            V, E, H, L, N, T = MODELS[name]
            model = RNNLM(V, embedding_dim=E, hidden_size=H, num_layers=L, rng=0)
            opt = SGD(model, lr=0.1)
            x = rng.integers(0, V, (N, T)).astype(np.int32)
            y = rng.integers(0, V, (N, T)).astype(np.int32)
            times: dict[str, list[float]] = {"0": [], "1": []}
            for i in range(args.pairs + 3):
                for form in ("0", "1") if i % 2 == 0 else ("1", "0"):
                    os.environ["RNNLAB_LOOP_TRANSPOSED"] = form
                    start = time.perf_counter()
                    model.zero_grad()
                    model.forward_loss(x, y)
                    model.backward()
                    clip_grad_norm(model, 0.25)
                    opt.step()
                    if i >= 3:  # warm-up
                        times[form].append(time.perf_counter() - start)
            plain, transposed = np.median(times["0"]), np.median(times["1"])
            print(f"{name:<9}{plain * 1e3:>10.1f}{transposed * 1e3:>15.1f}"
                  f"{plain / transposed:>9.3f}x", flush=True)
    os.environ.pop("RNNLAB_LOOP_TRANSPOSED", None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
