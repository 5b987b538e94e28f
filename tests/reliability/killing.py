"""Kill a training run with SIGKILL again and again while it writes checkpoints, resume it
each time with ``rnnlab train --resume``, and check that nothing is ever lost.

:func:`kill_campaign` trains a small character LSTM (dropout on, so the random state
matters) through the real command line, one checkpoint per step, in a child process
(:mod:`killchild`). Each child is killed once, either by itself at a chosen point of a
chosen checkpoint write (``open``, ``write`` part of the bytes, after ``fsync``, after
the rename, after the write) or by the parent after a random delay. After every kill:

* ``last.safetensors`` (and ``best.safetensors``) must read and load, and be byte for
  byte the last write that was complete (or, after the rename, the one being written);
* the step it holds never goes backwards;
* the next child resumes from it (``--resume``), and removes the dead child's temporary.

At the end the run is resumed to completion without a kill and must equal, bit for bit
(every array and the whole training state), a run that was never killed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).resolve().parent / "killchild.py"
PHASES = ("open", "write", "fsync", "replace", "done")
TEXT = ("the quick brown fox jumps over the lazy dog\n"
        "pack my box with five dozen liquor jugs\n"
        "how vexingly quick daft zebras jump\n") * 10


def train_argv(corpus: Path, run: Path, total: int) -> list[str]:
    return ["train", "--corpus", str(corpus), "--out", str(run), "--cell", "lstm",
            "--hidden-size", "16", "--embedding-dim", "8", "--dropout", "0.1",
            "--batch-size", "4", "--bptt", "8", "--eval-batch-size", "2", "--epochs", "20",
            "--max-steps", str(total), "--checkpoint-every", "1", "--log-every", "5",
            "--no-progress", "--sample-length", "0", "--seed", "3"]


def resume_argv(run: Path, total: int) -> list[str]:
    return ["train", "--resume", str(run / "last.safetensors"), "--max-steps", str(total),
            "--no-progress", "--sample-length", "0"]


@dataclass
class Write:
    index: int
    name: str
    step: int | None
    sha: str
    complete: bool = False


@dataclass
class Report:
    kills: int = 0
    by_phase: dict[str, int] = field(default_factory=dict)
    inside_write: int = 0  # kills that landed between the start and the end of a write
    before_first_checkpoint: int = 0
    resumed_from_steps: list[int] = field(default_factory=list)
    stale_temporaries_seen: int = 0  # at most, in the run folder, after a kill
    stale_temporaries_left: int = 0  # at the end
    torn_metric_lines: int = 0
    final_equal: bool = False
    final_step: int = 0
    children: int = 0
    restarts: int = 0  # runs started over (too close to the end, or finished before a timer)
    wall_s: float = 0.0
    violations: list[str] = field(default_factory=list)


def _events(path: Path) -> list[Write]:
    writes: dict[int, Write] = {}
    if not path.exists():
        return []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if parts and parts[0] == "B" and len(parts) == 5:
            step = None if parts[3] == "None" else int(parts[3])
            writes[int(parts[1])] = Write(int(parts[1]), parts[2], step, parts[4])
        elif parts and parts[0] == "E" and len(parts) == 2 and int(parts[1]) in writes:
            writes[int(parts[1])].complete = True
    return [writes[k] for k in sorted(writes)]


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _child(plan: dict[str, Any], argv: list[str], kill_after: float | None,
           timeout: float = 300.0) -> int:
    import rnnlab  # the children run the rnnlab this process runs

    src = Path(rnnlab.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(src), str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(CHILD), json.dumps(plan), "--", *argv],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            cwd=REPO)
    try:
        if kill_after is not None:
            try:
                proc.wait(kill_after)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=timeout)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.returncode not in (0, -signal.SIGKILL):
        raise RuntimeError(f"child failed ({proc.returncode}): {err.decode()[-2000:]}")
    return proc.returncode


def _check_files(run: Path, writes: list[Write], killed: Write | None, phase: str | None,
                 rep: Report, previous_step: int) -> int:
    """The files in ``run`` after a kill; returns the step of ``last.safetensors``."""
    from rnnlab.train.checkpoint import read_checkpoint
    from rnnlab.train.state import load_model

    step = previous_step
    for name in ("last.safetensors", "best.safetensors"):
        path = run / name
        done = [w for w in writes if w.name == name and w.complete]
        if not path.exists():
            if done:
                rep.violations.append(f"{name} vanished after {len(done)} complete writes")
            continue
        try:
            _, meta = read_checkpoint(path)
            load_model(path)
        except Exception as exc:  # any failure is a lost checkpoint
            rep.violations.append(f"{name} unreadable after a kill ({phase}): {exc}")
            continue
        sha = _sha(path)
        allowed = set()
        if done:
            allowed.add(done[-1].sha)
        if killed is not None and killed.name == name:
            if phase in ("replace", "done"):
                allowed = {killed.sha}
            elif phase is None:  # a timer kill inside the write: the rename may have happened
                allowed.add(killed.sha)
        if not done and not (killed is not None and killed.name == name):
            allowed.add(sha)  # written by an earlier child and untouched since
        if allowed and sha not in allowed:
            rep.violations.append(f"{name} after a kill ({phase}) is not the last complete "
                                  f"write")
        if name == "last.safetensors":
            step = int(meta["progress"]["step"])
            if step < previous_step:
                rep.violations.append(f"last.safetensors went back from step {previous_step} "
                                      f"to {step}")
    return step


def kill_campaign(root: Path, kills: int, rng: np.random.Generator, *, total: int = 120,
                  timer_share: float = 0.2, max_write: int = 5) -> Report:
    """Kill ``kills`` children (see the module docstring) and return the figures."""
    from rnnlab.cli import main
    from rnnlab.train.checkpoint import read_checkpoint

    started = time.perf_counter()
    rep = Report()
    root.mkdir(parents=True, exist_ok=True)
    corpus = root / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    run, reference = root / "killed", root / "straight"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(train_argv(corpus, reference, total))
    if code != 0:
        raise RuntimeError(f"the reference run failed ({code})")
    step = 0
    i = -1
    while rep.kills < kills and rep.children < 2 * kills + 5:
        i += 1
        if total - step <= max_write:  # too close to the end for another kill: start over
            for path in run.iterdir():
                path.unlink()
            step = 0
            rep.restarts += 1
        events = root / f"events-{i:03d}.log"
        fresh = not (run / "last.safetensors").exists()
        argv = train_argv(corpus, run, total) if fresh else resume_argv(run, total)
        if not fresh:
            rep.resumed_from_steps.append(step)
        timer = rng.random() < timer_share
        plan: dict[str, Any] = {"events": str(events)}
        if timer:
            delay = float(rng.uniform(0.3, 2.5))
        else:
            plan.update(phase=PHASES[i % len(PHASES)] if kills >= len(PHASES)
                        else str(rng.choice(PHASES)),
                        write=int(rng.integers(1, max(2, min(max_write, total - step) + 1))),
                        fraction=float(rng.random()))
            delay = None
        code = _child(plan, argv, delay)
        rep.children += 1
        writes = _events(events)
        if not fresh:  # it went on from the checkpoint, not from an earlier step
            first = next((w.step for w in writes if w.name == "last.safetensors"), None)
            if first is not None and first not in (step, step + 1):
                rep.violations.append(f"resumed from step {step} but wrote step {first} first")
        if code == 0:  # a timer that fired too late: the run finished; start it again
            if not timer:
                rep.violations.append(f"child {i} finished before it killed itself")
            for path in run.iterdir():
                path.unlink()
            step = 0
            rep.restarts += 1
            continue
        rep.kills += 1
        phase = plan.get("phase")
        key = phase if phase is not None else "timer"
        rep.by_phase[key] = rep.by_phase.get(key, 0) + 1
        killed = writes[-1] if writes and not writes[-1].complete else None
        if phase == "done" and writes:
            killed = writes[-1]
        if killed is not None and not (phase == "done"):
            rep.inside_write += 1
        if not any(w.complete and w.name == "last.safetensors" for w in writes) and fresh:
            rep.before_first_checkpoint += int(not (run / "last.safetensors").exists())
        step = _check_files(run, writes, killed, phase, rep, step)
        stale = len(list(run.glob(".*.tmp-*"))) if run.exists() else 0
        rep.stale_temporaries_seen = max(rep.stale_temporaries_seen, stale)
    # resume to the end, untouched, and compare with the run that was never killed
    if (run / "last.safetensors").exists():
        with contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            code = main(resume_argv(run, total))
    else:
        with contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            code = main(train_argv(corpus, run, total))
    if code != 0:
        rep.violations.append(f"the final resume failed ({code})")
    a_arrays, a_meta = read_checkpoint(run / "last.safetensors")
    b_arrays, b_meta = read_checkpoint(reference / "last.safetensors")
    rep.final_step = int(a_meta["progress"]["step"])
    same = set(a_arrays) == set(b_arrays) and all(
        a_arrays[k].dtype == b_arrays[k].dtype and np.array_equal(a_arrays[k], b_arrays[k])
        for k in a_arrays)
    meta_same = a_meta == b_meta
    rep.final_equal = bool(same and meta_same)
    if not rep.final_equal:
        rep.violations.append(f"the killed-and-resumed run differs from the straight one "
                              f"(arrays equal: {same}, state equal: {meta_same})")
    rep.stale_temporaries_left = len(list(run.glob(".*.tmp-*")))
    if rep.stale_temporaries_left:
        rep.violations.append(f"{rep.stale_temporaries_left} temporary files left behind")
    for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            json.loads(line)
        except ValueError:
            rep.torn_metric_lines += 1
    rep.wall_s = time.perf_counter() - started
    return rep
