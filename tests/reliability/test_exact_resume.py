"""Exact resume: training k steps straight equals training j steps, stopping, and resuming
for the rest, bit for bit on the CPU: every parameter, every optimizer buffer and
hyper-parameter, the schedule, the random state, the data position, the carried state and
the progress record (the whole ``last.safetensors``). For the three cell types, with
dropout on, every optimizer, every schedule, stops just before, at and just after an epoch
boundary, several stops in a row, and through the command line."""

from __future__ import annotations

import contextlib
import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from rnnlab.cli import main
from rnnlab.train import Trainer
from rnnlab.train.checkpoint import read_checkpoint
from tests.reliability.conftest import assert_same_checkpoint, small_config, small_model

EPOCH = 36  # windows per epoch of the corpus fixture

# name: (model options, training options, stops j..., k)
SCENARIOS: dict[str, tuple[dict[str, Any], dict[str, Any], tuple[int, ...], int]] = {
    "adam-mid-epoch": ({}, {"optimizer": "adam"}, (11,), 23),
    "sgd-momentum-plateau-across-epoch": (
        {}, {"optimizer": "sgd", "lr": 0.5, "momentum": 0.9, "schedule": "plateau",
             "lr_decay": 0.5}, (EPOCH - 1,), EPOCH + 4),
    "nesterov-step-at-epoch-end": (
        {"tie_weights": True, "embedding_dim": 12}, {"optimizer": "nesterov", "lr": 0.1,
                                                     "schedule": "step", "decay_start": 1,
                                                     "lr_decay": 0.7}, (EPOCH,), EPOCH + 6),
    "rmsprop-cosine-warmup-after-epoch": (
        {"num_layers": 1}, {"optimizer": "rmsprop", "lr": 0.003, "momentum": 0.5,
                            "schedule": "cosine", "warmup_steps": 5}, (EPOCH + 1,), EPOCH + 9),
    "adagrad-exp-float64": (
        {"dtype": "float64"}, {"optimizer": "adagrad", "lr": 0.05, "schedule": "exp",
                               "decay_start": 1}, (20,), EPOCH + 3),
    "adamw-clip-value": ({}, {"optimizer": "adamw", "weight_decay": 0.01, "clip_value": 0.5,
                              "clip_norm": None}, (5,), 15),
    "momentum-three-stops": ({"dropout": 0.3}, {"optimizer": "momentum", "lr": 0.05},
                             (7, 19, EPOCH), EPOCH + 5),
}
CELLS = ("rnn", "lstm", "gru")
# every scenario on two of the three cells, every cell in most scenarios
CASES = [(name, CELLS[(i + d) % 3]) for i, name in enumerate(SCENARIOS) for d in (0, 1)]


def _model(corpus: Any, cell: str, model_kw: dict[str, Any], seed: int = 0) -> Any:
    kw = dict(model_kw)
    if cell == "rnn" and kw.get("dtype") == "float64":
        kw["nonlinearity"] = "relu"  # the ReLU RNN once
    return small_model(corpus, cell, seed=seed, **kw)


@pytest.mark.parametrize(("scenario", "cell"), CASES)
def test_stop_and_resume_equals_straight(tmp_path: Path, corpus: Any, scenario: str,
                                         cell: str) -> None:
    model_kw, train_kw, stops, k = SCENARIOS[scenario]
    cfg = small_config(**train_kw)
    straight = Trainer(_model(corpus, cell, model_kw), corpus, replace(cfg, max_steps=k),
                       tmp_path / "straight", echo=lambda m: None)
    straight.fit()

    run = tmp_path / "resumed"
    trainer = Trainer(_model(corpus, cell, model_kw), corpus, replace(cfg, max_steps=stops[0]),
                      run, echo=lambda m: None)
    trainer.fit()
    for i, j in enumerate((*stops[1:], k)):
        # a new process would build a new model: another seed, so that everything must load
        trainer = Trainer(_model(corpus, cell, model_kw, seed=100 + i), corpus,
                          replace(cfg, max_steps=j), run, echo=lambda m: None)
        trainer.restore(run / "last.safetensors")
        assert trainer.progress.step == (stops[i])
        trainer.fit()
    assert_same_checkpoint(tmp_path / "straight" / "last.safetensors", run / "last.safetensors")
    if k > EPOCH:  # the best model of the first epoch (its train_config names the max_steps
        # of the invocation that wrote it)
        assert_same_checkpoint(tmp_path / "straight" / "best.safetensors",
                               run / "best.safetensors", ignore=("train_config",))


def test_resume_restores_the_exact_position(tmp_path: Path, corpus: Any) -> None:
    trainer = Trainer(small_model(corpus), corpus, small_config(max_steps=EPOCH + 3),
                      tmp_path / "r", echo=lambda m: None)
    trainer.fit()
    _, meta = read_checkpoint(tmp_path / "r" / "last.safetensors")
    assert meta["data"]["position"] == 3 and meta["data"]["epoch"] == 0
    assert meta["progress"]["epoch"] == 1 and meta["progress"]["step"] == EPOCH + 3
    other = Trainer(small_model(corpus, seed=5), corpus, small_config(), tmp_path / "r",
                    echo=lambda m: None)
    other.restore(tmp_path / "r" / "last.safetensors")
    assert other.batcher.position == 3 and other.progress.epoch == 1
    assert other.model.rng.bit_generator.state == meta["rng"]
    assert other.optimizer.step_count == EPOCH + 3
    h, c = other.model.get_state()
    assert h.shape == (2, 4, 12) and c is not None


def _cli(argv: list[str]) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(argv)


@pytest.mark.parametrize("cell", CELLS)
def test_command_line_stop_and_resume_equals_straight(tmp_path: Path, text_file: Path,
                                                      cell: str) -> None:
    common = ["--corpus", str(text_file), "--cell", cell, "--hidden-size", "12",
              "--embedding-dim", "8", "--num-layers", "2", "--dropout", "0.2", "--batch-size",
              "4", "--bptt", "8", "--eval-batch-size", "2", "--epochs", "3", "--schedule",
              "cosine", "--warmup-steps", "3", "--checkpoint-every", "4", "--no-progress",
              "--sample-length", "0", "--seed", "7"]
    j, k = 30, 45  # the resumed part crosses the end of the first epoch (40 windows)
    assert _cli(["train", *common, "--out", str(tmp_path / "s"), "--max-steps", str(k)]) == 0
    assert _cli(["train", *common, "--out", str(tmp_path / "r"), "--max-steps", str(j)]) == 0
    assert read_checkpoint(tmp_path / "r" / "last.safetensors")[1]["progress"]["step"] == j
    assert _cli(["train", "--resume", str(tmp_path / "r" / "last.safetensors"), "--max-steps",
                 str(k), "--no-progress", "--sample-length", "0"]) == 0
    assert_same_checkpoint(tmp_path / "s" / "last.safetensors",
                           tmp_path / "r" / "last.safetensors")
    assert_same_checkpoint(tmp_path / "s" / "best.safetensors",
                           tmp_path / "r" / "best.safetensors", ignore=("train_config",))
