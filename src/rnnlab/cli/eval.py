"""``rnnlab eval``: the perplexity of a trained language model on its corpus's splits or
on a text file."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rnnlab.argtypes import positive_int
from rnnlab.families.lm import evaluate_checkpoint

EPILOG_EVAL = """examples:
  rnnlab eval runs/ptb-lstm/best.safetensors                 # validation and test perplexity
  rnnlab eval runs/ptb-lstm/best.safetensors --text other.txt
  rnnlab eval runs/notes/best.safetensors --corpus notes/   # a folder corpus: name it again
"""


def add_parser(sub: Any) -> None:
    """Register ``rnnlab eval``."""
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


def cmd_eval(args: argparse.Namespace) -> int:
    result = evaluate_checkpoint(args.checkpoint, text=args.text, split=args.split,
                                 batch_size=args.batch_size, bptt=args.bptt,
                                 data_dir=args.data_dir, device=args.device,
                                 corpus=args.corpus)
    print(json.dumps(result, indent=2))
    return 0
