"""Example-batch tasks for the MPI tests, started under ``mpiexec -n K`` (or alone).

``python task_worker.py OUT``: trains three float64 models on shuffled batches of whole
examples, each for 8 steps of global batch 8 over 37 training examples (five batches an
epoch, the last of 5 examples, so that the two processes' shares of it are 2 and 3 and an
epoch boundary with its validation falls inside the run), and writes from rank 0
``OUT/<name>.npz``: the parameters, the loss of every step, every validation loss and score.

* ``regressor``: a 2-layer LSTM SequenceRegressor, many-to-many, with lengths from 1 to 7
  (the mean squared error averages the valid steps only, so the rows of a batch weigh
  differently) and dropout 0.3 between the layers;
* ``classifier``: a 2-layer GRU SequenceClassifier, mean pooling over lengths, dropout 0.3,
  three classes (its accuracy is scored);
* ``seq2seq``: a Seq2Seq with attention on variable-length questions and answers (padded,
  ``<eos>``-terminated: the answer characters per row differ), exact match scored.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import rnnlab.families  # noqa: F401  (registers the tasks of Trainer(model, data, ...))
from rnnlab.models import SequenceClassifier, SequenceRegressor
from rnnlab.seq2seq.training import Seq2SeqTask
from rnnlab.train import Examples, TrainConfig, Trainer
from rnnlab.train.metrics import read_metrics
from rnnlab.train.state import model_arrays

N_TRAIN, N_VALID, T = 37, 13, 7


def config() -> TrainConfig:
    return TrainConfig(epochs=3, batch_size=8, eval_batch_size=4, optimizer="adam", lr=0.02,
                       clip_norm=1.0, log_every=1, checkpoint_every=3, snapshot_every=4,
                       progress=False, seed=3, max_steps=8, check_every=2)


def examples(rng: np.random.Generator, targets: np.ndarray) -> dict[str, Examples]:
    xs = rng.standard_normal((N_TRAIN + N_VALID, T, 3))
    lengths = rng.integers(1, T + 1, size=N_TRAIN + N_VALID)
    cut = N_TRAIN
    return {"train": Examples(xs[:cut], targets[:cut], lengths[:cut]),
            "valid": Examples(xs[cut:], targets[cut:], lengths[cut:])}


def regressor() -> tuple[SequenceRegressor | SequenceClassifier, dict]:
    rng = np.random.default_rng(1)
    data = examples(rng, rng.standard_normal((N_TRAIN + N_VALID, T, 2)))
    model = SequenceRegressor(3, 6, output_size=2, num_layers=2, many_to_many=True,
                              dropout=0.3, rng=0, dtype="float64")
    return model, data


def classifier() -> tuple[SequenceRegressor | SequenceClassifier, dict]:
    rng = np.random.default_rng(2)
    data = examples(rng, rng.integers(0, 3, size=N_TRAIN + N_VALID))
    model = SequenceClassifier(3, 6, 3, num_layers=2, cell="gru", pooling="mean",
                               dropout=0.3, rng=0, dtype="float64")
    return model, data


def seq2seq_task(cfg: TrainConfig) -> Seq2SeqTask:
    from rnnlab.seq2seq import Seq2Seq, Seq2SeqConfig
    from rnnlab.seq2seq.data import Codec
    from rnnlab.seq2seq.tasks import Pairs

    rng = np.random.default_rng(3)
    words = ["".join(rng.choice(list("abcdef"), size=rng.integers(1, 6)))
             for _ in range(N_TRAIN + N_VALID)]
    pairs = Pairs(words, [w[::-1] for w in words])
    train, valid = pairs.subset(range(N_TRAIN)), pairs.subset(range(N_TRAIN, len(words)))
    codec = Codec.build(pairs)
    model = Seq2Seq(Seq2SeqConfig(vocab_size=len(codec.vocab), embedding_dim=6, hidden_size=8,
                                  decoder="attention", dtype="float64"), rng=0)
    return Seq2SeqTask(model, {"train": train, "valid": valid}, cfg, codec=codec)


def main() -> None:
    out = Path(sys.argv[1])
    for name in ("regressor", "classifier", "seq2seq"):
        cfg = config()
        if name == "seq2seq":
            task = seq2seq_task(cfg)
            trainer = Trainer(None, None, cfg, out / name, task=task, echo=lambda m: None)
        else:
            model, data = regressor() if name == "regressor" else classifier()
            trainer = Trainer(model, data, cfg, out / name, echo=lambda m: None)
        summary = trainer.fit()
        assert summary["steps"] == 8 and summary["stopped"] == "max_steps", summary
        if trainer.world.is_root:
            records = read_metrics(out / name / "metrics.jsonl")
            valid = [r for r in records if r["event"] == "valid"]
            scores = [r[k] for r in valid for k in ("accuracy", "exact_match") if k in r]
            np.savez(out / f"{name}.npz",
                     losses=np.array([r["loss"] for r in records if r["event"] == "train"]),
                     valid=np.array([r["loss"] for r in valid]), scores=np.array(scores),
                     world_size=np.array(sorted({r["world_size"] for r in records})),
                     **{f"p/{k}": np.asarray(v) for k, v in model_arrays(trainer.model).items()})


if __name__ == "__main__":
    main()
