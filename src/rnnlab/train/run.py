"""Whole runs, as the command line starts them: load data, build the model, train, sample;
resume a run from its checkpoint; evaluate a saved model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from rnnlab.models.rnnlm import RNNLM, RNNLMConfig
from rnnlab.train.checkpoint import CheckpointError, meta_get, read_checkpoint
from rnnlab.train.config import DataConfig, TrainConfig
from rnnlab.train.evaluate import evaluate_ids
from rnnlab.train.metrics import ProgressBar, perplexity
from rnnlab.train.state import check_fits_in_memory
from rnnlab.train.trainer import Trainer


def load_data(cfg: DataConfig) -> Any:
    """The corpus a :class:`DataConfig` names."""
    from rnnlab import data

    name = cfg.corpus
    if name == "stdlib":
        return data.load_stdlib(max_chars=cfg.max_chars)
    if name == "ptb":
        return data.load_ptb(cfg.data_dir)
    if name in ("tinyshakespeare", "shakespeare"):
        return data.load_tinyshakespeare(cfg.data_dir)
    return data.load_text(name, cfg.level, max_size=cfg.max_size, min_freq=cfg.min_freq)


def _sample(model: RNNLM, vocab: Any, length: int, seed: int) -> str:
    from rnnlab.generate import generate

    if length <= 0:
        return ""
    return generate(model, vocab, "", length, temperature=0.8, seed=seed)


def start_run(model_kw: dict[str, Any], train_kw: dict[str, Any], data_kw: dict[str, Any], *,
              out: str | Path | None = None, device: str | None = None,
              sample_length: int = 300, echo: Any = None) -> tuple[dict[str, Any], str]:
    """Train a new model; return the run summary and a text sample."""
    echo = echo or ProgressBar.write
    data_cfg = DataConfig.from_dict(data_kw)
    train_cfg = TrainConfig.from_dict(train_kw)
    corpus = load_data(data_cfg)
    echo(corpus.description)
    model_cfg = RNNLMConfig.from_dict({"vocab_size": len(corpus.vocab), **model_kw})
    check_fits_in_memory(model_cfg)
    model = RNNLM.from_config(model_cfg, rng=train_cfg.seed, device=device)
    out = Path(out) if out else Path("runs") / f"{corpus.name}-{model_cfg.cell}"
    echo(f"model: {model_cfg.cell} x{model_cfg.num_layers}, hidden {model_cfg.hidden_size}, "
         f"{model.num_parameters():,} parameters; run folder {out}")
    trainer = Trainer(model, corpus, train_cfg, out, data_config=data_cfg, echo=echo)
    summary = trainer.fit()
    summary["run"] = str(out)
    return summary, _sample(model, corpus.vocab, sample_length, train_cfg.seed)


def resume_run(path: str | Path, overrides: dict[str, Any], *, device: str | None = None,
               sample_length: int = 300, echo: Any = None) -> tuple[dict[str, Any], str]:
    """Continue the run saved in ``path`` (its ``last.safetensors``) exactly where it stopped.

    Only ``epochs``, ``max_steps``, ``max_time`` and ``progress`` may be overridden; the
    step and time limits of the earlier invocation are not inherited (they are budgets of
    one invocation), so without them the run goes on to its last epoch.
    """
    from rnnlab.data import DataError
    from rnnlab.train.state import build_model

    echo = echo or ProgressBar.write
    arrays, meta = read_checkpoint(path)
    where = f"checkpoint {str(path)!r}"
    if meta.get("kind") != "rnnlm":
        raise CheckpointError(f"{where}: holds a {meta.get('kind')!r} model, expected 'rnnlm'")
    if "optimizer" not in meta:
        raise CheckpointError(f"{where}: holds no training state (a best-model file?); "
                              f"resume from last.safetensors")
    try:
        train_cfg = TrainConfig.from_dict(meta_get(meta, "train_config", dict, where))
        data_cfg = DataConfig.from_dict(meta_get(meta, "data_config", dict, where))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: its run configuration is invalid ({exc})") from exc
    train_cfg = replace(train_cfg, **{"max_steps": None, "max_time": None, **overrides})
    try:
        corpus = load_data(data_cfg)
    except DataError as exc:
        raise CheckpointError(f"{where}: the corpus it was trained on cannot be loaded "
                              f"({exc})") from exc
    model = build_model(meta, where, device, arrays=arrays, rng=train_cfg.seed)
    del arrays
    try:
        trainer = Trainer(model, corpus, train_cfg, Path(path).parent, data_config=data_cfg,
                          echo=echo)
    except (TypeError, ValueError) as exc:  # DataError included
        raise CheckpointError(f"{where}: its configuration does not fit its corpus "
                              f"({exc})") from exc
    trainer.restore(path)
    echo(f"resuming {path} at epoch {trainer.progress.epoch + 1}, step {trainer.progress.step}")
    summary = trainer.fit()
    summary["run"] = str(Path(path).parent)
    return summary, _sample(model, corpus.vocab, sample_length, train_cfg.seed)


def evaluate_checkpoint(path: str | Path, *, text: str | None = None, split: str = "both",
                        batch_size: int = 10, bptt: int = 35, data_dir: str | None = None,
                        device: str | None = None) -> dict[str, Any]:
    """Perplexity of a saved model on its corpus's splits or on a text file."""
    from rnnlab.data import DataError
    from rnnlab.data.textio import read_text
    from rnnlab.train.state import load_model

    model, vocab, meta = load_model(path, device=device)
    parts: dict[str, Any] = {}
    if text is not None:
        # strict UTF-8 with the byte offset of a bad byte; folders, binary files and
        # devices are refused instead of read
        content = read_text(text)
        parts["text"] = vocab.encode(vocab.tokenize(content))
    else:
        data_meta = meta.get("data_config")
        if not isinstance(data_meta, dict):
            raise CheckpointError(f"checkpoint {str(path)!r}: does not say which corpus it was "
                                  f"trained on; pass --text FILE")
        try:
            cfg = DataConfig.from_dict(data_meta)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {str(path)!r}: its data configuration is "
                                  f"invalid ({exc})") from exc
        if data_dir is not None:
            cfg = replace(cfg, data_dir=data_dir)
        corpus = load_data(cfg)
        if corpus.vocab.to_dict() != vocab.to_dict():
            raise CheckpointError(f"checkpoint {str(path)!r}: the corpus's vocabulary differs "
                                  f"from the model's")
        for name in ("valid", "test") if split == "both" else (split,):
            parts[name] = getattr(corpus, name)
    result: dict[str, Any] = {"checkpoint": str(path)}
    for name, ids in parts.items():
        if len(ids) < 2:
            what = "the text" if name == "text" else f"the {name} split"
            raise DataError(f"eval: {what} has {len(ids)} token(s); at least 2 are needed")
        loss = evaluate_ids(model, ids, batch_size=batch_size, bptt=bptt)
        result[name] = {"loss": loss, "ppl": perplexity(loss), "tokens": len(ids)}
    return result
