"""rnnlab alone: the median time of one training step (configurations A-D of
``bench_vs_torch.py``) or of generating 2000 characters (E), in this process.

For comparing two versions of the code: check the other one out beside this tree and
call this script alternately with each tree's ``src`` first on ``PYTHONPATH``, a fresh
process per call, several rounds::

    git worktree add ../before 0456e7d
    for round in 1 2 3; do for cfg in A B C D E; do for tree in ../before .; do
        PYTHONPATH=$tree/src python benchmarks/bench_self.py --config $cfg --steps 20
    done; done; done

The models, data and steps are those of ``bench_vs_torch.py`` (imported from this tree).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", choices=list("ABCDE"), required=True)
    p.add_argument("--steps", type=int, default=20, help="timed steps (E: generations)")
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args(argv)
    if args.steps < 1:
        p.error(f"--steps: expected at least 1, got {args.steps}")
    path = Path(__file__).with_name("bench_vs_torch.py")
    spec = importlib.util.spec_from_file_location("bench_vs_torch", path)
    bvt = importlib.util.module_from_spec(spec)
    sys.modules["bench_vs_torch"] = bvt
    saved, sys.argv = sys.argv, [str(path), "--no-memory"]
    try:
        spec.loader.exec_module(bvt)
        bvt.ARGS = bvt.parse()
    finally:
        sys.argv = saved
    cfg = bvt.CONFIGS["D" if args.config == "E" else args.config]
    if args.config == "E":
        fn = bvt.rnnlab_generate_fn(cfg)
    else:
        data = np.random.default_rng(0).integers(0, cfg.vocab, 200_000)
        fn = bvt.rnnlab_step_fn(cfg, data)
    for _ in range(args.warmup):
        fn()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    import rnnlab

    where = Path(rnnlab.__file__).resolve().parents[1]
    print(f"{args.config} {statistics.median(times) * 1000:.2f} ms  ({where})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
