"""The ``rnnlab`` command line: ``train``, ``eval``, ``generate`` (and ``plot``, ``seq2seq``).

Argument parsing only; the work is done by :mod:`rnnlab.train`, :mod:`rnnlab.generate`
and friends. Errors a user can fix are printed as one line (``rnnlab: error: ...``) with
exit status 2 (bad options) or 1 (bad data or files, a run folder in use or holding
another run), never as a traceback (set ``RNNLAB_DEBUG=1`` to see one). A run that keeps
diverging exits with 3.

Stopping ``rnnlab train``: Ctrl-C (SIGINT), SIGTERM (``kill``, ``timeout``, ``docker
stop``, Slurm) and SIGHUP finish the current step, save ``last.safetensors`` and exit
with 130, 143 and 129 (128 + the signal number); the same signal again aborts at once
with that status. Ctrl-C before training starts prints one line and exits with 130;
further Ctrl-Cs while the process ends are ignored.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import signal
import sys
import threading
from dataclasses import fields
from pathlib import Path
from typing import Any

from rnnlab.argtypes import nonneg_float, nonneg_int, positive_int

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
EPILOG_EVAL = """examples:
  rnnlab eval runs/ptb-lstm/best.safetensors                 # validation and test perplexity
  rnnlab eval runs/ptb-lstm/best.safetensors --text other.txt
  rnnlab eval runs/notes/best.safetensors --corpus notes/   # a folder corpus: name it again
"""
EPILOG_GENERATE = """examples:
  rnnlab generate runs/stdlib-lstm/best.safetensors --prime "def " --length 400
  rnnlab generate CKPT --prime "the meaning of" --strategy beam --beam-width 5 --length 20
  rnnlab generate CKPT --temperature 0.7 --top-p 0.9 --seed 1
"""


class UsageError(Exception):
    """A command-line option that cannot be honoured (exit status 2)."""




def _add_train(sub: Any) -> None:
    from rnnlab.train.config import OPTIMIZERS, SCHEDULES

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
    m.add_argument("--cell", choices=("lstm", "gru", "rnn", "mingru", "minlstm"))
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


def _add_eval(sub: Any) -> None:
    p = sub.add_parser("eval", help="perplexity of a trained model", epilog=EPILOG_EVAL,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--text", help="evaluate on this UTF-8 file instead of the training "
                        "corpus")
    source.add_argument("--corpus", help="where the training corpus is (a file, folder or "
                        "name), checked against the checkpoint; by default the corpus the "
                        "checkpoint names, if it is a file that still holds the same data")
    p.add_argument("--split", choices=("valid", "test", "both"), default="both")
    p.add_argument("--batch-size", type=positive_int, default=10)
    p.add_argument("--bptt", type=positive_int, default=35)
    p.add_argument("--data-dir")
    p.add_argument("--device", choices=("cpu", "gpu"))
    p.set_defaults(handler=cmd_eval)


def _add_generate(sub: Any) -> None:
    p = sub.add_parser("generate", help="sample text from a trained model",
                       epilog=EPILOG_GENERATE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--prime", default="", help="text to start from")
    p.add_argument("--length", type=int, default=300)
    p.add_argument("--strategy", choices=("sample", "greedy", "beam"), default="sample")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=positive_int)
    p.add_argument("--top-p", type=float)
    p.add_argument("--beam-width", type=positive_int, default=5)
    p.add_argument("--seed", type=int)
    p.add_argument("--unknown", choices=("error", "unk"), default="error",
                   help="prime symbols outside the vocabulary: error, or map to <unk>")
    p.add_argument("--device", choices=("cpu", "gpu"))
    p.set_defaults(handler=cmd_generate)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rnnlab", description="Recurrent neural networks from scratch in NumPy.",
        epilog="run 'rnnlab COMMAND --help' for a command's options and examples")
    from rnnlab import __version__

    parser.add_argument("--version", action="version", version=f"rnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train(sub)
    _add_eval(sub)
    _add_generate(sub)
    for module_name in EXTRA_COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a room not built yet: no subcommand
            if exc.name not in (module_name, module_name.rpartition(".")[0]):
                raise
            continue
        module.add_parser(sub)
    return parser


#: Modules that add their own subcommands: each has ``add_parser(subparsers)``, which
#: registers a parser whose ``handler(args) -> int`` default does the work. They must
#: import quickly and without optional extras (import those inside the handler).
EXTRA_COMMANDS: tuple[str, ...] = ("rnnlab.viz.cli", "rnnlab.seq2seq.cli",
                                   "rnnlab.gradcheck_cli", "rnnlab.export_cli")


# --------------------------------------------------------------------- train
_MODEL_FLAGS = ("cell", "embedding_dim", "hidden_size", "num_layers", "dropout", "tie_weights",
                "nonlinearity", "init_range", "init", "dtype", "block", "dropout_kind")
_DATA_FLAGS = ("corpus", "level", "max_chars", "max_size", "min_freq", "data_dir")


def _train_flags() -> tuple[str, ...]:
    from rnnlab.train.config import TrainConfig

    return tuple(f.name for f in fields(TrainConfig))


def _configs_from_args(args: argparse.Namespace) -> tuple[dict, dict, dict]:
    model: dict[str, Any] = {}
    train: dict[str, Any] = {}
    data: dict[str, Any] = {}
    if args.config:
        try:
            loaded = json.loads(Path(args.config).read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:  # UnicodeDecodeError included
            raise UsageError(f"--config {args.config}: cannot be read as JSON ({exc})") from exc
        if not isinstance(loaded, dict) or set(loaded) - {"model", "train", "data"}:
            raise UsageError(f"--config {args.config}: expected an object with 'model', "
                             f"'train' and 'data' sections")
        for key, section in loaded.items():
            if not isinstance(section, dict):
                raise UsageError(f"--config {args.config}: section {key!r} expected an object "
                                 f"of options, got {type(section).__name__}")
        model, train, data = (dict(loaded.get(k, {})) for k in ("model", "train", "data"))
    for names, target in ((_MODEL_FLAGS, model), (_train_flags(), train), (_DATA_FLAGS, data)):
        for name in names:
            value = getattr(args, name, None)
            if value is not None:
                target[name] = value
    if train.get("clip_norm") == 0:
        train["clip_norm"] = None
    if args.no_progress:
        train["progress"] = False
    return model, train, data


#: The exit status of a run stopped by a signal (128 + the signal number).
STOP_STATUS = {"interrupted": 130, "terminated": 143, "hangup": 129}
#: What a resumed run may change: its budget, and where its data is now.
_RESUME_FLAGS = {"epochs", "max_steps", "max_time", "progress", "corpus", "data_dir",
                 "check_every"}


def cmd_train(args: argparse.Namespace) -> int:
    from rnnlab.families.lm import resume_run, start_run

    if args.task == "forecast":
        return _train_forecast(args)
    for name in _FORECAST_FLAGS:
        if getattr(args, name) is not None:
            raise UsageError(f"--{name.replace('_', '-')} is an option of --task forecast")
    model_kw, train_kw, data_kw = _configs_from_args(args)
    if args.resume:
        _check_resume(args, (set(model_kw) | set(data_kw) | set(train_kw)) - _RESUME_FLAGS)
        summary, text = resume_run(args.resume, train_kw, device=args.device,
                                   sample_length=args.sample_length,
                                   corpus=data_kw.get("corpus"),
                                   data_dir=data_kw.get("data_dir"))
    else:
        summary, text = start_run(model_kw, train_kw, data_kw, out=args.out,
                                  device=args.device, sample_length=args.sample_length,
                                  overwrite=args.overwrite)
    if _world().is_root:  # under mpiexec, rank 0 alone prints
        print(json.dumps(summary, indent=2))
        if text:
            print("\n--- sample ---\n" + text)
    return STOP_STATUS.get(summary.get("stopped"), 0)


def _world() -> Any:
    """The processes started together (``mpiexec -n K``; one without it)."""
    from rnnlab.train.distributed import detect

    return detect()


_FORECAST_FLAGS = ("csv", "column", "window", "horizon", "valid_fraction", "plot")
#: Options of a language model that a forecaster does not take.
_FORECAST_REFUSED = ("corpus", "level", "max_chars", "max_size", "min_freq", "data_dir",
                     "embedding_dim", "tie_weights", "nonlinearity", "init_range", "init",
                     "block", "dropout_kind", "bptt", "unigram_bias", "config")
_FORECAST_MODEL = ("cell", "hidden_size", "num_layers", "dropout", "dtype")


def _train_forecast(args: argparse.Namespace) -> int:
    """``rnnlab train --task forecast``: a forecaster of a CSV column."""
    from rnnlab.families.forecast import resume_forecast, start_forecast

    given = [n for n in _FORECAST_REFUSED if getattr(args, n, None) not in (None, False)]
    if given:
        raise UsageError(f"--task forecast does not take "
                         f"{', '.join('--' + n.replace('_', '-') for n in given)} (options "
                         f"of a language model)")
    if args.cell in ("mingru", "minlstm"):
        raise UsageError(f"--cell {args.cell}: --task forecast expected lstm, gru or rnn")
    if args.valid_fraction is not None and not 0 < args.valid_fraction < 1:
        raise UsageError(f"--valid-fraction expected a number in (0, 1), got "
                         f"{args.valid_fraction}")
    model_kw = {n: getattr(args, n) for n in _FORECAST_MODEL if getattr(args, n) is not None}
    train_kw = {n: getattr(args, n) for n in _train_flags()
                if getattr(args, n, None) is not None}
    if train_kw.get("clip_norm") == 0:
        train_kw["clip_norm"] = None
    if args.no_progress:
        train_kw["progress"] = False
    if args.resume:
        _check_resume(args, (set(model_kw) | set(train_kw)) - _RESUME_FLAGS
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
    if _world().is_root:
        print(json.dumps(summary, indent=2))
    return STOP_STATUS.get(summary.get("stopped"), 0)


def _check_resume(args: argparse.Namespace, changed: set[str]) -> None:
    """Refuse what ``--resume`` cannot honour: options of the saved configuration that
    would change (``changed``), ``--overwrite``, and an ``--out`` that is not the run's
    own folder."""
    from rnnlab.train.launch import run_checkpoint

    if changed:
        raise UsageError(f"--resume continues a run with its saved configuration; these "
                         f"options cannot change: {', '.join(sorted(changed))}")
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


def cmd_eval(args: argparse.Namespace) -> int:
    from rnnlab.families.lm import evaluate_checkpoint

    result = evaluate_checkpoint(args.checkpoint, text=args.text, split=args.split,
                                 batch_size=args.batch_size, bptt=args.bptt,
                                 data_dir=args.data_dir, device=args.device,
                                 corpus=args.corpus)
    print(json.dumps(result, indent=2))
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    """Print the text as it is made (one flush per piece of tokens); Ctrl-C stops it with
    what was printed kept and status 130; a reader that goes away (``| head``) ends it
    quietly with status 141, as SIGPIPE ends other tools."""
    import warnings

    from rnnlab.generate import (
        UnknownSymbolsError,
        UnknownSymbolsWarning,
        generate_stream,
        shown_symbols,
    )
    from rnnlab.train.state import load_model

    model, vocab, _ = load_model(args.checkpoint, device=args.device)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UnknownSymbolsWarning)
            pieces = generate_stream(model, vocab, args.prime, args.length,
                                     strategy=args.strategy, temperature=args.temperature,
                                     top_k=args.top_k, top_p=args.top_p,
                                     beam_width=args.beam_width, seed=args.seed,
                                     unknown=args.unknown)
    except UnknownSymbolsError as exc:  # speak options, not Python keywords
        hint = " (pass --unknown unk to map them to <unk>)" if exc.can_map else \
            " (the model's vocabulary has no <unk>)"
        raise ValueError(f"generate: --prime has {len(exc.missing)} symbol(s) not in the "
                         f"vocabulary: {shown_symbols(exc.missing)}{hint}") from None
    for warning in caught:
        message = warning.message
        if isinstance(message, UnknownSymbolsWarning):
            print(f"rnnlab: generate: --unknown unk: --prime symbols not in the vocabulary "
                  f"replaced by <unk>: {shown_symbols(message.missing)}", file=sys.stderr)
        else:  # not ours: let it go on as it would have
            warnings.warn_explicit(message, warning.category, warning.filename,
                                   warning.lineno)
    out = sys.stdout
    try:
        try:
            for piece in pieces:
                out.write(piece)
                out.flush()
        except KeyboardInterrupt:
            out.write("\n")
            out.flush()
            print("rnnlab: generate: interrupted; the text above is what was made",
                  file=sys.stderr)
            return 130
        out.write("\n")
        out.flush()
    except BrokenPipeError:
        _quiet_stdout()
        return 141
    return 0


def _quiet_stdout() -> None:
    """Point standard output at /dev/null, so that the interpreter's last flush of a
    closed pipe prints no error at exit."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (e.g. under a test)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rnnlab`` command.

    A Ctrl-C (or an abort by a second stop signal) anywhere, start-up included, ends in
    one line and the signal's status; afterwards further Ctrl-Cs are ignored, so that
    pressing it again while the process ends prints no traceback.
    """
    try:
        return _main(argv)
    except KeyboardInterrupt as exc:
        _ignore_ctrl_c()
        status = 128 + int(getattr(exc, "signum", signal.SIGINT))
        word = {v: k for k, v in STOP_STATUS.items()}.get(status, "interrupted")
        try:
            print(f"rnnlab: {word}", file=sys.stderr)
        except (OSError, ValueError):  # no terminal any more (SIGHUP)
            pass
        return status


def _ignore_ctrl_c() -> None:
    """The process is on its way out: a further Ctrl-C must not raise in the middle of
    the unwinding or the interpreter's shutdown (it would print a traceback)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _imports_without_ctrl_c() -> None:
    """Import the heavy modules with Ctrl-C held back until they are loaded.

    A KeyboardInterrupt inside a C extension's import (numpy's) comes out as an
    ImportError with two tracebacks; held back, a Ctrl-C pressed now is raised as a plain
    KeyboardInterrupt right after, which :func:`main` ends quietly.
    """
    pressed: list[int] = []
    hold = threading.current_thread() is threading.main_thread() and \
        signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
    if hold:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
    try:
        importlib.import_module("rnnlab.families")  # numpy, the models, the trainer
    finally:
        if hold:
            signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
    if pressed:
        raise KeyboardInterrupt


def _main(argv: list[str] | None) -> int:
    _imports_without_ctrl_c()
    from rnnlab.backend import DeviceError
    from rnnlab.data import DataError
    from rnnlab.train import DivergenceError
    from rnnlab.train.checkpoint import CheckpointError
    from rnnlab.train.runfolder import RunFolderError

    parser = build_parser()
    world = _world()
    if world.rank:  # under mpiexec: rank 0 alone prints the usage and its error
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            args = parser.parse_args(argv)
    else:
        args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2

    def fail(message: str, status: int) -> int:
        if world.size > 1:  # one line from this rank, then every rank ends (no hang)
            world.fail(message, status)
        print(f"rnnlab: error: {message}", file=sys.stderr)
        return status

    try:
        return int(args.handler(args))
    except UsageError as exc:
        if world.size > 1:
            return fail(str(exc), 2)
        parser.error(str(exc))  # exits with status 2
    except (DataError, CheckpointError, DeviceError, RunFolderError) as exc:
        return fail(str(exc), 1)
    except OSError as exc:  # a path that cannot be written or read
        where = f"{exc.filename}: " if exc.filename else ""
        return fail(f"{where}{exc.strerror or exc}", 1)
    except MemoryError as exc:
        if os.environ.get("RNNLAB_DEBUG"):
            raise
        return fail(f"out of memory ({exc or 'the model or data is too large'})", 1)
    except DivergenceError as exc:
        return fail(str(exc), 3)
    except (ValueError, TypeError) as exc:
        if os.environ.get("RNNLAB_DEBUG") and world.size == 1:
            raise
        return fail(str(exc), 2)
    except Exception as exc:
        if world.size == 1:
            raise
        return fail(f"{type(exc).__name__}: {exc}", 1)
    return 0

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
