"""The files and functions of rnnlab one ``rnnlab train`` step crosses.

    PYTHONPATH=src python tools/step_trace.py

Runs ``rnnlab train`` on a tiny text (an LSTM language model, the default options but
for its size) and, for its third optimizer step, records with ``sys.setprofile`` every
Python function of the ``rnnlab`` package called from the moment the loop asks for the
batch to the end of the step (the batch, ``Trainer._train_step``, and what the loop does
after it: the metrics, the snapshot and checkpoint tests). Prints the counts and, with
``-v``, the files and functions.
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
from pathlib import Path

import rnnlab
from rnnlab.cli import main

ROOT = str(Path(rnnlab.__file__).parent)


def trainer_class() -> type:
    try:
        from rnnlab.train.loop import Trainer  # after issue 34
    except ImportError:
        from rnnlab.train.trainer import Trainer  # before
    return Trainer


def trace() -> set[tuple[str, str]]:
    seen: set[tuple[str, str]] = set()
    state = {"step": 0, "on": False}

    def profile(frame, event, arg):
        if event == "call" and frame.f_code.co_filename.startswith(ROOT):
            seen.add((frame.f_code.co_filename[len(ROOT) + 1:], frame.f_code.co_qualname))

    trainer = trainer_class()
    real_step = trainer._train_step

    def step(self, *batch):
        state["step"] += 1
        out = real_step(self, *batch)
        if state["step"] == 2:  # from the end of step 2 to the end of step 3
            sys.setprofile(profile)
        elif state["step"] == 3:
            sys.setprofile(None)
        return out

    trainer._train_step = step
    with tempfile.TemporaryDirectory() as tmp:
        text = Path(tmp) / "t.txt"
        text.write_text("the quick brown fox jumps over the lazy dog\n" * 40)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            main(["train", "--corpus", str(text), "--out", str(Path(tmp) / "run"),
                  "--hidden-size", "8", "--batch-size", "4", "--bptt", "8", "--max-steps", "4",
                  "--no-progress", "--sample-length", "0"])
    return seen


if __name__ == "__main__":
    seen = trace()
    files = sorted({f for f, _ in seen})
    print(f"{len(files)} files, {len(seen)} functions")
    if "-v" in sys.argv:
        for f in files:
            print(f, sorted(q for g, q in seen if g == f))
