"""``rnnlab train --task forecast``: train a forecaster of one column of a CSV file, or
continue one (``--resume``). The options are those of ``rnnlab train`` that a
forecaster takes (:data:`FORECAST_MODEL`, the training and run options) and its own
(:data:`FORECAST_FLAGS`); the language model's (:data:`FORECAST_REFUSED`) are refused."""

from __future__ import annotations

import argparse
import json

from rnnlab.cli import STOP_STATUS, UsageError
from rnnlab.cli import train as train_cmd
from rnnlab.families.forecast import resume_forecast, start_forecast
from rnnlab.nn.stack import CELL_KINDS
from rnnlab.train.distributed import detect

FORECAST_FLAGS = ("csv", "column", "window", "horizon", "valid_fraction", "plot")
#: Options of a language model that a forecaster does not take.
FORECAST_REFUSED = ("corpus", "level", "max_chars", "max_size", "min_freq", "data_dir",
                     "embedding_dim", "tie_weights", "nonlinearity", "init_range", "init",
                     "block", "dropout_kind", "bptt", "unigram_bias", "config")
FORECAST_MODEL = ("cell", "hidden_size", "num_layers", "dropout", "dtype")


def train_forecast(args: argparse.Namespace) -> int:
    """``rnnlab train --task forecast``: a forecaster of a CSV column."""
    given = [n for n in FORECAST_REFUSED if getattr(args, n, None) not in (None, False)]
    if given:
        raise UsageError(f"--task forecast does not take "
                         f"{', '.join('--' + n.replace('_', '-') for n in given)} (options "
                         f"of a language model)")
    if args.cell is not None and not CELL_KINDS[args.cell].recurrent:
        raise UsageError(f"--cell {args.cell}: --task forecast expected lstm, gru or rnn")
    if args.valid_fraction is not None and not 0 < args.valid_fraction < 1:
        raise UsageError(f"--valid-fraction expected a number in (0, 1), got "
                         f"{args.valid_fraction}")
    model_kw = {n: getattr(args, n) for n in FORECAST_MODEL if getattr(args, n) is not None}
    train_kw = {n: getattr(args, n) for n in train_cmd.train_flags()
                if getattr(args, n, None) is not None}
    if train_kw.get("clip_norm") == 0:
        train_kw["clip_norm"] = None
    if args.no_progress:
        train_kw["progress"] = False
    if args.resume:
        train_cmd.check_resume(args, (set(model_kw) | set(train_kw)) - train_cmd.RESUME_FLAGS
                      | {n for n in ("column", "window", "horizon", "valid_fraction")
                         if getattr(args, n) is not None})
        summary = resume_forecast(args.resume, train_kw, csv=args.csv, device=args.device,
                                  plot=args.plot)
    else:
        missing = [f"--{n}" for n in ("csv", "column") if getattr(args, n) is None]
        if missing:
            raise UsageError(f"--task forecast expected {' and '.join(missing)} (the CSV file "
                             f"and the column to forecast)")
        window = 24 if args.window is None else args.window
        horizon = 1 if args.horizon is None else args.horizon
        fraction = 0.2 if args.valid_fraction is None else args.valid_fraction
        summary = start_forecast(args.csv, args.column, model_kw, train_kw, window=window,
                                 horizon=horizon, valid_fraction=fraction, out=args.out,
                                 overwrite=args.overwrite, device=args.device, plot=args.plot)
    if detect().is_root:
        print(json.dumps(summary, indent=2))
    return STOP_STATUS.get(str(summary.get("stopped")), 0)
