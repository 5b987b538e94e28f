"""Reading UTF-8 text files and folders, strictly and deterministically.

* :func:`iter_text` decodes a file in chunks with an incremental strict UTF-8 decoder,
  so a file larger than memory can be streamed; every piece it yields ends at a line
  boundary (except the last), which is what word-level tokenisation needs. Line endings
  are normalised to ``"\\n"`` (``"\\r\\n"`` and a lone ``"\\r"`` as Python's universal
  newlines do) and a leading byte-order mark is dropped.
* A NUL byte marks a **binary** file; an invalid byte sequence raises
  :class:`~rnnlab.data.DataError` naming the file and the **byte offset** of the first
  bad byte, counted from the start of the file.
* :func:`text_files` lists the files of a folder recursively in a fixed order (sorted by
  their path relative to the folder, component by component), skipping hidden entries
  (names starting with ``"."``), ``__pycache__`` and rnnlab's own run files, and sets
  aside files that look binary (a NUL byte in their first 8 KiB).
* A **run folder** (one holding ``rnnlab.lock``, or ``metrics.jsonl`` beside a
  ``last``/``best.safetensors``) met in such a walk keeps its other files, but its
  checkpoints, ``metrics.jsonl`` and lock file are never corpus text: a run written into
  the corpus folder does not change the corpus it was trained on.
* Only regular files are read: a FIFO, a device or a socket (``/dev/stdin`` included) is
  refused with a message saying what it is, instead of blocking or reading forever.
  :func:`open_regular` is that check for every reader of a file a user names (corpora,
  CSV series, seq2seq pairs, ``--config`` files): the path is opened without blocking
  (``O_NONBLOCK``, so a FIFO swapped in after the check cannot hang the open) and the
  open file is checked again; :func:`read_limited` reads one whole, refusing one larger
  than a limit before reading it.
"""

from __future__ import annotations

import codecs
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from rnnlab.data.errors import DataError

#: Bytes read per chunk by :func:`iter_text`.
CHUNK_BYTES = 1 << 22
#: Bytes inspected by :func:`looks_binary`.
SNIFF_BYTES = 8192
_SKIP_DIRS = frozenset({"__pycache__"})
#: The lock file of a run folder (see :mod:`rnnlab.train.runfolder`).
RUN_LOCK_NAME = "rnnlab.lock"
#: The files rnnlab writes into a run folder; never read as corpus text.
RUN_FILE_NAMES = frozenset({"last.safetensors", "best.safetensors", "metrics.jsonl",
                            RUN_LOCK_NAME})


def is_run_folder(names: Iterable[str]) -> bool:
    """Whether a folder holding the files ``names`` is an rnnlab run folder."""
    names = set(names)
    return RUN_LOCK_NAME in names or ("metrics.jsonl" in names and bool(
        names & {"last.safetensors", "best.safetensors"}))


def describe_kind(mode: int) -> str | None:
    """What a file of ``st_mode`` is when it is neither a regular file nor a folder."""
    for test, what in ((stat.S_ISFIFO, "a named pipe (FIFO)"),
                       (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return None


def _not_regular(path: Path, what: str) -> DataError:
    return DataError(f"{path}: is {what}, not a regular file; rnnlab reads text only from "
                     f"files and folders (save the text to a file first)")


def open_regular(path: str | os.PathLike, *, what: str = "") -> BinaryIO:
    """Open a regular file for reading in binary mode, refusing anything else.

    A folder, a FIFO, a device or a socket is a :class:`DataError` saying what it is,
    raised without blocking: the kind is checked with ``os.stat`` first, the file is
    opened with ``O_NONBLOCK`` and checked again on the open descriptor (then made
    blocking again for reading). A missing or unreadable file is a :class:`DataError`
    naming it. ``what`` (e.g. ``"--config"``) starts the messages.
    """
    path = Path(path)
    name = f"{what} {path}" if what else str(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataError(f"{name}: no such file") from None
    except OSError as exc:
        raise DataError(f"{name}: cannot be read ({exc.strerror or exc})") from exc
    _check_regular(name, mode)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise DataError(f"{name}: cannot be read ({exc.strerror or exc})") from exc
    try:
        _check_regular(name, os.fstat(fd).st_mode)  # what was opened, not what was seen
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return open(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _check_regular(name: str, mode: int) -> None:
    if stat.S_ISDIR(mode):
        raise DataError(f"{name}: is a folder, not a file")
    if not stat.S_ISREG(mode):
        what = describe_kind(mode) or "a special file"
        raise DataError(f"{name}: is {what}, not a regular file; rnnlab reads only regular "
                        f"files (save the data to a file first)")


def read_limited(path: str | os.PathLike, max_bytes: int, *, what: str = "") -> bytes:
    """The bytes of the regular file ``path`` (see :func:`open_regular`), at most
    ``max_bytes`` of them: a larger file is a :class:`DataError` giving both sizes,
    raised before anything is read (a file that grows while it is read is cut off at
    the limit and refused too)."""
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise ValueError(f"read_limited: max_bytes expected an int >= 0, got {max_bytes!r}")
    name = f"{what} {path}" if what else str(path)
    with open_regular(path, what=what) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > max_bytes:
            raise DataError(f"{name}: {size:,} bytes is larger than the limit of "
                            f"{max_bytes:,} bytes")
        try:
            data = handle.read(max_bytes + 1)
        except OSError as exc:
            raise DataError(f"{name}: cannot be read ({exc.strerror or exc})") from exc
    if len(data) > max_bytes:
        raise DataError(f"{name}: grew past the limit of {max_bytes:,} bytes while it was "
                        f"read")
    return data


def iter_text(path: str | os.PathLike, *, chunk_bytes: int = CHUNK_BYTES) -> Iterator[str]:
    """Yield the text of a UTF-8 file in pieces that end at line boundaries.

    Parameters
    ----------
    path : path-like
        The file.
    chunk_bytes : int
        Bytes read at a time; a piece grows past it only when a line is longer.

    Raises
    ------
    DataError
        The file is binary (a NUL byte), not valid UTF-8 (the message gives the byte
        offset), or cannot be read.
    """
    path = Path(path)
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes: expected an int >= 1, got {chunk_bytes}")
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if stat.S_ISDIR(mode):
        raise DataError(f"{path}: is a folder, not a file")
    what = describe_kind(mode)
    if what is not None:
        raise _not_regular(path, what)
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0  # bytes of the file consumed before the current chunk
    carry = ""
    at_start = True
    handle = open_regular(path)
    with handle:
        while True:
            raw = handle.read(chunk_bytes)
            final = not raw
            nul = raw.find(b"\x00")
            if nul >= 0:
                raise DataError(f"{path}: looks like a binary file (a NUL byte at byte offset "
                                f"{offset + nul:,}), not UTF-8 text")
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(raw, final=final)
            except UnicodeDecodeError as exc:
                where = offset - pending + exc.start
                bad = exc.object[exc.start:exc.end].hex(" ")
                raise DataError(f"{path}: not valid UTF-8 at byte offset {where:,} (bytes "
                                f"{bad}: {exc.reason}); re-encode the file as UTF-8, e.g. "
                                f"iconv -f latin1 -t utf-8") from None
            offset += len(raw)
            if at_start and text:
                text = text.removeprefix("\ufeff")
                at_start = False
            text = carry + text
            hold = ""
            if not final and text.endswith("\r"):
                text, hold = text[:-1], "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            if final:
                if text:
                    yield text
                return
            cut = text.rfind("\n") + 1
            if cut:
                yield text[:cut]
            carry = text[cut:] + hold


def read_text(path: str | os.PathLike) -> str:
    """The whole text of a UTF-8 file (see :func:`iter_text` for the checks)."""
    return "".join(iter_text(path))


def looks_binary(path: str | os.PathLike) -> bool:
    """True when the first :data:`SNIFF_BYTES` bytes of the file hold a NUL byte."""
    with open(path, "rb") as handle:
        return b"\x00" in handle.read(SNIFF_BYTES)


def walk_files(root: str | os.PathLike, *, suffixes: Iterable[str] | None = None,
               skip_dirs: Iterable[str] = ()) -> list[Path]:
    """Files under ``root`` in sorted order (by relative path components).

    Hidden files and folders, ``__pycache__``, folders named in ``skip_dirs`` and the
    run files (:data:`RUN_FILE_NAMES`) of run folders (:func:`is_run_folder`) are skipped;
    ``suffixes`` (e.g. ``(".py",)``) keeps only files with those endings. Symbolic links
    to folders are not followed.
    """
    root = Path(root)
    skip = _SKIP_DIRS | set(skip_dirs)
    ends = tuple(suffixes) if suffixes is not None else None
    found: list[tuple[tuple[str, ...], Path]] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in skip]
        rel = Path(folder).relative_to(root).parts
        run_files = RUN_FILE_NAMES if is_run_folder(files) else frozenset()
        for name in files:
            if name.startswith(".") or (ends is not None and not name.endswith(ends)) \
                    or name in run_files:
                continue
            full = Path(folder, name)
            if full.is_file():
                found.append(((*rel, name), full))
    found.sort(key=lambda item: item[0])
    return [p for _, p in found]


def text_files(path: str | os.PathLike, *, suffixes: Iterable[str] | None = None
               ) -> tuple[list[Path], list[Path]]:
    """``(text_files, binary_files)`` of a file or folder.

    A single file is returned as is (its checks happen when it is read); a folder is
    walked with :func:`walk_files` and files that :func:`looks_binary` set aside.

    Raises
    ------
    DataError
        ``path`` does not exist, or a folder holds no text file.
    """
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataError(f"{path}: no such file or folder") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if stat.S_ISREG(mode):
        return [path], []
    if not stat.S_ISDIR(mode):
        raise _not_regular(path, describe_kind(mode) or "a special file")
    texts: list[Path] = []
    binary: list[Path] = []
    for file in walk_files(path, suffixes=suffixes):
        try:
            (binary if looks_binary(file) else texts).append(file)
        except OSError:
            binary.append(file)
    if not texts:
        what = f" with suffix {list(suffixes)}" if suffixes is not None else ""
        raise DataError(f"{path}: empty corpus, the folder holds no text file{what}"
                        + (f" ({len(binary)} binary or unreadable files skipped)"
                           if binary else ""))
    return texts, binary
