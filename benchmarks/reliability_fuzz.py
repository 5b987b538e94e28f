"""Checkpoint loading under attack, the full run: every case of the catalogue of
``tests/reliability/ckptfuzz.py`` (about 2,650 hostile files made from real rnnlab
checkpoints) and random mutations on top, each through ``read_checkpoint``,
``load_model``, ``rnnlab generate``, ``Trainer.restore`` and ``rnnlab train --resume``
(and the seq2seq loader once there is one), using whatever a loader accepts.

    python benchmarks/reliability_fuzz.py                      # 3,200 cases
    python benchmarks/reliability_fuzz.py --cases 1000 --json /tmp/fuzz.json

Prints the figures (cases per category, verdicts per loader, failures, peak memory per
case and of the process, wall time) and exits 1 if any case failed: a loader raised
something other than ``CheckpointError``, accepted a file it must refuse, refused a valid
one, failed on what it accepted, ran code from a file, or a case allocated more than the
stated bound.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
from tests.reliability.ckptfuzz import (  # noqa: E402
    Context,
    generate_cases,
    run_case,
    summarize,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=3200, help="total cases (>= 1000)")
    parser.add_argument("--random", type=int, default=None,
                        help="random mutations among them (default: what the catalogue "
                             "leaves)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shallow", action="store_true",
                        help="do not use what the loaders accept (faster)")
    parser.add_argument("--case-timeout", type=float, default=120.0,
                        help="seconds a loader may take on one case (longer is a failure)")
    parser.add_argument("--json", help="write the figures and every failure here")
    args = parser.parse_args(argv)

    import rnnlab

    started = time.perf_counter()
    process = psutil.Process()
    with tempfile.TemporaryDirectory(prefix="rnnlab-fuzz-") as tmp:
        ctx = Context.build(Path(tmp))
        cases = generate_cases(list(ctx.seeds.values()), args.cases,
                               np.random.default_rng(args.seed), ctx.marker,
                               n_random=args.random if args.random is not None else 0)
        rss_start = process.memory_info().rss
        outcomes = []
        tracemalloc.start()
        for i, case in enumerate(cases):
            outcomes.append(run_case(case, ctx, deep=not args.shallow,
                                     timeout=args.case_timeout))
            if (i + 1) % 250 == 0:
                bad = sum(bool(o.failures) for o in outcomes)
                print(f"  {i + 1}/{len(cases)} cases, {bad} failing, "
                      f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
        tracemalloc.stop()
        rss_end = process.memory_info().rss
    summary = summarize(outcomes)
    summary.update(
        rnnlab=str(Path(rnnlab.__file__).parent), seed=args.seed, deep=not args.shallow,
        seq2seq_loader=ctx.seq2seq_loader is not None,
        wall_s=round(time.perf_counter() - started, 1),
        rss_start_mb=round(rss_start / 2**20, 1), rss_end_mb=round(rss_end / 2**20, 1),
        max_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
    failures = summary["failures"]
    print(f"rnnlab from {summary['rnnlab']}")
    print(f"{summary['cases']} cases, {summary['failing_cases']} failing, "
          f"{summary['wall_s']} s; seq2seq loader: {summary['seq2seq_loader']}")
    print("per loader:", json.dumps(summary["per_loader"]))
    print(f"peak allocation of an rnnlab loader on a case: "
          f"{summary['peak_alloc_max_bytes'] / 2**20:.1f} MiB ({summary['peak_alloc_max_case']}, "
          f"a {summary['peak_alloc_max_case_size']:,}-byte file); bound "
          f"{summary['memory_bound']}: {'held' if summary['memory_bound_held'] else 'BROKEN'}")
    if summary["seq2seq_loader"]:
        print(f"seq2seq loader: peak {summary['seq2seq_peak_max_bytes'] / 2**20:.1f} MiB; bound "
              f"{'held' if summary['seq2seq_memory_bound_held'] else 'BROKEN'}")
    print(f"process RSS: {summary['rss_start_mb']} MiB before the cases, "
          f"{summary['rss_end_mb']} MiB after, peak {summary['max_rss_mb']} MiB")
    for kind, count in summary["failure_kinds"].items():
        print(f"  {count:5d}  {kind}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1, default=str),
                                   encoding="utf-8")
    return 1 if failures or not summary["memory_bound_held"] else 0


if __name__ == "__main__":
    sys.exit(main())
