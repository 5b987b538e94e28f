"""Checkpoint files: named arrays in safetensors, everything else as JSON, written atomically.

One checkpoint is one ``.safetensors`` file. Its arrays are stored under names
(``model/rnn.weight_ih_l0``, ``optim/<param>/<buffer>``, ``state/h`` ...) with their
dtypes and shapes; its JSON document (configs, vocabulary, optimizer hyper-parameters,
RNG states, data position, metrics) sits in the safetensors header metadata under the
key ``"rnnlab"``. Nothing is pickled, so loading a file never runs code.

Writing goes to a temporary file in the same folder, which is flushed and fsync'ed, then
renamed over the target (an atomic replace on POSIX), and the folder is fsync'ed: a crash
at any moment leaves either the old checkpoint or the new one, never a torn file. The
temporary has an unguessable name and is created exclusively, so a file or symbolic link
planted in the run folder is never written through (:mod:`rnnlab.data.safefiles`); a
failed write (a full disk) raises an ``OSError`` that names the checkpoint.

Every array's CRC-32 is stored in the JSON document (``"crc32": {name: "8 hex digits"}``)
and checked when the array is read, so a flipped bit in a weight is a
:class:`CheckpointError` naming the array instead of a model that loads and misbehaves.
This guards against damage, not against a forger (who can rewrite the checksums too).

Loading checks the file size against a limit before reading, lets safetensors validate
the header (offsets inside the file, known dtypes), checks the JSON document and every
array's dtype before any array is read (so a foreign or hostile file costs no more than
its header), and wraps every failure in :class:`CheckpointError` with the file name and
the reason. The memory a load takes is bounded by the size of the file.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.backend import to_numpy
from rnnlab.data.safefiles import create_temporary, remove_stale_temporaries, writing

__all__ = ["CheckpointError", "atomic_write_bytes", "meta_get", "read_checkpoint",
           "remove_stale_temporaries", "take_group", "write_checkpoint"]

FORMAT = "rnnlab-checkpoint"
VERSION = 1
#: Largest checkpoint :func:`read_checkpoint` opens unless told otherwise (bytes).
DEFAULT_MAX_BYTES = 16 * 2**30
_ALLOWED_DTYPES = {np.dtype(t) for t in ("float32", "float64", "int32", "int64", "uint8",
                                          "bool")}
#: The safetensors names of the allowed dtypes.
_DTYPE_CODES = {"F32": "float32", "F64": "float64", "I32": "int32", "I64": "int64",
                "U8": "uint8", "BOOL": "bool"}
#: Largest header (tensor table and JSON document) safetensors reads back (its own limit).
MAX_HEADER_BYTES = 100_000_000
#: The key of the document that holds each array's CRC-32 (reserved: not part of ``meta``).
CHECKSUM_KEY = "crc32"


class CheckpointError(ValueError):
    """A checkpoint cannot be written or read: corrupt, truncated, mismatched or hostile."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def crc32_of(array: np.ndarray) -> str:
    """The CRC-32 of an array's bytes (C order), as 8 hex digits."""
    data = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    return f"{zlib.crc32(data):08x}"


def atomic_write_bytes(path: str | os.PathLike[str], payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that readers see the old file or the new one, whole.

    The bytes go to a new temporary file beside ``path`` (see :mod:`rnnlab.data.safefiles`)
    that is renamed over ``path``; an ``OSError`` names ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = create_temporary(path)
    try:
        with writing(path):
            with open(fd, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_checkpoint(path: str | os.PathLike[str], arrays: Mapping[str, Any],
                     meta: Mapping[str, Any]) -> None:
    """Save named arrays and a JSON-able ``meta`` document atomically to ``path``.

    The document also records every array's CRC-32 (under :data:`CHECKSUM_KEY`, which
    ``meta`` may not use).
    """
    from safetensors.numpy import save

    host: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        array = np.ascontiguousarray(to_numpy(value))
        if array.dtype not in _ALLOWED_DTYPES:
            raise CheckpointError(f"write_checkpoint: array {name!r} has unsupported dtype "
                                  f"{array.dtype}")
        host[name] = array
    if CHECKSUM_KEY in meta:
        raise CheckpointError(f"write_checkpoint: metadata key {CHECKSUM_KEY!r} is reserved "
                              f"for the array checksums")
    checksums = {name: crc32_of(array) for name, array in host.items()}
    document = {"format": FORMAT, "version": VERSION, **meta, CHECKSUM_KEY: checksums}
    try:
        text = json.dumps(document, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"write_checkpoint: metadata is not JSON-able: {exc}") from exc
    payload = save(host, metadata={"rnnlab": text})
    header = int.from_bytes(payload[:8], "little")
    if header > MAX_HEADER_BYTES:  # it would be written, but could never be read back
        raise CheckpointError(f"write_checkpoint: the header would take {header:,} bytes, more "
                              f"than the {MAX_HEADER_BYTES:,} safetensors reads back (a very "
                              f"large vocabulary? limit it with max_size)")
    atomic_write_bytes(path, payload)


def read_checkpoint(path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES
                    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Load ``(arrays, meta)`` from a checkpoint written by :func:`write_checkpoint`.

    Raises :class:`CheckpointError` for a missing, oversized, corrupt, truncated or foreign
    file, or an array whose bytes do not match the CRC-32 recorded for it; the message
    names the file and what is wrong (and the array). ``meta`` is the document without
    the checksums.
    """
    from safetensors import safe_open

    path = Path(path)
    where = f"checkpoint {str(path)!r}"
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CheckpointError(f"{where}: cannot be read ({exc.strerror or exc})") from exc
    if not path.is_file():
        raise CheckpointError(f"{where}: is not a file")
    if size > max_bytes:
        raise CheckpointError(f"{where}: {size} bytes is larger than the limit {max_bytes}")
    if size < 8:
        raise CheckpointError(f"{where}: truncated ({size} bytes)")
    with open(path, "rb") as fh:
        start = fh.read(9)
    header_len = int.from_bytes(start[:8], "little")
    text = _looks_like_text(start)
    if start[8:9] not in (b"{", b"") or text:
        what = "text" if text else f"the bytes {start[:8]!r}"
        raise CheckpointError(f"{where}: not an rnnlab checkpoint (a safetensors file starts "
                              f"with the 8-byte length of its JSON header, then the header's "
                              f"'{{'; this file starts with {what})")
    if header_len > MAX_HEADER_BYTES:  # write_checkpoint never writes one this long
        raise CheckpointError(
            f"{where}: not an rnnlab checkpoint, or a damaged one (a checkpoint starts with "
            f"the 8-byte length of its JSON header, at most {MAX_HEADER_BYTES:,} bytes and "
            f"within the file; this file's first 8 bytes declare {header_len:,} header "
            f"bytes, and the file has {size - 8:,} bytes after them)")
    if header_len > size - 8:
        raise CheckpointError(f"{where}: corrupt header (declares {header_len} header bytes, "
                              f"the file has {size - 8}): a damaged or truncated checkpoint")
    arrays: dict[str, np.ndarray] = {}
    try:
        with safe_open(str(path), framework="np") as fh:
            meta = _parse_document((fh.metadata() or {}).get("rnnlab"), where)
            names = list(fh.keys())
            checksums = _checksums(meta.pop(CHECKSUM_KEY, None), names, where)
            for name in names:  # before reading anything
                code = fh.get_slice(name).get_dtype()
                if code not in _DTYPE_CODES:
                    raise CheckpointError(f"{where}: array {name!r} has unsupported dtype "
                                          f"{code}")
            for name in names:
                arrays[name] = fh.get_tensor(name)
                if checksums is not None and crc32_of(arrays[name]) != checksums[name]:
                    raise CheckpointError(
                        f"{where}: array {name!r} does not match its checksum (CRC-32 "
                        f"{crc32_of(arrays[name])}, recorded {checksums[name]}): the file "
                        f"is damaged")
    except (CheckpointError, MemoryError):
        raise
    except Exception as exc:  # safetensors raises several types for bad files
        raise CheckpointError(f"{where}: not a valid safetensors file ({exc})") from exc
    for name, array in arrays.items():
        if array.dtype not in _ALLOWED_DTYPES:  # pragma: no cover - caught by the codes
            raise CheckpointError(f"{where}: array {name!r} has unsupported dtype {array.dtype}")
    return arrays, meta


def _looks_like_text(start: bytes) -> bool:
    """Whether a file's first bytes are plainly text (printable ASCII, tabs, line ends): a
    checkpoint's first eight bytes are a little-endian length whose high bytes are zero."""
    return all(32 <= b < 127 or b in (9, 10, 13) for b in start[:8])


def _parse_document(text: Any, where: str) -> dict[str, Any]:
    """The checked JSON document of a checkpoint's ``"rnnlab"`` metadata entry."""
    if text is None:
        raise CheckpointError(f"{where}: has no rnnlab metadata (not an rnnlab checkpoint)")
    try:
        meta = json.loads(text)
    except (ValueError, RecursionError) as exc:  # also integers of > 4300 digits
        raise CheckpointError(f"{where}: metadata is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{where}: metadata format is not {FORMAT!r}")
    version = meta.get("version")
    if type(version) is not int or version != VERSION:
        raise CheckpointError(f"{where}: format version {version!r} is not supported "
                              f"(expected {VERSION})")
    return meta


def _checksums(table: Any, names: list[str], where: str) -> dict[str, str] | None:
    """The checked table of array checksums of a document, or None for a file without one.

    Checkpoints written before checksums were recorded have no table; they still load
    (nothing to check them against). A table, once there, must name every array.
    """
    if table is None:
        return None
    if not isinstance(table, dict) or not all(
            isinstance(v, str) and len(v) == 8 for v in table.values()):
        raise CheckpointError(f"{where}: metadata {CHECKSUM_KEY!r} expected an object of "
                              f"8-digit checksums, got {str(table)[:80]}")
    missing, unknown = sorted(set(names) - set(table)), sorted(set(table) - set(names))
    if missing or unknown:
        raise CheckpointError(f"{where}: the checksum table does not match the arrays "
                              f"(no checksum for {missing[:5]}, checksums of absent arrays "
                              f"{unknown[:5]})")
    return table


def take_group(arrays: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The arrays whose names start with ``prefix + "/"``, with the prefix removed."""
    head = prefix + "/"
    return {name[len(head):]: value for name, value in arrays.items() if name.startswith(head)}


def meta_get(meta: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    """``meta[key]`` checked to be of ``kind``, else a :class:`CheckpointError`."""
    if key not in meta:
        raise CheckpointError(f"{where}: metadata is missing {key!r}")
    value = meta[key]
    if not isinstance(value, kind):
        raise CheckpointError(f"{where}: metadata {key!r} expected {kind.__name__}, "
                              f"got {type(value).__name__}")
    return value
