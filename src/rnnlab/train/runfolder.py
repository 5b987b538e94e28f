"""Run folders: what marks one, the lock that keeps one trainer per folder, and the
choice of a folder for a new run.

A run folder holds ``last.safetensors``, ``best.safetensors``, ``metrics.jsonl`` and
the lock file ``rnnlab.lock`` (names in :mod:`rnnlab.data.textio`, which skips them when
it walks a corpus folder). A new run never mixes its files with another run's:

* ``--out DIR`` naming a folder that holds a run is refused (:class:`RunFolderError`),
  unless ``overwrite=True``, which deletes that run's files (and only those) first;
* without ``--out``, a run goes to ``runs/<corpus>-<cell>``, or when that holds a run,
  to the first of ``runs/<corpus>-<cell>-2``, ``-3``, ... that does not (and says so).

The lock is ``fcntl.flock`` on ``rnnlab.lock``, held while a trainer works in the
folder: a second trainer on the same folder (another process) is refused at once with
the first one's process id, whatever its options. The kernel drops the lock when the
holder exits, however it ends (a ``kill -9`` too), so a stale lock cannot block a run;
the file itself stays, empty of meaning once unlocked. Within one process the lock is
re-entrant (``start_run`` holds it, the trainer takes it again). On systems without
``fcntl`` (Windows) there is no lock. ``flock`` on a network file system may not
exclude a process on another machine.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any, ClassVar

from rnnlab.data.safefiles import open_nofollow, remove_stale_temporaries
from rnnlab.data.textio import RUN_FILE_NAMES, RUN_LOCK_NAME

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: The files of a run that make a folder "hold a run" (the lock file does not).
RUN_OUTPUTS = tuple(sorted(RUN_FILE_NAMES - {RUN_LOCK_NAME}))
#: How many numbered folders a run without ``--out`` tries before giving up.
MAX_NUMBERED = 1000


class RunFolderError(RuntimeError):
    """A run folder cannot be used: it holds another run, or another trainer works in it."""


def run_outputs(folder: str | os.PathLike[str]) -> list[str]:
    """The names of :data:`RUN_OUTPUTS` present in ``folder`` (links included)."""
    folder = Path(folder)
    return [name for name in RUN_OUTPUTS if os.path.lexists(folder / name)]


class RunLock:
    """An exclusive ``flock`` on ``<folder>/rnnlab.lock``; a context manager.

    :meth:`acquire` raises :class:`RunFolderError` when another process holds it.
    """

    #: Locks this process holds: resolved folder -> [pid, fd, depth].
    _held: ClassVar[dict[str, list[int]]] = {}

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / RUN_LOCK_NAME
        self._key: str | None = None

    def acquire(self) -> RunLock:
        if self._key is not None:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        key = str(self.folder.resolve())
        held = self._held.get(key)
        if held is not None and held[0] == os.getpid():
            held[2] += 1
            self._key = key
            return self
        fd = _open_lock_file(self.path)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = _read_pid(fd)
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise
                who = f" (process {holder})" if holder else ""
                raise RunFolderError(
                    f"run folder {str(self.folder)!r} is in use by another rnnlab "
                    f"trainer{who}; wait for it to end, or choose another --out") from None
        try:
            _check_lock_file(fd, self.path)  # again: a link made while we waited
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._held[key] = [os.getpid(), fd, 1]
        self._key = key
        return self

    def release(self) -> None:
        if self._key is None:
            return
        key, self._key = self._key, None
        held = self._held.get(key)
        if held is None or held[0] != os.getpid():
            return
        held[2] -= 1
        if held[2] == 0:
            del self._held[key]
            os.close(held[1])  # closing the descriptor drops the flock

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _open_lock_file(path: Path) -> int:
    """A descriptor of the lock file at ``path``, created exclusively when there is none.

    An existing entry is used only when it is a regular file with no other name (one
    link): a symbolic link is refused by ``O_NOFOLLOW``, and a hard link to another file
    (which the lock would truncate to write its pid) or a FIFO or device is refused by
    :func:`_check_lock_file` before anything is written.
    """
    try:
        return open_nofollow(path, os.O_RDWR | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        pass
    fd = open_nofollow(path, os.O_RDWR | getattr(os, "O_NONBLOCK", 0))
    try:
        _check_lock_file(fd, path)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_lock_file(fd: int, path: Path) -> None:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise RunFolderError(f"{path}: is not a regular file; rnnlab keeps its run lock "
                             f"there (remove it)")
    if info.st_nlink != 1:
        raise RunFolderError(f"{path}: is a hard link ({info.st_nlink} names for one file); "
                             f"rnnlab writes its process id into the lock file and does not "
                             f"write through links in a run folder (remove it)")


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def clear_run(folder: str | os.PathLike[str]) -> list[str]:
    """Delete a run's outputs (and stale temporaries) from ``folder``; the names removed.

    Nothing else in the folder is touched. Call it holding the folder's :class:`RunLock`.
    """
    folder = Path(folder)
    removed = []
    for name in run_outputs(folder):
        (folder / name).unlink()
        removed.append(name)
    removed += [p.name for p in remove_stale_temporaries(folder)]
    return removed


def _holds_run_message(folder: Path, found: list[str]) -> str:
    last = folder / "last.safetensors"
    resume = f"continue it with --resume {last}, " if "last.safetensors" in found else ""
    return (f"run folder {str(folder)!r} already holds a run ({', '.join(found)}); "
            f"{resume}choose another --out, or pass --overwrite to replace it")


def check_new_run_folder(folder: str | os.PathLike[str], *, overwrite: bool = False) -> None:
    """Refuse early (before data is loaded) a ``--out`` folder that holds a run."""
    folder = Path(folder)
    found = run_outputs(folder)
    if found and not overwrite:
        raise RunFolderError(_holds_run_message(folder, found))


def claim_new_run_folder(folder: str | os.PathLike[str], *, overwrite: bool = False
                         ) -> tuple[RunLock, list[str]]:
    """Lock ``folder`` for a new run; ``(lock, names removed by overwrite)``.

    Raises :class:`RunFolderError` when another trainer holds it, or when it holds a run
    and ``overwrite`` is false. With ``overwrite``, the old run's files are deleted under
    the lock. The caller releases the lock.
    """
    folder = Path(folder)
    lock = RunLock(folder).acquire()
    try:
        found = run_outputs(folder)
        if found and not overwrite:
            raise RunFolderError(_holds_run_message(folder, found))
        removed = clear_run(folder) if found else []
    except BaseException:
        lock.release()
        raise
    return lock, removed


def claim_default_run_folder(base: str | os.PathLike[str], *, overwrite: bool = False
                             ) -> tuple[Path, RunLock, list[str]]:
    """The folder of a run started without ``--out``: ``base``, or the first of
    ``base-2``, ``base-3``, ... that holds no run and no live trainer; locked.

    With ``overwrite``, ``base`` itself is replaced (refused only if a trainer is in it).
    Returns ``(folder, lock, names removed)``.
    """
    base = Path(base)
    if overwrite:
        lock, removed = claim_new_run_folder(base, overwrite=True)
        return base, lock, removed
    for k in range(1, MAX_NUMBERED + 1):
        folder = base if k == 1 else base.with_name(f"{base.name}-{k}")
        if run_outputs(folder):
            continue
        try:
            lock, removed = claim_new_run_folder(folder)
        except RunFolderError:
            continue  # a trainer is starting there, or a run appeared meanwhile
        return folder, lock, removed
    raise RunFolderError(f"{base} and {MAX_NUMBERED - 1} numbered folders beside it all hold "
                         f"runs; choose a folder with --out")
