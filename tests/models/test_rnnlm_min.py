"""RNNLM with minGRU / minLSTM (plain stack or the paper's block): it learns, its stepper
equals the model, checkpoints resume bit for bit, it generates, and the command line
trains, evaluates, generates and plots with it."""

from __future__ import annotations

import contextlib
import importlib.util
import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.reliability.conftest import assert_same_checkpoint, small_config

from rnnlab.cli import main
from rnnlab.generate import generate
from rnnlab.models import RNNLM
from rnnlab.optim import Adam
from rnnlab.train import Trainer
from rnnlab.train.checkpoint import read_checkpoint
from rnnlab.train.state import build_model, load_model, weight_count

KINDS = [("mingru", False), ("minlstm", False), ("mingru", True), ("minlstm", True)]
IDS = [f"{c}{'-block' if b else ''}" for c, b in KINDS]
TEXT = ("the quick brown fox jumps over the lazy dog\n"
        "pack my box with five dozen liquor jugs\n") * 12


def _model(cell: str, block: bool, vocab: int = 20, seed: int = 0, **kw: Any) -> RNNLM:
    args = {"embedding_dim": 12, "hidden_size": 12, "num_layers": 2, "cell": cell,
            "block": block, "rng": seed, **kw}
    return RNNLM(vocab, **args)


@pytest.mark.parametrize(("cell", "block"), KINDS, ids=IDS)
def test_learns_a_repeating_sequence(cell: str, block: bool) -> None:
    model = _model(cell, block, vocab=7)
    ids = np.tile(np.arange(7), 20)[None, :].repeat(4, axis=0)  # 0 1 2 .. 6 0 1 ..
    opt = Adam(model, lr=0.03)
    losses = []
    for step in range(60):
        s = (step * 5) % 100
        model.zero_grad()
        losses.append(model.forward_loss(ids[:, s : s + 16], ids[:, s + 1 : s + 17]))
        model.backward()
        opt.step()
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses


@pytest.mark.parametrize(("cell", "block"), KINDS, ids=IDS)
def test_stepper_equals_the_model(cell: str, block: bool) -> None:
    model = _model(cell, block, dtype="float64", dropout=0.2)
    model.eval()
    ids = np.random.default_rng(0).integers(0, 20, (3, 10))
    logits = model.forward(ids)
    stepper = model.stepper(3)
    steps = np.stack([stepper.step(ids[:, t]).copy() for t in range(10)], axis=1)
    np.testing.assert_allclose(steps, logits, rtol=0, atol=1e-12)
    # the token-table path (small vocabulary) of the plain stack is the same
    assert (stepper.inner.table is not None) == (not block)
    h, c = model.get_state()
    assert c is None and h.shape == (2, 3, 12)
    np.testing.assert_allclose(stepper.inner.get_state()[0], h, rtol=0, atol=1e-12)


def test_state_roundtrip_and_bad_options() -> None:
    model = _model("minlstm", False)
    assert model.get_state() is None
    model.forward(np.zeros((2, 3), dtype=np.int64))
    h, _ = model.get_state()
    model.reset_state()
    assert model.get_state() is None
    model.set_state((h, None))
    np.testing.assert_array_equal(model.get_state()[0], h)
    with pytest.raises(ValueError, match="block"):
        RNNLM(10, 8, 12, cell="mingru", block=True)
    with pytest.raises(ValueError, match="block"):
        RNNLM(10, 12, 12, cell="lstm", block=True)
    with pytest.raises(TypeError, match="block"):
        RNNLM(10, 12, 12, cell="mingru", block=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(("cell", "block"), KINDS, ids=IDS)
def test_weight_count_is_a_lower_bound(cell: str, block: bool) -> None:
    for tie in (False, True):
        model = _model(cell, block, tie_weights=tie)
        matrices = sum(p.size for _, p in model.named_parameters() if p.ndim == 2)
        assert weight_count(model.config) == matrices


@pytest.fixture
def corpus(tmp_path: Path) -> Any:
    from rnnlab.data import load_text

    path = tmp_path / "tiny.txt"
    path.write_text(TEXT, encoding="utf-8")
    return load_text(path, "char", split=(0.8, 0.1, 0.1))


@pytest.mark.parametrize(("cell", "block"), KINDS, ids=IDS)
def test_stop_and_resume_equals_straight(tmp_path: Path, corpus: Any, cell: str,
                                         block: bool) -> None:
    def model(seed: int) -> RNNLM:
        return _model(cell, block, vocab=len(corpus.vocab), seed=seed, dropout=0.1)

    cfg = small_config()
    k, j = 14, 6
    Trainer(model(0), corpus, replace(cfg, max_steps=k), tmp_path / "s",
            echo=lambda m: None).fit()
    Trainer(model(0), corpus, replace(cfg, max_steps=j), tmp_path / "r",
            echo=lambda m: None).fit()
    trainer = Trainer(model(100), corpus, replace(cfg, max_steps=k), tmp_path / "r",
                      echo=lambda m: None)
    trainer.restore(tmp_path / "r" / "last.safetensors")
    assert trainer.progress.step == j
    trainer.fit()
    assert_same_checkpoint(tmp_path / "s" / "last.safetensors",
                           tmp_path / "r" / "last.safetensors")
    arrays, meta = read_checkpoint(tmp_path / "s" / "last.safetensors")
    assert "state/h" in arrays and "state/c" not in arrays
    assert meta["model_config"]["cell"] == cell and meta["model_config"]["block"] is block
    # a model built from the checkpoint generates
    loaded, vocab, _ = load_model(tmp_path / "s" / "last.safetensors")
    text = generate(loaded, vocab, "the ", 20, seed=0)
    assert text.startswith("the ") and len(text) > 4
    assert generate(loaded, vocab, "the ", 5, strategy="beam", beam_width=3).startswith("the ")
    assert build_model(meta, "x").config == loaded.config


def _cli(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(argv)
    return code, out.getvalue()


@pytest.mark.parametrize("extra", [[], ["--block", "--embedding-dim", "8"]],
                         ids=["plain", "block"])
def test_command_line_train_eval_generate_plot(tmp_path: Path, extra: list[str]) -> None:
    text = tmp_path / "t.txt"
    text.write_text(TEXT, encoding="utf-8")
    run = tmp_path / "run"
    code, out = _cli(["train", "--corpus", str(text), "--cell", "mingru", "--max-steps", "3",
                      "--hidden-size", "8", "--embedding-dim", "6", *extra, "--batch-size",
                      "2", "--bptt", "8", "--no-progress", "--sample-length", "10",
                      "--out", str(run)])
    assert code == 0, out
    ckpt = run / "last.safetensors"
    meta = read_checkpoint(ckpt)[1]
    assert meta["progress"]["step"] == 3 and meta["model_config"]["block"] == bool(extra)
    code, out = _cli(["eval", str(ckpt), "--corpus", str(text), "--split", "valid"])
    assert code == 0, out
    code, out = _cli(["generate", str(ckpt), "--prime", "the", "--length", "10", "--seed", "1"])
    assert code == 0 and out.startswith("the"), out
    if importlib.util.find_spec("matplotlib") is None:
        return
    for what, args in (("gradients", ["--max-lag", "6", "--windows", "3"]),
                       ("hidden", ["--string", TEXT[:60], "--method", "pca"]),
                       ("predictions", ["--string", TEXT[:30]])):
        png = tmp_path / f"{what}.png"
        code, out = _cli(["plot", what, str(ckpt), *args, "--out", str(png)])
        assert code == 0, out
        assert png.stat().st_size > 1000
    page = tmp_path / "a.html"
    code, out = _cli(["plot", "activations", str(ckpt), "--string", TEXT[:60], "--out",
                      str(page)])
    assert code == 0 and page.stat().st_size > 1000, out
