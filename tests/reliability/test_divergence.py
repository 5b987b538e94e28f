"""Divergence: a run forced to diverge (a huge learning rate, an injected inf or NaN in the
loss, the gradients, the parameters or the validation loss) is detected, rolled back and
reported, and never writes a NaN checkpoint over a good one."""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rnnlab.train import DivergenceError, Trainer
from rnnlab.train.checkpoint import read_checkpoint
from rnnlab.train.metrics import read_metrics
from tests.reliability.conftest import finite_file, small_config, small_model

EPOCH = 36


def _divergences(run: Path) -> list[dict[str, Any]]:
    return [e for e in read_metrics(run / "metrics.jsonl") if e["event"] == "divergence"]


def test_update_to_infinity_is_rolled_back_not_saved(tmp_path: Path, corpus: Any) -> None:
    """SGD with a learning rate past float32's range: the loss and gradient of the step
    are finite, the update is not. The guard must catch the parameters, not the save."""
    messages: list[str] = []
    run = tmp_path / "run"
    cfg = small_config(optimizer="sgd", lr=0.1, clip_norm=None, max_divergences=2,
                       checkpoint_every=1, snapshot_every=1)
    good = Trainer(small_model(corpus), corpus, replace(cfg, max_steps=10), run,
                   echo=messages.append)
    good.fit()
    before = (run / "last.safetensors").read_bytes()
    trainer = Trainer(small_model(corpus, seed=4), corpus, cfg, run, echo=messages.append)
    trainer.restore(run / "last.safetensors")
    trainer.optimizer.lr = 1e45  # a learning rate past float32's range
    with pytest.raises(DivergenceError, match="diverged 3 times"):
        trainer.fit()
    reports = [m for m in messages if "divergence at step 11" in m]
    assert len(reports) == 3 and all("NaN or infinite after the update" in m for m in reports)
    assert all(e["reason"] == "a parameter is NaN or infinite after the update"
               for e in _divergences(run))
    assert finite_file(run / "last.safetensors")
    arrays, meta = read_checkpoint(run / "last.safetensors")
    before_arrays = read_checkpoint_bytes(before, tmp_path)
    for name, value in before_arrays.items():
        if name.startswith("model/"):
            np.testing.assert_array_equal(arrays[name], value)  # the good state, kept
    assert meta["progress"]["step"] == 10 and meta["progress"]["divergences"] == 3


def read_checkpoint_bytes(data: bytes, tmp_path: Path) -> dict[str, np.ndarray]:
    path = tmp_path / "copy.safetensors"
    path.write_bytes(data)
    return read_checkpoint(path)[0]


@pytest.mark.parametrize("where", ["loss", "gradient", "parameter"])
def test_injected_inf_before_a_checkpoint(tmp_path: Path, corpus: Any, monkeypatch: Any,
                                          where: str) -> None:
    """inf injected at step 14, a checkpoint step: rolled back to step 10, reported, the
    checkpoint on disk stays the good one of step 7, and the run then completes."""
    model = small_model(corpus)
    messages: list[str] = []
    run = tmp_path / where
    trainer = Trainer(model, corpus, small_config(max_steps=20, checkpoint_every=7,
                                                  snapshot_every=5), run,
                      echo=messages.append)
    calls = {"n": 0}
    if where == "loss":
        real_loss = model.forward_loss

        def poisoned_loss(x: Any, y: Any) -> float:
            calls["n"] += 1
            return math.inf if calls["n"] == 14 else real_loss(x, y)

        monkeypatch.setattr(model, "forward_loss", poisoned_loss)
    elif where == "gradient":
        real_backward = model.backward

        def poisoned_backward(dloss: float = 1.0) -> None:
            calls["n"] += 1
            real_backward(dloss)
            if calls["n"] == 14:
                model.decoder.grads["weight"][0, 0] = np.inf

        monkeypatch.setattr(model, "backward", poisoned_backward)
    else:
        real_step = trainer.optimizer.step

        def poisoned_step() -> None:
            calls["n"] += 1
            real_step()
            if calls["n"] == 14:
                model.embedding.params["weight"][1, 1] = np.inf

        monkeypatch.setattr(trainer.optimizer, "step", poisoned_step)
    saved: list[tuple[int, bool]] = []
    real_save = trainer.save

    def watching_save(path: Path, **kw: Any) -> None:
        real_save(path, **kw)
        saved.append((trainer.progress.step, finite_file(Path(path))))

    monkeypatch.setattr(trainer, "save", watching_save)
    summary = trainer.fit()
    assert summary["steps"] == 20 and summary["stopped"] == "max_steps"
    assert any("divergence at step 14" in m and "rolled back to step 10" in m for m in messages)
    [event] = _divergences(run)
    assert event["step"] == 14 and event["rolled_back_to"] == 10
    # the second save at 20: the stop's validation, the best so far, is best.safetensors
    assert all(ok for _, ok in saved) and [s for s, _ in saved] == [7, 14, 20, 20]
    assert finite_file(run / "last.safetensors")


def test_nan_gradient_every_step_stops_with_the_good_state(tmp_path: Path, corpus: Any,
                                                           monkeypatch: Any) -> None:
    model = small_model(corpus)
    run = tmp_path / "n"
    trainer = Trainer(model, corpus, small_config(checkpoint_every=1, max_divergences=2), run,
                      echo=lambda m: None)
    real = model.backward
    calls = {"n": 0}

    def poisoned(dloss: float = 1.0) -> None:
        calls["n"] += 1
        real(dloss)
        if calls["n"] > 6:
            model.rnn.grads["weight_hh_l0"][0, 0] = np.nan

    monkeypatch.setattr(model, "backward", poisoned)
    with pytest.raises(DivergenceError, match="last good state is in"):
        trainer.fit()
    _, meta = read_checkpoint(run / "last.safetensors")
    assert finite_file(run / "last.safetensors") and meta["progress"]["step"] == 5
    assert [e["reason"] for e in _divergences(run)] == ["gradient norm nan"] * 3


def test_nan_validation_loss_is_a_divergence(tmp_path: Path, corpus: Any,
                                             monkeypatch: Any) -> None:
    """Finite parameters whose validation loss overflows: rolled back, not saved as best."""
    messages: list[str] = []
    trainer = Trainer(small_model(corpus), corpus, small_config(epochs=1), tmp_path / "v",
                      echo=messages.append)
    real = trainer.evaluate
    calls = {"n": 0}

    def evaluate(split: str = "valid") -> float:
        calls["n"] += 1
        return math.nan if calls["n"] == 1 else real(split)

    monkeypatch.setattr(trainer, "evaluate", evaluate)
    summary = trainer.fit()
    assert any("validation loss nan" in m for m in messages)
    assert summary["epochs"] == 1 and summary["steps"] == EPOCH
    assert math.isfinite(summary["best_valid_loss"])
    assert finite_file(tmp_path / "v" / "best.safetensors")


def test_a_rollback_does_not_make_the_run_endless(tmp_path: Path, corpus: Any,
                                                  monkeypatch: Any) -> None:
    """Regression: ``fit`` kept the Progress object a rollback replaced, so a one-epoch run
    with one divergence trained on forever."""
    model = small_model(corpus)
    trainer = Trainer(model, corpus, small_config(epochs=1, checkpoint_every=1000), tmp_path,
                      echo=lambda m: None)
    real = model.forward_loss
    calls = {"n": 0}

    def flaky(x: Any, y: Any) -> float:
        calls["n"] += 1
        if calls["n"] > 500:
            raise AssertionError("still training after 500 forward passes")
        return math.inf if calls["n"] == 8 else real(x, y)

    monkeypatch.setattr(model, "forward_loss", flaky)
    summary = trainer.fit()
    assert summary["epochs"] == 1 and summary["steps"] == EPOCH and summary["stopped"] is None
    logged = [e for e in read_metrics(tmp_path / "metrics.jsonl") if e["event"] == "train"]
    assert [e["step"] for e in logged] == list(range(5, EPOCH + 1, 5))  # not stuck at step 8


def test_command_line_divergence_exits_3_with_one_line(tmp_path: Path, text_file: Path
                                                       ) -> None:
    run = tmp_path / "cli"
    result = subprocess.run(
        [sys.executable, "-m", "rnnlab", "train", "--corpus", str(text_file), "--out",
         str(run), "--optimizer", "sgd", "--lr", "1e45", "--clip-norm", "0", "--batch-size",
         "4", "--bptt", "8", "--hidden-size", "8", "--embedding-dim", "4", "--no-progress",
         "--sample-length", "0", "--checkpoint-every", "1"],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr and "RuntimeWarning" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("rnnlab: error:")]
    assert len(errors) == 1 and "training diverged 4 times" in errors[0]
    assert len([line for line in result.stderr.splitlines() if "divergence at step" in line]) == 4
    assert finite_file(run / "last.safetensors")
