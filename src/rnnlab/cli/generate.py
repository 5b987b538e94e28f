"""``rnnlab generate``: text from a trained language model (sampling, greedy, beam),
printed as it is made."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Any

from rnnlab.argtypes import nonneg_int, positive_int
from rnnlab.generate import (
    UnknownSymbolsError,
    UnknownSymbolsWarning,
    generate_stream,
    shown_symbols,
)
from rnnlab.train.state import load_model

EPILOG_GENERATE = """examples:
  rnnlab generate runs/stdlib-lstm/best.safetensors --prime "def " --length 400
  rnnlab generate CKPT --prime "the meaning of" --strategy beam --beam-width 5 --length 20
  rnnlab generate CKPT --temperature 0.7 --top-p 0.9 --seed 1
"""


def add_parser(sub: Any) -> None:
    """Register ``rnnlab generate``."""
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
    p.add_argument("--seed", type=nonneg_int)
    p.add_argument("--unknown", choices=("error", "unk"), default="error",
                   help="prime symbols outside the vocabulary: error, or map to <unk>")
    p.add_argument("--device", choices=("cpu", "gpu"))
    p.set_defaults(handler=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    """Print the text as it is made (one flush per piece of tokens); Ctrl-C stops it with
    what was printed kept and status 130; a reader that goes away (``| head``) ends it
    quietly with status 141, as SIGPIPE ends other tools."""
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
