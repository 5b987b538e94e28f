"""Digests of the training state a few steps into a run and after a resume, for the four
model families (language model, forecaster, classifier, seq2seq): the proof that a change
to the training stack leaves the bits alone.

    PYTHONPATH=src python tools/train_digests.py OUT_DIR
    PYTHONPATH=src mpiexec -n 2 python tools/train_digests.py OUT_DIR

Each line: ``family stage sha256`` over every array of the run's ``last.safetensors``
(parameters, optimizer buffers, carried state), in name order. Only public entry points
that exist before and after issue 34 are used: the command line (``rnnlab train``,
``rnnlab train --task forecast``, ``rnnlab seq2seq train``) and ``Trainer(model, data,
config, out_dir)`` / ``Trainer.restore``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import sys
from pathlib import Path

import numpy as np

import rnnlab.families  # noqa: F401  (registers the tasks of Trainer(model, data, ...))
from rnnlab.cli import main
from rnnlab.models import SequenceClassifier
from rnnlab.train import TrainConfig, Trainer
from rnnlab.train.checkpoint import read_checkpoint
from rnnlab.train.distributed import detect

TEXT = ("the quick brown fox jumps over the lazy dog\n"
        "pack my box with five dozen liquor jugs\n"
        "how vexingly quick daft zebras jump\n") * 12


def digest(path: Path) -> str:
    """The digest of a checkpoint's arrays (rank 0 reads it, once every rank is done)."""
    world = detect()
    world.broadcast(None)  # a barrier: rank 0 has written the file
    if not world.is_root:
        return ""
    arrays, _ = read_checkpoint(path)
    h = hashlib.sha256()
    for name in sorted(arrays):
        value = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{value.dtype.str}:{value.shape};".encode())
        h.update(value.reshape(-1).view(np.uint8))
    return h.hexdigest()[:16]


def cli(*argv: str) -> None:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        code = main(list(argv))
    if code != 0:
        raise SystemExit(f"rnnlab {' '.join(argv)} exited with {code}")


def classification_data() -> dict:
    try:
        from rnnlab.train import Examples  # after issue 34
    except ImportError:
        from rnnlab.train.tasks import Examples  # before issue 34
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((96, 7, 2))
    lengths = rng.integers(3, 8, size=96)
    mask = np.arange(7)[None, :] < lengths[:, None]
    labels = ((xs[:, :, 0] * mask).sum(axis=1) > 0).astype(np.int64)
    return {"train": Examples(xs[:64], labels[:64], lengths[:64]),
            "valid": Examples(xs[64:80], labels[64:80], lengths[64:80]),
            "test": Examples(xs[80:], labels[80:], lengths[80:])}


def run(out: Path) -> list[tuple[str, str, str]]:
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    text = out / "tiny.txt"
    text.write_text(TEXT, encoding="utf-8")
    lm = ["--corpus", str(text), "--hidden-size", "12", "--embedding-dim", "8",
          "--num-layers", "2", "--dropout", "0.1", "--batch-size", "4", "--bptt", "8",
          "--eval-batch-size", "2", "--epochs", "2", "--checkpoint-every", "7",
          "--no-progress", "--sample-length", "0", "--seed", "3"]
    cli("train", *lm, "--out", str(out / "lm"), "--max-steps", "9", "--overwrite")
    lines.append(("lm", "steps9", digest(out / "lm" / "last.safetensors")))
    cli("train", "--resume", str(out / "lm"), "--max-steps", "30", "--no-progress",
        "--sample-length", "0")
    lines.append(("lm", "resumed30", digest(out / "lm" / "last.safetensors")))

    csv = out / "series.csv"
    t = np.arange(300)
    values = np.sin(2 * np.pi * t / 25) + 0.1 * np.cos(t / 7)
    csv.write_text("step,units\n" + "".join(f"{i},{v:.6f}\n" for i, v in enumerate(values)))
    fc = ["--task", "forecast", "--csv", str(csv), "--column", "units", "--window", "12",
          "--horizon", "2", "--hidden-size", "8", "--dropout", "0.1", "--batch-size", "16",
          "--epochs", "3", "--no-progress", "--plot", "", "--seed", "2"]
    cli("train", *fc, "--out", str(out / "fc"), "--max-steps", "7", "--overwrite")
    lines.append(("forecast", "steps7", digest(out / "fc" / "last.safetensors")))
    cli("train", "--task", "forecast", "--resume", str(out / "fc"), "--no-progress",
        "--plot", "")
    lines.append(("forecast", "resumed_end", digest(out / "fc" / "last.safetensors")))

    cfg = dict(epochs=3, batch_size=8, optimizer="adam", lr=0.02, clip_norm=1.0,
               log_every=2, checkpoint_every=5, snapshot_every=3, progress=False, seed=0)
    data = classification_data()

    def classifier(seed: int) -> SequenceClassifier:
        return SequenceClassifier(2, 8, 2, num_layers=2, dropout=0.2, pooling="mean", rng=seed)

    folder = out / "cls"
    if detect().is_root and folder.exists():
        import shutil
        shutil.rmtree(folder)
    detect().broadcast(None)
    Trainer(classifier(0), data, TrainConfig(**cfg, max_steps=11), folder,
            echo=lambda m: None).fit()
    lines.append(("classifier", "steps11", digest(folder / "last.safetensors")))
    trainer = Trainer(classifier(5), data, TrainConfig(**cfg), folder, echo=lambda m: None)
    trainer.restore(folder / "last.safetensors")
    trainer.fit()
    lines.append(("classifier", "resumed_end", digest(folder / "last.safetensors")))

    s2s = ["seq2seq", "train", "--task", "addition", "--source", "generated", "--n", "400",
           "--hidden-size", "16", "--embedding-dim", "8", "--batch-size", "32",
           "--epochs", "2", "--decoder", "attention", "--quiet",
           "--out", str(out / "s2s.safetensors")]
    cli(*s2s, "--max-steps", "6", "--overwrite")
    lines.append(("seq2seq", "steps6", digest(out / "s2s" / "last.safetensors")))
    cli("seq2seq", "train", "--resume", str(out / "s2s"), "--quiet")
    lines.append(("seq2seq", "resumed_end", digest(out / "s2s" / "last.safetensors")))
    return lines


if __name__ == "__main__":
    results = run(Path(sys.argv[1]))
    if detect().is_root:
        for family, stage, value in results:
            print(f"{family:10s} {stage:12s} {value}")
