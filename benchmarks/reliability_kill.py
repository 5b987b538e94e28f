"""Killed saves: SIGKILL a training process again and again while it writes checkpoints,
``rnnlab train --resume`` it each time, and check that nothing is ever lost.

    python benchmarks/reliability_kill.py                  # 60 kills
    python benchmarks/reliability_kill.py --kills 100 --timer-share 0.5 --json /tmp/k.json

Each kill is either one the child (``tests/reliability/killchild.py``, the real command
line with its checkpoint writes logged) does to itself at a random checkpoint write, in
one of five phases (temporary open, a random part of the bytes written, fsync'ed, renamed,
returned), or one the parent does after a random delay. After every kill the checkpoint
must read, load, be the last complete write and never go back a step; the next child must
resume from it; at the end the resumed run must equal an unkilled run bit for bit. See
``tests/reliability/killing.py``. Exits 1 on any violation.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from tests.reliability.killing import kill_campaign  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=60)
    parser.add_argument("--steps", type=int, default=400, help="length of the run")
    parser.add_argument("--timer-share", type=float, default=0.2,
                        help="share of kills sent by the parent at a random time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", help="folder for the runs (default: a temporary one on /tmp)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rnnlab-kill-", dir=args.dir) as tmp:
        report = kill_campaign(Path(tmp), args.kills, np.random.default_rng(args.seed),
                               total=args.steps, timer_share=args.timer_share)
    figures = dataclasses.asdict(report)
    figures["resumed_from_steps"] = figures["resumed_from_steps"][:200]
    print(f"{report.kills} kills in {report.children} child processes, {report.wall_s:.0f} s")
    print(f"  by phase: {json.dumps(report.by_phase, sort_keys=True)}")
    print(f"  inside a checkpoint write: {report.inside_write}; before any checkpoint "
          f"existed: {report.before_first_checkpoint}; runs restarted: {report.restarts}")
    print(f"  resumed {len(report.resumed_from_steps)} times; stale temporaries seen after "
          f"a kill: at most {report.stale_temporaries_seen}, left at the end: "
          f"{report.stale_temporaries_left}; torn metrics lines: {report.torn_metric_lines}")
    print(f"  final run (step {report.final_step}) equals the unkilled run bit for bit: "
          f"{report.final_equal}")
    print(f"  violations: {len(report.violations)}")
    for violation in report.violations:
        print(f"    {violation}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1), encoding="utf-8")
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
