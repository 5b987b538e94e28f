"""Shared pieces of the reliability tests: a small corpus, small models, file comparison."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rnnlab.data import load_text
from rnnlab.models import RNNLM
from rnnlab.train import TrainConfig, Trainer
from rnnlab.train.checkpoint import read_checkpoint

TEXT = ("the quick brown fox jumps over the lazy dog\n"
        "pack my box with five dozen liquor jugs\n"
        "how vexingly quick daft zebras jump\n") * 12


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


@pytest.fixture
def corpus(text_file: Path) -> Any:
    """36 training windows of (4, 8) per epoch."""
    return load_text(text_file, "char", split=(0.8, 0.1, 0.1))


def small_model(corpus: Any, cell: str = "lstm", seed: int = 0, **kw: Any) -> RNNLM:
    args = {"embedding_dim": 8, "hidden_size": 12, "num_layers": 2, "cell": cell,
            "dropout": 0.1, "rng": seed, **kw}
    return RNNLM(len(corpus.vocab), **args)


def small_config(**kw: Any) -> TrainConfig:
    args = {"epochs": 3, "batch_size": 4, "bptt": 8, "eval_batch_size": 2, "optimizer": "adam",
            "lr": 0.01, "clip_norm": 1.0, "log_every": 5, "checkpoint_every": 7,
            "snapshot_every": 5, "progress": False, "seed": 0, **kw}
    return TrainConfig(**args)


def assert_same_checkpoint(a: Path, b: Path, *, ignore: tuple[str, ...] = ()) -> None:
    """Bit-identical arrays (names, dtypes, values) and equal JSON documents."""
    a_arrays, a_meta = read_checkpoint(a)
    b_arrays, b_meta = read_checkpoint(b)
    assert sorted(a_arrays) == sorted(b_arrays)
    for name, value in a_arrays.items():
        other = b_arrays[name]
        assert value.dtype == other.dtype and value.shape == other.shape, name
        assert value.tobytes() == other.tobytes(), f"{name} differs"
    for key in sorted(set(a_meta) | set(b_meta)):
        if key not in ignore:
            assert a_meta.get(key) == b_meta.get(key), f"metadata {key!r} differs"


def finite_file(path: Path) -> bool:
    arrays, _ = read_checkpoint(path)
    return all(np.isfinite(v).all() for v in arrays.values() if v.dtype.kind == "f")


@pytest.fixture
def run(tmp_path: Path, corpus: Any) -> Path:
    """The folder of a small run of three steps (its last and best checkpoints)."""
    folder = tmp_path / "run"
    Trainer(small_model(corpus), corpus, small_config(max_steps=3), folder,
            echo=lambda m: None).fit()
    return folder
