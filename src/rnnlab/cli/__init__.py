"""The ``rnnlab`` command line: ``train``, ``eval``, ``generate``, ``plot``, ``seq2seq``,
``gradcheck``, ``export``, one module each in this package (:mod:`rnnlab.cli.commands`
lists them and maps errors to exit statuses).

Argument parsing only; the work is done by :mod:`rnnlab.families`, :mod:`rnnlab.generate`
and friends. Errors a user can fix are printed as one line (``rnnlab: error: ...``) with
exit status 2 (bad options) or 1 (bad data or files, a run folder in use or holding
another run), never as a traceback (set ``RNNLAB_DEBUG=1`` to see one). A run that keeps
diverging exits with 3.

Stopping ``rnnlab train``: Ctrl-C (SIGINT), SIGTERM (``kill``, ``timeout``, ``docker
stop``, Slurm) and SIGHUP finish the current step, save ``last.safetensors`` and exit
with 130, 143 and 129 (128 + the signal number); the same signal again aborts at once
with that status. Ctrl-C before training starts prints one line and exits with 130;
further Ctrl-Cs while the process ends are ignored.

This module imports only the standard library: ``from rnnlab.cli import main`` is quick,
and the commands (numpy, the models, the trainer) are imported by :func:`main` with
Ctrl-C held back (:func:`load_commands`).
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from types import ModuleType


class UsageError(Exception):
    """A command-line option that cannot be honoured (exit status 2)."""


#: The exit status of a run stopped by a signal (128 + the signal number).
STOP_STATUS = {"interrupted": 130, "terminated": 143, "hangup": 129}


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``rnnlab`` and every command's."""
    loaded = load_commands()
    parser = argparse.ArgumentParser(
        prog="rnnlab", description="Recurrent neural networks from scratch in NumPy.",
        epilog="run 'rnnlab COMMAND --help' for a command's options and examples")
    parser.add_argument("--version", action="version", version=f"rnnlab {loaded.VERSION}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in loaded.COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rnnlab`` command.

    A Ctrl-C (or an abort by a second stop signal) anywhere, start-up included, ends in
    one line and the signal's status; afterwards further Ctrl-Cs are ignored, so that
    pressing it again while the process ends prints no traceback.
    """
    try:
        loaded = load_commands()
        parser = build_parser()
        args = loaded.parse(parser, argv, loaded.detect())
        if args.command is None:
            parser.print_help()
            return 2
        return int(loaded.run(args, parser))
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


def load_commands() -> ModuleType:
    """:mod:`rnnlab.cli.commands`, imported with Ctrl-C held back until it is loaded.

    A KeyboardInterrupt inside a C extension's import (numpy's) comes out as an
    ImportError with two tracebacks; held back, a Ctrl-C pressed now is raised as a plain
    KeyboardInterrupt right after, which :func:`main` ends quietly. (The one import made
    inside a function here: the package itself must import quickly.)
    """
    loaded = sys.modules.get("rnnlab.cli.commands")
    if loaded is not None:
        return loaded
    pressed: list[int] = []
    hold = threading.current_thread() is threading.main_thread() and \
        signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
    if hold:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
    try:
        loaded = importlib.import_module("rnnlab.cli.commands")
    finally:
        if hold:
            signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
    if pressed:
        raise KeyboardInterrupt
    return loaded


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
