"""Writing files in folders other people may write to: exclusive temporaries, no symbolic
links followed, and errors that name the file.

A file that must appear whole (a checkpoint, an ``.npy`` of ids) is written to a
temporary file beside it and renamed over it at the end. The temporary's name is
``.<name>.tmp-<pid>-<16 random hex digits>``: the process id lets a later run tell a
dead writer's leftovers from a live writer's file (:func:`remove_stale_temporaries`),
the random part makes the name impossible to guess, and the file is created with
``O_CREAT | O_EXCL | O_NOFOLLOW``, so a file or a symbolic link planted under that name
makes the writer draw another name instead of writing through it. The rename replaces a
symbolic link at the target itself, never the file it points to.

Files appended to in place (``metrics.jsonl``) and lock files are opened with
``O_NOFOLLOW`` too: a symbolic link there is refused (``OSError`` naming the file).

An ``OSError`` while writing (a full disk, a file size limit, an I/O error) is raised
again with the name of the file being written (:func:`naming`), so a message reads
``runs/x/last.safetensors: No space left on device``; a temporary that cannot be created
(a read-only folder, ``/proc``) is reported under the target's name too, never the
temporary's.

:func:`write_atomic` is the one writer of whole files: it takes the bytes, or a function
that writes them to a binary file object, which suits a matplotlib figure::

    write_atomic(run / "forecast.png", lambda fh: fig.savefig(fh, format="png", dpi=120))
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

#: What separates a target's name from the writer's id in a temporary's name.
TEMP_MARK = ".tmp-"
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_ATTEMPTS = 100


def _suffix() -> str:
    """The random part of a temporary's name (64 bits)."""
    return secrets.token_hex(8)


def temporary_name(path: str | os.PathLike[str]) -> Path:
    """A fresh, unguessable name for a temporary of ``path``, in the same folder."""
    path = Path(path)
    return path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}-{_suffix()}")


def create_temporary(path: str | os.PathLike[str]) -> tuple[int, Path]:
    """Create an empty temporary file for ``path`` in its folder; ``(fd, tmp_path)``.

    The file is new (``O_EXCL``: an existing file or symbolic link under the drawn name
    is never opened; another name is drawn) and opened for writing only, with the
    permissions of any new file (``0o666`` less the umask).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
    for _ in range(_ATTEMPTS):
        tmp = temporary_name(path)
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue  # planted, or (once in 2**64) drawn twice: draw again
        except OSError as exc:  # the user named the target, not our temporary
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    raise FileExistsError(errno.EEXIST, f"no free temporary name after {_ATTEMPTS} tries",
                          str(path))


def writer_pid(name: str) -> int | None:
    """The process id in a temporary's name (``.<name>.tmp-<pid>[-<random>]``), or None."""
    _, mark, rest = name.rpartition(TEMP_MARK)
    pid = rest.split("-", 1)[0]
    if not mark or not name.startswith(".") or not pid.isdigit():
        return None
    return int(pid)


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files that writers killed mid-write left in ``folder``.

    A temporary is stale when the process named in it is gone; those of running
    processes (this one included) are left alone, as are entries that are not regular
    files. Returns the files removed.
    """
    removed: list[Path] = []
    try:
        candidates = list(Path(folder).glob(f".*{TEMP_MARK}*"))
    except OSError:
        return removed
    for tmp in candidates:
        pid = writer_pid(tmp.name)
        if pid is None or pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
            continue  # the writer is alive
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError, ValueError):
            continue  # alive under another user, or not a pid: leave it
        try:
            if tmp.is_symlink() or not tmp.is_file():
                continue  # not something a writer of ours left
            tmp.unlink()
            removed.append(tmp)
        except OSError:
            pass
    return removed


def naming(exc: OSError, path: str | os.PathLike[str]) -> OSError:
    """``exc`` with ``path`` as its file name (unchanged when it already names a file
    other than a temporary: a message names what the user asked for)."""
    named = exc.filename
    if named is not None and not (isinstance(named, str | bytes) and TEMP_MARK in
                                  os.path.basename(os.fsdecode(named))):
        return exc
    if exc.errno is None:
        return OSError(f"{path}: {exc}")
    return OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))


@contextmanager
def writing(path: str | os.PathLike[str]) -> Iterator[None]:
    """Re-raise an ``OSError`` of the block as one that names ``path``."""
    try:
        yield
    except OSError as exc:
        renamed = naming(exc, path)
        if renamed is exc:
            raise
        raise renamed from exc


def open_nofollow(path: str | os.PathLike[str], flags: int, mode: int = 0o666) -> int:
    """``os.open`` that refuses a symbolic link at ``path`` with a clear ``OSError``."""
    try:
        return os.open(path, flags | _NOFOLLOW | _CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (exc.errno == errno.EMLINK and _NOFOLLOW):
            raise OSError(exc.errno, "is a symbolic link; rnnlab does not write through "
                          "links in a run folder (remove it)", str(path)) from exc
        raise  # os.open's errors name the file already


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike[str],
                 data: bytes | bytearray | memoryview | Callable[[BinaryIO], object]) -> Path:
    """Write a whole file so that readers see the old file or the new one, never a part.

    Parameters
    ----------
    path : path-like
        The target; its folder is created when missing. A symbolic link there is replaced
        by the file (its target is never written), and so is a hard link (the other names
        keep the old contents).
    data : bytes, or a callable
        The contents, or a function called with the temporary's binary file object that
        writes them (``lambda fh: fig.savefig(fh, format="png")``).

    The bytes go to a new temporary beside ``path`` (:func:`create_temporary`), are
    flushed and fsync'ed, and the temporary is renamed over ``path``; the folder is
    fsync'ed after. On any error the temporary is removed and ``path`` is left as it was;
    an ``OSError`` names ``path``. Returns ``path``.
    """
    path = Path(path)
    if not isinstance(data, bytes | bytearray | memoryview) and not callable(data):
        raise TypeError(f"write_atomic: data expected bytes or a function that writes to a "
                        f"file object, got {type(data).__name__}")
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = create_temporary(path)
    try:
        with writing(path):
            with open(fd, "wb") as fh:
                if callable(data):
                    data(fh)
                else:
                    fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path
