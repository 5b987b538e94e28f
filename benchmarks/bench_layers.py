"""Forward + backward time of each sequence layer, rnnlab next to PyTorch (if installed).

    python benchmarks/bench_layers.py [--threads 2] [--repeats 20]

Both libraries run float32 on the same inputs with the same thread count, interleaved
(rnnlab, torch, rnnlab, torch, ...) so that machine noise hits both alike, each call after
``--pause`` seconds of idle (see ``bench_vs_torch.py``); the table shows
the median of ``--repeats`` timed runs after warm-up. Torch is optional: without it only
rnnlab's column is printed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--pause", type=float, default=0.25,
                   help="seconds of idle before each timed call, so that neither library is "
                        "timed against the other's still-spinning worker threads")
    p.add_argument("--quick", action="store_true", help="one small size, few repeats")
    return p.parse_args()


ARGS = parse()
# thread counts must be fixed before numpy / torch load their thread pools
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

import rnnlab.nn as rnn  # noqa: E402

try:
    import torch

    torch.set_num_threads(ARGS.threads)
except ImportError:  # pragma: no cover - torch is optional
    torch = None

SIZES = [  # (N, T, D, H)
    (20, 35, 100, 100),
    (32, 100, 256, 256),
    (20, 35, 650, 650),
]
KINDS = {"RNN": (rnn.RNN, "RNN"), "LSTM": (rnn.LSTM, "LSTM"), "GRU": (rnn.GRU, "GRU")}


def median_ms(times: list[float]) -> float:
    return float(np.median(times)) * 1e3


def main() -> int:
    sizes = SIZES[:1] if ARGS.quick else SIZES
    repeats = 3 if ARGS.quick else ARGS.repeats
    rng = np.random.default_rng(0)
    rows = []
    for kind, (ours_cls, torch_name) in KINDS.items():
        for N, T, D, H in sizes:
            layer = ours_cls(D, H, rng=1)
            x = rng.standard_normal((N, T, D)).astype(np.float32)
            dy = rng.standard_normal((N, T, H)).astype(np.float32)

            def run_ours(layer=layer, x=x, dy=dy) -> None:
                layer.forward(x)
                layer.backward(dy)

            run_torch = None
            if torch is not None:
                tlayer = getattr(torch.nn, torch_name)(D, H, batch_first=True)
                tx = torch.from_numpy(x).requires_grad_(True)
                tdy = torch.from_numpy(dy)

                def run_torch(tlayer=tlayer, tx=tx, tdy=tdy) -> None:
                    out, _ = tlayer(tx)
                    out.backward(tdy)

            ours_t, torch_t = [], []
            for _ in range(ARGS.warmup + repeats):
                time.sleep(0 if ARGS.quick else ARGS.pause)
                t0 = time.perf_counter()
                run_ours()
                t_ours = time.perf_counter() - t0
                if run_torch is not None:
                    time.sleep(0 if ARGS.quick else ARGS.pause)
                    t1 = time.perf_counter()
                    run_torch()
                    torch_t.append(time.perf_counter() - t1)
                ours_t.append(t_ours)
            ours_t, torch_t = ours_t[ARGS.warmup :], torch_t[ARGS.warmup :]
            rows.append((kind, f"N={N} T={T} D={D} H={H}", median_ms(ours_t),
                         median_ms(torch_t) if torch_t and run_torch else None))
    print(f"forward+backward, float32, {ARGS.threads} thread(s), median of {repeats} "
          f"(numpy {np.__version__}, torch {torch.__version__ if torch else 'absent'})")
    print(f"{'layer':<6} {'size':<26} {'rnnlab ms':>10} {'torch ms':>10} {'torch/rnnlab':>13}")
    for kind, size, ours, theirs in rows:
        ratio = f"{theirs / ours:.2f}x" if theirs else "-"
        theirs_s = f"{theirs:.2f}" if theirs else "-"
        print(f"{kind:<6} {size:<26} {ours:>10.2f} {theirs_s:>10} {ratio:>13}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
