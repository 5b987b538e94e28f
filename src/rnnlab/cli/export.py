"""``rnnlab export``: a language-model checkpoint as an ONNX graph or a PyTorch state_dict.

onnx and torch are imported when the export runs (by :mod:`rnnlab.export`), and a
missing one is reported as one line naming what to install.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rnnlab.export import OPSET, export_checkpoint, torch_recipe

EPILOG = """examples:
  rnnlab export runs/ptb-lstm/best.safetensors --format onnx --out lstm.onnx
  rnnlab export runs/stdlib-gru/best.safetensors --format torch --out gru.pt
  rnnlab export CKPT                     # ONNX beside the checkpoint: CKPT's name + .onnx
  rnnlab export CKPT --out lstm.onnx --overwrite   # replace an earlier export

An existing --out file is refused without --overwrite, and an rnnlab checkpoint is
never replaced, even with it.

onnx: ONNX's own RNN/LSTM/GRU operators (opset 17), float32; inputs ids (batch, steps)
int64, h0 (and c0 for an LSTM) (layers, batch, hidden); outputs logits (batch, steps,
vocab), h_n (and c_n). Run it with onnxruntime. Needs the onnx extra:
pip install "rnnlab[onnx]".
torch: torch.save of the state_dict (tensors only); the command prints the torch.nn
modules that load it (torch.load(path, weights_only=True)). Needs torch.
MinGRU/MinLSTM models, bidirectional layers and (for torch) a GRU with
reset_after=False cannot be exported and are refused.
"""


def add_parser(subparsers: Any) -> None:
    """Register ``rnnlab export``."""
    p = subparsers.add_parser(
        "export", help="write a language model as ONNX or as a PyTorch state_dict",
        description="Export a language-model checkpoint (embedding, RNN/LSTM/GRU layers, "
        "linear output) for another runtime.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="an rnnlab language-model checkpoint (.safetensors)")
    p.add_argument("--format", choices=("onnx", "torch"), default="onnx", dest="export_format",
                   help="onnx (default) or torch")
    p.add_argument("--out", help="output file (default: the checkpoint's name with .onnx or "
                   ".pt)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out file (never an rnnlab checkpoint)")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    try:
        path, model = export_checkpoint(args.checkpoint, args.out, args.export_format,
                                        overwrite=args.overwrite)
    except ImportError as exc:
        print(f"rnnlab: error: {exc}", file=sys.stderr)
        return 1
    rnn = model.rnn
    what = (f"{type(rnn).__name__}, {rnn.num_layers} layer{'s' if rnn.num_layers > 1 else ''}, "
            f"hidden {rnn.hidden_size}, vocabulary {model.embedding.params['weight'].shape[0]}")
    if args.export_format == "onnx":
        states = "h0, c0" if rnn.kind == "lstm" else "h0"
        finals = "h_n, c_n" if rnn.kind == "lstm" else "h_n"
        print(f"wrote {path} (ONNX opset {OPSET}, {what})")
        print(f"inputs: ids (batch, steps) int64, {states} ({rnn.num_layers}, batch, "
              f"{rnn.hidden_size}) float32; outputs: logits (batch, steps, vocab), {finals}")
        if model.dtype.name != "float32":
            print(f"note: the {model.dtype.name} weights are stored as float32")
    else:
        print(f"wrote {path} (torch state_dict, {what}); load it with:\n")
        print(torch_recipe(model, path), end="")
    return 0
