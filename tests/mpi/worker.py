"""One training run for the MPI tests, started under ``mpiexec -n K`` (or alone).

``python worker.py MODE OUT TEXT [RESUME]``: trains a float64 2-layer LSTM language model
with dropout on the characters of TEXT for 20 steps of global batch 20 and writes, from
rank 0, ``OUT/result.npz`` (parameters, the loss of every step, the validation loss) and
``OUT/counts.json`` (the gradient reductions and the Allreduce calls of each rank).
MODE: ``run``, ``mingru`` and ``block`` (the run with a 2-layer minGRU, and with two
blocks of the minGRU paper around minLSTM layers, instead of the LSTM), ``half`` (10
steps), ``raise`` (rank 1 raises at step 3), ``kill`` (rank 1
kills itself with SIGKILL at step 3), ``time`` (a budget of ``max_time`` 1.5 s, the last
rank sleeping 0.1 s a step, so that it alone is late and its clock decides the stop),
``slow`` (for a test that signals the job while it trains: every rank writes
``OUT/pid<rank>``, waits before its 4th step until the test writes ``OUT/go``, and sleeps
0.05 s a step after it, so that the run cannot end before the signal), ``diverge`` (the
last rank puts a NaN into one gradient of the 7th and the 13th step; ``max_divergences`` 1:
the first rolls back to step 5, the second to step 10 and ends the run with a
DivergenceError), ``drift`` (``check_every`` 4 in the TrainConfig; the last rank nudges a
parameter before step 6, so the check after step 8 ends the run with a DriftError on every
rank). Every rank writes ``OUT/rank<r>.json``: its step, its stop reason (or the error it
raised) and a checksum of its parameters.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

import rnnlab.families  # noqa: F401  (registers the tasks of Trainer(model, data, ...))
from rnnlab.data import load_text
from rnnlab.models import RNNLM
from rnnlab.train import DivergenceError, TrainConfig, Trainer
from rnnlab.train.distributed import DriftError, detect
from rnnlab.train.metrics import read_metrics
from rnnlab.train.state import model_arrays


class Counting:
    """A communicator that counts the Allreduce calls and their buffer sizes."""

    def __init__(self, comm):
        self._comm, self.calls = comm, []

    def Allreduce(self, send, recv=None, op=None):
        buf = recv if recv is not None else send
        self.calls.append(int(np.asarray(buf).size))
        return self._comm.Allreduce(send, recv, op=op)

    def __getattr__(self, name):
        return getattr(self._comm, name)


def main() -> None:
    mode, out, text = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    resume = sys.argv[4] if len(sys.argv) > 4 else None
    world = detect(check_every=5)
    counting = None
    if world.size > 1:
        counting = world.comm = Counting(world.comm)
    corpus = load_text(text, "char", split=(0.8, 0.1, 0.1))
    cell = {"mingru": "mingru", "block": "minlstm"}.get(mode, "lstm")
    model = RNNLM(len(corpus.vocab), embedding_dim=12 if mode == "block" else 8,
                  hidden_size=12, num_layers=2, cell=cell, dropout=0.3, rng=0,
                  dtype="float64", block=mode == "block")
    steps = 10 if mode == "half" else 20
    cfg = TrainConfig(epochs=5, batch_size=20, bptt=8, eval_batch_size=6, optimizer="adam",
                      lr=0.01, clip_norm=0.5, log_every=1, checkpoint_every=2,
                      snapshot_every=5, progress=False, seed=0, max_steps=steps,
                      max_time=1.5 if mode == "time" else None,
                      max_divergences=1 if mode == "diverge" else 3,
                      check_every=4 if mode == "drift" else None)
    trainer = Trainer(model, corpus, cfg, out, distributed=world if world.size > 1 else False)
    if resume:
        trainer.restore(resume)
    if mode in ("raise", "kill") and world.rank == 1:
        forward = trainer.task.forward_loss

        def failing(batch):
            if trainer.progress.step == 3:
                if mode == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                raise RuntimeError("injected failure on rank 1")
            return forward(batch)

        trainer.task.forward_loss = failing
    last = world.rank == world.size - 1
    if mode == "slow" or (mode == "time" and last):
        (out / f"pid{world.rank}").write_text(str(os.getpid()))
        forward = trainer.task.forward_loss

        def slow(batch):
            if mode == "slow" and trainer.progress.step >= 3:
                deadline = time.monotonic() + 60
                while not (out / "go").exists() and time.monotonic() < deadline:
                    time.sleep(0.02)  # a signal arriving now is handled here
            time.sleep(0.1 if mode == "time" else 0.05)
            return forward(batch)

        trainer.task.forward_loss = slow
    if mode == "diverge" and last:
        backward, poisoned = trainer.task.backward, set()

        def poisoning():
            backward()
            step = trainer.progress.step + 1
            if step in (7, 13) and step not in poisoned:  # once each
                poisoned.add(step)
                next(iter(trainer.model.embedding.grads.values()))[0, 0] = np.nan

        trainer.task.backward = poisoning
    if mode == "drift" and last:
        forward = trainer.task.forward_loss

        def nudging(batch):
            if trainer.progress.step == 5:
                next(iter(trainer.model.embedding.params.values()))[0, 0] += 1e-3
            return forward(batch)

        trainer.task.forward_loss = nudging
    try:
        summary = trainer.fit()
        outcome = summary["stopped"]
    except (DivergenceError, DriftError) as exc:
        summary, outcome = {"valid_loss": np.nan}, f"{type(exc).__name__}: {exc}"
    params = {k: np.asarray(v) for k, v in model_arrays(model).items()}
    (out / f"rank{world.rank}.json").write_text(json.dumps({
        "step": trainer.progress.step, "stopped": outcome,
        "checksum": [float(sum(v.sum() for v in params.values())),
                     float(sum((v * v).sum() for v in params.values()))]}))
    if world.rank == 0:
        losses = [r["loss"] for r in read_metrics(out / "metrics.jsonl") if r["event"] == "train"]
        sizes = {r["world_size"] for r in read_metrics(out / "metrics.jsonl")}
        np.savez(out / "result.npz", losses=np.array(losses),
                 valid=summary.get("valid_loss", np.nan),
                 **{f"p/{n}": p for n, p in model.named_parameters()})
        (out / "world_sizes.json").write_text(json.dumps(sorted(sizes)))
    calls = counting.calls if counting is not None else []
    gathered = world.comm.gather(calls, root=0) if world.size > 1 else [calls]
    if world.rank == 0:
        (out / "counts.json").write_text(json.dumps({"reductions": world.reductions,
                                                     "calls": gathered}))


if __name__ == "__main__":
    main()
