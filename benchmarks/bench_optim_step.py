"""Plain SGD's update timed three ways: compiled, block by block, through a work array.

    python benchmarks/bench_optim_step.py            # the parameters of bench_vs_torch's C
    python benchmarks/bench_optim_step.py --model B  # the book's Rnnlm

``SGD.step()`` without momentum or weight decay computes ``p -= lr * g``. On the CPU,
with numba's kernels on, contiguous float32 parameters go through one compiled sweep
(``compiled``); with ``RNNLAB_KERNELS=0`` large contiguous parameters run block by
block through a small scratch (``blocked``, ``Optimizer._sub_scaled``); the alternative,
still used for other arrays, writes ``lr * g`` into a parameter-sized work array and
subtracts it (``whole``). All three give the same bits. They are timed interleaved
(compiled, blocked, whole, compiled, ...) over the parameter shapes of one model, and
the median step time of each is printed.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

# parameter shapes (PyTorch layout) of bench_vs_torch.py's configurations
MODELS = {
    "B": [(10000, 100), (400, 100), (400, 100), (400,), (400,), (10000, 100), (10000,)],
    "C": [(10000, 650)] + [(2600, 650), (2600, 650), (2600,), (2600,)] * 2
         + [(10000, 650), (10000,)],
    "zaremba": [(10000, 200)] + [(800, 200), (800, 200), (800,), (800,)] * 2
               + [(10000, 200), (10000,)],
}


def main() -> int:
    from rnnlab import optim
    from rnnlab.fast import engine as optimizer_module  # where UPDATE_BLOCK lives

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(MODELS), default="C")
    p.add_argument("--steps", type=int, default=40)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    shapes = MODELS[args.model]
    params = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    grads = [rng.standard_normal(s, dtype=np.float32) * 1e-3 for s in shapes]
    triples = [(f"p{i}", p, g) for i, (p, g) in enumerate(zip(params, grads, strict=True))]
    paths = {"compiled": ("auto", None), "blocked": ("0", None),
             "whole": ("0", 1 << 62)}  # a block larger than any parameter: whole arrays
    opts = {name: optim.SGD(triples, lr=1e-3) for name in paths}
    block = optimizer_module.UPDATE_BLOCK
    kernels_env = os.environ.get("RNNLAB_KERNELS")

    def timed(name: str) -> float:
        kernels, size = paths[name]
        os.environ["RNNLAB_KERNELS"] = kernels
        optimizer_module.UPDATE_BLOCK = block if size is None else size
        t0 = time.perf_counter()
        opts[name].step()
        return time.perf_counter() - t0

    for _ in range(3):  # warm-up: scratch buffers allocated and touched, kernel compiled
        for name in paths:
            timed(name)
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.steps):
        for name in paths:
            times[name].append(timed(name))
    optimizer_module.UPDATE_BLOCK = block
    if kernels_env is None:
        os.environ.pop("RNNLAB_KERNELS")
    else:
        os.environ["RNNLAB_KERNELS"] = kernels_env
    from rnnlab.fast import kernels as _kernels

    n = sum(a.size for a in params)
    print(f"SGD step over {len(params)} parameters, {n / 1e6:.2f} M float32 ({args.model}), "
          f"median of {args.steps}, interleaved")
    if _kernels.get() is None:
        print("(numba is not installed: 'compiled' ran the blocked path)")
    print(f"{'path':10s} {'ms':>8s}")
    for name, values in times.items():
        print(f"{name:10s} {np.median(values) * 1e3:8.2f}")
    for name in ("compiled", "blocked"):
        ratio = np.median(times["whole"]) / np.median(times[name])
        print(f"{name} is {ratio:.2f}x as fast as whole")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
