"""Training, evaluation and checkpoints for :class:`~rnnlab.seq2seq.model.Seq2Seq`.

A whole run (a few minutes on two cores; tutorial 8 trains smaller ones)::

    pairs, source = load_task("addition")             # the book's file, else generated
    train, test = split_pairs(pairs)                   # seeded shuffle, 90/10
    codec = Codec.build(pairs)
    model = Seq2Seq(Seq2SeqConfig(len(codec.vocab), reverse=True), rng=0)
    history = fit(model, codec, train, test, TrainOptions(epochs=25))
    save_checkpoint("addition.safetensors", model, codec, data=source, history=history)

Training goes through :class:`rnnlab.train.Trainer` (:class:`Seq2SeqTask`):
one step is teacher forcing on a padded batch (mean cross-entropy over the answer
characters), backward, global gradient-norm clipping, an Adam step; after each epoch the
validation pairs are scored (loss, and exact match of greedy decoding), with the
trainer's early stopping, divergence rollback, checkpoints and exact resume.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab._config import ConfigDict
from rnnlab.data import DataError
from rnnlab.nn.stack import cell_kind
from rnnlab.seq2seq.data import (
    IGNORE_INDEX,
    Codec,
    find_data_file,
    read_pairs,
    split_pairs,
    take,
)
from rnnlab.seq2seq.model import Seq2Seq, Seq2SeqConfig
from rnnlab.seq2seq.search import exact_match
from rnnlab.seq2seq.tasks import GENERATORS, Pairs
from rnnlab.train import TrainConfig, Trainer
from rnnlab.train.checkpoint import (
    CheckpointError,
    meta_get,
    read_checkpoint,
    write_checkpoint,
)
from rnnlab.train.distributed import World, detect
from rnnlab.train.examples import ExampleTask
from rnnlab.train.launch import claim_run_folder, read_named_file, resuming
from rnnlab.train.metrics import read_metrics
from rnnlab.train.state import load_model_arrays

SCHEDULES = ("constant", "cosine")
KIND = "seq2seq"


def pairs_digest(pairs: Pairs) -> str:
    """The SHA-256 of every question and answer, in order (``"sha256:<hex>"``)."""
    h = hashlib.sha256()
    for q, a in zip(pairs.questions, pairs.answers, strict=True):
        h.update(f"{q}\x00{a}\x00".encode())
    return f"sha256:{h.hexdigest()}"


def load_task(task: str, source: str = "auto", n: int = 50_000, seed: int = 0,
              data_dir: str | os.PathLike[str] | None = None) -> tuple[Pairs, dict[str, Any]]:
    """The pairs of ``task`` (``"addition"``, ``"date"`` or a file path) and where from.

    ``source``: ``"file"`` (the book's file, an error if absent), ``"generated"`` (the
    project's generator with ``n`` and ``seed``), or ``"auto"`` (file when found).
    Returns ``(pairs, description)``; the description is JSON-able and enough for
    :func:`load_task` to rebuild the same pairs (``eval`` uses it); a file's records its
    path and the digest of its pairs (:func:`pairs_digest`), which a path read back from
    a checkpoint must match (:func:`source_pairs`).
    """
    if source not in ("auto", "file", "generated"):
        raise ValueError(f"load_task: source expected 'auto', 'file' or 'generated', got "
                         f"{source!r}")
    if task not in GENERATORS:
        path = Path(task)
        if not path.is_file():
            raise DataError(f"task {task!r}: expected 'addition', 'date' or a path to a "
                            f"'question_answer' text file; no such file")
        pairs = read_pairs(path)
        return pairs, {"task": str(path), "source": "file", "path": str(path),
                       "digest": pairs_digest(pairs)}
    found = find_data_file(task, data_dir) if source != "generated" else None
    if found is not None:
        pairs = read_pairs(found)
        return pairs, {"task": task, "source": "file", "path": str(found),
                       "digest": pairs_digest(pairs)}
    if source == "file":
        raise DataError(f"task {task!r}: {task}.txt not found (searched --data-dir, "
                        f"$RNNLAB_DATA and ../shared/data next to the repository, each also "
                        f"in a seq2seq/ subfolder); use --source generated for the "
                        f"project's own generator")
    return GENERATORS[task](n, seed=seed), {"task": task, "source": "generated", "n": n,
                                            "seed": seed}


@dataclass
class TrainOptions(ConfigDict):
    """How :func:`fit` trains (saved with checkpoints)."""

    epochs: int = 25
    batch_size: int = 128
    lr: float = 1e-3
    clip_norm: float | None = 5.0  # global gradient norm; None: no clipping
    schedule: str = "constant"  # or "cosine": per-batch cosine decay to 0 over all epochs
    warmup_steps: int = 0  # with "cosine"
    seed: int = 0  # batch order
    max_steps: int | None = None  # stop early (tests, smoke runs)
    eval_beam_width: int = 1

    def __post_init__(self) -> None:
        owner = "TrainOptions"
        for name in ("epochs", "batch_size", "eval_beam_width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{owner}: {name} expected an int >= 1, got {value!r}")
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"{owner}: lr expected a finite number > 0, got {self.lr!r}")
        if self.clip_norm is not None and not (isinstance(self.clip_norm, int | float)
                                               and self.clip_norm > 0):
            raise ValueError(f"{owner}: clip_norm expected None or a number > 0, got "
                             f"{self.clip_norm!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"{owner}: schedule expected one of {SCHEDULES}, got "
                             f"{self.schedule!r}")
        if self.max_steps is not None and (isinstance(self.max_steps, bool) or
                                           not isinstance(self.max_steps, int)
                                           or self.max_steps < 1):
            raise ValueError(f"{owner}: max_steps expected None or an int >= 1, got "
                             f"{self.max_steps!r}")


def train_config(options: TrainOptions, *, patience: int | None = None,
                 progress: bool = False) -> TrainConfig:
    """The :class:`~rnnlab.train.TrainConfig` of ``options`` (Adam, the options' clipping,
    a constant or cosine learning rate)."""
    return TrainConfig(epochs=options.epochs, batch_size=options.batch_size, optimizer="adam",
                       lr=options.lr, clip_norm=options.clip_norm,
                       schedule="cosine" if options.schedule == "cosine" else "none",
                       warmup_steps=options.warmup_steps, seed=options.seed,
                       max_steps=options.max_steps, patience=patience, progress=progress,
                       log_every=1, checkpoint_every=1000, snapshot_every=100)


def history_of(metrics_path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """One record per epoch from a run's ``metrics.jsonl``: ``epoch`` (1-based), ``steps``,
    ``loss`` (mean training loss logged in the epoch), ``valid_loss``, ``test_acc``
    (exact match on the validation pairs), ``lr``, ``seconds`` (from the epoch's first
    logged step, or the previous epoch's end, to its validation; the validation of a run
    stopped by its budget is not an epoch's)."""
    history: list[dict[str, Any]] = []
    losses: list[float] = []
    since = None
    for record in read_metrics(Path(metrics_path)):
        event = record.get("event")
        if event == "train":
            losses.append(record["loss"])
            since = record["time"] if since is None else since
        elif event == "valid" and "exact_match" in record and "stopped" not in record:
            history.append({"epoch": record["epoch"] + 1, "steps": record["step"],
                            "loss": sum(losses) / len(losses) if losses else math.nan,
                            "valid_loss": record["loss"], "test_acc": record["exact_match"],
                            "lr": record["lr"],
                            "seconds": record["time"] - (since or record["time"])})
            losses, since = [], record["time"]
    return history


class Seq2SeqTask(ExampleTask):
    """A :class:`~rnnlab.seq2seq.Seq2Seq` on question/answer pairs: teacher forcing on
    padded batches (mean cross-entropy per answer character); also scores the exact-match
    accuracy of greedy (or beam) decoding.

    ``data``: ``{"train": Pairs, "valid": Pairs, "test": Pairs or None}``; ``codec`` turns
    them into ids; ``source`` (JSON) records where the pairs came from (saved as
    ``data_source``: ``data`` is the trainer's position in the batches).
    """

    kind = "seq2seq"

    def __init__(self, model: Any, data: Mapping[str, Any], config: Any, *, codec: Any,
                 source: Mapping[str, Any] | None = None, beam_width: int = 1) -> None:
        self.codec, self.source, self.beam_width = codec, dict(source or {}), beam_width
        self.pairs = {k: data.get(k) for k in ("train", "valid", "test")}
        batches = {k: None if v is None or len(v) == 0 else codec.batch(v)
                   for k, v in self.pairs.items()}
        super().__init__(model, batches, config, size=len,
                         take=lambda b, index: (take(b, index),))

    def digest(self) -> str:
        h = hashlib.sha256()
        for name in sorted(self.pairs):
            pairs = self.pairs[name]
            if pairs is None:
                continue
            for q, a in zip(pairs.questions, pairs.answers, strict=True):
                h.update(f"{name}\x00{q}\x00{a}\x00".encode())
        return f"sha256:{h.hexdigest()}"

    def forward_loss(self, batch: tuple) -> float:
        return self.model.forward_loss(batch[0])

    def counts(self, batch: tuple) -> tuple[int, int]:
        """The pairs, and the answer characters (targets that are not padding) the
        cross-entropy averages."""
        return len(batch[0]), int((np.asarray(batch[0].targets) != IGNORE_INDEX).sum())

    def reference_loss(self) -> float:
        return math.log(self.model.config.vocab_size)

    def scores(self, split: str, config: Any) -> dict[str, float]:
        every = self.pairs[split]
        if every is None:
            return {}
        pairs: Pairs = every
        if self.world is not None:  # this rank's share of the pairs; the counts are reduced
            lo, hi = self.world.share(len(pairs))
            pairs = pairs.subset(list(range(lo, hi)))
        was_training = self.model.training
        try:
            right = exact_match(self.model, self.codec, pairs, self.beam_width) * len(pairs) \
                if len(pairs) else 0.0
        finally:
            self.model.train(was_training)
        if self.world is not None:
            right = float(self.world.allreduce_sum([right])[0])
        return {"exact_match": round(right) / len(every)}

    def meta(self) -> dict[str, Any]:
        return {"kind": self.kind, "model_config": self.model.config.to_dict(),
                "codec": self.codec.to_dict(), "data_source": self.source}

    def check_meta(self, meta: Mapping[str, Any], where: str) -> None:
        super().check_meta(meta, where)
        if meta_get(meta, "codec", dict, where) != self.codec.to_dict():
            raise CheckpointError(f"{where}: its vocabulary differs from this data's")


def make_task(model: Seq2Seq, codec: Codec, train: Pairs, valid: Pairs, config: Any, *,
              source: dict[str, Any] | None = None, beam_width: int = 1) -> Seq2SeqTask:
    """The :class:`Seq2SeqTask` of ``train`` and ``valid`` pairs."""
    return Seq2SeqTask(model, {"train": train, "valid": valid}, config, codec=codec,
                       source=source, beam_width=beam_width)


def fit(model: Seq2Seq, codec: Codec, train: Pairs, test: Pairs | None = None,
        options: TrainOptions | None = None,
        callback: Callable[[dict[str, Any]], None] | None = None, *,
        out_dir: str | os.PathLike[str] | None = None, patience: int | None = None,
        echo: Any = None) -> list[dict[str, Any]]:
    """Train ``model`` on ``train`` with :class:`~rnnlab.train.Trainer`, validating on
    ``test`` (``train`` itself when None) after each epoch.

    The run's checkpoints and metrics go to ``out_dir`` (a temporary folder when None,
    removed afterwards); the model ends with the parameters of its best validation loss.
    Returns one record per epoch (see :func:`history_of`); ``callback(record)`` is called
    for each when training ends.
    """
    opts = options or TrainOptions()
    config = train_config(opts, patience=patience)
    valid = test if test is not None and len(test) else train
    task = make_task(model, codec, train, valid, config, beam_width=opts.eval_beam_width)
    quiet = echo if echo is not None else (lambda message: None)
    with tempfile.TemporaryDirectory(prefix="rnnlab-seq2seq-") as tmp:
        folder = Path(out_dir) if out_dir is not None else Path(tmp)
        Trainer(task, config, folder, echo=quiet).fit()
        history = history_of(folder / "metrics.jsonl")
    for record in history:
        if callback is not None:
            callback(record)
    return history


# ---------------------------------------------------------------- checkpoints
def _model_arrays(model: Seq2Seq) -> dict[str, Any]:
    arrays = {}
    for name, param in model.named_parameters():
        if not bool(model.xp.isfinite(param).all()):
            raise CheckpointError(f"refusing to save: parameter {name!r} holds NaN or infinity")
        arrays[f"model/{name}"] = param
    return arrays


def _check_declared_size(config: Seq2SeqConfig, arrays: dict[str, np.ndarray],
                         where: str) -> None:
    """Refuse a configuration that declares more weights than the file holds, before the
    model is built (a hostile file could otherwise make it allocate gigabytes).

    A lower bound: one embedding, the encoder's and the decoder's recurrent weights, the
    output matrix (every decoder kind has at least these)."""
    V, E, H = config.vocab_size, config.embedding_dim, config.hidden_size
    G = cell_kind(config.cell, "Seq2SeqConfig.cell").n_gates
    Hd = 2 * H if config.bidirectional else H
    declared = V * E + G * H * (E + H) + G * Hd * (E + Hd) + Hd * V
    stored = sum(int(v.size) for k, v in arrays.items() if k.startswith("model/"))
    if declared > stored:
        raise CheckpointError(f"{where}: model_config declares at least {declared:,} weights, "
                              f"the file holds {stored:,} numbers in its model arrays")


def save_checkpoint(path: str | os.PathLike[str], model: Seq2Seq, codec: Codec, *,
                    data: dict[str, Any] | None = None, options: TrainOptions | None = None,
                    history: list[dict[str, Any]] | None = None) -> None:
    """Write the weights, config, codec (vocabulary) and run record atomically."""
    meta = {"kind": KIND, "model_config": model.config.to_dict(), "codec": codec.to_dict(),
            "data": data, "train": None if options is None else options.to_dict(),
            "history": history or []}
    write_checkpoint(path, _model_arrays(model), meta)


def load_checkpoint(path: str | os.PathLike[str], device: str | None = None
                    ) -> tuple[Seq2Seq, Codec, dict[str, Any]]:
    """``(model, codec, meta)`` from :func:`save_checkpoint`, everything validated first."""
    arrays, meta = read_checkpoint(path)
    where = f"checkpoint {str(path)!r}"
    if meta.get("kind") != KIND:
        raise CheckpointError(f"{where}: kind {meta.get('kind')!r} is not a seq2seq model "
                              f"(expected {KIND!r})")
    try:
        config = Seq2SeqConfig.from_dict(meta.get("model_config"))
        codec = Codec.from_dict(meta.get("codec"))  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: {exc}") from exc
    if config.vocab_size != len(codec.vocab):
        raise CheckpointError(f"{where}: model vocab_size {config.vocab_size} does not match "
                              f"the vocabulary ({len(codec.vocab)} tokens)")
    _check_declared_size(config, arrays, where)
    # a run's last.safetensors also holds the optimizer's buffers: not needed here
    unexpected = sorted(k for k in arrays if not k.startswith(("model/", "optim/")))
    if unexpected:
        raise CheckpointError(f"{where}: unexpected arrays {unexpected}")
    try:
        model = Seq2Seq(config, rng=0, device=device)
    except (TypeError, ValueError, OverflowError, MemoryError) as exc:
        raise CheckpointError(f"{where}: model_config is invalid ({exc})") from exc
    load_model_arrays(model, {k: v for k, v in arrays.items() if k.startswith("model/")},
                      where)
    model.eval()
    return model, codec, meta


# ------------------------------------------------------------------- the launcher
def start_run(task: Seq2SeqTask, config: TrainConfig, folder: Path, *,
              options: TrainOptions, out: Path, overwrite: bool = False,
              echo: Callable[[str], None] | None = None, world: World | None = None
              ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Train ``task`` in the new run folder ``folder`` (claimed through the prologue every
    family shares, :mod:`rnnlab.train.launch`), then write the best model to ``out``
    (:func:`fit_and_export`). Returns the summary and the history."""
    world = world or detect()
    folder, lock, _ = claim_run_folder(world, folder, overwrite=overwrite)
    try:
        trainer = Trainer(task, config, folder, echo=echo, distributed=world)
        return fit_and_export(trainer, task.codec, task.source, options, out)
    finally:
        lock.release()


def resume_run(path: str | os.PathLike[str], overrides: dict[str, Any], *,
               data_dir: str | None = None, data: str | None = None, device: str | None = None,
               progress: bool = False, echo: Callable[[str], None] | None = None,
               out: Path | None = None
               ) -> tuple[dict[str, Any], list[dict[str, Any]], Path]:
    """Continue the run saved in ``path`` (its folder or its ``last.safetensors``) exactly
    where it stopped: the model, data and trainer are rebuilt from the checkpoint; only the
    budget (``epochs``, ``max_steps``, ``patience``) may change (``overrides``); ``data``
    says where the run's pairs file is now (see :func:`source_pairs`). Returns the
    summary, the history and where the best model was written (``out``, by default the
    run folder's name with ``.safetensors``)."""
    say = echo or (lambda message: None)
    with resuming(Path(path)) as run:  # the prologue every family's resume shares
        meta, where, folder, world = run.meta, run.where, run.folder, run.world
        run.expect(KIND, repr(KIND))
        try:
            config = Seq2SeqConfig.from_dict(meta_get(meta, "model_config", dict, where))
            codec = Codec.from_dict(meta_get(meta, "codec", dict, where))
            saved = TrainConfig.from_dict(meta_get(meta, "train_config", dict, where))
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{where}: {exc}") from exc
        train_cfg = run.train_config({**overrides, "progress": progress})
        source = meta.get("data_source")
        if not isinstance(source, dict):
            raise CheckpointError(f"{where}: does not record its data (data_source)")
        pairs, _ = source_pairs(source, data_dir, "--task FILE (where the run's pairs file "
                                "is now)", where=where, path=data)
        train, test = split_pairs(pairs, int(source.get("split_seed", 1984)),
                                  float(source.get("test_fraction", 0.1)))
        model = Seq2Seq(config, rng=train_cfg.seed, device=device)
        task = make_task(model, codec, train, test if len(test) else train, train_cfg,
                         source=source)
        trainer = Trainer(task, train_cfg, folder, echo=say, distributed=world)
        trainer.restore(run.path)
        say(f"resuming {run.path} at epoch {trainer.progress.epoch + 1}, step "
            f"{trainer.progress.step}")
        options = TrainOptions(epochs=train_cfg.epochs, batch_size=train_cfg.batch_size,
                               lr=saved.lr, clip_norm=train_cfg.clip_norm,
                               schedule="cosine" if train_cfg.schedule == "cosine"
                               else "constant", warmup_steps=train_cfg.warmup_steps,
                               seed=train_cfg.seed, max_steps=train_cfg.max_steps)
        out = out if out is not None else folder.with_suffix(".safetensors")
        summary, history = fit_and_export(trainer, codec, source, options, out)
    return summary, history, out


def fit_and_export(trainer: Trainer, codec: Codec, source: dict[str, Any],
                   options: TrainOptions, out: Path
                   ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Fit ``trainer``; rank 0 writes the best model to ``out`` in the format ``rnnlab
    seq2seq eval`` and ``translate`` read. Returns the summary and the history (one record
    per epoch; empty on the other ranks)."""
    summary = trainer.fit()
    history: list[dict[str, Any]] = []
    if trainer.world.is_root:  # under mpiexec, rank 0 alone writes
        summary["run"] = str(trainer.out_dir)
        history = history_of(trainer.out_dir / "metrics.jsonl")
        out.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(out, trainer.model, codec, data=source, options=options,
                        history=history)
    return summary, history


def source_pairs(info: Any, data_dir: str | None, ask: str = "", *,
                 where: str = "the checkpoint", path: str | None = None
                 ) -> tuple[Any, str]:
    """All the pairs of the data a run records (before its split).

    Generated pairs are generated again; the book's file is looked for in ``data_dir``
    (or the data folder) when the recorded path is gone. ``path`` (named by the user:
    where the pairs file is now) replaces the recorded path, and must hold the recorded
    pairs when the record has their digest. A path read from the checkpoint is data, not
    trust (:func:`rnnlab.train.launch.read_named_file`): read only when it is a regular
    file, used only when its pairs have the recorded digest, and never quoted from. Every
    refusal asks for ``ask`` (e.g. ``"--data FILE"``)."""
    hint = f"; pass {ask}" if ask else ""
    if not isinstance(info, dict) or not isinstance(info.get("task"), str):
        raise CheckpointError(f"{where}: does not record its data{hint}")
    recorded = info.get("digest")
    try:
        if path is not None:
            pairs = read_pairs(path)
            if recorded is not None and pairs_digest(pairs) != recorded:
                raise CheckpointError(f"{where}: the pairs file given, {path!r}, does not "
                                      f"hold the data it was trained on (its digest "
                                      f"differs)")
        elif info.get("source") == "generated":
            pairs, _ = load_task(info["task"], "generated", int(info["n"]), int(info["seed"]))
        elif info["task"] in GENERATORS and not (isinstance(info.get("path"), str)
                                                 and Path(info["path"]).is_file()):
            pairs, _ = load_task(info["task"], "file", data_dir=data_dir)
            if recorded is not None and pairs_digest(pairs) != recorded:
                raise CheckpointError(f"{where}: the {info['task']} file found does not "
                                      f"hold the data it was trained on{hint}")
        else:
            pairs = read_named_file(info.get("path"), read_pairs, pairs_digest, recorded,
                                    where=where, what="pairs file",
                                    ask=ask or "the pairs file")
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{where}: its data record is malformed ({exc!r}){hint}") \
            from None
    return pairs, info["task"]
