"""Tests that alter a checkpoint's JSON document and write the file again."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def document_metadata(document: dict[str, Any] | str, *, checksum: bool = True
                      ) -> dict[str, str]:
    """The safetensors metadata of a checkpoint with this document: its JSON text and, as
    :func:`rnnlab.train.checkpoint.write_checkpoint` stores it, the text's CRC-32 (left
    out with ``checksum=False``: a checkpoint as rnnlab wrote them before documents were
    covered)."""
    from rnnlab.train.checkpoint import DOCUMENT_CHECKSUM_KEY, DOCUMENT_KEY, document_crc32

    text = document if isinstance(document, str) else json.dumps(document)
    metadata = {DOCUMENT_KEY: text}
    if checksum:
        metadata[DOCUMENT_CHECKSUM_KEY] = document_crc32(text)
    return metadata


def rewrite_document(path: Path, edit: Callable[[dict[str, Any]], None], *,
                     checksum: bool = True) -> None:
    """Write ``path`` again with its JSON document changed in place by ``edit(document)``
    (the arrays as they were), with the new document's checksum as a forger would write
    it (none with ``checksum=False``)."""
    from safetensors import safe_open
    from safetensors.numpy import save

    with safe_open(str(path), framework="np") as fh:
        document = json.loads(fh.metadata()["rnnlab"])
        arrays = {k: fh.get_tensor(k) for k in fh.keys()}
    edit(document)
    path.write_bytes(save(arrays, metadata=document_metadata(document, checksum=checksum)))
