"""``rnnlab seq2seq train | eval | translate``: the command line of :mod:`rnnlab.seq2seq`.

Registered by :func:`add_parser` (:mod:`rnnlab.cli.commands`). Errors a user can fix
are ``DataError``/``CheckpointError``/``ValueError`` (printed as one line by
``rnnlab``'s entry point).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from rnnlab.argtypes import nonneg_float, nonneg_int, positive_int
from rnnlab.cli import STOP_STATUS
from rnnlab.seq2seq.data import Codec, read_pairs, split_pairs
from rnnlab.seq2seq.model import Seq2Seq, Seq2SeqConfig
from rnnlab.seq2seq.plot import MissingPlotExtra, attention_path, plot_attention
from rnnlab.seq2seq.search import predict
from rnnlab.seq2seq.tasks import GENERATORS
from rnnlab.seq2seq.training import (
    TrainOptions,
    load_checkpoint,
    load_task,
    make_task,
    resume_run,
    source_pairs,
    start_run,
    train_config,
)
from rnnlab.train.checkpoint import CheckpointError
from rnnlab.train.distributed import detect
from rnnlab.train.launch import check_output_file, check_unchanged, starting

EPILOG = """examples:
  rnnlab seq2seq train --task addition --epochs 25        # peeky decoder, reversed input
  rnnlab seq2seq eval runs/seq2seq-addition.safetensors
  rnnlab seq2seq translate runs/seq2seq-date.safetensors "Feb 23, 2005" "4/3/05"
"""
EPILOG_TRAIN = """examples:
  rnnlab seq2seq train --task addition           # peeky, reversed, 25 epochs: ~99.9 %
  rnnlab seq2seq train --task date               # Bahdanau attention, 3 epochs: 100 %
  rnnlab seq2seq train --task addition --decoder plain --no-reverse --lr 1e-3 --schedule constant
  rnnlab seq2seq train --task date --decoder attention --lr 1e-3 --schedule constant
  rnnlab seq2seq train --task addition --source generated --n 20000 --data-seed 7
  rnnlab seq2seq train --task pairs.txt --decoder attention --score general --cell gru
  rnnlab seq2seq train --task date --patience 2               # early stopping
  rnnlab seq2seq train --resume runs/seq2seq-addition --epochs 30   # continue a run

--task addition|date reads the book's addition.txt/date.txt (from --data-dir,
$RNNLAB_DATA or ../shared/data next to the repository) and falls back to the
project's seeded generator; any other value is a file of 'question_answer' lines.
The split is the book's protocol: a seeded shuffle, then 90 % train, 10 % test.

Defaults per task (each can be overridden): addition: peeky decoder, hidden 128,
25 epochs; date: Bahdanau decoder, hidden 256, 3 epochs; a file: Luong attention,
hidden 256, 10 epochs (lr 2e-3). All: reversed input, embedding 16, batch 128, Adam
with a cosine-decayed learning rate (3e-3), gradient norm clipped at 5.
"""
EPILOG_EVAL = """examples:
  rnnlab seq2seq eval runs/seq2seq-date.safetensors              # its own test split
  rnnlab seq2seq eval runs/seq2seq-date.safetensors --data other_dates.txt --show-errors 5
  rnnlab seq2seq eval runs/seq2seq-addition.safetensors --beam-width 5
"""
EPILOG_TRANSLATE = """examples:
  rnnlab seq2seq translate runs/seq2seq-addition.safetensors "16+75" "999+1"
  rnnlab seq2seq translate runs/seq2seq-date.safetensors "TUESDAY, SEPTEMBER 25, 1984" \\
      --attention --plot attention.png
"""
#: Per-task defaults: the settings that met the benchmarks (benchmarks/bench_seq2seq.py).
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "addition": {"decoder": "peeky", "reverse": True, "hidden_size": 128, "epochs": 25,
                 "lr": 3e-3, "schedule": "cosine"},
    "date": {"decoder": "bahdanau", "reverse": True, "hidden_size": 256, "epochs": 3,
             "lr": 3e-3, "schedule": "cosine"},
}
GENERIC_DEFAULTS: dict[str, Any] = {"decoder": "attention", "reverse": True,
                                    "hidden_size": 256, "epochs": 10, "lr": 2e-3,
                                    "schedule": "cosine"}




def add_parser(subparsers: Any) -> None:
    """Register ``seq2seq`` and its ``train``, ``eval`` and ``translate`` subcommands."""
    fmt = argparse.RawDescriptionHelpFormatter
    top = subparsers.add_parser("seq2seq", help="sequence-to-sequence models (addition, dates)",
                                description="Train, evaluate and run encoder-decoder models.",
                                epilog=EPILOG, formatter_class=fmt)
    top.set_defaults(handler=lambda args: _usage(top))
    sub = top.add_subparsers(dest="seq2seq_command", metavar="SUBCOMMAND")

    p = sub.add_parser("train", help="train a seq2seq model", epilog=EPILOG_TRAIN,
                       formatter_class=fmt)
    d = p.add_argument_group("data")
    d.add_argument("--task", help="addition, date, or a path to a text file (required, "
                   "except with --resume)")
    d.add_argument("--source", choices=("auto", "file", "generated"), default="auto",
                   help="for addition/date: the book's file, the generator, or file if found")
    d.add_argument("--n", type=positive_int, default=50_000, help="generated pairs")
    d.add_argument("--data-seed", type=nonneg_int, default=0, help="seed of the generator")
    d.add_argument("--data-dir", help="folder holding addition.txt/date.txt")
    d.add_argument("--split-seed", type=nonneg_int, default=1984, help="seed of the 90/10 shuffle")
    m = p.add_argument_group("model (defaults depend on the task, see below)")
    m.add_argument("--cell", choices=("lstm", "gru"), default="lstm")
    m.add_argument("--decoder", choices=("plain", "peeky", "attention", "bahdanau"))
    m.add_argument("--score", choices=("dot", "general", "additive"),
                   help="attention score (default dot; additive for bahdanau)")
    m.add_argument("--reverse", action=argparse.BooleanOptionalAction,
                   help="read the question backwards (default on)")
    m.add_argument("--bidirectional", action="store_true", help="bidirectional encoder")
    m.add_argument("--embedding-dim", type=positive_int, default=16)
    m.add_argument("--hidden-size", type=positive_int)
    m.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=positive_int)
    t.add_argument("--batch-size", type=positive_int, default=128)
    t.add_argument("--lr", type=nonneg_float, help="Adam learning rate")
    t.add_argument("--clip-norm", type=nonneg_float, default=5.0, help="0 disables")
    t.add_argument("--schedule", choices=("constant", "cosine"))
    t.add_argument("--warmup-steps", type=int, default=0)
    t.add_argument("--seed", type=nonneg_int, default=0, help="initialisation and batch order")
    t.add_argument("--max-steps", type=positive_int)
    t.add_argument("--patience", type=positive_int,
                   help="stop after this many epochs without a better validation loss")
    t.add_argument("--out", help="the trained model's file (default "
                   "runs/seq2seq-<task>.safetensors); the run (last.safetensors, "
                   "best.safetensors, metrics.jsonl) goes to the folder of the same name "
                   "without the suffix")
    t.add_argument("--overwrite", action="store_true",
                   help="replace the run in that folder")
    t.add_argument("--resume", metavar="RUN",
                   help="continue a run (its folder or its last.safetensors) exactly where it "
                        "stopped; --epochs, --max-steps and --patience may change, --task "
                        "FILE says where its pairs file is now")
    t.add_argument("--device", choices=("cpu", "gpu"))
    t.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    p.set_defaults(handler=cmd_train, seq2seq_train_parser=p)

    p = sub.add_parser("eval", help="exact-match accuracy of a checkpoint",
                       epilog=EPILOG_EVAL, formatter_class=fmt)
    p.add_argument("checkpoint")
    p.add_argument("--data", help="a 'question_answer' file (default: the run's test split)")
    p.add_argument("--data-dir", help="where to look for the run's addition.txt/date.txt")
    p.add_argument("--beam-width", type=positive_int, default=1)
    p.add_argument("--show-errors", type=int, default=0, metavar="N",
                   help="list the first N wrong answers")
    p.add_argument("--device", choices=("cpu", "gpu"))
    p.set_defaults(handler=cmd_eval)

    p = sub.add_parser("translate", help="answer questions with a checkpoint",
                       epilog=EPILOG_TRANSLATE, formatter_class=fmt)
    p.add_argument("checkpoint")
    p.add_argument("questions", nargs="+", metavar="QUESTION")
    p.add_argument("--beam-width", type=positive_int, default=1)
    p.add_argument("--attention", action="store_true", help="print the attention weights")
    p.add_argument("--plot", metavar="FILE",
                   help="save attention heat maps (needs matplotlib: the viz extra)")
    p.add_argument("--device", choices=("cpu", "gpu"))
    p.set_defaults(handler=cmd_translate)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


# ---------------------------------------------------------------------- train
#: What ``--resume`` may change (the run's budget); everything else comes from the run.
_RESUME_OPTIONS = ("epochs", "max_steps", "patience")


def _summary(out: Path, summary: dict[str, Any], history: list[dict[str, Any]],
             seconds: float) -> str:
    last = history[-1] if history else {}
    return json.dumps({"checkpoint": str(out), "run": summary.get("run"),
                       "epochs": summary["epochs"], "steps": summary["steps"],
                       "stopped": summary.get("stopped"),
                       "loss": None if not history else round(last["loss"], 6),
                       "valid_loss": summary.get("valid_loss"),
                       "test_exact_match": last.get("test_acc"),
                       "seconds": round(seconds, 1)}, indent=2)


def _report(world: Any, out: Path, summary: dict[str, Any], history: list[dict[str, Any]],
            started: float) -> int:
    """Print the run's summary (rank 0); the exit status of a run stopped by a signal is
    128 + its number."""
    if world.is_root:
        print(_summary(out, summary, history, time.perf_counter() - started), flush=True)
    return STOP_STATUS.get(str(summary.get("stopped")), 0)


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume:
        return _resume(args)

    if args.task is None:
        raise ValueError("seq2seq train: --task expected (addition, date or a file), or "
                         "--resume RUN")
    defaults = TASK_DEFAULTS.get(args.task, GENERIC_DEFAULTS)
    decoder = args.decoder or defaults["decoder"]
    reverse = defaults["reverse"] if args.reverse is None else args.reverse
    hidden = args.hidden_size or defaults["hidden_size"]
    options = TrainOptions(epochs=args.epochs or defaults["epochs"], batch_size=args.batch_size,
                           lr=defaults["lr"] if args.lr is None else args.lr,
                           clip_norm=args.clip_norm or None,
                           schedule=args.schedule or defaults["schedule"],
                           warmup_steps=args.warmup_steps, seed=args.seed,
                           max_steps=args.max_steps)
    name = Path(args.task).stem if args.task not in TASK_DEFAULTS else args.task
    out = _model_file(args.out or f"runs/seq2seq-{name}.safetensors")
    folder = out.with_suffix("")
    # the prologue every family's start shares: the device, and the folder checked before
    # the data is loaded (under mpiexec rank 0 claims the folder, prints and writes)
    world, _ = starting(folder, overwrite=args.overwrite, device=args.device, echo=None)
    quiet = args.quiet or not world.is_root
    pairs, source = load_task(args.task, args.source, args.n, args.data_seed, args.data_dir)
    source.update(split_seed=args.split_seed, test_fraction=0.1)
    train, test = split_pairs(pairs, args.split_seed)
    codec = Codec.build(pairs)
    config = Seq2SeqConfig(len(codec.vocab), args.embedding_dim, hidden, args.cell, decoder,
                           args.score, reverse, args.bidirectional, args.dtype)
    model = Seq2Seq(config, rng=args.seed, device=args.device)
    if not quiet:
        c = config
        print(f"{source['task']} ({source['source']}): {len(train):,} train / {len(test):,} "
              f"test pairs, vocabulary {len(codec.vocab)}\nmodel: {c.cell} {c.decoder} decoder"
              f"{f' ({c.attention_score} score)' if c.attention_score else ''}, embedding "
              f"{c.embedding_dim}, hidden {hidden}{', bidirectional' if c.bidirectional else ''}"
              f"{', reversed input' if c.reverse else ''}, {model.num_parameters():,} "
              f"parameters; run folder {folder}", flush=True)
    train_cfg = train_config(options, patience=args.patience, progress=not quiet)
    task = make_task(model, codec, train, test if len(test) else train, train_cfg,
                     source=source)
    started = time.perf_counter()
    summary, history = start_run(task, train_cfg, folder, options=options, out=out,
                                 overwrite=args.overwrite, echo=_echo(quiet), world=world)
    return _report(world, out, summary, history, started)


def _model_file(out: str) -> Path:
    """``--out``: the model's file, checked before training (the run's folder is its name
    without the suffix, so a name without one is refused)."""
    path = Path(out)
    if not path.suffix:
        raise ValueError(f"--out {out}: expected a file name with a suffix, e.g. "
                         f"{out}.safetensors (the run goes to the folder {out})")
    return check_output_file(path, "--out", create_folder=True)


def _echo(quiet: bool) -> Any:
    if quiet:
        return lambda message: None
    return lambda message: print(message, flush=True)


#: What else ``--resume`` takes: where the run and its data are, how it prints, and where
#: the best model goes.
_RESUME_TAKES = ("resume", "task", "data_dir", "device", "quiet", "out")


def _resume(args: argparse.Namespace) -> int:
    """``--resume RUN``: rebuild the model, data and trainer from the run's
    ``last.safetensors`` and go on exactly where it stopped (``--task FILE``: where the
    run's pairs file is now). An option of the saved configuration given with another
    value than its default is refused, all of them in one message, as ``rnnlab train
    --resume`` does."""
    defaults = vars(args.seq2seq_train_parser.parse_args([]))
    check_unchanged(k for k, v in vars(args).items() if k in defaults and
                    k not in _RESUME_OPTIONS + _RESUME_TAKES and v != defaults[k])
    if args.task is not None and args.task in GENERATORS:
        raise ValueError(f"seq2seq train: --resume continues a run with its own data; --task "
                         f"expected the path of the run's pairs file, got {args.task!r}")
    started = time.perf_counter()
    overrides = {k: getattr(args, k) for k in _RESUME_OPTIONS if getattr(args, k) is not None}
    world = detect()  # rank 0 alone prints and writes
    quiet = args.quiet or not world.is_root
    summary, history, out = resume_run(args.resume, overrides, data_dir=args.data_dir,
                                       data=args.task, device=args.device,
                                       progress=not quiet, echo=_echo(quiet),
                                       out=_model_file(args.out) if args.out else None)
    return _report(world, out, summary, history, started)


# ----------------------------------------------------------------------- eval
def _eval_pairs(meta: dict[str, Any], data: str | None, data_dir: str | None, where: str
                ) -> tuple[Any, str]:
    """The pairs to score: ``--data``, or the test split of the data the run recorded."""
    if data is not None:
        return read_pairs(data), data
    info: Any = meta.get("data_source", meta.get("data"))  # a run's checkpoint, or --out's
    hint = "; pass --data FILE"
    pairs, _ = source_pairs(info, data_dir, "--data FILE", where=where)
    try:
        _, test = split_pairs(pairs, int(info.get("split_seed", 1984)),
                              float(info.get("test_fraction", 0.1)))
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"the checkpoint's data record is malformed ({exc!r}){hint}") \
            from None
    return test, f"{info['task']} ({info.get('source')}), test split"


def cmd_eval(args: argparse.Namespace) -> int:

    model, codec, meta = load_checkpoint(args.checkpoint, device=args.device)
    pairs, what = _eval_pairs(meta, args.data, args.data_dir,
                              f"checkpoint {str(args.checkpoint)!r}")
    answers = predict(model, codec, pairs.questions, beam_width=args.beam_width)
    right = [a == b for a, b in zip(answers, pairs.answers, strict=True)]
    errors = [{"question": q, "expected": e, "got": a}
              for q, e, a, ok in zip(pairs.questions, pairs.answers, answers, right,
                                     strict=True) if not ok][: max(args.show_errors, 0)]
    result = {"checkpoint": args.checkpoint, "data": what, "pairs": len(pairs),
              "beam_width": args.beam_width, "exact_match": sum(right) / len(right)}
    if args.show_errors > 0:
        result["errors"] = errors
    print(json.dumps(result, indent=2))
    return 0


# ------------------------------------------------------------------ translate
def _attention_text(weights: Any, question: str, answer: str) -> str:
    lines = ["       " + " ".join(f"{c!s:>4}" for c in question)]
    for ch, row in zip(answer, weights, strict=False):
        lines.append(f"  {ch!r:>4} " + " ".join(f"{w:4.2f}" for w in row))
    return "\n".join(lines)


def cmd_translate(args: argparse.Namespace) -> int:

    model, codec, _ = load_checkpoint(args.checkpoint, device=args.device)
    want = args.attention or args.plot is not None
    if want and model.config.attention_score is None:
        raise ValueError(f"--attention/--plot: the model's decoder {model.config.decoder!r} "
                         f"has no attention (train with --decoder attention or bahdanau)")
    answers, att = predict(model, codec, args.questions, beam_width=args.beam_width,
                           return_attention=True)
    for i, (question, answer) in enumerate(zip(args.questions, answers, strict=True)):
        print(f"{question} -> {answer.rstrip()}" if len(args.questions) > 1 or want
              else answer.rstrip())
        if want:
            shown_q = codec.prepare_question(question)
            if args.attention:
                print(_attention_text(att[i], shown_q, answer))
            if args.plot is not None:
                path = attention_path(args.plot)
                if len(args.questions) > 1:
                    path = path.with_name(f"{path.stem}-{i + 1}{path.suffix}")
                try:
                    plot_attention(att[i], shown_q, answer, path=path,
                                   title=f"{question.strip()} -> {answer.strip()}")
                except MissingPlotExtra as exc:
                    raise ValueError(str(exc)) from None
                print(f"attention heat map written to {path}")
    return 0
