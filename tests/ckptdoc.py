"""Tests that alter a checkpoint's JSON document and write the file again."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def rewrite_document(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Write ``path`` again with its JSON document changed in place by ``edit(document)``
    (the arrays as they were)."""
    from safetensors import safe_open
    from safetensors.numpy import save

    with safe_open(str(path), framework="np") as fh:
        document = json.loads(fh.metadata()["rnnlab"])
        arrays = {k: fh.get_tensor(k) for k in fh.keys()}
    edit(document)
    path.write_bytes(save(arrays, metadata={"rnnlab": json.dumps(document)}))
