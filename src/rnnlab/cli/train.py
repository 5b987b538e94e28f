"""``rnnlab train``: train a language model (``--task forecast``: a forecaster, see
:mod:`rnnlab.cli.forecast`), or continue one (``--resume``)."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any

from rnnlab.argtypes import nonneg_float, nonneg_int, positive_int
from rnnlab.cli import STOP_STATUS, UsageError
from rnnlab.cli import forecast as forecast_cmd
from rnnlab.families.lm import resume_run, start_run
from rnnlab.nn.stack import CELL_KINDS
from rnnlab.train.config import OPTIMIZERS, SCHEDULES, TrainConfig, read_config_file
from rnnlab.train.distributed import detect
from rnnlab.train.launch import check_unchanged, run_checkpoint

EPILOG_TRAIN = """examples:
  rnnlab train                          # char LSTM on this Python's stdlib source (offline)
  rnnlab train --corpus tinyshakespeare --hidden-size 512 --epochs 10
  rnnlab train --corpus ptb --level word --optimizer sgd --lr 20 --clip-norm 0.25 --init book \\
      --batch-size 20 --bptt 35 --embedding-dim 100 --hidden-size 100 --epochs 4
  rnnlab train --corpus notes.txt --level word --max-size 20000
  rnnlab train --resume runs/stdlib-lstm/last.safetensors --epochs 3
  rnnlab train --corpus notes.txt --out runs/notes --overwrite   # replace the run there
  rnnlab train --task forecast --csv sales.csv --column units --window 24 --horizon 1 \
      --epochs 30 --hidden-size 32 --out runs/sales     # a forecaster, plot in runs/sales
  rnnlab train --task forecast --resume runs/sales --epochs 50
"""


def add_parser(sub: Any) -> None:
    """Register ``rnnlab train``."""
    p = sub.add_parser("train", help="train a language model", epilog=EPILOG_TRAIN,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    d = p.add_argument_group("data")
    d.add_argument("--corpus", help="stdlib (default, offline), ptb, tinyshakespeare, or a "
                   "path to a UTF-8 text file or folder")
    d.add_argument("--level", choices=("char", "word"), help="tokenisation for text paths")
    d.add_argument("--max-chars", type=positive_int, help="stdlib: character budget")
    d.add_argument("--max-size", type=positive_int, help="vocabulary size limit")
    d.add_argument("--min-freq", type=positive_int, help="minimum token frequency")
    d.add_argument("--data-dir", help="folder holding the canonical files (else RNNLAB_DATA, "
                   "else download)")
    m = p.add_argument_group("model")
    m.add_argument("--cell", choices=tuple(CELL_KINDS))
    m.add_argument("--embedding-dim", type=positive_int)
    m.add_argument("--hidden-size", type=positive_int)
    m.add_argument("--num-layers", type=positive_int)
    m.add_argument("--dropout", type=nonneg_float)
    m.add_argument("--dropout-kind", choices=("step", "locked"),
                   help="dropout on the embeddings and outputs: a new mask every step "
                        "(default) or one mask per sequence (locked, variational)")
    m.add_argument("--tie-weights", action="store_true", default=None)
    m.add_argument("--nonlinearity", choices=("tanh", "relu"))
    m.add_argument("--block", action="store_true", default=None,
                   help="mingru/minlstm: the paper's block per layer (layer norm, the min "
                        "layer, a feed-forward, residuals); needs --embedding-dim equal "
                        "to --hidden-size")
    m.add_argument("--init-range", type=nonneg_float)
    m.add_argument("--init", choices=("pytorch", "book"),
                   help="initialisation: PyTorch's LM example (default) or the textbook's")
    m.add_argument("--dtype", choices=("float32", "float64"))
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=positive_int)
    t.add_argument("--batch-size", type=positive_int)
    t.add_argument("--bptt", type=positive_int)
    t.add_argument("--eval-batch-size", type=positive_int)
    t.add_argument("--optimizer", choices=OPTIMIZERS)
    t.add_argument("--lr", type=nonneg_float)
    t.add_argument("--momentum", type=nonneg_float)
    t.add_argument("--weight-decay", type=nonneg_float)
    t.add_argument("--clip-norm", type=nonneg_float, help="0 disables")
    t.add_argument("--clip-value", type=nonneg_float)
    t.add_argument("--schedule", choices=SCHEDULES)
    t.add_argument("--lr-decay", type=nonneg_float)
    t.add_argument("--decay-start", type=int)
    t.add_argument("--warmup-steps", type=int)
    t.add_argument("--patience", type=positive_int, help="early stopping (epochs)")
    t.add_argument("--seed", type=nonneg_int)
    t.add_argument("--max-steps", type=positive_int)
    t.add_argument("--max-time", type=nonneg_float, help="seconds")
    t.add_argument("--log-every", type=positive_int)
    t.add_argument("--checkpoint-every", type=positive_int)
    t.add_argument("--check-every", type=positive_int, metavar="N",
                   help="under mpiexec: compare a checksum of every process's parameters "
                        "every N steps and stop if they differ (default 50)")
    t.add_argument("--unigram-bias", action="store_true", default=None,
                   help="start the output bias at the log frequencies of the training "
                        "tokens")
    t.add_argument("--freeze", nargs="+", metavar="NAME",
                   help="parameters kept as initialised (names or patterns, e.g. "
                        "'rnn.bias_hh_*')")
    r = p.add_argument_group("run")
    r.add_argument("--config", help="JSON file with 'model', 'train' and 'data' sections")
    r.add_argument("--out", help="run folder (default runs/<corpus>-<cell>, or the first "
                   "free runs/<corpus>-<cell>-N); one that holds another run is refused")
    r.add_argument("--overwrite", action="store_true",
                   help="replace the run in --out (its checkpoints and metrics)")
    r.add_argument("--resume", help="continue from a last.safetensors checkpoint (or its "
                   "run folder); --corpus and --data-dir say where its data is now")
    r.add_argument("--device", choices=("cpu", "gpu"))
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--sample-length", type=int, default=300,
                   help="characters/words to sample at the end (0: none)")
    f = p.add_argument_group(
        "forecasting (--task forecast: a SequenceRegressor predicts the next --horizon "
        "values of a CSV column from the --window before them; --cell, --hidden-size, "
        "--num-layers, --dropout, --dtype and the training and run options apply)")
    f.add_argument("--task", choices=("lm", "forecast"), default="lm",
                   help="lm: a language model (default); forecast: a time-series forecaster")
    f.add_argument("--csv", metavar="FILE", help="the CSV file (a header row, one row per "
                   "time step); with --resume, where it is now")
    f.add_argument("--column", metavar="NAME", help="the column to forecast")
    f.add_argument("--window", type=positive_int, help="values read per forecast (default 24)")
    f.add_argument("--horizon", type=positive_int, help="values forecast (default 1)")
    f.add_argument("--valid-fraction", type=float,
                   help="the last part of the series kept for validation (default 0.2)")
    f.add_argument("--plot", metavar="PNG", help="the figure of the forecast against the "
                   "truth on the validation part (default <run folder>/forecast.png; needs "
                   "matplotlib, the viz extra; '' for none)")
    p.set_defaults(handler=cmd_train)




_MODEL_FLAGS = ("cell", "embedding_dim", "hidden_size", "num_layers", "dropout", "tie_weights",
                "nonlinearity", "init_range", "init", "dtype", "block", "dropout_kind")
_DATA_FLAGS = ("corpus", "level", "max_chars", "max_size", "min_freq", "data_dir")


def train_flags() -> tuple[str, ...]:
    """The options of a :class:`~rnnlab.train.TrainConfig`."""
    return tuple(f.name for f in fields(TrainConfig))


def _configs_from_args(args: argparse.Namespace) -> tuple[dict, dict, dict]:
    model: dict[str, Any] = {}
    train: dict[str, Any] = {}
    data: dict[str, Any] = {}
    if args.config:  # a regular file of bounded size (a device or a FIFO is refused)
        sections = read_config_file(args.config)
        model, train, data = (sections[k] for k in ("model", "train", "data"))
    for names, target in ((_MODEL_FLAGS, model), (train_flags(), train), (_DATA_FLAGS, data)):
        for name in names:
            value = getattr(args, name, None)
            if value is not None:
                target[name] = value
    if train.get("clip_norm") == 0:
        train["clip_norm"] = None
    if args.no_progress:
        train["progress"] = False
    return model, train, data


#: What a resumed run may change: its budget, and where its data is now.
RESUME_FLAGS = {"epochs", "max_steps", "max_time", "progress", "corpus", "data_dir",
                 "check_every"}


def cmd_train(args: argparse.Namespace) -> int:
    if args.task == "forecast":
        return forecast_cmd.train_forecast(args)
    for name in forecast_cmd.FORECAST_FLAGS:
        if getattr(args, name) is not None:
            raise UsageError(f"--{name.replace('_', '-')} is an option of --task forecast")
    model_kw, train_kw, data_kw = _configs_from_args(args)
    if args.resume:
        check_resume(args, (set(model_kw) | set(data_kw) | set(train_kw)) - RESUME_FLAGS)
        summary, text = resume_run(args.resume, train_kw, device=args.device,
                                   sample_length=args.sample_length,
                                   corpus=data_kw.get("corpus"),
                                   data_dir=data_kw.get("data_dir"))
    else:
        summary, text = start_run(model_kw, train_kw, data_kw, out=args.out,
                                  device=args.device, sample_length=args.sample_length,
                                  overwrite=args.overwrite)
    if detect().is_root:  # under mpiexec, rank 0 alone prints
        print(json.dumps(summary, indent=2))
        if text:
            print("\n--- sample ---\n" + text)
    return STOP_STATUS.get(str(summary.get("stopped")), 0)


def check_resume(args: argparse.Namespace, changed: set[str]) -> None:
    """Refuse what ``--resume`` cannot honour: options of the saved configuration that
    would change (``changed``), ``--overwrite``, and an ``--out`` that is not the run's
    own folder."""
    try:  # the message every family's --resume gives
        check_unchanged(changed)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.overwrite:
        raise UsageError("--overwrite starts a new run in --out; it cannot be used with "
                         "--resume")
    folder = run_checkpoint(args.resume).parent
    if args.out is not None and not _same_folder(args.out, folder):
        raise UsageError(f"--out {args.out}: a resumed run continues in its own folder "
                         f"({folder}); copy that folder to --out and resume from the "
                         f"copy to continue elsewhere")


def _same_folder(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()
