"""Plain SGD's update timed two ways: block by block, and through a parameter-sized work array.

    python benchmarks/bench_optim_step.py            # the parameters of bench_vs_torch's C
    python benchmarks/bench_optim_step.py --model B  # the book's Rnnlm

``SGD.step()`` without momentum or weight decay computes ``p -= lr * g``. On the CPU it
runs large contiguous parameters block by block through a small scratch
(``Optimizer._sub_scaled``); the alternative, still used for other arrays, writes
``lr * g`` into a parameter-sized work array and subtracts it. Both give the same bits.
The two are timed interleaved (blocked, whole, blocked, ...) over the parameter shapes
of one model, and the median step time of each is printed.
"""

from __future__ import annotations

import argparse
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
    from rnnlab.optim import optimizer as optimizer_module

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(MODELS), default="C")
    p.add_argument("--steps", type=int, default=40)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    shapes = MODELS[args.model]
    params = [rng.standard_normal(s, dtype=np.float32) for s in shapes]
    grads = [rng.standard_normal(s, dtype=np.float32) * 1e-3 for s in shapes]
    triples = [(f"p{i}", p, g) for i, (p, g) in enumerate(zip(params, grads, strict=True))]
    blocked = optim.SGD(triples, lr=1e-3)
    whole = optim.SGD(triples, lr=1e-3)
    block = optimizer_module.UPDATE_BLOCK

    def timed(opt: optim.SGD, size: int) -> float:
        optimizer_module.UPDATE_BLOCK = size
        t0 = time.perf_counter()
        opt.step()
        return time.perf_counter() - t0

    huge = 1 << 62  # larger than any parameter: the whole-array path
    for _ in range(3):  # warm-up: scratch buffers allocated and touched
        timed(blocked, block)
        timed(whole, huge)
    times: dict[str, list[float]] = {"blocked": [], "whole": []}
    for _ in range(args.steps):
        times["blocked"].append(timed(blocked, block))
        times["whole"].append(timed(whole, huge))
    optimizer_module.UPDATE_BLOCK = block
    n = sum(a.size for a in params)
    print(f"SGD step over {len(params)} parameters, {n / 1e6:.2f} M float32 ({args.model}), "
          f"median of {args.steps}, interleaved")
    print(f"{'path':10s} {'ms':>8s}")
    for name, values in times.items():
        print(f"{name:10s} {np.median(values) * 1e3:8.2f}")
    ratio = np.median(times["whole"]) / np.median(times["blocked"])
    print(f"blocked is {ratio:.2f}x as fast")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
