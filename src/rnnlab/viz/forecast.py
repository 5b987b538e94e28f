"""The forecast of a time-series forecaster against the truth (``rnnlab train --task
forecast`` draws it to ``<run>/forecast.png``).

:func:`forecast` puts the model's forecasts of the validation windows back in the
series' units; :func:`plot_forecast` draws them (matplotlib, the ``viz`` extra) and
:func:`save_forecast` writes the figure (atomically, never through a link).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.backend import to_numpy
from rnnlab.viz._mpl import new_figure, save_figure


def forecast(model: Any, windows: Any) -> Any:
    """The model's forecasts of the validation windows, in the series' units
    (``(N, horizon)``; row ``i`` forecasts the values from ``windows.valid_times[i]`` on)."""
    was_training = model.training
    model.eval()
    try:
        pred = to_numpy(model.forward(model.xp.asarray(windows.valid[0], dtype=model.dtype)))
    finally:
        model.train(was_training)
    return windows.to_series(np.asarray(pred))


def plot_forecast(model: Any, windows: Any) -> Any:
    """A figure of the forecasts of the validation part against the series (the truth):
    the one-step forecasts, and the ``horizon``-step ones when the horizon is longer.
    Raises ImportError (naming the ``viz`` extra) without matplotlib."""
    pred = forecast(model, windows)
    fig = new_figure(figsize=(10, 3.5))
    ax = fig.add_subplot()
    series, split, h = windows.series, windows.split, windows.horizon
    start = max(0, split - 2 * windows.window)
    t = np.arange(start, len(series))
    ax.plot(t, series[start:], color="k", lw=1, label="truth")
    ax.axvline(split - 0.5, color="0.6", ls="--", lw=1, label="validation starts")
    ax.plot(windows.valid_times, pred[:, 0], color="tab:blue", lw=1.2,
            label="forecast, 1 step ahead")
    if h > 1:
        ax.plot(windows.valid_times + h - 1, pred[:, -1], color="tab:red", lw=1.2,
                label=f"forecast, {h} steps ahead")
    mse = float(np.mean((pred[:, 0] - series[windows.valid_times]) ** 2))
    ax.set_title(f"forecast against truth on the validation part (one-step MSE {mse:.4g})")
    ax.set_xlabel("time step")
    ax.legend(loc="upper left", fontsize="small")
    return fig


def save_forecast(model: Any, windows: Any, path: str | Path) -> Path:
    """Draw :func:`plot_forecast` and write it to ``path`` (format from the suffix; none:
    ``.png`` added) through :func:`rnnlab.data.safefiles.write_atomic`; returns the file
    written."""
    written = save_figure(plot_forecast(model, windows), path, dpi=120, bbox_inches=None)
    assert written is not None
    return written
