"""The prologue every model family's launcher shares (:mod:`rnnlab.families`,
:mod:`rnnlab.seq2seq.training`): start a run in a guarded folder, or resume one from its
checkpoint, on one process or many.

Run folders are guarded (:mod:`rnnlab.train.runfolder`): a new run refuses a folder that
holds another run unless ``overwrite=True`` (without ``out`` it takes a fresh numbered
folder and says so), and every run holds the folder's lock while it trains. Under
``mpiexec`` rank 0 alone claims the folder and holds the lock; the others are told where
it is.

A resumed run (:func:`resuming`) takes its folder's lock before anything is read, reads
the checkpoint once, and continues with the configuration the checkpoint records
(:meth:`Resume.train_config`); options that cannot change are refused in one message
(:func:`check_unchanged`).

A path a checkpoint names (a forecaster's CSV, seq2seq's pairs file) is data, not trust:
a checkpoint may come from anyone. :func:`read_named_file` reads it only when it is a
regular file and uses it only when it holds the data the checkpoint's digest names;
otherwise the command asks for the path, and no message quotes what the file holds.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from rnnlab.backend import get_xp
from rnnlab.data import DataError
from rnnlab.train.checkpoint import CheckpointError, meta_get, read_checkpoint
from rnnlab.train.config import TrainConfig
from rnnlab.train.distributed import NoLock, World, detect
from rnnlab.train.loop import Trainer
from rnnlab.train.metrics import ProgressBar
from rnnlab.train.runfolder import (
    RunFolderError,
    check_new_run_folder,
    claim_default_run_folder,
    claim_new_run_folder,
)

Echo = Callable[..., None]
T = TypeVar("T")


def rank0_echo(world: World, echo: Echo | None) -> Echo:
    """``echo`` on rank 0 (or :meth:`ProgressBar.write`), nothing on the other ranks."""
    if not world.is_root:
        return lambda *a, **k: None
    return echo or ProgressBar.write


def starting(out: str | Path | None, *, overwrite: bool, device: str | None,
             echo: Echo | None) -> tuple[World, Echo]:
    """``(world, echo)`` of a new run, after the checks made before any data is loaded:
    the device can be used, and ``out`` may take a new run."""
    get_xp(device)  # a GPU without CuPy fails now, not after the data has loaded
    world = detect()
    if out is not None and world.is_root:
        check_new_run_folder(out, overwrite=overwrite)
    return world, rank0_echo(world, echo)


def claim_run_folder(world: World, out: str | Path | None, base: Path | None = None, *,
                     overwrite: bool = False, echo: Echo | None = None
                     ) -> tuple[Path, Any, list[str]]:
    """``(folder, lock, removed)``: the run folder, claimed by rank 0 alone (``out``, or
    ``base`` or the first free ``base-<k>`` without it) and broadcast to the other ranks,
    which hold no lock. When rank 0 fails, the others raise instead of waiting."""
    if not world.is_root:
        folder = world.broadcast(None)
        if folder is None:
            raise RunFolderError("rank 0 could not claim the run folder (its error says why)")
        return Path(folder), NoLock(), []
    try:
        if out is not None:
            out = Path(out)
            lock, removed = claim_new_run_folder(out, overwrite=overwrite)
        else:
            assert base is not None
            out, lock, removed = claim_default_run_folder(base, overwrite=overwrite)
            if out != base and echo is not None:
                echo(f"{base} holds another run; this run goes to {out} (--overwrite "
                     f"replaces {base}, --out chooses a folder)")
    except BaseException:
        world.broadcast(None)
        raise
    world.broadcast(str(out))
    return Path(out), lock, removed


def fit_new_run(world: World, out: str | Path | None, base: Path, overwrite: bool, echo: Echo,
                model: str, trainer_for: Callable[[Path], Trainer]) -> dict[str, Any]:
    """Claim the run folder (:func:`claim_run_folder`), say what trains there (``model``),
    and fit ``trainer_for(folder)`` while holding the folder's lock; the summary names the
    run."""
    folder, lock, removed = claim_run_folder(world, out, base, overwrite=overwrite, echo=echo)
    try:
        if removed:
            echo(f"--overwrite: removed the earlier run's {', '.join(removed)} from {folder}")
        echo(f"model: {model}; run folder {folder}")
        summary = trainer_for(folder).fit()
    finally:
        lock.release()
    summary["run"] = str(folder)
    return summary


def run_checkpoint(path: str | Path) -> Path:
    """The checkpoint ``--resume`` names: ``path``, or ``path/last.safetensors`` for a
    run folder."""
    path = Path(path)
    return path / "last.safetensors" if path.is_dir() else path


def check_output_file(path: str | os.PathLike[str], option: str, *,
                      create_folder: bool = False) -> Path:
    """Check, before training starts, that a file the run will write at its end can be
    written: ``path`` is not a folder, and its folder exists (or, with ``create_folder``,
    can be made: the nearest existing folder above it) and can be written to. Raises
    ``ValueError`` naming ``option`` and the path; returns ``Path(path)``."""
    target = Path(path)
    if str(path) == "" or target.is_dir():
        raise ValueError(f"{option} {str(path)!r}: is a folder; expected a file name")
    folder = target.parent
    if create_folder:
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
    if not folder.is_dir():
        missing = "is not a folder" if folder.exists() else "does not exist"
        raise ValueError(f"{option} {path}: the folder {str(folder)!r} {missing}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path}: the folder {str(folder)!r} cannot be written to")
    return target


def check_unchanged(changed: Iterable[str], *, what: str = "--resume") -> None:
    """Refuse options a resumed run cannot change (``changed``: their names, as options
    or as keys), listing them all in one message; nothing when ``changed`` is empty."""
    names = sorted({n if n.startswith("-") else "--" + n.replace("_", "-") for n in changed})
    if names:
        raise ValueError(f"{what} continues a run with its saved configuration; these "
                         f"options cannot change: {', '.join(names)}")


def read_named_file(named: Any, read: Callable[[str], T], digest: Callable[[T], str],
                    recorded: Any, *, where: str, what: str, ask: str) -> T:
    """The data of a file a checkpoint names, ``read(named)``, used only when it is what
    the checkpoint was trained on (``digest(data) == recorded``).

    A checkpoint may come from anyone, so the path is refused unless it is a regular file
    (never a folder, a device or a FIFO) and the checkpoint holds a digest to check it
    against; an error while reading it is reported without its text (a parser's message
    may quote the file: ``/etc/passwd``'s first line), and every refusal is a
    :class:`~rnnlab.train.checkpoint.CheckpointError` that asks for the path (``ask``,
    e.g. ``"--csv FILE"``). ``what`` names the file (``"CSV file"``).
    """
    shown = repr(named)[:200] if isinstance(named, str) else "no path"
    if not isinstance(recorded, str) or not recorded:
        raise CheckpointError(f"{where}: names the {what} {shown} but holds no digest to "
                              f"check that it still holds the run's data (written by an "
                              f"older rnnlab?); pass {ask} to use it")
    try:
        info = os.stat(named) if isinstance(named, str) and named else None
    except (OSError, ValueError):
        info = None
    if info is None or not stat.S_ISREG(info.st_mode):
        raise CheckpointError(f"{where}: the {what} it names, {shown}, is not a readable "
                              f"file; pass {ask}")
    try:
        data = read(named)
    except (DataError, OSError, ValueError, UnicodeError) as exc:  # its text not shown
        raise CheckpointError(f"{where}: the {what} it names, {shown}, does not hold the "
                              f"data it was trained on (it cannot be read as such: "
                              f"{type(exc).__name__}; the file's content is not shown, as "
                              f"the checkpoint named it, not you); pass {ask}") from None
    if digest(data) != recorded:
        raise CheckpointError(f"{where}: the {what} it names, {shown}, no longer holds the "
                              f"data it was trained on (its digest differs from the "
                              f"checkpoint's); pass {ask} with the original data")
    return data


@dataclass
class Resume:
    """A run being resumed: its checkpoint (``path``, read: ``arrays`` and ``meta``), its
    folder (whose lock rank 0 holds), the world and the echo."""

    world: World
    echo: Echo
    path: Path
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def where(self) -> str:
        return f"checkpoint {str(self.path)!r}"

    def expect(self, kind: str, what: str) -> None:
        """Refuse a checkpoint of another kind, or one that holds no training state."""
        if self.meta.get("kind") != kind:
            raise CheckpointError(f"{self.where}: holds a {self.meta.get('kind')!r} model, "
                                  f"expected {what}")
        if "optimizer" not in self.meta:
            raise CheckpointError(f"{self.where}: holds no training state (a best-model "
                                  f"file?); resume from last.safetensors")

    def train_config(self, overrides: dict[str, Any]) -> TrainConfig:
        """The run configuration the checkpoint continues with: its own, with
        ``overrides`` and without the earlier invocation's step and time budgets. A batch
        that this run's processes cannot share equally is refused, saying so."""
        try:
            config = TrainConfig.from_dict(meta_get(self.meta, "train_config", dict,
                                                    self.where))
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{self.where}: its run configuration is invalid "
                                  f"({exc})") from exc
        config = replace(config, **{"max_steps": None, "max_time": None, **overrides})
        size = self.world.size
        if config.batch_size % size:  # each process takes an equal share of every batch
            fits = [str(n) for n in range(1, min(config.batch_size, 64) + 1)
                    if config.batch_size % n == 0]
            counts = " or ".join([", ".join(fits[:-1]), fits[-1]] if len(fits) > 1 else fits)
            raise CheckpointError(f"{self.where}: its batch of {config.batch_size} cannot be "
                                  f"shared equally by {size} processes; resume it on a number "
                                  f"of processes that divides the batch ({counts})")
        return config

    def fit(self, trainer: Trainer) -> dict[str, Any]:
        """Restore ``trainer`` from the checkpoint and fit it on; the summary names the run."""
        trainer.restore(self.path)
        self.echo(f"resuming {self.path} at epoch {trainer.progress.epoch + 1}, step "
                  f"{trainer.progress.step}")
        summary = trainer.fit()
        summary["run"] = str(self.folder)
        return summary


@contextlib.contextmanager
def resuming(path: str | Path, echo: Echo | None = None) -> Iterator[Resume]:
    """The checkpoint ``path`` names (:func:`run_checkpoint`), read while its folder's lock
    is held (taken before anything is read: a trainer already there is refused). A path
    that names no checkpoint file is refused before the lock is taken, so a mistyped one
    leaves no ``rnnlab.lock`` (nor a folder) behind."""
    world = detect()
    checkpoint = run_checkpoint(path)
    if not checkpoint.is_file():  # before the lock: a mistyped path leaves nothing behind
        reason = "not a regular file" if checkpoint.exists() else "no such file"
        raise CheckpointError(f"--resume {path}: {checkpoint} is {reason} (expected a run "
                              f"folder or its last.safetensors)")
    with world.lock(checkpoint.parent):
        arrays, meta = read_checkpoint(checkpoint)
        yield Resume(world, rank0_echo(world, echo), checkpoint, arrays, meta)
