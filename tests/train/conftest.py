"""Small corpora and configs for the training tests."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.data import load_text
from rnnlab.models import RNNLM
from rnnlab.train import TrainConfig

TEXT = ("the quick brown fox jumps over the lazy dog\n"
        "pack my box with five dozen liquor jugs\n"
        "how vexingly quick daft zebras jump\n") * 12


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "tiny.txt"
    path.write_text(TEXT, encoding="utf-8")
    return load_text(path, "char", split=(0.8, 0.1, 0.1))


def small_model(corpus, cell="lstm", seed=0, **kw):
    args = {"embedding_dim": 8, "hidden_size": 12, "num_layers": 2, "cell": cell,
            "dropout": 0.1, "rng": seed, **kw}
    return RNNLM(len(corpus.vocab), **args)


def small_config(**kw):
    args = {"epochs": 2, "batch_size": 4, "bptt": 8, "eval_batch_size": 2, "optimizer": "adam",
            "lr": 0.01, "clip_norm": 1.0, "log_every": 5, "checkpoint_every": 7,
            "snapshot_every": 5, "progress": False, "seed": 0, **kw}
    return TrainConfig(**args)


def params_of(model):
    return {n: np.array(p) for n, p in model.named_parameters()}
