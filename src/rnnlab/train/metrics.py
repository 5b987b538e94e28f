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
    disk) raises an ``OSError`` that names ``path``. Every record carries ``world_size``
    (the number of processes training, 1 for a single process) and ``wall_s``, the
    seconds since this log was opened (a resumed run starts again from 0: ``rnnlab plot
    curves --x time`` adds the parts up); with ``enabled=False`` (the ranks other than 0
    of a run on many processes) nothing is written.
    """

    def __init__(self, path: str | Path, *, world_size: int = 1, enabled: bool = True) -> None:
        self.path = Path(path)
        self.world_size, self.enabled = int(world_size), bool(enabled)
        self.started = time.time()
        self._clock = time.perf_counter()
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
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
        record = {"event": event, "time": round(time.time(), 3),
                  "wall_s": round(time.perf_counter() - self._clock, 3),
                  "world_size": self.world_size, **fields}
        if not self.enabled:
            return record
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
    """A tqdm bar over the batches of an epoch showing loss, perplexity and throughput.

    When ``file`` (standard error by default) is not a terminal (a log, CI, ``nohup``), no
    bar is drawn: a plain line is printed every ``interval`` seconds and at the end of the
    epoch instead of carriage-return frames. The rate (and so tqdm's remaining time)
    leaves out the first step after the start or a rollback, which holds one-off costs
    (numba's compilation, the first allocation).
    """

    def __init__(self, total: int, initial: int, desc: str, *, tokens_per_batch: int = 0,
                 enabled: bool = True, unit: str = "tok", show_ppl: bool = True,
                 file: Any = None, interval: float = 30.0) -> None:
        self.bar = None
        self.file = sys.stderr if file is None else file
        self._last = self._started = time.perf_counter()
        self._first = initial
        self._timed = False  # whether the first step is over (the rate starts after it)
        self._tokens_per_batch = tokens_per_batch
        self._loss: float | None = None
        self._unit, self._show_ppl = unit, show_ppl
        self.total, self.desc, self.interval = total, desc, interval
        self.plain = False
        self._position = self._printed = initial
        self._lr, self._rate = 0.0, None  # type: float, float | None
        if enabled:
            isatty = getattr(self.file, "isatty", None)
            self.plain = not (callable(isatty) and isatty())
            if not self.plain:
                from tqdm.auto import tqdm  # type: ignore[import-untyped]

                self.bar = tqdm(total=total, initial=initial, desc=desc, unit="batch",
                                dynamic_ncols=True, leave=False, file=self.file)

    def _postfix(self, lr: float, rate: float | None) -> dict[str, str]:
        out = {"loss": f"{self._loss:.3f}"}
        if self._show_ppl:
            out["ppl"] = f"{math.exp(min(self._loss or 0.0, 50)):.1f}"
        if rate is not None:
            out[f"{self._unit}_s"] = f"{rate * self._tokens_per_batch:,.0f}"
        out["lr"] = f"{lr:.3g}"
        return out

    def update(self, position: int, *, loss: float, lr: float) -> None:
        if self.bar is None and not self.plain:
            return
        self._loss = loss if self._loss is None else 0.9 * self._loss + 0.1 * loss
        self._position = position
        now = time.perf_counter()
        if not self._timed:  # the first step is left out of the rate
            self._timed, self._first, self._started = True, position, now
            if self.bar is not None:
                self.bar.start_t, self.bar.initial = self.bar._time(), position
        done = position - self._first
        rate = done / max(now - self._started, 1e-9) if done > 0 else None
        self._lr, self._rate = lr, rate
        if self.plain:
            if now - self._last >= self.interval or position == self.total:
                self._print_line(position, lr, rate)
                self._last = now
            return
        assert self.bar is not None
        self.bar.n = position
        if now - self._last > 0.5 or position == self.bar.total:
            # batches/s since the first step (tqdm's own rate stays unset: ``n`` is assigned)
            self.bar.set_postfix(**self._postfix(lr, rate), refresh=False)
            self.bar.refresh()
            self._last = now

    def _print_line(self, position: int, lr: float, rate: float | None) -> None:
        self._printed = position
        fields = ", ".join(f"{k} {v}" for k, v in self._postfix(lr, rate).items())
        line = f"{self.desc}: {position}/{self.total} batches, {fields}"
        if rate is not None and rate > 0 and position < self.total:
            line += f", about {(self.total - position) / rate:,.0f} s left"
        try:
            print(line, file=self.file, flush=True)
        except (OSError, ValueError):  # the log went away: training goes on
            pass

    def reset(self, position: int) -> None:
        """Back to ``position`` after a rollback; the rate is counted afresh from here."""
        self._first, self._started = position, time.perf_counter()
        self._timed = False
        if self.bar is not None:
            self.bar.n = position
            self.bar.refresh()

    def close(self) -> None:
        """End the bar (a plain log gets a last line where the epoch stopped, if unsaid)."""
        if self.plain and self._loss is not None and self._printed != self._position:
            self._print_line(self._position, self._lr, self._rate)
        if self.bar is not None:
            self.bar.close()

    @staticmethod
    def write(message: str) -> None:
        """Print a line without breaking a running bar."""
        from tqdm.auto import tqdm

        tqdm.write(message, file=sys.stderr)


class TrainWindow:
    """The training loss and items between two ``train`` records."""

    def __init__(self) -> None:
        self.loss, self.steps, self.items = 0.0, 0, 0
        self.t0 = time.perf_counter()

    def add(self, loss: float, items: int) -> None:
        self.loss, self.steps, self.items = self.loss + loss, self.steps + 1, self.items + items

    def record(self, perplexities: bool, lr: float) -> dict[str, Any]:
        """The ``train`` record's figures: the mean loss, its perplexity, the rate."""
        elapsed = time.perf_counter() - self.t0
        mean = self.loss / self.steps
        rate = self.items / max(elapsed, 1e-9)
        return {"loss": mean, **loss_fields(mean, perplexities), "lr": lr,
                "tokens_per_s" if perplexities else "examples_per_s": rate}


def loss_fields(loss: float | None, perplexities: bool) -> dict[str, float]:
    """``ppl`` beside a loss in nats per token (language models)."""
    return {"ppl": perplexity(loss)} if perplexities and loss is not None else {}


def describe(loss: float | None, perplexities: bool) -> str:
    """A loss as the progress lines show it."""
    if loss is None:
        return "none"
    return f"ppl {perplexity(loss):.2f}" if perplexities else f"loss {loss:.4g}"


def shown(scores: dict[str, float]) -> str:
    """Scores (fractions) as the progress lines show them: ``, accuracy 93.75 %``."""
    return "".join(f", {k.replace('_', ' ')} {100 * v:.2f} %" for k, v in scores.items())
