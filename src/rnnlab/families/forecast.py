"""The regressor and the forecaster (:class:`~rnnlab.models.SequenceRegressor`): their
tasks and the forecaster's launcher.

:class:`RegressionTask` trains a regressor on :class:`~rnnlab.train.examples.Examples`
(mean squared error); :class:`ForecastTask` one forecasting a series from windows of it,
whose checkpoints also say where the series came from. :func:`start_forecast` and
:func:`resume_forecast` are what ``rnnlab train --task forecast`` calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.data.series import forecast_windows, read_csv_column
from rnnlab.models.regressor import SequenceRegressor
from rnnlab.train import state as st
from rnnlab.train.checkpoint import CheckpointError, meta_get, read_checkpoint
from rnnlab.train.config import TrainConfig
from rnnlab.train.examples import Examples, ExampleTask, digest_of, examples_of
from rnnlab.train.launch import (
    Echo,
    check_output_file,
    fit_new_run,
    read_named_file,
    resuming,
    starting,
)
from rnnlab.train.loop import Trainer
from rnnlab.train.task import DEFAULT_TASKS
from rnnlab.viz.forecast import save_forecast


def _splits(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: examples_of(data.get(k), "Trainer", k) for k in ("train", "valid", "test")}


def windows_digest(windows: Any) -> str:
    """The digest a forecasting run's checkpoint records for its windows (that of its
    :class:`ForecastTask`)."""
    return digest_of(_splits({"train": windows.train, "valid": windows.valid}))


class RegressionTask(ExampleTask):
    """A :class:`~rnnlab.models.SequenceRegressor` on :class:`Examples` (mean squared
    error; ``lengths`` passed through)."""

    kind = "regressor"

    def __init__(self, model: Any, data: Mapping[str, Any], config: Any) -> None:
        super().__init__(model, _splits(data), config, size=len, take=Examples.take)

    def digest(self) -> str:
        return digest_of(self.splits)

    def forward_loss(self, batch: tuple) -> float:
        xs, ys, lengths = batch
        xp, dtype = self.model.xp, self.model.dtype
        return self.model.forward_loss(xp.asarray(xs, dtype=dtype), xp.asarray(ys, dtype=dtype),
                                       lengths=lengths)

    def counts(self, batch: tuple) -> tuple[int, int]:
        """The examples, and the values the mean squared error averages: every target
        value, or, many-to-many with lengths, the valid steps times the outputs."""
        xs, ys, lengths = batch
        if lengths is None or not self.model.many_to_many:
            return len(xs), int(np.size(ys))
        steps = np.clip(np.asarray(lengths), 0, np.shape(xs)[1])
        return len(xs), int(steps.sum()) * int(self.model.output_size)

    def meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "model_config": regressor_config(self.model)}


def regressor_config(model: Any) -> dict[str, Any]:
    """The constructor arguments of a :class:`~rnnlab.models.SequenceRegressor`."""
    rnn = model.rnn
    return {"input_size": int(rnn.input_size), "hidden_size": int(rnn.hidden_size),
            "output_size": int(model.output_size), "num_layers": int(rnn.num_layers),
            "cell": model.cell, "many_to_many": model.many_to_many,
            "bidirectional": rnn.num_directions == 2, "dropout": float(rnn.dropout),
            "nonlinearity": getattr(rnn, "nonlinearity", "tanh"),
            "dtype": np.dtype(model.dtype).name}


class ForecastTask(RegressionTask):
    """A many-to-one :class:`~rnnlab.models.SequenceRegressor` forecasting a series from
    windows of it (:func:`rnnlab.data.series.forecast_windows`): a regression task whose
    checkpoints also record where the series came from and how it was windowed and
    standardised (``forecast``: ``csv``, ``column``, ``window``, ``horizon``,
    ``valid_fraction``, ``mean``, ``std``), so a run can be resumed and its forecasts put
    back in the series' units."""

    def __init__(self, model: Any, windows: Any, config: Any, *,
                 source: Mapping[str, Any]) -> None:
        super().__init__(model, {"train": windows.train, "valid": windows.valid}, config)
        self.windows = windows
        self.source = {**source, "window": windows.window, "horizon": windows.horizon,
                       "mean": windows.mean, "std": windows.std}

    def meta(self) -> dict[str, Any]:
        return {**super().meta(), "forecast": dict(self.source)}

    def check_meta(self, meta: Mapping[str, Any], where: str) -> None:
        super().check_meta(meta, where)
        saved = meta_get(meta, "forecast", dict, where)
        for key in ("column", "window", "horizon", "valid_fraction"):
            if saved.get(key) != self.source.get(key):
                raise CheckpointError(f"{where}: was trained with {key}={saved.get(key)!r}, "
                                      f"this run has {key}={self.source.get(key)!r}")


#: Training defaults of a forecasting run (a small regressor on a few hundred windows).
FORECAST_TRAIN_DEFAULTS: dict[str, Any] = {"epochs": 20, "lr": 0.01, "batch_size": 32}
#: Model defaults of a forecasting run (``SequenceRegressor`` arguments).
FORECAST_MODEL_DEFAULTS: dict[str, Any] = {"hidden_size": 32, "num_layers": 1, "cell": "lstm",
                                           "dropout": 0.0, "dtype": "float32"}


def _forecast_data(csv: str | Path, column: str, window: int, horizon: int,
                   valid_fraction: float, dtype: Any) -> Any:
    """The windows of the column, standardised and held as ``dtype`` (the model's: a value
    it cannot hold is refused at load, naming its row)."""
    values = read_csv_column(csv, column)
    return forecast_windows(values, window, horizon, valid_fraction=valid_fraction,
                            where=f"{csv}, column {column!r}",
                            dtype=np.float32 if dtype is None else dtype)


def _forecast_model(config: dict[str, Any], seed: int, device: str | None) -> Any:
    kw = dict(config)
    dtype = kw.pop("dtype", None)
    return SequenceRegressor(**kw, rng=seed, device=device, dtype=dtype)


def _forecast_task(model: Any, windows: Any, train_cfg: TrainConfig, csv: str | Path,
                   column: str, valid_fraction: float) -> ForecastTask:
    return ForecastTask(model, windows, train_cfg,
                        source={"csv": str(csv), "column": column,
                                "valid_fraction": valid_fraction})


def start_forecast(csv: str | Path, column: str, model_kw: dict[str, Any],
                   train_kw: dict[str, Any], *, window: int = 24, horizon: int = 1,
                   valid_fraction: float = 0.2, out: str | Path | None = None,
                   overwrite: bool = False, device: str | None = None,
                   plot: str | Path | None = None, echo: Echo | None = None
                   ) -> dict[str, Any]:
    """Train a forecaster of column ``column`` of the CSV file ``csv``; return the summary.

    A many-to-one :class:`~rnnlab.models.SequenceRegressor` reads ``window`` values and
    predicts the next ``horizon`` (see :func:`rnnlab.data.series.forecast_windows`) through
    the :class:`~rnnlab.train.Trainer` (checkpoints, resume, early stopping, the run
    folder's guard and lock as for a language model). The run goes to ``out``, or
    ``runs/forecast-<column>`` (or the first free ``runs/forecast-<column>-<k>``). ``plot``
    (default ``<run>/forecast.png``; ``""`` for none) is the figure of the best model's
    forecast against the truth on the validation part
    (:func:`rnnlab.viz.forecast.plot_forecast`).
    """
    train_cfg = TrainConfig.from_dict({**FORECAST_TRAIN_DEFAULTS, **train_kw})
    model_cfg = {**FORECAST_MODEL_DEFAULTS, **model_kw}
    world, echo = starting(out, overwrite=overwrite, device=device, echo=echo)
    if plot:  # a file named by the user: writable, checked before any training
        check_output_file(plot, "--plot")
    windows = _forecast_data(csv, column, window, horizon, valid_fraction,
                             model_cfg.get("dtype"))
    echo(f"{csv}, column {column!r}: {len(windows.series)} values; "
         f"{len(windows.train[0])} training and {len(windows.valid[0])} validation windows "
         f"of {window} -> {horizon}")
    model = _forecast_model({"input_size": 1, "output_size": horizon, **model_cfg},
                            train_cfg.seed, device)
    task = _forecast_task(model, windows, train_cfg, csv, column, valid_fraction)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in column) or "column"
    summary = fit_new_run(
        world, out, Path("runs") / f"forecast-{safe}", overwrite, echo,
        f"{model_cfg['cell']} x{model_cfg['num_layers']}, hidden {model_cfg['hidden_size']}, "
        f"{model.num_parameters():,} parameters",
        lambda folder: Trainer(task, train_cfg, folder, echo=echo))
    summary["plot"] = _forecast_plot(model, windows, Path(summary["run"]), plot, echo) \
        if world.is_root else None
    return summary


def resume_forecast(path: str | Path, overrides: dict[str, Any], *, csv: str | None = None,
                    device: str | None = None, plot: str | Path | None = None,
                    echo: Echo | None = None) -> dict[str, Any]:
    """Continue the forecasting run saved in ``path`` (its ``last.safetensors``).

    ``overrides`` as for :func:`rnnlab.families.lm.resume_run`; ``csv`` says where the CSV
    file is now (by default the path the checkpoint records, read only when it is a
    regular file and used only when it holds the series the checkpoint's digest names,
    :func:`rnnlab.train.launch.read_named_file`). The values must be those the run was
    trained on (the checkpoint's digest is checked).
    """
    if plot:
        check_output_file(plot, "--plot")
    with resuming(path, echo) as run:
        source, where = run.meta.get("forecast"), run.where
        if not isinstance(source, dict):
            raise CheckpointError(f"{where}: holds a {run.meta.get('kind')!r} model, expected "
                                  f"a forecasting run (rnnlab train --task forecast)")
        run.expect("regressor", "a forecasting run (rnnlab train --task forecast)")
        train_cfg = run.train_config(overrides)
        try:
            column, named = source["column"], source["csv"]
            window, horizon = source["window"], source["horizon"]
            valid_fraction = source["valid_fraction"]
            model_cfg = dict(meta_get(run.meta, "model_config", dict, where))
        except (TypeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{where}: its forecasting run is described invalidly "
                                  f"({exc})") from exc
        dtype = model_cfg.get("dtype")
        if csv is None:  # data, not trust: read only if it still holds the run's series
            windows = read_named_file(
                named, lambda p: _forecast_data(p, column, window, horizon, valid_fraction,
                                                dtype),
                windows_digest, run.meta.get("corpus_digest"), where=where,
                what="CSV file", ask="--csv FILE")
            csv = named
        else:
            windows = _forecast_data(csv, column, window, horizon, valid_fraction, dtype)
        try:
            model = _forecast_model(model_cfg, train_cfg.seed, device)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{where}: its model configuration is invalid ({exc})") \
                from exc
        task = _forecast_task(model, windows, train_cfg, csv, column, valid_fraction)
        summary = run.fit(Trainer(task, train_cfg, run.folder, echo=run.echo))
    summary["plot"] = _forecast_plot(model, windows, run.folder, plot, run.echo) \
        if run.world.is_root else None
    return summary


def _forecast_plot(model: Any, windows: Any, folder: Path, plot: str | Path | None,
                   echo: Echo) -> str | None:
    """Draw the best model's validation forecast (``plot``: a path, None for the run
    folder's ``forecast.png``, ``""`` for none); say so and return None without
    matplotlib."""
    if plot == "":
        return None
    target = Path(plot) if plot is not None else folder / "forecast.png"
    best = folder / "best.safetensors"
    if best.exists():
        st.load_model_arrays(model, read_checkpoint(best)[0], f"{str(best)!r}")
    try:
        written = save_forecast(model, windows, target)
    except ImportError as exc:
        echo(f"plot skipped: {exc}")
        return None
    echo(f"plot of the forecast against the truth written to {written}")
    return str(written)


DEFAULT_TASKS[SequenceRegressor] = RegressionTask
