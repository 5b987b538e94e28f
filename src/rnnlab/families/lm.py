"""The language model (:class:`~rnnlab.models.RNNLM`): its task and its launcher.

:class:`LanguageModelTask` trains a model over a corpus (``train`` / ``valid`` / ``test``
id arrays and a ``vocab``) by truncated BPTT; :func:`start_run`, :func:`resume_run` and
:func:`evaluate_checkpoint` are what ``rnnlab train`` and ``rnnlab eval`` call.

A checkpoint may come from elsewhere, so the corpus it names is not trusted
(:func:`corpus_of_checkpoint`): a corpus given by the caller (``--corpus``) is read as
given; a path from the checkpoint is read only when it is a regular file of the size
recorded, and a folder it names is never walked; either way the corpus must have the
digest of token ids the checkpoint records (an older checkpoint without one must be
given its corpus). rnnlab's named corpora (stdlib, ptb, tinyshakespeare) are loaded by
rnnlab's own loaders and checked the same way.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab import data
from rnnlab.data import BPTTBatcher, DataError
from rnnlab.data.core import ids_digest
from rnnlab.data.textio import read_text
from rnnlab.generate import generate
from rnnlab.models.rnnlm import RNNLM, RNNLMConfig
from rnnlab.train import state as st
from rnnlab.train.checkpoint import CheckpointError, meta_get, take_group
from rnnlab.train.config import DataConfig, TrainConfig
from rnnlab.train.evaluate import eval_batch_size, evaluate_ids, loss_sums
from rnnlab.train.launch import Echo, fit_new_run, resuming, starting
from rnnlab.train.loop import Trainer
from rnnlab.train.metrics import perplexity
from rnnlab.train.state import build_model, check_fits_in_memory, load_model
from rnnlab.train.task import DEFAULT_TASKS, TaskBase


class LanguageModelTask(TaskBase):
    """An :class:`~rnnlab.models.RNNLM` over a corpus (``train``/``valid``/``test`` id
    arrays and a ``vocab``): truncated BPTT over ``batch_size`` contiguous streams in
    windows of ``bptt``, the recurrent state carried from window to window."""

    kind = "rnnlm"
    perplexity = True

    def __init__(self, model: RNNLM, corpus: Any, config: TrainConfig) -> None:
        self.model, self.corpus = model, corpus
        self.data = BPTTBatcher(corpus.train, config.batch_size, config.bptt)
        if len(self.data) == 0:
            raise ValueError(f"Trainer: the training split ({len(corpus.train)} tokens) is too "
                             f"short for batch_size={config.batch_size}")
        self._check_corpus()

    def prepare(self, config: TrainConfig, world: Any) -> None:
        """``unigram_bias``: the output bias starts at the training tokens' log
        frequencies. On many processes this rank takes its share of the streams."""
        if config.unigram_bias:
            self.model.init_output_bias(self.corpus.train)
        if world.size > 1:
            world.check_batch(config.batch_size)
            self.world = world
            self._rows = world.share(config.batch_size)

    def _check_corpus(self) -> None:
        """Fail now, not after an epoch: the splits must fit the model's vocabulary."""
        V = self.model.config.vocab_size
        if len(self.corpus.valid) < 2:
            raise DataError(f"Trainer: the validation split has {len(self.corpus.valid)} "
                            f"token(s); it needs at least 2 (use a larger corpus or split)")
        parts = [("validation", self.corpus.valid), ("test", self.corpus.test)]
        if not isinstance(self.corpus.train, np.memmap):  # a memmap is only read by windows
            parts.append(("training", self.corpus.train))
        for name, ids in parts:
            ids = np.asarray(ids)
            if ids.size == 0:
                continue
            if ids.dtype.kind not in "iu":
                raise DataError(f"Trainer: the {name} split expected integer ids, got dtype "
                                f"{ids.dtype}")
            low, high = int(ids.min()), int(ids.max())
            if low < 0 or high >= V:
                raise DataError(f"Trainer: the {name} split holds the id "
                                f"{low if low < 0 else high}, outside the model's vocabulary "
                                f"[0, {V}); the corpus and the model do not match")

    def digest(self) -> str:
        c = self.corpus
        return ids_digest({"train": c.train, "valid": c.valid, "test": c.test})

    def forward_loss(self, batch: tuple) -> float:
        x, y = batch
        xp = self.model.xp
        if self.world is not None:  # this rank's streams
            lo, hi = self._rows
            x, y = x[lo:hi], y[lo:hi]
        return self.model.forward_loss(xp.asarray(x), xp.asarray(y))

    def counts(self, batch: tuple) -> tuple[int, int]:
        """The tokens of this process's streams (what the loss averages)."""
        if self.world is None:
            tokens = int(batch[0].size)
        else:
            lo, hi = self._rows  # this rank's streams
            tokens = (hi - lo) * int(batch[0].shape[1])
        return tokens, tokens

    def reference_loss(self) -> float:
        return math.log(self.model.config.vocab_size)

    def evaluate(self, split: str, config: TrainConfig) -> float | None:
        """Nats per token over a split, the state carried across windows (None: the
        split has fewer than two tokens)."""
        ids = getattr(self.corpus, split)
        if len(ids) < 2:
            return None
        if self.world is None:
            return evaluate_ids(self.model, ids, batch_size=config.eval_batch_size,
                                bptt=config.bptt)
        return self._evaluate_shared(ids, config)

    def _evaluate_shared(self, ids: Any, config: Any) -> float:
        """:func:`~rnnlab.train.evaluate.evaluate_ids` with the streams divided between the
        ranks: each sums its tokens' losses, one reduction adds them up."""
        lo, hi = self.world.share(eval_batch_size(ids, config.eval_batch_size))
        total, count = loss_sums(self.model, ids, batch_size=config.eval_batch_size,
                                 bptt=config.bptt, streams=slice(lo, hi)) \
            if hi > lo else (0.0, 0)
        total, count = self.world.allreduce_sum([total, count])
        return float(total / count)

    @property
    def carried(self) -> Any:
        return self.model.get_state()

    @carried.setter
    def carried(self, state: Any) -> None:
        self.model.set_state(state)  # None: a fresh start

    def state_arrays(self) -> dict[str, Any]:
        arrays = st.state_arrays(self.model)
        if self.world is None:
            return arrays
        gathered = {k: self.world.gather_rows(v, axis=1) for k, v in arrays.items()}
        return gathered if self.world.is_root else arrays

    def restore_state(self, arrays: Mapping[str, np.ndarray], where: str,
                      config: TrainConfig) -> None:
        if self.data.position > 0 and not take_group(arrays, "state"):
            raise CheckpointError(f"{where}: stopped inside an epoch (window "
                                  f"{self.data.position}) but holds no carried state")
        st.restore_carried_state(self.model, arrays, where, batch_size=config.batch_size)
        carried = self.model.get_state()
        if self.world is not None and carried is not None:  # this rank's streams
            lo, hi = self._rows
            xp = self.model.xp
            self.model.set_state(tuple(None if a is None else xp.ascontiguousarray(a[:, lo:hi])
                                       for a in carried))

    def meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "model_config": self.model.config.to_dict(),
                "vocab": self.corpus.vocab.to_dict()}

    def check_meta(self, meta: Mapping[str, Any], where: str) -> None:
        if meta.get("kind") != "rnnlm":
            raise CheckpointError(f"{where}: holds a {meta.get('kind')!r} model, expected "
                                  f"'rnnlm'")
        if "optimizer" not in meta:
            raise CheckpointError(f"{where}: holds no training state (a best-model file?); "
                                  f"resume from last.safetensors")
        config = st.check_model_config(meta_get(meta, "model_config", dict, where), where)
        if config != self.model.config.to_dict():
            raise CheckpointError(f"{where}: its model configuration differs from this model's")
        if meta_get(meta, "vocab", dict, where) != self.corpus.vocab.to_dict():
            raise CheckpointError(f"{where}: its vocabulary differs from the corpus's")


def load_data(cfg: DataConfig) -> Any:
    """The corpus a :class:`DataConfig` names (a path in it is read as given: call this
    with configurations from the command line, :func:`corpus_of_checkpoint` with those
    from a checkpoint)."""
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
    if length <= 0:
        return ""
    return generate(model, vocab, "", length, temperature=0.8, seed=seed)


def start_run(model_kw: dict[str, Any], train_kw: dict[str, Any], data_kw: dict[str, Any], *,
              out: str | Path | None = None, device: str | None = None,
              sample_length: int = 300, echo: Echo | None = None, overwrite: bool = False
              ) -> tuple[dict[str, Any], str]:
    """Train a new model; return the run summary and a text sample.

    ``out`` must not hold another run unless ``overwrite`` (which deletes that run's
    files first); without ``out`` the run goes to ``runs/<corpus>-<cell>``, or the first
    free ``runs/<corpus>-<cell>-<k>``. Raises
    :class:`~rnnlab.train.runfolder.RunFolderError` otherwise, or when another trainer
    holds the folder.
    """
    data_cfg = DataConfig.from_dict(data_kw)
    train_cfg = TrainConfig.from_dict(train_kw)
    world, echo = starting(out, overwrite=overwrite, device=device, echo=echo)
    corpus = load_data(data_cfg)
    echo(corpus.description)
    model_cfg = RNNLMConfig.from_dict({"vocab_size": len(corpus.vocab), **model_kw})
    check_fits_in_memory(model_cfg)
    model = RNNLM.from_config(model_cfg, rng=train_cfg.seed, device=device)
    summary = fit_new_run(
        world, out, Path("runs") / f"{corpus.name}-{model_cfg.cell}", overwrite, echo,
        f"{model_cfg.cell} x{model_cfg.num_layers}, hidden {model_cfg.hidden_size}, "
        f"{model.num_parameters():,} parameters",
        lambda folder: Trainer(LanguageModelTask(model, corpus, train_cfg), train_cfg, folder,
                               data_config=data_cfg, echo=echo))
    return summary, _sample(model, corpus.vocab, sample_length if world.is_root else 0,
                            train_cfg.seed)


def resume_run(path: str | Path, overrides: dict[str, Any], *, device: str | None = None,
               sample_length: int = 300, echo: Echo | None = None, corpus: str | None = None,
               data_dir: str | None = None) -> tuple[dict[str, Any], str]:
    """Continue the run saved in ``path`` (its ``last.safetensors``) exactly where it stopped.

    Only ``epochs``, ``max_steps``, ``max_time``, ``progress`` and ``check_every`` may be
    overridden; the step and time limits of the earlier invocation are not inherited (they
    are budgets of one invocation), so without them the run goes on to its last epoch. The
    run goes on in the checkpoint's folder, whose lock it holds. ``corpus`` and ``data_dir``
    say where the data is now (see :func:`corpus_of_checkpoint`); the data must be what the
    run was trained on.
    """
    with resuming(path, echo) as run:
        if "forecast" in run.meta:
            raise CheckpointError(f"{run.where}: holds a forecasting run; continue it with "
                                  f"rnnlab train --task forecast --resume {run.path}")
        run.expect("rnnlm", "'rnnlm'")
        train_cfg = run.train_config(overrides)
        loaded, data_cfg = corpus_of_checkpoint(run.meta, run.where, corpus=corpus,
                                                data_dir=data_dir)
        model = build_model(run.meta, run.where, device, arrays=run.arrays, rng=train_cfg.seed)
        try:
            trainer = Trainer(LanguageModelTask(model, loaded, train_cfg), train_cfg,
                              run.folder, data_config=data_cfg, echo=run.echo)
        except (TypeError, ValueError) as exc:  # DataError included
            raise CheckpointError(f"{run.where}: its configuration does not fit its corpus "
                                  f"({exc})") from exc
        summary = run.fit(trainer)
    return summary, _sample(model, loaded.vocab, sample_length if run.world.is_root else 0,
                            train_cfg.seed)


def evaluate_checkpoint(path: str | Path, *, text: str | None = None, split: str = "both",
                        batch_size: int = 10, bptt: int = 35, data_dir: str | None = None,
                        device: str | None = None, corpus: str | None = None
                        ) -> dict[str, Any]:
    """Perplexity of a saved model on its corpus's splits or on a text file.

    ``text`` evaluates a file as a whole; otherwise the validation and test splits of the
    corpus the model was trained on, found as :func:`corpus_of_checkpoint` says
    (``corpus``: where it is now, checked against the checkpoint's digest).
    """
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


DEFAULT_TASKS[RNNLM] = LanguageModelTask
