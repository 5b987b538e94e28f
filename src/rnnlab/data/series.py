"""Time series for forecasting: one column of a CSV file, windows of it, a split in time.

* :func:`read_csv_column` reads one numeric column with the standard :mod:`csv` module;
  a missing column, a cell that is not a finite number or a file without rows is a
  :class:`DataError` naming the file, the column and the row.
* :func:`make_windows` cuts a 1-D series into inputs ``(N, window, 1)`` and the targets
  that follow them (many-to-one: the next ``horizon`` values; many-to-many: the window
  shifted by ``horizon``).
* :func:`forecast_windows` splits a series in time (the first part to train, the rest to
  validate), standardises it with the training part's mean and deviation and windows both
  parts. No training target lies in the validation part: a validation window may read
  the end of the training part as its input, but every value it is scored on comes after
  the last training target.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.data.errors import DataError
from rnnlab.data.textio import read_limited

#: Largest CSV file :func:`read_csv_column` reads unless told otherwise (bytes).
MAX_CSV_BYTES = 1 << 30


def read_csv_column(path: str | Path, column: str, *, max_bytes: int = MAX_CSV_BYTES
                    ) -> np.ndarray:
    """The values of ``column`` in the CSV file ``path`` (a header row, then one row per
    time step), as float64.

    The file must be a regular file (a FIFO or a device such as ``/dev/zero`` is refused
    without blocking, see :func:`~rnnlab.data.textio.open_regular`) of at most
    ``max_bytes`` bytes, in UTF-8 (a byte-order mark is dropped).

    Raises
    ------
    DataError
        The file cannot be read, is not a regular file, is larger than ``max_bytes``, is
        not UTF-8 (the message gives the byte offset and the line), has no header, has no
        column ``column`` (the message lists the columns it has) or has it more than once
        (the message names the positions), a cell of the column is empty or not a finite
        number (the message names the row and the line), or there are no rows.
    """
    name = str(path)
    raw = read_limited(path, max_bytes)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        bad = raw[exc.start:exc.end].hex(" ")
        raise DataError(f"{name}, line {line}: not valid UTF-8 at byte offset {exc.start:,} "
                        f"(bytes {bad}: {exc.reason}); re-encode the file as UTF-8, e.g. "
                        f"iconv -f latin1 -t utf-8") from None
    del raw
    values: list[float] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(f"{name}: is empty; expected a header row naming the column "
                            f"{column!r}, then one row per time step")
        header = [h.strip() for h in header]
        if column not in header:
            raise DataError(f"{name}: has no column {column!r}; its columns are "
                            f"{', '.join(repr(h) for h in header)}")
        same = [i + 1 for i, h in enumerate(header) if h == column]
        if len(same) > 1:
            raise DataError(f"{name}: the header names {len(same)} columns {column!r} "
                            f"(columns {', '.join(map(str, same))} of {len(header)}); "
                            f"rename them so that the column to read is unambiguous")
        index = header.index(column)
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                continue  # blank line
            where = (f"{name}, row {len(values) + 1} (line {reader.line_num}), column "
                     f"{column!r}")
            if index >= len(row):
                raise DataError(f"{where}: the row has {len(row)} cell(s), no value for "
                                f"the column")
            cell = row[index].strip()
            try:
                value = float(cell)
            except ValueError:
                raise DataError(f"{where}: expected a number, got {cell[:40]!r}") from None
            if not math.isfinite(value):
                raise DataError(f"{where}: expected a finite number, got {cell[:40]!r}")
            values.append(value)
    except csv.Error as exc:
        raise DataError(f"{name}, line {reader.line_num}: not a readable CSV file "
                        f"({exc})") from exc
    if not values:
        raise DataError(f"{name}: column {column!r} has no rows (only the header)")
    return np.asarray(values, dtype=np.float64)


def _positive_int(value: object, owner: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{owner}: {name} expected an int >= 1, got {value!r}")
    return int(value)


def make_windows(x: np.ndarray, window: int, horizon: int = 1, *, many_to_many: bool = False,
                 stride: int = 1, dtype: object = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``(N, window, 1)`` and their targets from the 1-D series ``x``.

    Many-to-one: the target of ``x[s : s + window]`` is ``x[s + window : s + window +
    horizon]`` (``(N, horizon)``). Many-to-many: it is ``x[s + horizon : s + window +
    horizon]``, the window shifted by ``horizon`` (``(N, window, 1)``). Windows start at
    ``0, stride, 2 stride, ...`` while their targets fit in ``x``.
    """
    window = _positive_int(window, "make_windows", "window")
    horizon = _positive_int(horizon, "make_windows", "horizon")
    stride = _positive_int(stride, "make_windows", "stride")
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"make_windows: x expected a 1-D series, got shape {x.shape}")
    if len(x) < window + horizon:
        raise ValueError(f"make_windows: x expected at least window + horizon = "
                         f"{window + horizon} values, got {len(x)}")
    starts = np.arange(0, len(x) - window - horizon + 1, stride)
    steps = starts[:, None] + np.arange(window)[None, :]  # (N, window) indices
    inputs = x[steps][:, :, None]
    if many_to_many:
        targets = x[steps + horizon][:, :, None]
    else:
        targets = x[starts[:, None] + window + np.arange(horizon)[None, :]]
    return inputs.astype(dtype), targets.astype(dtype)


@dataclass
class ForecastWindows:
    """A series split in time and windowed (see :func:`forecast_windows`).

    ``train`` and ``valid`` are ``(inputs, targets)`` in standardised units; ``split`` is
    the index of the first validation value in ``series``; ``mean`` and ``std`` (of the
    training part) turn predictions back into the series' units (:meth:`to_series`);
    ``valid_times`` are the indices in ``series`` of the validation targets' first values.
    """

    series: np.ndarray
    split: int
    window: int
    horizon: int
    mean: float
    std: float
    train: tuple[np.ndarray, np.ndarray]
    valid: tuple[np.ndarray, np.ndarray]
    valid_times: np.ndarray

    def to_series(self, values: np.ndarray) -> np.ndarray:
        """Standardised values back in the series' units."""
        return np.asarray(values, dtype=np.float64) * self.std + self.mean


def forecast_windows(series: np.ndarray, window: int, horizon: int = 1, *,
                     valid_fraction: float = 0.2, where: str = "the series",
                     dtype: object = np.float32) -> ForecastWindows:
    """Split ``series`` in time and window both parts for many-to-one forecasting.

    The last ``valid_fraction`` of the values (at least ``horizon``) are the validation
    part. Training windows and their targets lie in the training part; a validation window
    reads the ``window`` values before its targets (the first ones end the training part)
    and its targets lie in the validation part. Both are standardised with the mean and
    standard deviation of the training part only, and windowed as ``dtype`` (the model's).

    Raises :class:`DataError` (naming ``where``) when the series is too short for one
    training window and one validation window, or holds a value too large for the
    standardisation (the training part's mean or standard deviation overflows float64)
    or for ``dtype`` once standardised; the message names the row (1 = the first value).
    """
    window = _positive_int(window, "forecast_windows", "window")
    horizon = _positive_int(horizon, "forecast_windows", "horizon")
    if isinstance(valid_fraction, bool) or not isinstance(valid_fraction, int | float) \
            or not 0 < valid_fraction < 1:
        raise ValueError(f"forecast_windows: valid_fraction expected a number in (0, 1), got "
                         f"{valid_fraction!r}")
    kind: np.dtype[Any] = np.dtype(dtype)  # type: ignore[call-overload]
    if kind.kind != "f":
        raise TypeError(f"forecast_windows: dtype expected a floating-point dtype, got {kind}")
    x = np.asarray(series, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"forecast_windows: series expected a 1-D array, got shape {x.shape}")
    n = len(x)
    n_valid = max(horizon, round(n * valid_fraction))
    split = n - n_valid
    need = window + horizon
    if split < need or n - split < horizon:
        least = need + horizon
        while least - max(horizon, round(least * valid_fraction)) < need:
            least += 1
        if split > 0:
            left = f"leaves the training part {split} rows, and it needs at least {need}"
        else:
            left = (f"leaves nothing to train on: the validation part alone takes {n_valid} "
                    f"rows (at least the horizon) and the training part needs at least "
                    f"{need}")
        raise DataError(f"{where}: too few rows ({n}) for window {window} and horizon "
                        f"{horizon} with a validation fraction of {valid_fraction:g}: that "
                        f"{left} (window + horizon); give at least {least} rows, or a "
                        f"smaller window or horizon")
    mean, std = _standardisation(x, split, where, kind)
    z = (x - mean) / std
    train = make_windows(z[:split], window, horizon, dtype=kind)
    # validation windows: targets start at split, split + 1, ...; inputs the window before
    valid = make_windows(z[split - window:], window, horizon, dtype=kind)
    valid_times = split + np.arange(len(valid[0]))
    return ForecastWindows(series=x, split=split, window=window, horizon=horizon, mean=mean,
                           std=std, train=train, valid=valid, valid_times=valid_times)


def _standardisation(x: np.ndarray, split: int, where: str, dtype: np.dtype[Any]
                     ) -> tuple[float, float]:
    """The training part's mean and standard deviation, checked: both finite, and every
    standardised value within the range of ``dtype`` (else a :class:`DataError` naming
    the row of the value at fault)."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean = float(x[:split].mean())
        std = float(x[:split].std())
    if not (math.isfinite(mean) and math.isfinite(std)):
        row = int(np.argmax(np.abs(x[:split])))
        raise DataError(f"{where}, row {row + 1}: the value {x[row]:g} is too large to "
                        f"standardise the series with: the training part's "
                        f"{'mean' if not math.isfinite(mean) else 'standard deviation'} "
                        f"overflows float64 (squares of values above about 1e154 do); "
                        f"rescale the column")
    if not std > 0:
        std = 1.0
    limit = float(np.finfo(dtype).max)
    with np.errstate(over="ignore", invalid="ignore"):
        z = np.abs((x - mean) / std)
    bad = np.flatnonzero(~(z <= limit))
    if bad.size:
        row = int(bad[0])
        part = "training" if row < split else "validation"
        raise DataError(f"{where}, row {row + 1} (in the {part} part): the value {x[row]:g} "
                        f"is {z[row]:.3g} standard deviations from the training part's mean, "
                        f"more than {dtype} can hold (at most {limit:.3g}); rescale or "
                        f"clean the column")
    return mean, std
