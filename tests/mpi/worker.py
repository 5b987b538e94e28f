"""One training run for the MPI tests, started under ``mpiexec -n K`` (or alone).

``python worker.py MODE OUT TEXT [RESUME]``: trains a float64 2-layer LSTM language model
with dropout on the characters of TEXT for 20 steps of global batch 20 and writes, from
rank 0, ``OUT/result.npz`` (parameters, the loss of every step, the validation loss) and
``OUT/counts.json`` (the gradient reductions and the Allreduce calls of each rank).
MODE: ``run``, ``half`` (10 steps), ``raise`` (rank 1 raises at step 3), ``kill`` (rank 1
kills itself with SIGKILL at step 3).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import numpy as np

from rnnlab.data import load_text
from rnnlab.models import RNNLM
from rnnlab.train import TrainConfig, Trainer
from rnnlab.train.distributed import detect
from rnnlab.train.metrics import read_metrics


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
    model = RNNLM(len(corpus.vocab), embedding_dim=8, hidden_size=12, num_layers=2,
                  cell="lstm", dropout=0.3, rng=0, dtype="float64")
    steps = 10 if mode == "half" else 20
    cfg = TrainConfig(epochs=5, batch_size=20, bptt=8, eval_batch_size=6, optimizer="adam",
                      lr=0.01, clip_norm=0.5, log_every=1, checkpoint_every=2,
                      snapshot_every=5, progress=False, seed=0, max_steps=steps)
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
    summary = trainer.fit()
    if world.rank == 0:
        losses = [r["loss"] for r in read_metrics(out / "metrics.jsonl") if r["event"] == "train"]
        sizes = {r["world_size"] for r in read_metrics(out / "metrics.jsonl")}
        np.savez(out / "result.npz", losses=np.array(losses), valid=summary["valid_loss"],
                 **{f"p/{n}": p for n, p, _ in model.named_parameters()})
        (out / "world_sizes.json").write_text(json.dumps(sorted(sizes)))
    calls = counting.calls if counting is not None else []
    gathered = world.comm.gather(calls, root=0) if world.size > 1 else [calls]
    if world.rank == 0:
        (out / "counts.json").write_text(json.dumps({"reductions": world.reductions,
                                                     "calls": gathered}))


if __name__ == "__main__":
    main()
