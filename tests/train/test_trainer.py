"""Trainer: metrics, checkpoints, bit-exact resume, divergence guard, early stop, Ctrl-C."""

from __future__ import annotations

import io
import json
import math
import signal

import numpy as np
import pytest

from rnnlab.train import CheckpointError, DivergenceError, Trainer
from rnnlab.train.checkpoint import read_checkpoint
from rnnlab.train.metrics import read_metrics
from rnnlab.train.state import load_model
from tests.train.conftest import params_of, small_config, small_model


def test_fit_writes_metrics_and_checkpoints(tmp_path, corpus):
    model = small_model(corpus)
    trainer = Trainer(model, corpus, small_config(), tmp_path / "run")
    summary = trainer.fit()
    run = tmp_path / "run"
    assert (run / "last.safetensors").exists() and (run / "best.safetensors").exists()
    events = [r["event"] for r in read_metrics(run / "metrics.jsonl")]
    assert events.count("valid") == 2 and "test" in events and "train" in events
    assert summary["epochs"] == 2 and math.isfinite(summary["test_ppl"])
    assert summary["best_valid_loss"] <= summary["valid_loss"] + 1e-12
    loaded, vocab, meta = load_model(run / "best.safetensors")
    assert vocab.to_dict() == corpus.vocab.to_dict() and meta["kind"] == "rnnlm"
    for name, value in params_of(loaded).items():
        np.testing.assert_array_equal(value, params_of(model)[name])  # model holds the best


def test_training_reduces_validation_loss(tmp_path, corpus):
    model = small_model(corpus, dropout=0.0)
    trainer = Trainer(model, corpus, small_config(epochs=1, max_steps=1), tmp_path / "a")
    first = trainer.fit()["valid_loss"]
    trainer = Trainer(small_model(corpus, dropout=0.0), corpus, small_config(epochs=6),
                      tmp_path / "b")
    assert trainer.fit()["best_valid_loss"] < first - 0.3


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_resume_after_an_epoch_is_bit_exact(tmp_path, corpus, cell):
    straight = small_model(corpus, cell)
    Trainer(straight, corpus, small_config(epochs=2), tmp_path / "s").fit()
    last_straight = read_checkpoint(tmp_path / "s" / "last.safetensors")[0]

    first = small_model(corpus, cell)
    Trainer(first, corpus, small_config(epochs=1), tmp_path / "r").fit()
    resumed = small_model(corpus, cell, seed=123)  # different init: everything must load
    trainer = Trainer(resumed, corpus, small_config(epochs=2), tmp_path / "r")
    trainer.restore(tmp_path / "r" / "last.safetensors")
    trainer.fit()
    last_resumed = read_checkpoint(tmp_path / "r" / "last.safetensors")[0]
    assert set(last_straight) == set(last_resumed)
    for name, value in last_straight.items():
        np.testing.assert_array_equal(last_resumed[name], value, err_msg=name)


def test_resume_mid_epoch_is_bit_exact(tmp_path, corpus):
    straight = small_model(corpus)
    Trainer(straight, corpus, small_config(epochs=1, max_steps=11), tmp_path / "s").fit()
    part = small_model(corpus)
    Trainer(part, corpus, small_config(epochs=1, max_steps=4), tmp_path / "r").fit()
    resumed = small_model(corpus, seed=9)
    trainer = Trainer(resumed, corpus, small_config(epochs=1, max_steps=11), tmp_path / "r")
    trainer.restore(tmp_path / "r" / "last.safetensors")
    assert trainer.progress.step == 4 and trainer.batcher.position == 4
    trainer.fit()
    for name, value in params_of(straight).items():
        np.testing.assert_array_equal(params_of(resumed)[name], value, err_msg=name)


def test_restore_rejects_mismatches(tmp_path, corpus):
    Trainer(small_model(corpus), corpus, small_config(epochs=1, max_steps=2),
            tmp_path / "r").fit()
    other = Trainer(small_model(corpus, hidden_size=10), corpus, small_config(), tmp_path / "o")
    with pytest.raises(CheckpointError, match="model configuration differs"):
        other.restore(tmp_path / "r" / "last.safetensors")
    best_only = tmp_path / "r" / "b.safetensors"
    trainer = Trainer(small_model(corpus), corpus, small_config(), tmp_path / "r")
    trainer.save(best_only, training_state=False)
    with pytest.raises(CheckpointError, match="holds no training state"):
        trainer.restore(best_only)


def test_divergence_rolls_back_and_lowers_lr(tmp_path, corpus, monkeypatch):
    model = small_model(corpus)
    messages = []
    trainer = Trainer(model, corpus, small_config(epochs=1, max_steps=15, lr=0.01),
                      tmp_path / "d", echo=messages.append)
    real = model.forward_loss
    calls = {"n": 0}

    def flaky(x, y):
        calls["n"] += 1
        return math.inf if calls["n"] == 8 else real(x, y)

    monkeypatch.setattr(model, "forward_loss", flaky)
    summary = trainer.fit()
    assert summary["steps"] == 15
    assert any("divergence at step 8" in m and "rolled back to step 5" in m for m in messages)
    assert trainer.optimizer.lr == pytest.approx(0.005)
    events = read_metrics(tmp_path / "d" / "metrics.jsonl")
    div = [e for e in events if e["event"] == "divergence"]
    assert len(div) == 1 and div[0]["rolled_back_to"] == 5
    arrays, _ = read_checkpoint(tmp_path / "d" / "last.safetensors")
    assert all(np.isfinite(v).all() for v in arrays.values())


def test_huge_learning_rate_is_caught_and_stops(tmp_path, corpus):
    messages = []
    trainer = Trainer(small_model(corpus), corpus,
                      small_config(lr=1e6, max_divergences=2, clip_norm=None, optimizer="sgd"),
                      tmp_path / "x", echo=messages.append)
    with pytest.raises(DivergenceError, match="diverged 3 times"):
        trainer.fit()
    assert len([m for m in messages if "divergence at step" in m]) == 3
    # never counted past the limit: two rollbacks of at most 2, then the stop
    assert [m.rsplit("(", 1)[-1] for m in messages[:2]] == ["rollback 1 of at most 2)",
                                                            "rollback 2 of at most 2)"]
    assert "max_divergences allows 2 rollbacks, all made; stopping" in messages[2]
    assert not any("3 of at most" in m or "3/2" in m for m in messages)
    arrays, meta = read_checkpoint(tmp_path / "x" / "last.safetensors")
    assert all(np.isfinite(v).all() for v in arrays.values())
    assert meta["progress"]["divergences"] == 3
    assert meta["optimizer"]["hyper"]["lr"] == pytest.approx(1e6 * 0.5**3)


def test_injected_nan_never_reaches_a_checkpoint(tmp_path, corpus, monkeypatch):
    model = small_model(corpus)
    trainer = Trainer(model, corpus, small_config(epochs=1, checkpoint_every=1), tmp_path / "n",
                      echo=lambda m: None)
    real = model.backward

    def poisoned(dloss=1.0):
        real(dloss)
        model.rnn.grads["weight_hh_l0"][0, 0] = np.nan

    monkeypatch.setattr(model, "backward", poisoned)
    with pytest.raises(DivergenceError):
        trainer.fit()
    arrays, _ = read_checkpoint(tmp_path / "n" / "last.safetensors")
    assert all(np.isfinite(v).all() for v in arrays.values())


def test_early_stopping(tmp_path, corpus, monkeypatch):
    trainer = Trainer(small_model(corpus), corpus, small_config(epochs=20, patience=2),
                      tmp_path / "e", echo=lambda m: None)
    losses = iter([3.0, 2.5, 2.6, 2.7, 2.4, 2.4])  # improves twice, then stalls twice
    monkeypatch.setattr(trainer, "evaluate", lambda split="valid": next(losses))
    summary = trainer.fit()
    assert summary["epochs"] == 20  # marked finished
    events = [r["event"] for r in read_metrics(tmp_path / "e" / "metrics.jsonl")]
    assert events.count("valid") == 4 and "early_stop" in events
    assert summary["best_valid_loss"] == 2.5


def test_ctrl_c_saves_and_resumes(tmp_path, corpus, monkeypatch):
    model = small_model(corpus)
    trainer = Trainer(model, corpus, small_config(epochs=1), tmp_path / "c",
                      echo=lambda m: None)
    real = trainer._train_step
    calls = {"n": 0}

    def step(x, y):
        calls["n"] += 1
        if calls["n"] == 3:
            signal.raise_signal(signal.SIGINT)
        return real(x, y)

    monkeypatch.setattr(trainer, "_train_step", step)
    summary = trainer.fit()
    assert summary["stopped"] == "interrupted" and summary["steps"] == 3
    _, meta = read_checkpoint(tmp_path / "c" / "last.safetensors")
    assert meta["progress"]["step"] == 3 and meta["data"]["position"] == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_metrics_lines_are_json(tmp_path, corpus):
    Trainer(small_model(corpus), corpus, small_config(epochs=1), tmp_path / "m").fit()
    for line in (tmp_path / "m" / "metrics.jsonl").read_text().splitlines():
        assert isinstance(json.loads(line), dict)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_shows_tokens_per_second(monkeypatch):
    """The postfix shows the real rate (it once read tqdm's unset rate and showed 0),
    counted from the end of the first step (which holds numba's compilation)."""
    from rnnlab.train import metrics

    clock = iter([100.0, 101.0, 102.0, 103.0, 104.0, 105.0, 107.0])
    monkeypatch.setattr(metrics.time, "perf_counter", lambda: next(clock))
    bar = metrics.ProgressBar(10, 0, "epoch 1", tokens_per_batch=64, file=_Terminal())
    bar.update(1, loss=2.0, lr=0.1)  # the first step: no rate yet, however long it took
    assert "tok_s" not in bar.bar.postfix and bar.bar.initial == 1
    bar.update(5, loss=2.0, lr=0.1)  # 4 batches in 1 s: 256 tokens/s
    assert bar.bar.postfix is not None and "tok_s=256" in bar.bar.postfix
    bar.update(9, loss=2.0, lr=0.1)  # 8 in 2 s
    assert "tok_s=256" in bar.bar.postfix
    bar.reset(5)  # a rollback at t=104: counted afresh, not as negative work
    bar.update(6, loss=2.0, lr=0.1)  # the first step after it is left out again
    bar.update(8, loss=2.0, lr=0.1)  # 2 batches in 2 s
    assert "tok_s=64" in bar.bar.postfix
    bar.close()


def test_progress_without_a_terminal_prints_plain_lines(monkeypatch):
    """A log file gets whole lines every so often and at the epoch's end, no frames."""
    from rnnlab.train import metrics

    clock = iter([0.0, 1.0, 2.0, 40.0, 41.0, 90.0])
    monkeypatch.setattr(metrics.time, "perf_counter", lambda: next(clock))
    log = io.StringIO()
    bar = metrics.ProgressBar(5, 0, "epoch 2", tokens_per_batch=10, file=log)
    assert bar.bar is None and bar.plain
    for position in range(1, 6):
        bar.update(position, loss=1.0, lr=0.01)
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 2
    assert lines[0].startswith("epoch 2: 3/5 batches, loss 1.000, ppl 2.7, tok_s 1, lr 0.01")
    assert "s left" in lines[0]
    assert lines[1].startswith("epoch 2: 5/5 batches")


def test_trainer_logs_plain_progress_to_a_file(tmp_path, corpus, monkeypatch):
    import sys

    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    Trainer(small_model(corpus), corpus, small_config(epochs=1, progress=True, max_steps=3),
            tmp_path / "p", echo=lambda m: None).fit()
    assert "\r" not in log.getvalue() and "epoch 1: 3/" in log.getvalue()


def test_frozen_parameters_stay_and_resume_is_bit_exact(tmp_path, corpus):
    """freeze: kept as initialised, left out of the optimizer and of the clipping norm."""
    frozen = ("rnn.bias_hh_*", "embedding.weight")
    cfg = small_config(epochs=2, freeze=frozen)
    straight = small_model(corpus, init="book")
    before = params_of(straight)
    trainer = Trainer(straight, corpus, cfg, tmp_path / "s")
    assert [n for n, _, _ in trainer.trained] == [
        n for n in before if n not in ("rnn.bias_hh_l0", "rnn.bias_hh_l1", "embedding.weight")]
    trainer.fit()
    after = params_of(straight)
    for name, value in before.items():
        same = np.array_equal(after[name], value)
        assert same == (name.startswith("rnn.bias_hh") or name == "embedding.weight"), name
    assert not after["rnn.bias_hh_l0"].any()  # the book's zero biases: one bias acts

    first = small_model(corpus, init="book")
    Trainer(first, corpus, small_config(epochs=1, freeze=frozen), tmp_path / "r").fit()
    resumed = Trainer(small_model(corpus, init="book"), corpus, cfg, tmp_path / "r")
    resumed.restore(tmp_path / "r" / "last.safetensors")
    resumed.fit()
    a = read_checkpoint(tmp_path / "s" / "last.safetensors")[0]
    b = read_checkpoint(tmp_path / "r" / "last.safetensors")[0]
    assert set(a) == set(b) and not any(k.startswith("optim/embedding") for k in a)
    for name, value in a.items():
        np.testing.assert_array_equal(b[name], value, err_msg=name)


def test_clipping_norm_leaves_frozen_gradients_out(tmp_path, corpus, monkeypatch):
    import rnnlab.optim

    seen = []
    real = rnnlab.optim.clip_grad_norm
    monkeypatch.setattr(rnnlab.optim, "clip_grad_norm",
                        lambda params, max_norm: seen.append(len(params)) or real(params,
                                                                                max_norm))
    model = small_model(corpus)
    Trainer(model, corpus, small_config(epochs=1, max_steps=2, freeze=["decoder.*"]),
            tmp_path / "c").fit()
    assert seen and set(seen) == {len(list(model.named_parameters())) - 2}


@pytest.mark.parametrize("freeze,error,pattern", [
    (["rnn.bias_hh"], ValueError, "freeze pattern 'rnn.bias_hh' expected to match"),
    (["*"], ValueError, "leaves no parameter to train"),
    ("rnn.*", TypeError, "freeze expected a list of parameter names"),
    ([""], TypeError, "freeze expected a list of parameter names"),
])
def test_bad_freeze_is_a_clear_error(tmp_path, corpus, freeze, error, pattern):
    with pytest.raises(error, match=pattern):
        Trainer(small_model(corpus), corpus, small_config(freeze=freeze), tmp_path / "x")


def test_unigram_bias_starts_a_run_and_resume_keeps_its_own(tmp_path, corpus):
    counts = np.bincount(np.asarray(corpus.train), minlength=len(corpus.vocab)) + 1.0
    unigram = np.log(counts / counts.sum())
    model = small_model(corpus)
    assert not model.decoder.params["bias"].any()
    cfg = small_config(epochs=1, max_steps=1, optimizer="sgd", lr=1e-9, unigram_bias=True)
    Trainer(model, corpus, cfg, tmp_path / "one").fit()
    np.testing.assert_allclose(model.decoder.params["bias"], unigram, rtol=1e-5, atol=1e-6)

    # straight 9 steps against 4 then a resumed 5: the resume must not re-initialise
    straight = small_model(corpus)
    Trainer(straight, corpus, small_config(epochs=1, max_steps=9, unigram_bias=True),
            tmp_path / "s").fit()
    Trainer(small_model(corpus), corpus, small_config(epochs=1, max_steps=4,
                                                      unigram_bias=True), tmp_path / "r").fit()
    resumed = small_model(corpus, seed=5)
    trainer = Trainer(resumed, corpus, small_config(epochs=1, max_steps=9, unigram_bias=True),
                      tmp_path / "r")
    trainer.restore(tmp_path / "r" / "last.safetensors")
    trainer.fit()
    for name, value in params_of(straight).items():
        np.testing.assert_array_equal(params_of(resumed)[name], value, err_msg=name)
    # and without the option the bias starts at zero: a different run
    plain = small_model(corpus)
    Trainer(plain, corpus, small_config(epochs=1, max_steps=9), tmp_path / "p").fit()
    assert not np.array_equal(params_of(plain)["decoder.bias"],
                              params_of(straight)["decoder.bias"])


def test_unigram_bias_needs_a_language_model(tmp_path, corpus):
    from rnnlab.train import TrainConfig

    with pytest.raises(TypeError, match="unigram_bias expected a bool, got 'yes'"):
        TrainConfig(unigram_bias="yes")

    class NoBias:  # the rest of a model is not even looked at
        pass

    with pytest.raises(TypeError, match=r"expected a model with init_output_bias .*NoBias"):
        Trainer(NoBias(), corpus, small_config(unigram_bias=True), tmp_path / "x")


def test_extending_a_cosine_run_replans_the_schedule(tmp_path, corpus):
    """--resume ... --epochs 3 after a 1-epoch cosine run once trained at rate 0."""
    Trainer(small_model(corpus), corpus, small_config(epochs=1, schedule="cosine"),
            tmp_path / "r").fit()
    messages = []
    trainer = Trainer(small_model(corpus), corpus, small_config(epochs=3, schedule="cosine"),
                      tmp_path / "r", echo=messages.append)
    trainer.restore(tmp_path / "r" / "last.safetensors")
    per_epoch = len(trainer.batcher)
    assert any("re-planned for 3 epochs" in m for m in messages)
    # where a 3-epoch cosine stands after one epoch: well above 0
    expected = 0.01 * (1 + math.cos(math.pi * per_epoch / (3 * per_epoch))) / 2
    assert trainer.optimizer.lr == pytest.approx(expected) and trainer.optimizer.lr > 0.005
    trainer.fit()
    lrs = [r["lr"] for r in read_metrics(tmp_path / "r" / "metrics.jsonl")
           if r["event"] == "train" and r["epoch"] >= 1]
    assert lrs and min(lrs[:-1]) > 0


def test_early_stopping_message_is_singular_for_one_epoch(tmp_path, corpus, monkeypatch):
    messages = []
    trainer = Trainer(small_model(corpus), corpus, small_config(epochs=5, patience=1),
                      tmp_path / "p", echo=messages.append)
    losses = iter([2.0, 3.0, 1.0])
    monkeypatch.setattr(trainer, "evaluate", lambda split="valid": next(losses))
    trainer.fit()
    assert "early stopping: no improvement for 1 epoch" in messages


@pytest.mark.parametrize("budget", [{"max_steps": 5}, {"max_time": 1e-9}])
def test_a_run_stopped_by_its_budget_ends_like_a_finished_one(tmp_path, corpus, budget):
    """Its final validation is kept as the best model when better (here: the only one),
    and the test split is evaluated and reported, with the model holding the best."""
    model = small_model(corpus)
    trainer = Trainer(model, corpus, small_config(epochs=3, **budget), tmp_path / "b",
                      echo=lambda m: None)
    summary = trainer.fit()
    reason = next(iter(budget))
    assert summary["stopped"] == reason
    assert summary["best_valid_loss"] == summary["valid_loss"]
    assert summary["test_ppl"] > 1 and "test_loss" in summary
    best, _ = read_checkpoint(tmp_path / "b" / "best.safetensors")
    last, meta = read_checkpoint(tmp_path / "b" / "last.safetensors")
    for name, value in params_of(model).items():
        np.testing.assert_array_equal(best[f"model/{name}"], value, err_msg=name)
        np.testing.assert_array_equal(last[f"model/{name}"], value, err_msg=name)
    # last.safetensors holds the state to continue from, as a run not stopped holds it
    assert meta["progress"]["best_valid"] is None
    records = read_metrics(tmp_path / "b" / "metrics.jsonl")
    events = [r["event"] for r in records]
    assert events[-4:] == ["valid", "checkpoint", "stop", "test"]
    assert records[-4]["best"] is True and records[-4]["stopped"] == reason


@pytest.mark.parametrize("stop_valid,replaced", [(1.0, True), (3.0, False)])
def test_the_stop_validation_replaces_the_best_only_when_better(tmp_path, corpus, monkeypatch,
                                                               stop_valid, replaced):
    trainer = Trainer(small_model(corpus), corpus, small_config(epochs=3), tmp_path / "s",
                      echo=lambda m: None)
    epoch = len(trainer.batcher)
    trainer.config = small_config(epochs=3, max_steps=epoch + 2)
    losses = iter([2.0, stop_valid, 2.5])  # the epoch's end, the stop, the test split
    monkeypatch.setattr(trainer, "evaluate", lambda split="valid": next(losses))
    summary = trainer.fit()
    assert summary["stopped"] == "max_steps" and summary["test_loss"] == 2.5
    assert summary["best_valid_loss"] == (stop_valid if replaced else 2.0)
    best, best_meta = read_checkpoint(tmp_path / "s" / "best.safetensors")
    last, _ = read_checkpoint(tmp_path / "s" / "last.safetensors")
    assert best_meta["progress"]["step"] == (epoch + 2 if replaced else epoch)
    same = all(np.array_equal(best[k], last[k]) for k in best)
    assert same == replaced
    for name, value in params_of(trainer.model).items():  # the model holds the best
        np.testing.assert_array_equal(best[f"model/{name}"], value, err_msg=name)
