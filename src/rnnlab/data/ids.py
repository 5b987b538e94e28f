"""Token ids on disk: ``.npy`` files written in chunks and opened memory-mapped.

A corpus larger than memory is trained on by keeping its ids in an ``.npy`` file and
opening it with :func:`open_ids` (a read-only :class:`numpy.memmap`); the
:class:`~rnnlab.data.BPTTBatcher` only slices it, so only the pages of the current
window are read.

:func:`save_ids` writes an array (a memmap too, copied block by block) or any iterable
of 1-D integer chunks whose total length is not known in advance: the ``.npy`` header
is written with a fixed size first and rewritten with the final length at the end (the
standard format, version 1.0, readable by ``numpy.load``). :func:`encode_to_npy` streams
text files through a :class:`~rnnlab.data.Vocab` into such a file.

Files are written to a new temporary file beside the target (an unguessable name, created
exclusively: nothing planted there is written through, see :mod:`rnnlab.data.safefiles`)
and renamed at the end, so an interrupted write never leaves a truncated file under the
final name; an ``OSError`` while writing names the target file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from rnnlab.data.errors import DataError
from rnnlab.data.safefiles import create_temporary, writing
from rnnlab.data.textio import iter_text, text_files
from rnnlab.data.tokens import ID_DTYPE
from rnnlab.data.vocab import Vocab

_MAGIC = b"\x93NUMPY\x01\x00"
_HEADER_BYTES = 128  # magic (8) + length (2) + dict padded with spaces and "\n"
_BLOCK = 1 << 22  # elements copied at a time from an array source


def _header(dtype: np.dtype, length: int) -> bytes:
    text = repr({"descr": dtype.str, "fortran_order": False, "shape": (int(length),)})
    body_len = _HEADER_BYTES - len(_MAGIC) - 2
    body = text.ljust(body_len - 1) + "\n"
    return _MAGIC + body_len.to_bytes(2, "little") + body.encode("latin1")


def _chunks(ids: Any) -> Iterable[Any]:
    if isinstance(ids, np.ndarray):
        if ids.ndim != 1:
            raise ValueError(f"save_ids: ids expected a 1-D array, got shape {ids.shape}")
        return (ids[i:i + _BLOCK] for i in range(0, ids.shape[0], _BLOCK))
    if isinstance(ids, list | tuple) and all(isinstance(i, int | np.integer) for i in ids):
        return [np.asarray(ids, dtype=np.int64)]
    return ids


def save_ids(path: str | os.PathLike, ids: Any, *, dtype: DTypeLike = ID_DTYPE) -> Path:
    """Write token ids to an ``.npy`` file and return its path.

    Parameters
    ----------
    path : path-like
        Target file; ``".npy"`` is appended when missing (as ``numpy.save`` does).
    ids : array ``(n,)``, list of int, or iterable of 1-D integer arrays
        The ids, or chunks of them in order (e.g. a generator over a huge corpus).
    dtype : numpy dtype
        Integer dtype stored (default int32); every id must fit and be ``>= 0``.
    """
    dtype = np.dtype(dtype).newbyteorder("<")
    if dtype.kind not in "iu":
        raise TypeError(f"save_ids: dtype expected an integer dtype, got {dtype}")
    info = np.iinfo(dtype)
    path = Path(path)
    if path.suffix != ".npy":
        path = path.with_name(path.name + ".npy")
    fd, tmp = create_temporary(path)
    length = 0
    try:
        with writing(path):
            with open(fd, "wb") as handle:
                handle.write(_header(dtype, 0))
                for k, chunk in enumerate(_chunks(ids)):
                    arr = np.asarray(chunk)
                    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
                        raise TypeError(f"save_ids: chunk {k} expected a 1-D integer array, "
                                        f"got shape {arr.shape} dtype {arr.dtype}")
                    if arr.size == 0:
                        continue
                    low, high = int(arr.min()), int(arr.max())
                    if low < 0 or high > info.max:
                        raise DataError(f"save_ids: ids expected in [0, {info.max}] for "
                                        f"{dtype}, got {low if low < 0 else high} in chunk {k}")
                    np.ascontiguousarray(arr, dtype=dtype).tofile(handle)
                    length += arr.size
                handle.seek(0)
                handle.write(_header(dtype, length))
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def open_ids(path: str | os.PathLike, *, mmap: bool = True) -> np.ndarray:
    """Open an ``.npy`` file of ids, memory-mapped read-only by default.

    Returns a 1-D integer array ``(n,)`` (a :class:`numpy.memmap` when ``mmap``).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"open_ids: {path}: no such file")
    try:
        ids = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"open_ids: {path}: not a readable .npy file ({exc})") from exc
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise DataError(f"open_ids: {path}: expected a 1-D integer array, "
                        f"got shape {ids.shape} dtype {ids.dtype}")
    return ids


def encode_to_npy(source: str | os.PathLike, vocab: Vocab, path: str | os.PathLike, *,
                  suffixes: Iterable[str] | None = None) -> np.ndarray:
    """Encode a text file or folder with ``vocab`` into ``path``, in chunks; open it.

    Files are read as :func:`rnnlab.data.load_text` reads them (same order, each ending
    with a newline), but streamed, so the text never needs to fit in memory. Returns the
    memory-mapped ids ``(n_tokens,)``.
    """
    files, _ = text_files(source, suffixes=suffixes)

    def chunks() -> Iterable[np.ndarray]:
        for file in files:
            last = ""
            for piece in iter_text(file):
                last = piece
                yield vocab.encode_text(piece)
            if last and not last.endswith("\n"):
                yield vocab.encode_text("\n")

    return open_ids(save_ids(path, chunks()))
