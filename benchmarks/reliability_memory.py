"""Memory: training over a corpus of token ids far larger than what the process holds.

    python benchmarks/reliability_memory.py                   # 1 GiB of ids, 300 steps
    python benchmarks/reliability_memory.py --mib 64 --steps 40 --json /tmp/m.json

Writes ``--mib`` MiB of random int32 token ids with :func:`rnnlab.data.save_ids` (from a
generator of 16 MiB chunks, so the ids never exist in memory at once), opens them with
:func:`rnnlab.data.open_ids` (a read-only memory map), and trains an LSTM language model
on them with the :class:`~rnnlab.train.Trainer` for ``--steps`` steps (checkpoints,
validation and all), after a warm-up run on a small in-memory corpus has loaded the
libraries and buffers a first training step needs. A thread samples the resident set
size (psutil) every few
milliseconds; ``/proc/self/status`` splits it into anonymous memory and mapped file
pages. Because the batcher only slices the map, the process stays far below the size of
the corpus: the script exits 1 if the peak resident memory while training grows by more
than ``--bound-mib`` over the memory before the ids were opened.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

CHUNK = 4 * 2**20  # ids per chunk written (16 MiB of int32)


class Sampler:
    """The peak RSS of this process, sampled in a thread."""

    def __init__(self, every: float = 0.002) -> None:
        self.process = psutil.Process()
        self.every = every
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.every)

    def __enter__(self) -> Sampler:
        self.peak = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def status_mib() -> dict[str, float]:
    """RssAnon / RssFile / VmRSS of this process in MiB (Linux), else just the RSS."""
    out = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[key] = round(int(value.split()[0]) / 1024, 1)
    except OSError:
        out["VmRSS"] = round(psutil.Process().memory_info().rss / 2**20, 1)
    return out


def run(folder: Path, mib: float, steps: int, *, vocab_size: int = 256, batch_size: int = 32,
        bptt: int = 64, hidden: int = 64, seed: int = 0) -> dict[str, Any]:
    import rnnlab.families  # noqa: F401  (registers the tasks of Trainer(model, data, ...))
    from rnnlab.data import Corpus, Vocab, open_ids, save_ids
    from rnnlab.models import RNNLM
    from rnnlab.train import TrainConfig, Trainer

    mib_rss = lambda: round(psutil.Process().memory_info().rss / 2**20, 1)  # noqa: E731
    figures: dict[str, Any] = {"rss_after_imports_mib": mib_rss()}
    n = int(mib * 2**20) // 4
    rng = np.random.default_rng(seed)

    def chunks() -> Any:
        for start in range(0, n, CHUNK):
            yield rng.integers(0, vocab_size, size=min(CHUNK, n - start), dtype=np.int32)

    t0 = time.perf_counter()
    with Sampler() as sampler:
        path = save_ids(folder / "ids.npy", chunks())
    figures.update(ids=n, ids_file_mib=round(path.stat().st_size / 2**20, 1),
                   write_s=round(time.perf_counter() - t0, 2),
                   write_peak_rss_mib=round(sampler.peak / 2**20, 1))

    vocab = Vocab(["<unk>", "<eos>"] + [chr(0x100 + i) for i in range(vocab_size - 2)], "char")
    config = TrainConfig(epochs=1, batch_size=batch_size, bptt=bptt, eval_batch_size=32,
                         max_steps=steps, checkpoint_every=100, log_every=50,
                         snapshot_every=50, progress=False, seed=seed)
    # warm up on a small in-memory corpus: libraries, BLAS buffers, first-call caches
    small = rng.integers(0, vocab_size, size=batch_size * bptt * 4 + 4000, dtype=np.int32)
    warm = Corpus("warm-up", "char", vocab, small[:-4000], small[-4000:-2000], small[-2000:])
    Trainer(RNNLM(vocab_size, 32, hidden, 1, "lstm", rng=seed), warm,
            config.__class__(**{**config.to_dict(), "max_steps": 3}), folder / "warm-up",
            echo=lambda m: None).fit()
    del warm, small

    ids = open_ids(path)
    held_out = 20_000
    corpus = Corpus("random-ids", "char", vocab, ids[: n - 2 * held_out],
                    ids[n - 2 * held_out: n - held_out], ids[n - held_out:],
                    "random ids", str(path))
    assert isinstance(corpus.train, np.memmap)
    model = RNNLM(vocab_size, 32, hidden, 1, "lstm", rng=seed)
    figures["rss_before_training_mib"] = before = mib_rss()
    figures["status_before_training_mib"] = status_mib()
    t0 = time.perf_counter()
    with Sampler() as sampler:
        trainer = Trainer(model, corpus, config, folder / "run", echo=lambda m: None)
        summary = trainer.fit()
    figures.update(
        steps=summary["steps"], windows_per_epoch=len(trainer.batcher),
        train_s=round(time.perf_counter() - t0, 2),
        train_peak_rss_mib=round(sampler.peak / 2**20, 1),
        train_growth_mib=round(sampler.peak / 2**20 - before, 1),
        status_after_training_mib=status_mib(),
        model_parameters=model.num_parameters(),
        batch=[batch_size, bptt], valid_loss=round(summary["valid_loss"], 4))
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=float, default=1024.0, help="size of the ids (MiB)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32, help="parallel streams")
    parser.add_argument("--bound-mib", type=float, default=128.0,
                        help="allowed growth of the peak RSS while training (MiB)")
    parser.add_argument("--dir", help="folder for the ids (default: a temporary one on /tmp)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rnnlab-memory-", dir=args.dir) as tmp:
        figures = run(Path(tmp), args.mib, args.steps, batch_size=args.batch_size)
    figures["bound_mib"] = args.bound_mib
    figures["held"] = figures["train_growth_mib"] <= args.bound_mib
    print(f"{figures['ids']:,} token ids ({figures['ids_file_mib']} MiB) written in "
          f"{figures['write_s']} s, peak RSS while writing {figures['write_peak_rss_mib']} MiB")
    print(f"{figures['steps']} training steps of {figures['batch']} windows "
          f"({figures['windows_per_epoch']:,} per epoch) in {figures['train_s']} s")
    print(f"RSS before training {figures['rss_before_training_mib']} MiB, peak while "
          f"training {figures['train_peak_rss_mib']} MiB (growth {figures['train_growth_mib']} "
          f"MiB, bound {args.bound_mib} MiB: {'held' if figures['held'] else 'BROKEN'})")
    print(f"after training: {figures['status_after_training_mib']}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1), encoding="utf-8")
    return 0 if figures["held"] else 1


if __name__ == "__main__":
    sys.exit(main())
