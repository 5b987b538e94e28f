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
The JSON document is covered too: the CRC-32 of its exact text is stored beside it in the
safetensors metadata (under :data:`DOCUMENT_CHECKSUM_KEY`) and checked before the document
is parsed, so a flipped bit that turns a learning rate of 0.002 into 0.003 is a
:class:`CheckpointError` rather than a run that resumes silently with it. A checkpoint
written before documents were covered still loads, with an
:class:`UncheckedDocumentWarning` (rnnlab's notices are warnings that the command line
prints as one line). This guards against damage, not against a forger (who can rewrite
the checksums too).

The header (the tensor table and the document) is limited to :data:`MAX_HEADER_BYTES` by
safetensors; :func:`check_document_size` says before a run starts whether its checkpoints
would fit, and :func:`write_checkpoint` refuses one that would not with the same message
(never safetensors' own ``header too large``).

Loading checks the file size against a limit before reading, lets safetensors validate
the header (offsets inside the file, known dtypes), checks the JSON document and every
array's dtype before any array is read (so a foreign or hostile file costs no more than
its header), and wraps every failure in :class:`CheckpointError` with the file name and
the reason. The memory a load takes is bounded by the size of the file.
"""

from __future__ import annotations

import json
import os
import warnings
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.backend import to_numpy
from rnnlab.data.safefiles import remove_stale_temporaries, write_atomic

__all__ = ["CheckpointError", "UncheckedDocumentWarning", "atomic_write_bytes",
           "check_document_size", "is_checkpoint", "meta_get", "read_checkpoint",
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
#: The safetensors metadata key of the document (JSON text).
DOCUMENT_KEY = "rnnlab"
#: The safetensors metadata key of the CRC-32 of the document's UTF-8 text (8 hex digits).
DOCUMENT_CHECKSUM_KEY = "rnnlab.crc32"
_SIZE_HINT = ("a very large vocabulary? limit it with max_size (--max-size) or min_freq "
              "(--min-freq)")


class CheckpointError(ValueError):
    """A checkpoint cannot be written or read: corrupt, truncated, mismatched or hostile."""


class UncheckedDocumentWarning(UserWarning):
    """A checkpoint was written before its JSON document was covered by a checksum: it
    loads, but damage to its document cannot be seen (``path``: the file)."""

    def __init__(self, message: str, path: str) -> None:
        super().__init__(message)
        self.path = path


def crc32_of(array: np.ndarray) -> str:
    """The CRC-32 of an array's bytes (C order), as 8 hex digits."""
    data = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    return f"{zlib.crc32(data.data):08x}"


def atomic_write_bytes(path: str | os.PathLike[str], payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that readers see the old file or the new one, whole
    (:func:`rnnlab.data.safefiles.write_atomic`, kept under this name)."""
    write_atomic(path, payload)


def document_crc32(text: str) -> str:
    """The CRC-32 of a document's UTF-8 text, as 8 hex digits."""
    return f"{zlib.crc32(text.encode('utf-8')):08x}"


def _document_text(meta: Mapping[str, Any], checksums: Mapping[str, str]) -> str:
    if CHECKSUM_KEY in meta:
        raise CheckpointError(f"write_checkpoint: metadata key {CHECKSUM_KEY!r} is reserved "
                              f"for the array checksums")
    document = {"format": FORMAT, "version": VERSION, **meta, CHECKSUM_KEY: dict(checksums)}
    try:
        return json.dumps(document, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"write_checkpoint: metadata is not JSON-able: {exc}") from exc


def _header_bytes(text: str, tensors: Mapping[str, tuple[str, tuple[int, ...]]]) -> int:
    """The length of the safetensors header of a file with document ``text`` and the
    arrays ``name: (dtype code, shape)``, as safetensors writes it (compact JSON, padded
    to a multiple of 8; offsets counted at their largest, so never an underestimate)."""
    header: dict[str, Any] = {"__metadata__": {DOCUMENT_KEY: text,
                                               DOCUMENT_CHECKSUM_KEY: "0" * 8}}
    for name, (code, shape) in tensors.items():
        header[name] = {"dtype": code, "shape": list(shape),
                        "data_offsets": [2**63, 2**63]}
    size = len(json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    return size + (-size) % 8


def _too_large(header: int, owner: str) -> CheckpointError:
    return CheckpointError(f"{owner}: the checkpoint's header would take {header:,} bytes, "
                           f"more than the {MAX_HEADER_BYTES:,} safetensors reads back "
                           f"({_SIZE_HINT})")


_CODES = {np.dtype(v): k for k, v in _DTYPE_CODES.items()}


def _tensor_table(arrays: Mapping[str, Any] | Iterable[str]
                  ) -> dict[str, tuple[str, tuple[int, ...]]]:
    if isinstance(arrays, Mapping):
        table = {}
        for name, value in arrays.items():
            dtype = np.dtype(getattr(value, "dtype", np.float32))
            table[name] = (_CODES.get(dtype, "F32"), tuple(getattr(value, "shape", ())))
        return table
    return {name: ("F32", ()) for name in arrays}


def check_document_size(meta: Mapping[str, Any],
                        arrays: Mapping[str, Any] | Iterable[str] = ()) -> int:
    """Check, before the first save, that a checkpoint of ``meta`` fits safetensors'
    header limit; return the header's size in bytes.

    ``meta`` is the document :func:`write_checkpoint` would be given (configs, the
    vocabulary ...); ``arrays`` the arrays it would hold (a mapping of names to arrays or
    to anything with ``shape`` and ``dtype``), or just their names. Raises
    :class:`CheckpointError` with the size, the limit and a hint (a very large vocabulary:
    limit it) when the header would be larger than :data:`MAX_HEADER_BYTES`, which
    safetensors cannot read back; call it before training so that no work is lost at the
    first checkpoint.
    """
    table = _tensor_table(arrays)
    text = _document_text(meta, {name: "0" * 8 for name in table})
    header = _header_bytes(text, table)
    if header > MAX_HEADER_BYTES:
        raise _too_large(header, "check_document_size")
    return header


def write_checkpoint(path: str | os.PathLike[str], arrays: Mapping[str, Any],
                     meta: Mapping[str, Any]) -> None:
    """Save named arrays and a JSON-able ``meta`` document atomically to ``path``.

    The document also records every array's CRC-32 (under :data:`CHECKSUM_KEY`, which
    ``meta`` may not use), and the document's own CRC-32 is stored beside it (under
    :data:`DOCUMENT_CHECKSUM_KEY`). A header too large to read back is refused before
    anything is written (see :func:`check_document_size`).
    """
    from safetensors import SafetensorError
    from safetensors.numpy import save

    host: dict[str, np.ndarray] = {}
    for name, value in arrays.items():
        array = np.ascontiguousarray(to_numpy(value))
        if array.dtype not in _ALLOWED_DTYPES:
            raise CheckpointError(f"write_checkpoint: array {name!r} has unsupported dtype "
                                  f"{array.dtype}")
        host[name] = array
    checksums = {name: crc32_of(array) for name, array in host.items()}
    text = _document_text(meta, checksums)
    estimate = _header_bytes(text, _tensor_table(host))
    if estimate > MAX_HEADER_BYTES:
        raise _too_large(estimate, "write_checkpoint")
    try:
        payload = save(host, metadata={DOCUMENT_KEY: text,
                                       DOCUMENT_CHECKSUM_KEY: document_crc32(text)})
    except SafetensorError as exc:  # e.g. its own "header too large"
        raise CheckpointError(f"write_checkpoint: {path}: safetensors cannot write the "
                              f"checkpoint ({exc}; {_SIZE_HINT})") from exc
    header = int.from_bytes(payload[:8], "little")
    if header > MAX_HEADER_BYTES:  # it would be written, but could never be read back
        raise _too_large(header, "write_checkpoint")
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
            metadata = fh.metadata() or {}
            covered = _check_document(metadata, where)
            meta = _parse_document(metadata.get(DOCUMENT_KEY), where)
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
    if not covered:
        warnings.warn(UncheckedDocumentWarning(
            f"{where}: written before rnnlab covered a checkpoint's JSON document by a "
            f"checksum; it loads, but damage to its configuration cannot be detected (the "
            f"next checkpoint a run saves has the checksum)", str(path)), stacklevel=2)
    return arrays, meta


def _check_document(metadata: Mapping[str, Any], where: str) -> bool:
    """Whether the document's text matches the CRC-32 stored beside it (True), or there
    is none (False: an older checkpoint); a mismatch is a :class:`CheckpointError`."""
    recorded = metadata.get(DOCUMENT_CHECKSUM_KEY)
    text = metadata.get(DOCUMENT_KEY)
    if recorded is None or not isinstance(text, str):
        return False
    if not isinstance(recorded, str) or len(recorded) != 8:
        raise CheckpointError(f"{where}: metadata {DOCUMENT_CHECKSUM_KEY!r} expected an "
                              f"8-digit checksum, got {str(recorded)[:40]!r}")
    actual = document_crc32(text)
    if actual != recorded:
        raise CheckpointError(f"{where}: its JSON document (configuration, vocabulary, "
                              f"training state) does not match its checksum (CRC-32 "
                              f"{actual}, recorded {recorded}): the file is damaged")
    return True


def is_checkpoint(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a regular file that reads as an rnnlab checkpoint: a
    safetensors header whose metadata holds an rnnlab document (of any version). Reads
    the header only (at most :data:`MAX_HEADER_BYTES`), never the arrays; False for
    anything else, a missing file included. Used to refuse overwriting a run's files."""
    try:
        if not Path(path).is_file():
            return False
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            header_len = int.from_bytes(fh.read(8), "little")
            if size < 10 or not 2 <= header_len <= min(MAX_HEADER_BYTES, size - 8):
                return False
            header = json.loads(fh.read(header_len))
        text = header.get("__metadata__", {}).get(DOCUMENT_KEY)
        document = json.loads(text) if isinstance(text, str) else None
    except (OSError, ValueError, RecursionError, AttributeError):
        return False
    return isinstance(document, dict) and document.get("format") == FORMAT


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
