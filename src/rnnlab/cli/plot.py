"""``rnnlab plot ...``: figures and the activation page from the command line.

matplotlib and scikit-learn are imported when a figure is made (by :mod:`rnnlab.viz`),
and their absence is reported as one line naming the extra to install.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any

from rnnlab.argtypes import nonneg_int, positive_float, positive_int
from rnnlab.data import DataError, Vocab, load_stdlib
from rnnlab.data.textio import read_text
from rnnlab.families.lm import corpus_of_checkpoint
from rnnlab.train.state import load_model
from rnnlab.viz._mpl import MissingExtraError, compact_png, figure_path, require
from rnnlab.viz.activations import activation_page
from rnnlab.viz.browser import BrowserError, screenshot_page
from rnnlab.viz.curves import plot_training_curves
from rnnlab.viz.gradients import gradient_flow_of_models, gradient_flow_study, plot_gradient_flow
from rnnlab.viz.predictions import plot_predictions
from rnnlab.viz.probe import collect_states, encode_text, model_label
from rnnlab.viz.projection import plot_hidden_states

EPILOG = """examples:
  rnnlab plot curves runs/stdlib-lstm runs/stdlib-gru --out curves.png
  rnnlab plot hidden runs/stdlib-lstm/best.safetensors --text notes.py --out hidden.png
  rnnlab plot predictions runs/stdlib-lstm/best.safetensors --string "def f(x):" --out p.png
  rnnlab plot gradients --steps 200 --out gradients.png
  rnnlab plot activations runs/stdlib-lstm/best.safetensors --out activations.html

Figures need the viz extra: pip install "rnnlab[viz]" (the activation page does not).
Without --text/--string a command reads the checkpoint's own validation text.
"""




#: The examples at the end of each ``rnnlab plot WHAT --help``.
EXAMPLES = {
    "curves": """examples:
  rnnlab plot curves runs/stdlib-lstm --out curves.png
  rnnlab plot curves runs/stdlib-lstm runs/stdlib-gru --names LSTM GRU --smooth 5
  rnnlab plot curves runs/a/metrics.jsonl runs/b/metrics.jsonl --title "two seeds" --compact
  rnnlab plot curves runs/lstm runs/mingru --names LSTM minGRU --x time
""",
    "hidden": """examples:
  rnnlab plot hidden runs/stdlib-lstm/best.safetensors --out hidden.png
  rnnlab plot hidden CKPT --text notes.py --method pca --color-by column
  rnnlab plot hidden CKPT --string "for i in range(10):" --state c --layer 0
""",
    "predictions": """examples:
  rnnlab plot predictions runs/stdlib-lstm/best.safetensors --string "def f(x):" --out p.png
  rnnlab plot predictions CKPT --text notes.py --start 200 --length 60 --top-k 8
  rnnlab plot predictions CKPT --mode rank          # rows: the model's 1st, 2nd ... guesses
""",
    "gradients": """examples:
  rnnlab plot gradients --steps 200 --out gradients.png   # trains six small models first
  rnnlab plot gradients --steps 0 --variants lstm gru     # at initialisation only, quick
  rnnlab plot gradients runs/stdlib-lstm/best.safetensors runs/stdlib-gru/best.safetensors
""",
    "activations": """examples:
  rnnlab plot activations runs/stdlib-lstm/best.safetensors --out activations.html
  rnnlab plot activations CKPT --text notes.py --state c --layer 0
  rnnlab plot activations CKPT --screenshot unit.png --unit 17 --underline "inside brackets"
""",
}


def _sub(sub: Any, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """A ``plot`` subcommand whose help ends with its examples."""
    return sub.add_parser(name, epilog=EXAMPLES[name],
                          formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)


def _add_text_source(p: argparse.ArgumentParser, max_tokens: int) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--text", metavar="FILE", help="a UTF-8 text file to run the model over")
    src.add_argument("--string", metavar="TEXT", help="the text itself")
    p.add_argument("--max-tokens", type=positive_int, default=max_tokens,
                   help=f"use at most this many tokens of the text (default {max_tokens})")


def _add_image_output(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--out", default=default, help=f"output image (default {default})")
    p.add_argument("--dpi", type=positive_int, default=100, help="image resolution")
    p.add_argument("--compact", action="store_true",
                   help="save the PNG with a 256-colour palette (a few times smaller)")


def add_parser(subparsers: Any) -> None:
    """Register ``rnnlab plot`` and its subcommands."""
    plot = subparsers.add_parser(
        "plot", help="figures and an activation page: curves, hidden states, predictions, "
        "gradient flow", description="See inside the network: training curves, hidden-state "
        "maps, next-token heat maps, gradient flow through time and single-unit activations.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    plot.set_defaults(handler=handle, plot_parser=plot)
    sub = plot.add_subparsers(dest="plot_command", metavar="WHAT")

    p = _sub(sub, "curves", help="loss, perplexity and learning rate of one or more runs")
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="run folders (holding metrics.jsonl) or metrics files")
    p.add_argument("--names", nargs="+", help="legend names, one per run")
    p.add_argument("--smooth", type=positive_int, default=1,
                   help="average the training curves over this many logged points")
    p.add_argument("--x", choices=("step", "time"), default="step",
                   help="horizontal axis: training step, or minutes of training wall time "
                        "(runs compared in the same time budget)")
    p.add_argument("--title")
    _add_image_output(p, "curves.png")
    p.set_defaults(plot_run=_run_curves)

    p = _sub(sub, "hidden", help="hidden states over a text, projected by PCA and t-SNE")
    p.add_argument("checkpoint")
    _add_text_source(p, 800)
    p.add_argument("--method", nargs="+", choices=("pca", "tsne"), default=["pca", "tsne"],
                   help="projections to draw side by side (default both)")
    p.add_argument("--color-by", choices=("class", "position", "column"), default="class",
                   help="token class, position in the text, or column in the line")
    p.add_argument("--layer", type=int, default=-1, help="layer (default the top one)")
    p.add_argument("--state", choices=("h", "c"), default="h",
                   help="hidden state h, or an LSTM's cell state c")
    p.add_argument("--labels", type=nonneg_int, default=30,
                   help="label this many random points with the text just read")
    p.add_argument("--skip", type=nonneg_int, default=0,
                   help="leave out the first states (warming up from zero)")
    p.add_argument("--perplexity", type=positive_float, default=30.0, help="t-SNE perplexity")
    p.add_argument("--seed", type=nonneg_int, default=0)
    _add_image_output(p, "hidden.png")
    p.set_defaults(plot_run=_run_hidden)

    p = _sub(sub, "predictions", help="heat map of the next-token distribution")
    p.add_argument("checkpoint")
    _add_text_source(p, 5000)
    p.add_argument("--start", type=nonneg_int, default=0, help="first token shown")
    p.add_argument("--length", type=positive_int, default=80, help="tokens shown")
    p.add_argument("--top-k", type=positive_int, default=12, help="rows")
    p.add_argument("--mode", choices=("tokens", "rank"), default="tokens",
                   help="rows are candidate tokens, or the model's 1st, 2nd ... guesses")
    _add_image_output(p, "predictions.png")
    p.set_defaults(plot_run=_run_predictions)

    p = _sub(
        sub, "gradients", help="gradient flow through time: tanh/relu RNN, LSTM, GRU, "
        "minGRU, minLSTM",
        description=textwrap.fill(
            "||dL/dh(t-k)|| against k. Without checkpoints: trains one small model of each "
            "kind on the same text and measures them at initialisation, with the recurrent "
            "weights scaled up, and after training. With checkpoints: measures those models "
            "on their text.", 88))
    p.add_argument("checkpoints", nargs="*", metavar="CHECKPOINT")
    p.add_argument("--text", metavar="FILE",
                   help="train and measure on this UTF-8 text at character level (default: "
                   "the offline stdlib corpus, or the checkpoints' validation text)")
    p.add_argument("--max-chars", type=positive_int, default=300_000,
                   help="characters of the text used (default 300000)")
    p.add_argument("--variants", nargs="+",
                   choices=("rnn-tanh", "rnn-relu", "lstm", "gru", "mingru", "minlstm"),
                   help="models to compare (default all six)")
    p.add_argument("--steps", type=nonneg_int, default=200,
                   help="training steps per model (0: initialisation only; default 200)")
    p.add_argument("--hidden-size", type=positive_int, default=64)
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--bptt", type=positive_int, default=64)
    p.add_argument("--lr", type=positive_float, default=0.003)
    p.add_argument("--max-lag", type=positive_int, default=60, help="largest k")
    p.add_argument("--windows", type=positive_int, default=64,
                   help="windows averaged over (median and quartiles)")
    p.add_argument("--scale", type=positive_float, default=3.0,
                   help="also measure the initial weights with W_hh times this (default 3)")
    p.add_argument("--no-scale", action="store_true", help="leave out that panel")
    p.add_argument("--raw", action="store_true",
                   help="absolute norms instead of norms relative to k = 0")
    p.add_argument("--seed", type=nonneg_int, default=0)
    _add_image_output(p, "gradients.png")
    p.set_defaults(plot_run=_run_gradients)

    p = _sub(sub, "activations", help="an HTML page colouring a text by single units")
    p.add_argument("checkpoint")
    _add_text_source(p, 3000)
    p.add_argument("--layer", type=int, default=-1)
    p.add_argument("--state", choices=("h", "c"),
                   help="hidden state h or cell state c (default c for an LSTM, else h)")
    p.add_argument("--out", default="activations.html")
    p.add_argument("--screenshot", metavar="PNG",
                   help="also save a screenshot taken with a local headless Chromium")
    p.add_argument("--unit", type=nonneg_int, help="unit shown in the screenshot")
    p.add_argument("--underline", metavar="PROPERTY",
                   help="property underlined in the screenshot, e.g. 'inside brackets'")
    p.add_argument("--compact", action="store_true",
                   help="save the screenshot with a 256-colour palette (a few times smaller)")
    p.set_defaults(plot_run=_run_activations)


def handle(args: argparse.Namespace) -> int:
    """Run a ``plot`` subcommand; a missing extra is one line on stderr and status 1."""

    run = getattr(args, "plot_run", None)
    if run is None:
        args.plot_parser.print_help()
        return 2
    try:
        return int(run(args))
    except MissingExtraError as exc:
        print(f"rnnlab plot: error: {exc}", file=sys.stderr)
        return 1


def _echo(message: str) -> None:
    print(message, file=sys.stderr)


def _model_and_ids(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """``(model, vocab, ids)`` from a checkpoint and --text/--string (else its own
    validation text)."""

    model, vocab, meta = load_model(args.checkpoint)
    if args.string is not None:
        ids = encode_text(vocab, args.string)
    elif args.text is not None:

        ids = encode_text(vocab, read_text(args.text))
    else:
        ids = _validation_ids(meta, args.checkpoint, vocab)
    if len(ids) > args.max_tokens:
        ids = ids[: args.max_tokens]
    if len(ids) < 2:
        raise DataError("the text has fewer than 2 tokens")
    return model, vocab, ids


def _validation_ids(meta: dict[str, Any], where: str, vocab: Any) -> Any:

    # a checkpoint only names its corpus: used when it is a file that still holds the same
    # token ids (never a folder walked on the checkpoint's word)
    corpus, _ = corpus_of_checkpoint(meta, f"checkpoint {str(where)!r}",
                                     ask="--text FILE or --string TEXT")
    if corpus.vocab != vocab:
        raise DataError(f"{where}: the corpus it names now has another vocabulary; pass "
                        f"--text FILE or --string TEXT")
    _echo(f"text: the validation part of {corpus.name} ({len(corpus.valid):,} tokens)")
    return corpus.valid


def _written(path: Any, args: argparse.Namespace | None = None) -> int:
    if args is not None and getattr(args, "compact", False) and \
            Path(path).suffix.lower() == ".png":

        compact_png(path)
    print(f"wrote {path}")
    return 0


def _run_curves(args: argparse.Namespace) -> int:

    if args.names is not None and len(args.names) != len(args.runs):
        raise ValueError(f"--names: expected {len(args.runs)} names (one per run), got "
                         f"{len(args.names)}")
    plot_training_curves(args.runs, args.out, names=args.names, title=args.title,
                         smooth=args.smooth, dpi=args.dpi, x=args.x)
    return _written(figure_path(args.out), args)  # .png added to a bare name


def _run_hidden(args: argparse.Namespace) -> int:

    require("matplotlib", "rnnlab plot hidden")
    if "tsne" in args.method:
        require("sklearn", "rnnlab plot hidden --method tsne")
    model, vocab, ids = _model_and_ids(args)
    states = collect_states(model, ids, vocab=vocab)
    plot_hidden_states(states, args.out, methods=args.method, color_by=args.color_by,
                       layer=args.layer, kind=args.state, labels=args.labels, skip=args.skip,
                       perplexity=args.perplexity, seed=args.seed, dpi=args.dpi)
    return _written(figure_path(args.out), args)  # .png added to a bare name


def _run_predictions(args: argparse.Namespace) -> int:

    require("matplotlib", "rnnlab plot predictions")
    model, vocab, ids = _model_and_ids(args)
    if args.start >= len(ids):
        raise ValueError(f"--start {args.start}: the text has only {len(ids)} tokens")
    ids = ids[: args.start + args.length + 1]
    states = collect_states(model, ids, vocab=vocab)
    plot_predictions(states, args.out, top_k=args.top_k, start=args.start,
                     length=args.length, mode=args.mode, dpi=args.dpi)
    return _written(figure_path(args.out), args)  # .png added to a bare name


def _run_gradients(args: argparse.Namespace) -> int:

    require("matplotlib", "rnnlab plot gradients")
    if args.checkpoints:

        models, vocab, ids = {}, None, None
        for path in args.checkpoints:
            model, vocab_k, meta = load_model(path)
            if vocab is None:
                vocab = vocab_k
                if args.text is not None:

                    ids = encode_text(vocab, read_text(args.text)[: args.max_chars])
                else:
                    ids = _validation_ids(meta, path, vocab)
            elif vocab_k != vocab:
                raise ValueError(f"{path}: its vocabulary differs from {args.checkpoints[0]}'s;"
                                 f" gradient flow is compared on one text")
            name = model_label(model)
            models[name if name not in models else f"{name} ({Path(path).parent.name})"] = model
        flow = gradient_flow_of_models(models, ids, max_lag=args.max_lag,
                                       windows=args.windows, seed=args.seed)
    else:
        ids, vocab_size = _study_text(args)
        flow = gradient_flow_study(
            ids, vocab_size, variants=args.variants, steps=args.steps,
            hidden_size=args.hidden_size, max_lag=args.max_lag, windows=args.windows,
            batch_size=args.batch_size, bptt=args.bptt, lr=args.lr,
            scale=None if args.no_scale else args.scale, seed=args.seed, echo=_echo)
    plot_gradient_flow(flow, args.out, normalize=not args.raw, dpi=args.dpi)
    return _written(figure_path(args.out), args)  # .png added to a bare name


def _study_text(args: argparse.Namespace) -> tuple[Any, int]:

    if args.text is None:
        corpus = load_stdlib(max_chars=args.max_chars)
        _echo(corpus.description)
        return corpus.train, len(corpus.vocab)

    text = read_text(args.text)[: args.max_chars]
    vocab = Vocab.build(text, level="char")
    return vocab.encode_text(text), len(vocab)


def _run_activations(args: argparse.Namespace) -> int:

    model, vocab, ids = _model_and_ids(args)
    states = collect_states(model, ids, vocab=vocab)
    path = activation_page(states, args.out, kind=args.state, layer=args.layer,
                           max_tokens=args.max_tokens, unit=args.unit,
                           underline=args.underline)
    _written(path)
    if args.screenshot:

        try:
            shot, errors = screenshot_page(path, args.screenshot, unit=args.unit,
                                           underline=args.underline)
        except BrowserError as exc:
            print(f"rnnlab plot: error: screenshot: {exc}", file=sys.stderr)
            return 1
        for line in errors:
            print(f"rnnlab plot: page error: {line}", file=sys.stderr)
        _written(shot, args)
        return 1 if errors else 0
    return 0
