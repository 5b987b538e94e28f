"""Memory: training over token ids much larger than what the process holds, because the
ids are memory-mapped and batches are windows. A scaled-down run of
``benchmarks/reliability_memory.py`` (128 MiB of ids here, 1 GiB there), in a process of
its own so that its resident memory is its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from rnnlab.data import BPTTBatcher, open_ids, save_ids

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "reliability_memory.py"


def test_training_on_memory_mapped_ids_stays_far_below_their_size(tmp_path: Path) -> None:
    out = tmp_path / "memory.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--mib", "128", "--steps", "20", "--batch-size", "8",
         "--bound-mib", "64", "--dir", str(tmp_path), "--json", str(out)],
        capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert figures["ids_file_mib"] == 128.0 and figures["steps"] == 20 and figures["held"]
    assert figures["train_growth_mib"] < 64  # half the ids: they are never loaded
    # the ids were written from 16 MiB chunks, never held whole
    assert figures["write_peak_rss_mib"] - figures["rss_after_imports_mib"] < 64
    assert not list(tmp_path.glob("rnnlab-memory-*"))  # the ids were removed


def test_batches_are_windows_of_the_map(tmp_path: Path) -> None:
    path = save_ids(tmp_path / "ids", (np.arange(k * 1000, (k + 1) * 1000, dtype=np.int64)
                                       for k in range(10)))
    ids = open_ids(path)
    assert isinstance(ids, np.memmap) and not ids.flags.writeable
    batcher = BPTTBatcher(ids, 4, 16)
    assert np.shares_memory(batcher._inputs, ids)  # streams are views, not copies
    x, y = batcher.batch(3)
    assert x.flags.c_contiguous and not np.shares_memory(x, ids)
    assert (x[:, 1:] == y[:, :-1]).all() and x[0, 0] == 48
