"""Seq2seq on the book's toy tasks, with its sizes and its 90/10 split (run by hand).

    python benchmarks/bench_seq2seq.py                       # every run below
    python benchmarks/bench_seq2seq.py --only addition-peeky-reversed date-attention
    python benchmarks/bench_seq2seq.py --list

Each run trains on ``addition.txt`` / ``date.txt`` (found through ``--data-dir``,
``$RNNLAB_DATA`` or ``../shared/data``), 45,000 pairs, and scores exact match (greedy
decoding, whole padded answer) on the 5,000 held-out pairs after every epoch, like the
book's ``train.py`` scripts. Sizes: addition embedding 16, hidden 128; dates embedding
16, hidden 256; batch 128, Adam, gradient-norm clipping at 5. The book's own numbers
are printed next to ours.

On a shared CPU a multithreaded BLAS spends most of its time waiting for cores; the
script pins BLAS to one thread (``--threads`` to change) before numpy is imported.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time


def _pin_threads(argv: list[str]) -> None:
    threads = "1"
    if "--threads" in argv:
        threads = argv[argv.index("--threads") + 1]
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, threads)


_pin_threads(sys.argv)

#: name -> (task, model options, training options, target or None, the book's result)
RUNS: dict[str, tuple[str, dict, dict, float | None, str]] = {
    "addition-plain": (
        "addition", dict(decoder="plain", reverse=False, hidden_size=128),
        dict(epochs=25, lr=1e-3), None, "12.1 % (epoch 25)"),
    "addition-reversed": (
        "addition", dict(decoder="plain", reverse=True, hidden_size=128),
        dict(epochs=25, lr=1e-3), None, "54.0 % (epoch 25)"),
    "addition-peeky-reversed": (
        "addition", dict(decoder="peeky", reverse=True, hidden_size=128),
        dict(epochs=25, lr=3e-3, schedule="cosine"), 0.995, "98.4 % (epoch 25)"),
    "addition-peeky-reversed-book-lr": (
        "addition", dict(decoder="peeky", reverse=True, hidden_size=128),
        dict(epochs=25, lr=1e-3), None, "98.4 % (epoch 25)"),
    "date-attention": (
        "date", dict(decoder="attention", score="dot", reverse=True, hidden_size=256),
        dict(epochs=3, lr=1e-3), 1.0, "99.9 % (epoch 3)"),
    "date-attention-cosine": (
        "date", dict(decoder="attention", score="dot", reverse=True, hidden_size=256),
        dict(epochs=3, lr=3e-3, schedule="cosine"), 1.0, "99.9 % (epoch 3)"),
    "date-attention-forward": (
        "date", dict(decoder="attention", score="dot", reverse=False, hidden_size=256),
        dict(epochs=3, lr=1e-3), 1.0, "99.9 % (epoch 3)"),
    "date-attention-forward-cosine": (
        "date", dict(decoder="attention", score="dot", reverse=False, hidden_size=256),
        dict(epochs=3, lr=3e-3, schedule="cosine"), 1.0, "99.9 % (epoch 3)"),
    "date-attention-forward-cosine-2e-3": (
        "date", dict(decoder="attention", score="dot", reverse=False, hidden_size=256),
        dict(epochs=3, lr=2e-3, schedule="cosine"), 1.0, "99.9 % (epoch 3)"),
    "date-attention-forward-2e-3": (
        "date", dict(decoder="attention", score="dot", reverse=False, hidden_size=256),
        dict(epochs=3, lr=2e-3), 1.0, "99.9 % (epoch 3)"),
    "date-attention-additive-cosine": (
        "date", dict(decoder="attention", score="additive", reverse=True, hidden_size=256),
        dict(epochs=3, lr=3e-3, schedule="cosine"), 1.0, "99.9 % (epoch 3)"),
    "date-attention-general-cosine": (
        "date", dict(decoder="attention", score="general", reverse=True, hidden_size=256),
        dict(epochs=3, lr=3e-3, schedule="cosine"), 1.0, "99.9 % (epoch 3)"),
    "date-attention-bi-cosine": (  # 2 x 128 encoder units: the decoder has 256
        "date", dict(decoder="attention", score="dot", reverse=True, bidirectional=True,
                     hidden_size=128),
        dict(epochs=3, lr=3e-3, schedule="cosine"), 1.0, "99.9 % (epoch 3)"),
    "date-bahdanau-cosine": (
        "date", dict(decoder="bahdanau", score="additive", reverse=True, hidden_size=256),
        dict(epochs=3, lr=3e-3, schedule="cosine"), 1.0, "99.9 % (epoch 3)"),
}
DEFAULT_RUNS = ("addition-plain", "addition-reversed", "addition-peeky-reversed-book-lr",
                "addition-peeky-reversed", "date-attention", "date-attention-cosine",
                "date-bahdanau-cosine")


def run_one(name: str, data_dir: str | None, seed: int, epochs: int | None,
            quiet: bool, save: str | None = None) -> dict:
    from rnnlab.seq2seq import (
        Codec,
        Seq2Seq,
        Seq2SeqConfig,
        TrainOptions,
        fit,
        load_task,
        save_checkpoint,
        split_pairs,
    )

    task, model_kw, train_kw, target, book = RUNS[name]
    pairs, source = load_task(task, "file", data_dir=data_dir)
    train, test = split_pairs(pairs)  # seed 1984, 45,000 / 5,000
    codec = Codec.build(pairs)
    model_kw = dict(model_kw)
    hidden = model_kw.pop("hidden_size")
    config = Seq2SeqConfig(len(codec.vocab), embedding_dim=16, hidden_size=hidden, **model_kw)
    model = Seq2Seq(config, rng=seed)
    train_kw = dict(train_kw)
    if epochs is not None:
        train_kw["epochs"] = epochs
    options = TrainOptions(batch_size=128, clip_norm=5.0, seed=seed, **train_kw)
    started, cpu_started = time.perf_counter(), time.process_time()

    def report(record: dict) -> None:
        if not quiet:
            print(f"  {name}: epoch {record['epoch']:>2}  loss {record['loss']:.4f}  "
                  f"exact match {100 * record['test_acc']:6.2f} %  ({record['seconds']:.0f} s)",
                  flush=True)

    history = fit(model, codec, train, test, options, callback=report)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    if save:
        source.update(split_seed=1984, test_fraction=0.1)
        save_checkpoint(os.path.join(save, f"{name}.safetensors"), model, codec, data=source,
                        options=options, history=history)
    accs = [r["test_acc"] for r in history]
    return {"run": name, "task": task, "data": source["path"], "model": config.to_dict(),
            "train": options.to_dict(), "parameters": model.num_parameters(),
            "accuracy_by_epoch": accs, "final": accs[-1], "best": max(accs),
            "first_epoch_at_target": next((i + 1 for i, a in enumerate(accs)
                                           if target is not None and a >= target), None),
            "target": target, "book": book, "wall_seconds": wall, "cpu_seconds": cpu,
            "load_average": os.getloadavg()[0]}


def table(results: list[dict]) -> str:
    lines = ["| run | decoder | reversed | lr (schedule) | seed | epochs | exact match (final) | "
             "best | target | book | wall (CPU) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        m, t = r["model"], r["train"]
        decoder = m["decoder"] + (f" ({m['score'] or 'default'})"
                                  if m["decoder"] in ("attention", "bahdanau") else "")
        target = "-" if r["target"] is None else (
            f"{100 * r['target']:.1f} % " + ("met" if r["final"] >= r["target"] else "MISSED"))
        lines.append(f"| {r['run']} | {decoder} | {'yes' if m['reverse'] else 'no'} | "
                     f"{t['lr']:g} ({t['schedule']}) | {t['seed']} | "
                     f"{len(r['accuracy_by_epoch'])} | "
                     f"{100 * r['final']:.2f} % | {100 * r['best']:.2f} % | {target} | "
                     f"{r['book']} | {r['wall_seconds'] / 60:.1f} min"
                     + (f" ({r['cpu_seconds'] / 60:.1f} min)" if "cpu_seconds" in r else "")
                     + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=sorted(RUNS), help="runs to do")
    parser.add_argument("--all", action="store_true", help="also the extra runs")
    parser.add_argument("--list", action="store_true", help="list the runs and exit")
    parser.add_argument("--data-dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, help="override every run's epochs (smoke tests)")
    parser.add_argument("--threads", default="1", help="BLAS threads (default 1)")
    parser.add_argument("--json", help="also write the records to this file")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--save", metavar="DIR", help="save each model as DIR/<run>.safetensors "
                        "(for rnnlab seq2seq eval/translate)")
    parser.add_argument("--table", nargs="+", metavar="JSON",
                        help="only print the table of records saved with --json")
    args = parser.parse_args(argv)
    if args.table:
        records = []
        for path in args.table:
            with open(path, encoding="utf-8") as fh:
                records += json.load(fh)
        print(table(records))
        return 0
    if args.list:
        for name, (task, model_kw, train_kw, target, book) in RUNS.items():
            print(f"{name:34} {task:9} {model_kw} {train_kw} target={target} book={book}")
        return 0
    names = args.only or (list(RUNS) if args.all else list(DEFAULT_RUNS))
    results = []
    for name in names:
        results.append(run_one(name, args.data_dir, args.seed, args.epochs, args.quiet,
                               args.save))
        print(f"{name}: final {100 * results[-1]['final']:.2f} % in "
              f"{results[-1]['wall_seconds'] / 60:.1f} min", flush=True)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump(results, fh, indent=1)
    print()
    print(table(results))
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
