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
    if out is not None:
        check_new_run_folder(out, overwrite=overwrite)  # before the data is loaded
    corpus = load_data(data_cfg)
    echo(corpus.description)
    model_cfg = RNNLMConfig.from_dict({"vocab_size": len(corpus.vocab), **model_kw})
    check_fits_in_memory(model_cfg)
    model = RNNLM.from_config(model_cfg, rng=train_cfg.seed, device=device)
    if out is not None:
        out = Path(out)
        lock, removed = claim_new_run_folder(out, overwrite=overwrite)
    else:
        base = Path("runs") / f"{corpus.name}-{model_cfg.cell}"
        out, lock, removed = claim_default_run_folder(base, overwrite=overwrite)
        if out != base:
            echo(f"{base} holds another run; this run goes to {out} (--overwrite replaces "
                 f"{base}, --out chooses a folder)")
    try:
        if removed:
            echo(f"--overwrite: removed the earlier run's {', '.join(removed)} from {out}")
        echo(f"model: {model_cfg.cell} x{model_cfg.num_layers}, hidden "
             f"{model_cfg.hidden_size}, {model.num_parameters():,} parameters; run folder "
             f"{out}")
        trainer = Trainer(model, corpus, train_cfg, out, data_config=data_cfg, echo=echo)
        summary = trainer.fit()
    finally:
        lock.release()
    summary["run"] = str(out)
    return summary, _sample(model, corpus.vocab, sample_length, train_cfg.seed)


def run_checkpoint(path: str | Path) -> Path:
    """The checkpoint ``--resume`` names: ``path``, or ``path/last.safetensors`` for a
    run folder."""
    path = Path(path)
    return path / "last.safetensors" if path.is_dir() else path


def resume_run(path: str | Path, overrides: dict[str, Any], *, device: str | None = None,
               sample_length: int = 300, echo: Any = None, corpus: str | None = None,
               data_dir: str | None = None) -> tuple[dict[str, Any], str]:
    """Continue the run saved in ``path`` (its ``last.safetensors``) exactly where it stopped.

    Only ``epochs``, ``max_steps``, ``max_time`` and ``progress`` may be overridden; the
    step and time limits of the earlier invocation are not inherited (they are budgets of
    one invocation), so without them the run goes on to its last epoch. The run goes on
    in the checkpoint's folder, whose lock it holds. ``corpus`` and ``data_dir`` say where
    the data is now (see :func:`corpus_of_checkpoint`); the data must be what the run was
    trained on.
    """
    from rnnlab.train.state import build_model

    echo = echo or ProgressBar.write
    path = run_checkpoint(path)
    folder = path.parent
    with RunLock(folder):  # before anything is read: a trainer already there is refused
        arrays, meta = read_checkpoint(path)
        where = f"checkpoint {str(path)!r}"
        if meta.get("kind") != "rnnlm":
            raise CheckpointError(f"{where}: holds a {meta.get('kind')!r} model, expected "
                                  f"'rnnlm'")
        if "optimizer" not in meta:
            raise CheckpointError(f"{where}: holds no training state (a best-model file?); "
                                  f"resume from last.safetensors")
        try:
            train_cfg = TrainConfig.from_dict(meta_get(meta, "train_config", dict, where))
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{where}: its run configuration is invalid ({exc})") \
                from exc
        train_cfg = replace(train_cfg, **{"max_steps": None, "max_time": None, **overrides})
        loaded, data_cfg = corpus_of_checkpoint(meta, where, corpus=corpus, data_dir=data_dir)
        model = build_model(meta, where, device, arrays=arrays, rng=train_cfg.seed)
        del arrays
        try:
            trainer = Trainer(model, loaded, train_cfg, folder, data_config=data_cfg,
                              echo=echo)
        except (TypeError, ValueError) as exc:  # DataError included
            raise CheckpointError(f"{where}: its configuration does not fit its corpus "
                                  f"({exc})") from exc
        trainer.restore(path)
        echo(f"resuming {path} at epoch {trainer.progress.epoch + 1}, step "
             f"{trainer.progress.step}")
        summary = trainer.fit()
    summary["run"] = str(folder)
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
