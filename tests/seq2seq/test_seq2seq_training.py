"""seq2seq trains through the one Trainer: the loss falls, a checkpoint is written, a
resumed run continues bit for bit; the command line's --resume and --patience."""

from __future__ import annotations

import json

import numpy as np

from rnnlab.cli import main
from rnnlab.seq2seq import Codec, Seq2Seq, Seq2SeqConfig, TrainOptions, make_addition
from rnnlab.seq2seq.data import split_pairs
from rnnlab.seq2seq.tasks import format_line
from rnnlab.seq2seq.training import history_of, load_checkpoint, make_task, train_config
from rnnlab.train import Trainer
from rnnlab.train.checkpoint import read_checkpoint
from tests.train.conftest import params_of


def setup(seed=0):
    pairs = make_addition(100, seed=0, max_digits=1)
    train, valid = split_pairs(pairs)
    codec = Codec.build(pairs)
    model = Seq2Seq(Seq2SeqConfig(len(codec.vocab), 8, 16, decoder="attention"), rng=seed)
    return model, codec, train, valid


def trainer(folder, seed=0, **kw):
    model, codec, train, valid = setup(seed)
    options = TrainOptions(epochs=3, batch_size=16, lr=0.01, schedule="cosine", **kw)
    cfg = train_config(options)
    task = make_task(model, codec, train, valid, cfg, source={"task": "test"})
    return Trainer(model, None, cfg, folder, task=task, echo=lambda m: None)


def test_seq2seq_trains_and_resumes_bit_for_bit(tmp_path):
    straight = trainer(tmp_path / "s")
    summary = straight.fit()
    history = history_of(tmp_path / "s" / "metrics.jsonl")
    assert len(history) == 3 and history[-1]["loss"] < history[0]["loss"]
    assert summary["steps"] == 3 * 6 and "best_valid_ppl" not in summary
    _, _, meta = load_checkpoint(tmp_path / "s" / "last.safetensors")
    assert meta["kind"] == "seq2seq" and meta["data_source"] == {"task": "test"}

    trainer(tmp_path / "r", max_steps=10).fit()
    resumed = trainer(tmp_path / "r", seed=3)
    resumed.restore(tmp_path / "r" / "last.safetensors")
    assert resumed.progress.step == 10
    resumed.fit()
    for name, value in params_of(straight.model).items():
        np.testing.assert_array_equal(params_of(resumed.model)[name], value, err_msg=name)


def test_cli_resume_and_patience(tmp_path, capsys):
    pairs = make_addition(100, seed=0, max_digits=1)
    data = tmp_path / "sums.txt"
    data.write_text("\n".join(format_line(q, a) for q, a in
                              zip(pairs.questions, pairs.answers, strict=True)) + "\n")
    out = tmp_path / "sums.safetensors"
    args = ["seq2seq", "train", "--task", str(data), "--hidden-size", "8", "--embedding-dim",
            "4", "--batch-size", "16", "--epochs", "3", "--lr", "0.01", "--out", str(out)]
    assert main([*args, "--max-steps", "8"]) == 0
    assert out.is_file() and '"steps": 8' in capsys.readouterr().out
    run = tmp_path / "sums"
    _, meta = read_checkpoint(run / "last.safetensors")
    assert meta["progress"]["step"] == 8
    # a second start in the same folder is refused; --resume continues it
    assert main(args) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["seq2seq", "train", "--resume", str(run), "--patience", "1"]) == 0
    text = capsys.readouterr().out
    assert f"resuming {run / 'last.safetensors'} at epoch 2, step 8" in text
    summary = json.loads(text[text.index("{\n"):])
    assert summary["steps"] > 8 and summary["checkpoint"] == str(out)
    _, meta = read_checkpoint(run / "last.safetensors")
    assert meta["train_config"]["patience"] == 1
    model, _, _ = load_checkpoint(out)
    assert model.config.hidden_size == 8
