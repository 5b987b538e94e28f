"""Whole runs, as the command line starts them: load data, build the model, train, sample;
resume a run from its checkpoint; evaluate a saved model.

Run folders are guarded (:mod:`rnnlab.train.runfolder`): a new run refuses a folder that
holds another run unless ``overwrite=True`` (without ``out`` it takes a fresh numbered
folder and says so), and every run holds the folder's lock while it trains.

A checkpoint may come from elsewhere, so the corpus it names is not trusted
(:func:`corpus_of_checkpoint`): a corpus given by the caller (``--corpus``) is read as
given; a path from the checkpoint is read only when it is a regular file of the size
recorded, and a folder it names is never walked; either way the corpus must have the
digest of token ids the checkpoint records (an older checkpoint without one must be
given its corpus). rnnlab's named corpora (stdlib, ptb, tinyshakespeare) are loaded by
rnnlab's own loaders and checked the same way.
"""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

from rnnlab.models.rnnlm import RNNLM, RNNLMConfig
from rnnlab.train.checkpoint import CheckpointError, meta_get, read_checkpoint
from rnnlab.train.config import DataConfig, TrainConfig
from rnnlab.train.evaluate import evaluate_ids
from rnnlab.train.metrics import ProgressBar, perplexity
from rnnlab.train.runfolder import (
    RunLock,
    check_new_run_folder,
    claim_default_run_folder,
    claim_new_run_folder,
)
from rnnlab.train.state import check_fits_in_memory
from rnnlab.train.trainer import Trainer


def load_data(cfg: DataConfig) -> Any:
    """The corpus a :class:`DataConfig` names (a path in it is read as given: call this
    with configurations from the command line, :func:`corpus_of_checkpoint` with those
    from a checkpoint)."""
    from rnnlab import data

    name = cfg.corpus
    if name == "stdlib":
        return data.load_stdlib(max_chars=cfg.max_chars)
    if name == "ptb":
        return data.load_ptb(cfg.data_dir)
    if name in ("tinyshakespeare", "shakespeare"):
        return data.load_tinyshakespeare(cfg.data_dir)
    return data.load_text(name, cfg.level, max_size=cfg.max_size, min_freq=cfg.min_freq)


def corpus_of_checkpoint(meta: dict[str, Any], where: str, *, corpus: str | None = None,
                         data_dir: str | None = None, ask: str = "--corpus PATH"
                         ) -> tuple[Any, DataConfig]:
    """``(corpus, data_config)``: the corpus a checkpoint was trained on, checked.

    Parameters
    ----------
    meta : dict
        The checkpoint's document (``data_config``, ``corpus_digest``, ``corpus_bytes``).
    where : str
        How messages name the checkpoint.
    corpus, data_dir : str, optional
        Given by the caller (the command line): where the data is now. They replace the
        checkpoint's; the data must still have its digest.
    ask : str
        What a message tells the user to pass instead (e.g. ``"--corpus PATH or --text
        FILE"``).

    Raises
    ------
    CheckpointError
        The checkpoint names no valid corpus, names a folder (not walked), names a path
        that is gone, not a regular file or not of the recorded size, holds no digest for
        a path it names, or the corpus found does not have its digest.
    """
    from rnnlab.data import DataError

    data_meta = meta.get("data_config")
    if not isinstance(data_meta, dict):
        raise CheckpointError(f"{where}: does not say which corpus it was trained on; "
                              f"pass {ask}")
    given = {k: v for k, v in (("corpus", corpus), ("data_dir", data_dir)) if v is not None}
    try:
        cfg = DataConfig.from_dict({**data_meta, **given})
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: its data configuration is invalid ({exc}); pass "
                              f"{ask}") from exc
    digest = meta.get("corpus_digest")
    if digest is not None and not isinstance(digest, str):
        raise CheckpointError(f"{where}: corpus_digest expected a string, got "
                              f"{str(digest)[:60]}")
    if corpus is None and cfg.is_path:
        _check_named_path(cfg.corpus, meta, digest, where, ask)
    try:
        loaded = load_data(cfg)
    except DataError as exc:
        raise CheckpointError(f"{where}: the corpus it was trained on cannot be loaded "
                              f"({exc})") from exc
    if digest is not None and loaded.digest() != digest:
        if corpus is not None:
            raise CheckpointError(f"{where}: the corpus given, {corpus!r}, does not hold the "
                                  f"data this model was trained on (its token ids differ from "
                                  f"the digest in the checkpoint)")
        raise CheckpointError(f"{where}: the corpus it names, {cfg.corpus!r}, no longer holds "
                              f"the data this model was trained on (its token ids differ "
                              f"from the digest in the checkpoint); pass {ask} with the "
                              f"original data")
    return loaded, cfg


def _check_named_path(path: str, meta: dict[str, Any], digest: str | None, where: str,
                      ask: str) -> None:
    """A corpus path read from a checkpoint: only a regular file of the recorded size, of
    a checkpoint that has a digest to check it against."""
    hint = f"pass {ask.replace('PATH', path)}"
    if digest is None:
        raise CheckpointError(f"{where}: names the corpus {path!r} but holds no digest to "
                              f"check that it still holds the same data (written by an "
                              f"older rnnlab); {hint} to use it")
    try:
        info = os.stat(path)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise CheckpointError(f"{where}: the corpus it names, {path!r}, cannot be read "
                              f"({reason}); pass {ask}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise CheckpointError(f"{where}: names the folder {path!r}; a folder named by a "
                              f"checkpoint is not walked (a checkpoint may come from "
                              f"anyone): {hint}")
    if not stat.S_ISREG(info.st_mode):
        raise CheckpointError(f"{where}: the corpus it names, {path!r}, is not a regular "
                              f"file; {hint}")
    expected = meta.get("corpus_bytes")
    if expected is not None and (type(expected) is not int or expected != info.st_size):
        raise CheckpointError(f"{where}: the corpus file {path!r} has changed since the "
                              f"checkpoint was written ({info.st_size:,} bytes, recorded "
                              f"{str(expected)[:30]}); pass {ask} with the original data")


def _sample(model: RNNLM, vocab: Any, length: int, seed: int) -> str:
    from rnnlab.generate import generate

    if length <= 0:
        return ""
    return generate(model, vocab, "", length, temperature=0.8, seed=seed)


def start_run(model_kw: dict[str, Any], train_kw: dict[str, Any], data_kw: dict[str, Any], *,
              out: str | Path | None = None, device: str | None = None,
              sample_length: int = 300, echo: Any = None, overwrite: bool = False
              ) -> tuple[dict[str, Any], str]:
    """Train a new model; return the run summary and a text sample.

    ``out`` must not hold another run unless ``overwrite`` (which deletes that run's
    files first); without ``out`` the run goes to ``runs/<corpus>-<cell>``, or the first
    free ``runs/<corpus>-<cell>-<k>``. Raises
    :class:`~rnnlab.train.runfolder.RunFolderError` otherwise, or when another trainer
    holds the folder.
    """
    from rnnlab.backend import get_xp

    echo = echo or ProgressBar.write
    data_cfg = DataConfig.from_dict(data_kw)
    train_cfg = TrainConfig.from_dict(train_kw)
    get_xp(device)  # a GPU without CuPy fails now, not after the corpus has loaded
    world = _world()
    echo = _rank0(world, echo)
    if out is not None and world.is_root:
        check_new_run_folder(out, overwrite=overwrite)  # before the data is loaded
    corpus = load_data(data_cfg)
    world.check_agree(f"{corpus.digest()}/{len(corpus.vocab)}", "corpus (digest of its ids)")
    echo(corpus.description)
    model_cfg = RNNLMConfig.from_dict({"vocab_size": len(corpus.vocab), **model_kw})
    check_fits_in_memory(model_cfg)
    model = RNNLM.from_config(model_cfg, rng=train_cfg.seed, device=device)
    summary = _fit_new_run(
        world, out, Path("runs") / f"{corpus.name}-{model_cfg.cell}", overwrite, echo,
        f"{model_cfg.cell} x{model_cfg.num_layers}, hidden {model_cfg.hidden_size}, "
        f"{model.num_parameters():,} parameters",
        lambda folder: Trainer(model, corpus, train_cfg, folder, data_config=data_cfg,
                               echo=echo))
    if not world.is_root:
        sample_length = 0  # rank 0 alone makes samples
    return summary, _sample(model, corpus.vocab, sample_length, train_cfg.seed)


class _NoLock:
    """What a rank other than 0 holds for the run folder (rank 0 holds its lock)."""

    def release(self) -> None:
        pass

    def __enter__(self) -> _NoLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass


def _world() -> Any:
    """The processes this run trains on (:func:`rnnlab.train.distributed.detect`)."""
    from rnnlab.train.distributed import detect

    return detect()


def _rank0(world: Any, echo: Any) -> Any:
    """``echo`` on rank 0 (or :meth:`ProgressBar.write`), nothing on the other ranks."""
    if not world.is_root:
        return lambda *a, **k: None
    return echo or ProgressBar.write


def rank0_lock(world: Any, folder: Path) -> Any:
    """The lock of run folder ``folder`` on rank 0 (:class:`RunLock`, a context manager);
    nothing on the other ranks of a run on many processes."""
    return RunLock(folder) if world.is_root else _NoLock()


def claim_run_folder(world: Any, out: str | Path | None, base: Path | None = None, *,
                     overwrite: bool = False, echo: Any = None
                     ) -> tuple[Path, Any, list[str]]:
    """``(folder, lock, removed)``: the run folder, claimed by rank 0 alone (``out``, or
    ``base`` or the first free ``base-<k>`` without it) and broadcast to the other ranks,
    which hold no lock. When rank 0 fails, the others raise instead of waiting."""
    from rnnlab.train.runfolder import RunFolderError

    if not world.is_root:
        folder = world.broadcast(None)
        if folder is None:
            raise RunFolderError("rank 0 could not claim the run folder (its error says why)")
        return Path(folder), _NoLock(), []
    try:
        if out is not None:
            out = Path(out)
            lock, removed = claim_new_run_folder(out, overwrite=overwrite)
        else:
            out, lock, removed = claim_default_run_folder(base, overwrite=overwrite)
            if out != base and echo is not None:
                echo(f"{base} holds another run; this run goes to {out} (--overwrite "
                     f"replaces {base}, --out chooses a folder)")
    except BaseException:
        world.broadcast(None)
        raise
    world.broadcast(str(out))
    return out, lock, removed


def _fit_new_run(world: Any, out: str | Path | None, base: Path, overwrite: bool, echo: Any,
                 model: str, trainer_for: Any) -> dict[str, Any]:
    """Claim the run folder (:func:`claim_run_folder`), say what trains there (``model``), and fit
    ``trainer_for(folder)`` while holding the folder's lock; the summary names the run."""
    out, lock, removed = claim_run_folder(world, out, base, overwrite=overwrite, echo=echo)
    try:
        if removed:
            echo(f"--overwrite: removed the earlier run's {', '.join(removed)} from {out}")
        echo(f"model: {model}; run folder {out}")
        summary = trainer_for(out).fit()
    finally:
        lock.release()
    summary["run"] = str(out)
    return summary


def _resumed_config(meta: dict[str, Any], where: str, overrides: dict[str, Any]
                    ) -> TrainConfig:
    """The run configuration a checkpoint continues with: its own, with ``overrides`` and
    without the earlier invocation's step and time budgets. Refuses a checkpoint that holds
    no training state."""
    if "optimizer" not in meta:
        raise CheckpointError(f"{where}: holds no training state (a best-model file?); "
                              f"resume from last.safetensors")
    try:
        train_cfg = TrainConfig.from_dict(meta_get(meta, "train_config", dict, where))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: its run configuration is invalid ({exc})") from exc
    return replace(train_cfg, **{"max_steps": None, "max_time": None, **overrides})


def _fit_resumed(trainer: Trainer, path: Path, echo: Any) -> dict[str, Any]:
    """Restore ``trainer`` from ``path`` and fit it on; the summary names the run."""
    trainer.restore(path)
    echo(f"resuming {path} at epoch {trainer.progress.epoch + 1}, step "
         f"{trainer.progress.step}")
    summary = trainer.fit()
    summary["run"] = str(path.parent)
    return summary


def run_checkpoint(path: str | Path) -> Path:
    """The checkpoint ``--resume`` names: ``path``, or ``path/last.safetensors`` for a
    run folder."""
    path = Path(path)
    return path / "last.safetensors" if path.is_dir() else path


def resume_run(path: str | Path, overrides: dict[str, Any], *, device: str | None = None,
               sample_length: int = 300, echo: Any = None, corpus: str | None = None,
               data_dir: str | None = None) -> tuple[dict[str, Any], str]:
    """Continue the run saved in ``path`` (its ``last.safetensors``) exactly where it stopped.

    Only ``epochs``, ``max_steps``, ``max_time``, ``progress`` and ``check_every`` may be
    overridden; the step and time limits of the earlier invocation are not inherited (they
    are budgets of one invocation), so without them the run goes on to its last epoch. The
    run goes on in the checkpoint's folder, whose lock it holds. ``corpus`` and ``data_dir``
    say where the data is now (see :func:`corpus_of_checkpoint`); the data must be what the
    run was trained on.
    """
    from rnnlab.train.state import build_model

    world = _world()
    echo = _rank0(world, echo)
    path = run_checkpoint(path)
    folder = path.parent
    # before anything is read: a trainer already there is refused (rank 0 holds the lock)
    with rank0_lock(world, folder):
        arrays, meta = read_checkpoint(path)
        where = f"checkpoint {str(path)!r}"
        if "forecast" in meta:
            raise CheckpointError(f"{where}: holds a forecasting run; continue it with "
                                  f"rnnlab train --task forecast --resume {path}")
        if meta.get("kind") != "rnnlm":
            raise CheckpointError(f"{where}: holds a {meta.get('kind')!r} model, expected "
                                  f"'rnnlm'")
        train_cfg = _resumed_config(meta, where, overrides)
        loaded, data_cfg = corpus_of_checkpoint(meta, where, corpus=corpus, data_dir=data_dir)
        world.check_agree(f"{loaded.digest()}/{len(loaded.vocab)}",
                          "corpus (digest of its ids)")
        model = build_model(meta, where, device, arrays=arrays, rng=train_cfg.seed)
        del arrays
        try:
            trainer = Trainer(model, loaded, train_cfg, folder, data_config=data_cfg,
                              echo=echo)
        except (TypeError, ValueError) as exc:  # DataError included
            raise CheckpointError(f"{where}: its configuration does not fit its corpus "
                                  f"({exc})") from exc
        summary = _fit_resumed(trainer, path, echo)
    if not world.is_root:
        sample_length = 0  # rank 0 alone makes samples
    return summary, _sample(model, loaded.vocab, sample_length, train_cfg.seed)


def evaluate_checkpoint(path: str | Path, *, text: str | None = None, split: str = "both",
                        batch_size: int = 10, bptt: int = 35, data_dir: str | None = None,
                        device: str | None = None, corpus: str | None = None
                        ) -> dict[str, Any]:
    """Perplexity of a saved model on its corpus's splits or on a text file.

    ``text`` evaluates a file as a whole; otherwise the validation and test splits of the
    corpus the model was trained on, found as :func:`corpus_of_checkpoint` says
    (``corpus``: where it is now, checked against the checkpoint's digest).
    """
    from rnnlab.data import DataError
    from rnnlab.data.textio import read_text
    from rnnlab.train.state import load_model

    if text is not None and corpus is not None:
        raise ValueError("evaluate_checkpoint: expected text or corpus, got both")
    model, vocab, meta = load_model(path, device=device)
    parts: dict[str, Any] = {}
    if text is not None:
        # strict UTF-8 with the byte offset of a bad byte; folders, binary files and
        # devices are refused instead of read
        content = read_text(text)
        parts["text"] = vocab.encode(vocab.tokenize(content))
    else:
        where = f"checkpoint {str(path)!r}"
        loaded, _ = corpus_of_checkpoint(meta, where, corpus=corpus, data_dir=data_dir,
                                         ask="--corpus PATH (or --text FILE)")
        if loaded.vocab.to_dict() != vocab.to_dict():
            raise CheckpointError(f"{where}: the corpus's vocabulary differs from the "
                                  f"model's")
        for name in ("valid", "test") if split == "both" else (split,):
            parts[name] = getattr(loaded, name)
    result: dict[str, Any] = {"checkpoint": str(path)}
    for name, ids in parts.items():
        if len(ids) < 2:
            what = "the text" if name == "text" else f"the {name} split"
            raise DataError(f"eval: {what} has {len(ids)} token(s); at least 2 are needed")
        loss = evaluate_ids(model, ids, batch_size=batch_size, bptt=bptt)
        result[name] = {"loss": loss, "ppl": perplexity(loss), "tokens": len(ids)}
    return result


# ------------------------------------------------------------------- forecasting
#: Training defaults of a forecasting run (a small regressor on a few hundred windows).
FORECAST_TRAIN_DEFAULTS: dict[str, Any] = {"epochs": 20, "lr": 0.01, "batch_size": 32}
#: Model defaults of a forecasting run (``SequenceRegressor`` arguments).
FORECAST_MODEL_DEFAULTS: dict[str, Any] = {"hidden_size": 32, "num_layers": 1, "cell": "lstm",
                                           "dropout": 0.0, "dtype": "float32"}


def _forecast_data(csv: str | Path, column: str, window: int, horizon: int,
                   valid_fraction: float) -> Any:
    from rnnlab.data.series import forecast_windows, read_csv_column

    values = read_csv_column(csv, column)
    return forecast_windows(values, window, horizon, valid_fraction=valid_fraction,
                            where=f"{csv}, column {column!r}")


def _forecast_model(config: dict[str, Any], seed: int, device: str | None) -> Any:
    from rnnlab.models.regressor import SequenceRegressor

    kw = dict(config)
    dtype = kw.pop("dtype", None)
    return SequenceRegressor(**kw, rng=seed, device=device, dtype=dtype)


def _forecast_task(model: Any, windows: Any, train_cfg: TrainConfig, csv: str | Path,
                   column: str, valid_fraction: float) -> Any:
    from rnnlab.train.tasks import ForecastTask

    return ForecastTask(model, windows, train_cfg,
                        source={"csv": str(csv), "column": column,
                                "valid_fraction": valid_fraction})


def start_forecast(csv: str | Path, column: str, model_kw: dict[str, Any],
                   train_kw: dict[str, Any], *, window: int = 24, horizon: int = 1,
                   valid_fraction: float = 0.2, out: str | Path | None = None,
                   overwrite: bool = False, device: str | None = None,
                   plot: str | Path | None = None, echo: Any = None) -> dict[str, Any]:
    """Train a forecaster of column ``column`` of the CSV file ``csv``; return the summary.

    A many-to-one :class:`~rnnlab.models.SequenceRegressor` reads ``window`` values and
    predicts the next ``horizon`` (see :func:`rnnlab.data.series.forecast_windows`) through
    the :class:`Trainer` (checkpoints, resume, early stopping, the run folder's guard and
    lock as for a language model). The run goes to ``out``, or ``runs/forecast-<column>``
    (or the first free ``runs/forecast-<column>-<k>``). ``plot`` (default
    ``<run>/forecast.png``; ``""`` for none) is the figure of the best model's forecast
    against the truth on the validation part (:func:`plot_forecast`).
    """
    from rnnlab.backend import get_xp

    world = _world()
    echo = _rank0(world, echo)
    train_cfg = TrainConfig.from_dict({**FORECAST_TRAIN_DEFAULTS, **train_kw})
    model_cfg = {**FORECAST_MODEL_DEFAULTS, **model_kw}
    get_xp(device)
    if out is not None and world.is_root:
        check_new_run_folder(out, overwrite=overwrite)
    windows = _forecast_data(csv, column, window, horizon, valid_fraction)
    echo(f"{csv}, column {column!r}: {len(windows.series)} values; "
         f"{len(windows.train[0])} training and {len(windows.valid[0])} validation windows "
         f"of {window} -> {horizon}")
    model = _forecast_model({"input_size": 1, "output_size": horizon, **model_cfg},
                            train_cfg.seed, device)
    task = _forecast_task(model, windows, train_cfg, csv, column, valid_fraction)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in column) or "column"
    summary = _fit_new_run(
        world, out, Path("runs") / f"forecast-{safe}", overwrite, echo,
        f"{model_cfg['cell']} x{model_cfg['num_layers']}, hidden {model_cfg['hidden_size']}, "
        f"{model.num_parameters():,} parameters",
        lambda folder: Trainer(model, None, train_cfg, folder, echo=echo, task=task))
    summary["plot"] = _forecast_plot(model, windows, Path(summary["run"]), plot, echo) \
        if world.is_root else None
    return summary


def resume_forecast(path: str | Path, overrides: dict[str, Any], *, csv: str | None = None,
                    device: str | None = None, plot: str | Path | None = None,
                    echo: Any = None) -> dict[str, Any]:
    """Continue the forecasting run saved in ``path`` (its ``last.safetensors``).

    ``overrides`` as for :func:`resume_run`; ``csv`` says where the CSV file is now (by
    default the path the checkpoint records, read only when it is a regular file). The
    values must be those the run was trained on (the checkpoint's digest is checked).
    """
    world = _world()
    echo = _rank0(world, echo)
    path = run_checkpoint(path)
    folder = path.parent
    with rank0_lock(world, folder):
        _, meta = read_checkpoint(path)
        where = f"checkpoint {str(path)!r}"
        source = meta.get("forecast")
        if meta.get("kind") != "regressor" or not isinstance(source, dict):
            raise CheckpointError(f"{where}: holds a {meta.get('kind')!r} model, expected a "
                                  f"forecasting run (rnnlab train --task forecast)")
        train_cfg = _resumed_config(meta, where, overrides)
        try:
            column, named = source["column"], source["csv"]
            window, horizon = source["window"], source["horizon"]
            valid_fraction = source["valid_fraction"]
            model_cfg = dict(meta_get(meta, "model_config", dict, where))
        except (TypeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{where}: its forecasting run is described invalidly "
                                  f"({exc})") from exc
        if csv is None:
            if not isinstance(named, str) or not os.path.isfile(named):
                raise CheckpointError(f"{where}: the CSV file it names, {str(named)[:200]!r}, "
                                      f"is not a readable file; pass --csv FILE")
            csv = named
        windows = _forecast_data(csv, column, window, horizon, valid_fraction)
        try:
            model = _forecast_model(model_cfg, train_cfg.seed, device)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{where}: its model configuration is invalid ({exc})") \
                from exc
        task = _forecast_task(model, windows, train_cfg, csv, column, valid_fraction)
        summary = _fit_resumed(Trainer(model, None, train_cfg, folder, echo=echo, task=task),
                               path, echo)
    summary["plot"] = _forecast_plot(model, windows, folder, plot, echo) \
        if world.is_root else None
    return summary


def _forecast_plot(model: Any, windows: Any, folder: Path, plot: str | Path | None,
                   echo: Any) -> str | None:
    """Draw the best model's validation forecast (``plot``: a path, None for the run
    folder's ``forecast.png``, ``""`` for none); say so and return None without
    matplotlib."""
    from rnnlab.train import state as st

    if plot == "":
        return None
    target = Path(plot) if plot is not None else folder / "forecast.png"
    best = folder / "best.safetensors"
    if best.exists():
        st.load_model_arrays(model, read_checkpoint(best)[0], f"{str(best)!r}")
    try:
        fig = plot_forecast(model, windows)
    except ImportError as exc:
        echo(f"plot skipped: {exc}")
        return None
    fig.savefig(target, dpi=120)
    echo(f"plot of the forecast against the truth written to {target}")
    return str(target)


def forecast(model: Any, windows: Any) -> Any:
    """The model's forecasts of the validation windows, in the series' units
    (``(N, horizon)``; row ``i`` forecasts the values from ``windows.valid_times[i]`` on)."""
    import numpy as np

    from rnnlab.backend import to_numpy

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
    import numpy as np

    from rnnlab.viz._mpl import new_figure

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
