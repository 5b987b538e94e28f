"""Data-parallel training on MPI against one process: tokens per second of a training
step (forward, backward, the gradient reduction, clipping, SGD) for configurations B and
C of bench_vs_torch.py, with 2 processes x 1 BLAS thread against 1 process x 2 threads,
and the time one step spends in the reduction (one Allreduce of one flat buffer).

    python benchmarks/bench_mpi.py [--configs B C] [--steps 20] [--warmup 3]

Needs mpi4py and an mpiexec (``pip install "rnnlab[mpi]"``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def worker(name: str, threads: int, steps: int, warmup: int) -> None:
    sys.argv = [sys.argv[0], "--threads", str(threads)]
    sys.path.insert(0, str(HERE))
    import bench_vs_torch as bvt  # sets the BLAS thread variables before numpy loads
    import numpy as np

    from rnnlab.models import RNNLM
    from rnnlab.optim import SGD, clip_grad_norm
    from rnnlab.train.distributed import detect, flatten_grads, unflatten_grads

    cfg = bvt.CONFIGS[name]
    world = detect()
    lo, hi = world.share(cfg.batch)
    data = np.random.default_rng(0).integers(0, cfg.vocab, 200_000).astype(np.int32)
    model = RNNLM(cfg.vocab, cfg.embed, cfg.hidden, cfg.layers, cfg.cell, rng=0)
    opt = SGD(model, lr=0.1)
    pairs = [(n, g) for n, _, g in model.named_parameters_and_grads()]
    position = [0]

    def step() -> None:
        x, y = bvt.batch(data, cfg, position)
        model.zero_grad()
        loss = model.forward_loss(x[lo:hi], y[lo:hi])
        model.backward()
        if world.size > 1:
            items = (hi - lo) * cfg.bptt
            buffer = flatten_grads(pairs, np, np.float32, 2)
            buffer[:-2] *= np.float32(items)
            buffer[-2:] = (loss * items, items)
            buffer = world.allreduce_grads(buffer, np)
            unflatten_grads(buffer, pairs, 1.0 / float(buffer[-1]))
        clip_grad_norm(model, 0.25)
        opt.step()

    for _ in range(warmup):
        step()
    world.reductions, world.reduce_seconds = 0, 0.0
    times = []
    for _ in range(steps):
        if world.comm is not None:
            world.comm.Barrier()
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    median = times[len(times) // 2]
    if world.rank == 0:
        print(json.dumps({"config": name, "processes": world.size, "threads": threads,
                          "step_ms": 1e3 * median,
                          "tokens_per_s": cfg.batch * cfg.bptt / median,
                          "reduce_ms": 1e3 * world.reduce_seconds / max(1, world.reductions),
                          "buffer_mb": 4 * sum(int(g.size) for _, g in pairs) / 1e6}))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["B", "C"])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--worker", nargs=2, metavar=("CONFIG", "THREADS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.worker[0], int(args.worker[1]), args.steps, args.warmup)
        return 0
    mpiexec = shutil.which("mpiexec", path=str(Path(sys.executable).parent)) \
        or shutil.which("mpiexec")
    if mpiexec is None:
        print("bench_mpi: no mpiexec (pip install 'rnnlab[mpi]')", file=sys.stderr)
        return 1
    common = [sys.executable, __file__, "--steps", str(args.steps), "--warmup",
              str(args.warmup), "--worker"]
    print("| config | processes x threads | step (ms) | tokens/s | reduction (ms/step) | "
          "buffer (MB) |")
    print("|---|---|---|---|---|---|")
    for name in args.configs:
        for cmd in ([*common, name, "2"], [mpiexec, "-n", "2", *common, name, "1"]):
            env = {**os.environ, "RNNLAB_MPI": "1"}
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
            if out.returncode:
                print(out.stderr[-2000:], file=sys.stderr)
                return 1
            r = json.loads(out.stdout.strip().splitlines()[-1])
            reduce = f"{r['reduce_ms']:.2f}" if r["processes"] > 1 else "-"
            print(f"| {name} | {r['processes']} x {r['threads']} | {r['step_ms']:.1f} | "
                  f"{r['tokens_per_s']:,.0f} | {reduce} | {r['buffer_mb']:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
