"""Metrics as JSON lines, and the tqdm progress bar of a training epoch."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from rnnlab.data.safefiles import open_nofollow, writing


def perplexity(loss: float) -> float:
    """``exp(loss)``, or infinity when that overflows (a diverged model)."""
    return math.exp(loss) if loss < 700 else math.inf


class MetricsLog:
    """Append one JSON object per event to ``path`` (flushed at once, safe to tail).

    A symbolic link at ``path`` is refused, not written through; a failed write (a full
    disk) raises an ``OSError`` that names ``path``.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.started = time.time()
        self._end_torn_line()

    def _end_torn_line(self) -> None:
        """A process killed mid-write leaves a line without its newline: end it, so that
        the next record starts a line of its own (readers skip the torn one)."""
        try:
            fd = open_nofollow(self.path, os.O_RDWR)
        except FileNotFoundError:
            return
        with writing(self.path), open(fd, "rb+") as fh:
            end = fh.seek(0, 2)
            if end:
                fh.seek(end - 1)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")

    def log(self, event: str, **fields: Any) -> dict[str, Any]:
        record = {"event": event, "time": round(time.time(), 3), **fields}
        for key, value in record.items():
            if isinstance(value, float) and not math.isfinite(value):
                record[key] = str(value)  # JSON has no NaN / inf
        line = (json.dumps(record) + "\n").encode("utf-8")
        fd = open_nofollow(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        with writing(self.path), open(fd, "ab") as fh:
            fh.write(line)
        return record


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a metrics file (lines that are not JSON objects are skipped)."""
    records = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


class ProgressBar:
    """A tqdm bar over the windows of an epoch showing loss, perplexity and tokens/s."""

    def __init__(self, total: int, initial: int, desc: str, *, tokens_per_batch: int = 0,
                 enabled: bool = True) -> None:
        self.bar = None
        self._last = self._started = time.perf_counter()
        self._first = initial
        self._tokens_per_batch = tokens_per_batch
        self._loss: float | None = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit="batch",
                            dynamic_ncols=True, leave=False, file=sys.stderr)

    def update(self, position: int, *, loss: float, lr: float) -> None:
        if self.bar is None:
            return
        self._loss = loss if self._loss is None else 0.9 * self._loss + 0.1 * loss
        self.bar.n = position
        now = time.perf_counter()
        if now - self._last > 0.5 or position == self.bar.total:
            # batches/s since the bar started (tqdm's own rate stays unset: ``n`` is assigned)
            rate = (position - self._first) / max(now - self._started, 1e-9)
            self.bar.set_postfix(loss=f"{self._loss:.3f}",
                                 ppl=f"{math.exp(min(self._loss, 50)):.1f}",
                                 tok_s=f"{rate * self._tokens_per_batch:,.0f}", lr=f"{lr:.3g}",
                                 refresh=False)
            self.bar.refresh()
            self._last = now

    def reset(self, position: int) -> None:
        """Back to ``position`` after a rollback; the rate is counted afresh from here."""
        self._first, self._started = position, time.perf_counter()
        if self.bar is not None:
            self.bar.n = position
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    @staticmethod
    def write(message: str) -> None:
        """Print a line without breaking a running bar."""
        from tqdm.auto import tqdm

        tqdm.write(message, file=sys.stderr)
