"""Training curves from one or more runs' ``metrics.jsonl``: loss, perplexity, learning rate.

A run is a run folder (holding ``metrics.jsonl``) or the metrics file itself. Steps that
were logged more than once (after a divergence rollback or a resumed run) keep their
last value, so a curve shows the trajectory that survived; rollbacks are marked.

Values that cannot be drawn (NaN, infinities, and numbers beyond ``±DRAWABLE``, whose
axis ranges overflow) are left out, and so are records whose step is not a whole number
of steps; the figure says how many. A log with nothing left to draw is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.data import DataError
from rnnlab.train.metrics import read_metrics
from rnnlab.viz._mpl import new_figure, save_figure

METRICS_FILE = "metrics.jsonl"
#: The largest magnitude drawn: beyond it an axis range or its ticks overflow a float.
DRAWABLE = 1e300
#: The largest step taken as a step (a float holds every whole number up to it).
_MAX_STEP = 2.0**53


@dataclass
class RunCurves:
    """The series of one run: ``{event: (steps, values)}`` per quantity."""

    name: str
    path: Path
    train: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    valid: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)
    divergences: list[int] = field(default_factory=list)
    skipped: int = 0  # train, valid and divergence records without a usable step
    #: ``{event: {step: minutes of training wall time}}`` (see :func:`wall_minutes`)
    minutes: dict[str, dict[int, float]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not any(len(s) for s, _ in self.train.values()) and \
            not any(len(s) for s, _ in self.valid.values())


def _number(value: Any) -> float | None:
    """A float from a metrics value (JSON numbers, or "inf"/"nan" strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _step(value: Any) -> int | None:
    """A step from a metrics value: a finite whole number in ``[0, 2**53]``, else None."""
    number = _number(value)
    if number is None or not 0 <= number <= _MAX_STEP or number != int(number):
        return None  # NaN fails the comparisons too
    return int(number)


def _drawable(values: np.ndarray) -> np.ndarray:
    """Which values can be drawn: finite and at most :data:`DRAWABLE` in magnitude."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(values) & (np.abs(values) <= DRAWABLE)


def metrics_path(run: str | Path) -> Path:
    """The metrics file of ``run`` (a run folder or the file itself)."""
    path = Path(run)
    if path.is_dir():
        path = path / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no metrics log at {path} (expected a run folder holding "
                                f"{METRICS_FILE}, or the file itself)")
    return path


def _series(records: list[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    by_step: dict[int, float] = {}
    for r in records:
        step, value = _step(r.get("step")), _number(r.get(key))
        if step is None or value is None:
            continue
        by_step[step] = value  # later records win (rollbacks, resumes)
    steps = np.array(sorted(by_step), dtype=np.int64)
    values = np.array([by_step[s] for s in steps.tolist()], dtype=np.float64)
    return steps, values


def _read(path: Path) -> list[dict[str, Any]]:
    """The records of a metrics file; a file that is not UTF-8 text (or a line nested too
    deeply for the JSON reader) is a ``DataError`` naming the file and the place."""
    try:
        return read_metrics(path)
    except UnicodeDecodeError:
        data = path.read_bytes()
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:  # positions in the whole file, not one buffer
            line = data.count(b"\n", 0, exc.start) + 1
            raise DataError(f"{path}: not UTF-8 text (line {line}, byte {exc.start}: "
                            f"{exc.reason}); expected the {METRICS_FILE} that rnnlab train "
                            f"writes") from None
        raise  # pragma: no cover - the file changed between the two reads
    except RecursionError:
        raise DataError(f"{path}: a line is nested too deeply to be read as JSON; expected "
                        f"the {METRICS_FILE} that rnnlab train writes") from None


def wall_minutes(records: list[dict[str, Any]]) -> list[float | None]:
    """The training wall time of each record, in minutes: its ``wall_s`` (seconds since
    its process opened the log), plus the last ``wall_s`` of every earlier process where
    a run was resumed (``wall_s`` falls back). A log without ``wall_s`` (older rnnlab)
    uses ``time`` from its first record on, which leaves out the time before that record
    and counts the pauses between resumes. None for a record with neither."""
    out: list[float | None] = []
    offset, last, first_time = 0.0, 0.0, None
    for r in records:
        wall, clock = _number(r.get("wall_s")), _number(r.get("time"))
        if wall is not None:
            if wall < last:
                offset += last
            last = wall
            out.append((offset + wall) / 60)
        elif clock is not None:
            first_time = clock if first_time is None else first_time
            out.append((clock - first_time) / 60)
        else:
            out.append(None)
    return out


def load_run(run: str | Path, name: str | None = None) -> RunCurves:
    """Read one run's metrics into :class:`RunCurves`."""
    path = metrics_path(run)
    records = _read(path)
    if name is None:
        name = path.resolve().parent.name if path.name == METRICS_FILE else path.stem
    curves = RunCurves(name=name, path=path)
    by_event: dict[str, list[dict[str, Any]]] = {}
    for r, minutes in zip(records, wall_minutes(records), strict=True):
        event = str(r.get("event"))
        by_event.setdefault(event, []).append(r)
        step = _step(r.get("step"))
        if step is not None and minutes is not None:
            curves.minutes.setdefault(event, {})[step] = minutes  # later records win
    for event, target in (("train", curves.train), ("valid", curves.valid)):
        for key in ("loss", "ppl", "lr"):
            target[key] = _series(by_event.get(event, []), key)
    for r in by_event.get("test", []):
        for key in ("loss", "ppl"):
            value = _number(r.get(key))
            if value is not None:
                curves.test[key] = value
        step = _step(r.get("step"))
        if step is not None:
            curves.test["step"] = float(step)
    curves.divergences = [s for r in by_event.get("divergence", [])
                          if (s := _step(r.get("step"))) is not None]
    curves.skipped = sum(_step(r.get("step")) is None
                         for event in ("train", "valid", "divergence")
                         for r in by_event.get(event, []))
    return curves


def load_runs(runs: Sequence[str | Path], names: Sequence[str] | None = None
              ) -> list[RunCurves]:
    """:func:`load_run` for each run; names default to the run folders' names (made
    unique by their parents when two runs share a folder name)."""
    if isinstance(runs, str | Path):
        runs = [runs]
    if not runs:
        raise ValueError("load_runs: expected at least one run")
    if names is not None and len(names) != len(runs):
        raise ValueError(f"load_runs: {len(runs)} runs but {len(names)} names")
    loaded = [load_run(r, None if names is None else names[i]) for i, r in enumerate(runs)]
    if names is None:
        seen: dict[str, int] = {}
        for c in loaded:
            seen[c.name] = seen.get(c.name, 0) + 1
        for c in loaded:
            if seen[c.name] > 1:
                c.name = f"{c.path.parent.parent.name}/{c.path.parent.name}"
    return loaded


def _finite(steps: np.ndarray, values: np.ndarray, positive: bool = False
            ) -> tuple[np.ndarray, np.ndarray]:
    ok = _drawable(values)
    if positive:
        ok &= values > 0
    return steps[ok], values[ok]


X_AXES = ("step", "time")


def _at(c: RunCurves, event: str, steps: np.ndarray, x: str) -> np.ndarray:
    """The x coordinates of ``steps`` of ``event``: the steps, or with ``x="time"`` the
    minutes of training wall time at which they were logged (NaN where unknown)."""
    if x == "step":
        return steps
    clock = c.minutes.get(event, {})
    return np.array([clock.get(int(s), np.nan) for s in steps], dtype=np.float64)


def plot_training_curves(runs: Sequence[str | Path | RunCurves] | str | Path,
                         out: str | Path | None = None, *, names: Sequence[str] | None = None,
                         title: str | None = None, smooth: int = 1, dpi: int = 100,
                         x: str = "step") -> Any:
    """Loss, perplexity (log scale) and learning rate against step, or with
    ``x="time"`` against minutes of training wall time (:func:`wall_minutes`; to compare
    runs in the same time budget), for one run or several overlaid (one colour per run;
    training solid, validation dashed with markers, test a star, rollbacks red ticks).
    ``smooth`` averages the training curves over that many logged points. Returns the
    Figure (and writes ``out`` when given)."""
    if x not in X_AXES:
        raise ValueError(f"plot_training_curves: x expected one of {list(X_AXES)}, got {x!r}")

    if isinstance(runs, str | Path):
        runs = [runs]
    loaded = [r if isinstance(r, RunCurves) else None for r in runs]
    paths = [r for r in runs if not isinstance(r, RunCurves)]
    if paths:
        fresh = iter(load_runs(paths, None if names is None else
                               [n for n, r in zip(names, runs, strict=True)
                                if not isinstance(r, RunCurves)]))
        loaded = [r if r is not None else next(fresh) for r in loaded]
    curves: list[RunCurves] = [r for r in loaded if r is not None]
    if all(c.empty for c in curves):
        skipped = sum(c.skipped for c in curves)
        raise ValueError("plot_training_curves: the metrics logs hold no train or valid "
                         + (f"records with a usable step ({skipped} records have a step that "
                            f"is not a whole number >= 0)" if skipped else "records yet"))
    series = [v for c in curves for part in (c.train, c.valid) for _, v in part.values()]
    left_out = sum(int((~_drawable(v)).sum()) for v in series)
    if not any(_drawable(v).any() for v in series):
        where = ", ".join(str(c.path) for c in curves)
        raise ValueError(f"plot_training_curves: no finite loss, perplexity or learning rate "
                         f"in {where}: all {left_out} logged values are NaN, infinite or "
                         f"beyond ±{DRAWABLE:g}")
    fig = new_figure(figsize=(13.5, 4.0), dpi=dpi)
    ax_loss, ax_ppl, ax_lr = fig.subplots(1, 3)
    colors = [f"C{i % 10}" for i in range(len(curves))]
    for c, color in zip(curves, colors, strict=True):
        for ax, key, positive in ((ax_loss, "loss", False), (ax_ppl, "ppl", True)):
            s, v = _finite(*c.train[key], positive=positive)
            if smooth > 1 and len(v) >= smooth:
                kernel = np.ones(smooth) / smooth
                v = np.convolve(v, kernel, mode="valid")
                s = s[smooth - 1:]
            if len(s):
                ax.plot(_at(c, "train", s, x), v, color=color, lw=1.4,
                        label=f"{c.name} train")
            s, v = _finite(*c.valid[key], positive=positive)
            if len(s):
                ax.plot(_at(c, "valid", s, x), v, color=color, lw=1.4, ls="--", marker="o",
                        ms=4, label=f"{c.name} valid")
            if key in c.test and _drawable(np.array(c.test[key])) and (c.test[key] > 0 or
                                                                       not positive):
                step = c.test.get("step", s[-1] if len(s) else 0)
                at = _at(c, "test", np.array([step]), x)
                ax.plot(at, [c.test[key]], color=color, marker="*", ms=12, ls="none",
                        label=f"{c.name} test {c.test[key]:.3g}")
            for d in _at(c, "divergence", np.array(c.divergences, dtype=np.int64), x):
                ax.axvline(d, color="red", lw=0.8, alpha=0.6)
        s, v = _finite(*c.train["lr"], positive=True)
        if len(s):
            ax_lr.plot(_at(c, "train", s, x), v, color=color, lw=1.4, label=c.name,
                       drawstyle="steps-post")
        s, v = _finite(*c.valid["lr"], positive=True)
        if len(s):
            ax_lr.plot(_at(c, "valid", s, x), v, color=color, ls="none", marker="o", ms=4)
        for d in _at(c, "divergence", np.array(c.divergences, dtype=np.int64), x):
            ax_lr.axvline(d, color="red", lw=0.8, alpha=0.6)
    ax_loss.set_ylabel("loss (nats per token)")
    ax_ppl.set_ylabel("perplexity")
    ax_ppl.set_yscale("log")
    ax_lr.set_ylabel("learning rate")
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda value, _pos: f"{value:g}")
    ax_ppl.yaxis.set_major_formatter(plain)
    ax_ppl.yaxis.set_minor_formatter(plain)
    ax_ppl.tick_params(axis="y", which="minor", labelsize=7)
    values = np.concatenate([c.train["lr"][1] for c in curves] + [c.valid["lr"][1]
                                                                    for c in curves])
    values = values[_drawable(values) & (values > 0)]
    if values.size and values.max() > 20 * values.min():
        ax_lr.set_yscale("log")
    else:
        ax_lr.set_ylim(0, 1.15 * values.max() if values.size else 1.0)
        ax_lr.yaxis.set_major_formatter(plain)
    for ax, name in ((ax_loss, "Loss"), (ax_ppl, "Perplexity"), (ax_lr, "Learning rate")):
        ax.set_xlabel("step" if x == "step" else "training wall time (minutes)")
        ax.set_title(name, fontsize=10)
        ax.grid(True, alpha=0.3)
    if any(c.divergences for c in curves):
        ax_loss.plot([], [], color="red", lw=0.8, label="divergence rollback")
    if ax_loss.get_legend_handles_labels()[0]:
        ax_loss.legend(fontsize=7, loc="upper right")
    if len(curves) > 1 and ax_lr.get_legend_handles_labels()[0]:
        ax_lr.legend(fontsize=7, loc="best")
    skipped = sum(c.skipped for c in curves)
    if left_out or skipped:
        parts = ([f"{left_out} values that are NaN, infinite or beyond ±{DRAWABLE:g}"]
                 if left_out else []) + \
            ([f"{skipped} records without a usable step"] if skipped else [])
        fig.text(0.005, 0.995, "left out: " + "; ".join(parts), fontsize=7, color="0.35",
                 ha="left", va="top")
    fig.suptitle(title or "Training curves: " + ", ".join(c.name for c in curves),
                 fontsize=11)
    save_figure(fig, out)
    return fig
