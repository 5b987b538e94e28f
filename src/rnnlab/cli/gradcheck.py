"""``rnnlab gradcheck``: check a built-in layer's or your own layer's gradients.

The layers and the check come from :mod:`rnnlab.nn` and :mod:`rnnlab.gradcheck`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Any

import numpy as np

from rnnlab import nn
from rnnlab.argtypes import nonneg_float, nonneg_int, positive_float, positive_int
from rnnlab.cli import UsageError
from rnnlab.gradcheck import AUTO_SECONDS, DEFAULT_SAMPLES, EPS, TOL, check_module

#: ``--cell`` name: (layer class name in rnnlab.nn, keyword arguments).
CELLS: dict[str, tuple[str, dict[str, Any]]] = {
    "rnn": ("RNN", {"nonlinearity": "tanh"}),
    "rnn-relu": ("RNN", {"nonlinearity": "relu"}),
    "lstm": ("LSTM", {}),
    "gru": ("GRU", {"reset_after": True}),
    "gru-reset-before": ("GRU", {"reset_after": False}),
    "mingru": ("MinGRU", {}),
    "minlstm": ("MinLSTM", {}),
}

EPILOG = """examples:
  rnnlab gradcheck --cell lstm --layers 2 --bidirectional
  rnnlab gradcheck --cell gru-reset-before --lengths --dropout 0.3 --layers 2
  rnnlab gradcheck --cell minlstm --mode sequential --hidden-size 5
  rnnlab gradcheck --cell lstm --hidden-size 512 --input-size 512 --samples 64
  rnnlab gradcheck --module mylayers:Peephole --args '{"input_size": 3, "hidden_size": 4}'
  rnnlab gradcheck --module mylayers:Peephole --input-shape 2,5,3 --state-shape 2,4

Every parameter, the input and the initial state are checked by central differences
in float64 against one analytic backward; the table shows each array's relative error
||a - n|| / (||a|| + ||n||) and the exit status is 1 when one is above --tol.
--module imports CLASS from MODULE (the current folder is searched first) and builds it
with no arguments, or with --args (a JSON object of keyword arguments or a list of
positional ones). The protocol it must follow is in rnnlab.gradcheck.check_module's
docstring: forward(*inputs[, state]), backward(dy) returning the input gradient, and
params/grads dicts that backward adds into. A float32 rnnlab Module is checked as a
float64 copy. Its input is (--batch, --steps, input_size) when the layer has an
input_size attribute, else give --input-shape; give --state-shape to check a state.
A large layer is checked on a random sample of each array's entries (--samples; the
default, auto, finishes in about a minute); a progress bar shows the time left.
"""


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(part) for part in text.split(","))
    except ValueError:
        dims = ()
    if not dims or any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"expected sizes >= 1 separated by commas (e.g. "
                                         f"2,5,3), got {text!r}")
    return dims


def _samples(text: str) -> int | str | None:
    """``--samples``: ``auto``, ``all`` (None: every entry) or a count >= 1."""
    if text in ("auto", "all"):
        return None if text == "all" else text
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"expected auto, all or a number of entries >= 1, "
                                         f"got {text!r}")
    return count


def add_parser(subparsers: Any) -> None:
    """Register ``rnnlab gradcheck``."""
    p = subparsers.add_parser(
        "gradcheck", help="check a layer's gradients by finite differences",
        description="Check every gradient of a recurrent layer (a built-in one, or a class "
        "you wrote) against central finite differences in float64, and print the table.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--cell", choices=tuple(CELLS),
                      help="the built-in layer to check (default lstm)")
    what.add_argument("--module", metavar="MODULE:CLASS",
                      help="your layer class, e.g. mypkg.layers:MyLSTM")
    b = p.add_argument_group("built-in layer (--cell)")
    b.add_argument("--layers", type=positive_int, default=1, help="stacked layers (default 1)")
    b.add_argument("--bidirectional", action="store_true")
    b.add_argument("--input-size", type=positive_int, default=3, help="default 3")
    b.add_argument("--hidden-size", type=positive_int, default=4, help="default 4")
    b.add_argument("--no-bias", action="store_true", help="layers without biases")
    b.add_argument("--dropout", type=nonneg_float, default=0.0,
                   help="dropout between layers (the masks are held fixed); default 0")
    b.add_argument("--lengths", action="store_true",
                   help="padded batch: random sequence lengths (some shorter than --steps)")
    b.add_argument("--mode", choices=("parallel", "sequential"),
                   help="mingru/minlstm: the log-space scan (default) or the loop")
    u = p.add_argument_group("your layer (--module)")
    u.add_argument("--args", metavar="JSON",
                   help="constructor arguments: a JSON object (keywords) or list (positional)")
    u.add_argument("--input-shape", type=_shape, action="append", metavar="N,T,D",
                   help="shape of a float input (repeat for several inputs)")
    u.add_argument("--state-shape", type=_shape, action="append", metavar="SHAPE",
                   help="shape of an initial-state array (repeat for (h0, c0))")
    s = p.add_argument_group("sizes and tolerance")
    s.add_argument("--batch", type=positive_int, default=2, help="batch size (default 2)")
    s.add_argument("--steps", type=positive_int, default=3, help="time steps (default 3)")
    s.add_argument("--tol", type=positive_float, default=None,
                   help="largest relative error that passes (default 1e-6)")
    s.add_argument("--eps", type=positive_float, default=None,
                   help="finite-difference step (default 1e-6)")
    s.add_argument("--seed", type=nonneg_int, default=0, help="weights and data (default 0)")
    s.add_argument("--samples", type=_samples, default="auto", metavar="N",
                   help="entries checked per array, drawn at random from --seed in arrays "
                   "larger than N; 'all' checks every entry; default 'auto' (up to "
                   f"{DEFAULT_SAMPLES}, fewer for a slow layer, about "
                   f"{AUTO_SECONDS:.0f} s in all)")
    p.set_defaults(handler=handle, gradcheck_parser=p)


def handle(args: argparse.Namespace) -> int:
    rng = np.random.default_rng(args.seed)
    if args.module is not None:
        for flag in ("lengths", "bidirectional", "no_bias"):
            if getattr(args, flag):
                raise UsageError(f"--{flag.replace('_', '-')} is for a built-in --cell; give "
                                 f"your layer's options in --args")
        module = _user_module(args.module, args.args, UsageError)
        inputs, state, kwargs = _user_inputs(module, args, rng, UsageError)
    else:
        if args.args is not None or args.input_shape or args.state_shape:
            raise UsageError("--args, --input-shape and --state-shape are for --module")
        module, inputs, state, kwargs = _builtin(args, rng, UsageError)
    report = check_module(module, inputs, state, kwargs=kwargs,
                          tol=TOL if args.tol is None else args.tol,
                          eps=EPS if args.eps is None else args.eps, seed=args.seed,
                          samples=args.samples)  # a tqdm bar on a terminal
    print(report)
    return 0 if report.passed else 1


def _builtin(args: argparse.Namespace, rng: Any, usage: type[Exception]
             ) -> tuple[Any, Any, Any, dict[str, Any]]:


    cell = args.cell or "lstm"
    class_name, extra = CELLS[cell]
    extra = dict(extra)
    if args.mode is not None:
        if not class_name.startswith("Min"):
            raise usage(f"--mode is for mingru and minlstm, got --cell {cell}")
        extra["mode"] = args.mode
    if args.dropout >= 1:
        raise usage(f"--dropout expected a probability in [0, 1), got {args.dropout}")
    layer = getattr(nn, class_name)(
        args.input_size, args.hidden_size, num_layers=args.layers,
        bidirectional=args.bidirectional, bias=not args.no_bias, dropout=args.dropout,
        dtype=np.float64, rng=np.random.default_rng(args.seed), **extra)
    N, T, D, H = args.batch, args.steps, args.input_size, args.hidden_size
    S = args.layers * (2 if args.bidirectional else 1)
    xs = rng.standard_normal((N, T, D))
    h0 = rng.standard_normal((S, N, H)) * 0.5
    state: Any = (h0, rng.standard_normal((S, N, H)) * 0.5) if cell == "lstm" else h0
    kwargs = {}
    if args.lengths:
        lengths = rng.integers(1, T + 1, size=N)
        lengths[0] = max(1, T - 1)  # a shorter row when T > 1
        kwargs["lengths"] = lengths
    return layer, xs, state, kwargs


def _user_module(spec: str, args_json: str | None, usage: type[Exception]) -> Any:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise usage(f"--module expected MODULE:CLASS (e.g. mypkg.layers:MyLSTM), got {spec!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        mod = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise usage(f"--module {spec}: cannot import {module_name!r} ({exc}); run from the "
                    f"folder that holds it or put it on PYTHONPATH") from exc
    obj: Any = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise usage(f"--module {spec}: {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise usage(f"--module {spec}: {attr!r} expected a class, got {type(obj).__name__}")
    positional: list[Any] = []
    keywords: dict[str, Any] = {}
    if args_json is not None:
        try:
            parsed = json.loads(args_json)
        except ValueError as exc:
            raise usage(f"--args expected JSON, got {args_json!r} ({exc})") from exc
        if isinstance(parsed, dict):
            keywords = parsed
        elif isinstance(parsed, list):
            positional = parsed
        else:
            raise usage(f"--args expected a JSON object or list, got "
                        f"{type(parsed).__name__}")
    return obj(*positional, **keywords)


def _user_inputs(module: Any, args: argparse.Namespace, rng: Any, usage: type[Exception]
                 ) -> tuple[Any, Any, dict[str, Any]]:
    shapes = args.input_shape
    if not shapes:
        D = getattr(module, "input_size", None)
        if not isinstance(D, int) or isinstance(D, bool) or D < 1:
            raise usage(f"--input-shape is needed: {type(module).__name__} has no input_size "
                        f"attribute to size (--batch, --steps, input_size) from")
        shapes = [(args.batch, args.steps, D)]
    inputs = tuple(rng.standard_normal(shape) for shape in shapes)
    state: Any = None
    if args.state_shape:
        parts = tuple(rng.standard_normal(shape) * 0.5 for shape in args.state_shape)
        state = parts[0] if len(parts) == 1 else parts
    return inputs, state, {}
