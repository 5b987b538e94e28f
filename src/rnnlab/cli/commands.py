"""The commands of ``rnnlab`` and the mapping of errors to exit statuses.

Imported by :mod:`rnnlab.cli` once, with Ctrl-C held back (it imports numpy, the models
and the trainer). Each command is one module with ``add_parser(subparsers)``, which
registers a parser whose ``handler(args) -> int`` default does the work.

Errors a user can fix are printed as one line (``rnnlab: error: ...``) with exit status
2 (bad options) or 1 (bad data or files, a run folder in use or holding another run),
never as a traceback (set ``RNNLAB_DEBUG=1`` to see one); a run that keeps diverging
exits with 3. Under ``mpiexec`` one line comes from the failing rank, then every rank
ends (no hang).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import warnings
from collections.abc import Iterator

from rnnlab import __version__
from rnnlab.backend import DeviceError
from rnnlab.cli import UsageError
from rnnlab.cli import eval as eval_cmd
from rnnlab.cli import export as export_cmd
from rnnlab.cli import generate as generate_cmd
from rnnlab.cli import gradcheck as gradcheck_cmd
from rnnlab.cli import plot as plot_cmd
from rnnlab.cli import seq2seq as seq2seq_cmd
from rnnlab.cli import train as train_cmd
from rnnlab.data import DataError
from rnnlab.train import DivergenceError
from rnnlab.train.checkpoint import CheckpointError, UncheckedDocumentWarning
from rnnlab.train.distributed import World, detect
from rnnlab.train.runfolder import RunFolderError

#: In the order ``rnnlab --help`` lists them (``rnnlab train --task forecast`` trains a
#: forecaster: :mod:`rnnlab.cli.forecast`).
COMMANDS = (train_cmd, eval_cmd, generate_cmd, plot_cmd, seq2seq_cmd, gradcheck_cmd,
            export_cmd)
VERSION = __version__


def parse(parser: argparse.ArgumentParser, argv: list[str] | None, world: World
          ) -> argparse.Namespace:
    """The parsed ``argv``; under ``mpiexec`` rank 0 alone prints the usage and its error."""
    if world.rank:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            return parser.parse_args(argv)
    return parser.parse_args(argv)


#: rnnlab's notices: warnings the command line prints as one line each (once per text).
NOTICES: tuple[type[Warning], ...] = (UncheckedDocumentWarning,)


@contextlib.contextmanager
def notices(world: World) -> Iterator[None]:
    """Print each of rnnlab's notices (:data:`NOTICES`) as one line ``rnnlab: notice:
    ...`` on rank 0 (once per text: a checkpoint read twice says it once); other warnings
    are shown as Python shows them."""
    said: set[str] = set()
    with warnings.catch_warnings():
        shown = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], *rest: object,
                 **kw: object) -> None:
            if not issubclass(category, NOTICES):
                shown(message, category, *rest, **kw)  # type: ignore[arg-type]
            elif world.is_root and str(message) not in said:
                said.add(str(message))
                print(f"rnnlab: notice: {message}", file=sys.stderr)

        warnings.showwarning = show
        for category in NOTICES:
            warnings.simplefilter("always", category)
        yield


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run the command ``args`` names; an error becomes one line and an exit status."""
    world = detect()

    def fail(message: str, status: int) -> int:
        if world.size > 1:  # one line from this rank, then every rank ends (no hang)
            world.fail(message, status)
            return status  # (not reached: the line is printed there, with the rank)
        print(f"rnnlab: error: {message}", file=sys.stderr)
        return status

    try:
        with notices(world):
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
