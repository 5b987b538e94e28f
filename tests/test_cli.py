"""The rnnlab command line: train, resume, eval, generate, help, and clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rnnlab.cli import main

TEXT = "to be or not to be that is the question\nwhether tis nobler in the mind\n" * 30


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def _write(path):
    path.write_text(TEXT, encoding="utf-8")
    return path


def train_args(text_file, out, *extra):
    return ["train", "--corpus", str(text_file), "--out", str(out), "--no-progress",
            "--hidden-size", "16", "--embedding-dim", "8", "--batch-size", "4", "--bptt", "16",
            "--epochs", "1", "--sample-length", "20", *extra]


def last_json(out: str) -> dict:
    start = out.index("{")
    return json.loads(out[start: out.index("\n}") + 2])


def test_train_eval_generate_resume(tmp_path, text_file, capsys):
    run = tmp_path / "run"
    assert main(train_args(text_file, run, "--max-steps", "3")) == 0
    out = capsys.readouterr().out
    summary = last_json(out)
    assert summary["steps"] == 3 and summary["stopped"] == "max_steps"
    assert "--- sample ---" in out
    assert main(["train", "--resume", str(run / "last.safetensors"), "--no-progress",
                 "--sample-length", "0"]) == 0
    summary = last_json(capsys.readouterr().out)
    assert summary["stopped"] is None and summary["steps"] > 3 and "test_ppl" in summary
    assert main(["eval", str(run / "best.safetensors")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"checkpoint", "valid", "test"} and result["test"]["ppl"] > 1
    assert main(["eval", str(run / "best.safetensors"), "--text", str(text_file)]) == 0
    assert json.loads(capsys.readouterr().out)["text"]["tokens"] > 100
    assert main(["generate", str(run / "best.safetensors"), "--prime", "to be", "--length",
                 "15", "--seed", "1"]) == 0
    assert capsys.readouterr().out.startswith("to be")
    assert main(["generate", str(run / "best.safetensors"), "--strategy", "beam",
                 "--length", "5", "--prime", "to"]) == 0


def test_resume_refuses_changed_options(tmp_path, text_file, capsys):
    run = tmp_path / "run"
    assert main(train_args(text_file, run, "--max-steps", "2")) == 0
    with pytest.raises(SystemExit) as exc:
        main(["train", "--resume", str(run / "last.safetensors"), "--lr", "0.1"])
    assert exc.value.code == 2
    assert "cannot change: --lr" in capsys.readouterr().err


def test_train_with_the_book_initialisation_and_a_frozen_bias(tmp_path, text_file, capsys):
    from rnnlab.train.checkpoint import read_checkpoint
    from rnnlab.train.state import load_model

    run = tmp_path / "run"
    assert main(train_args(text_file, run, "--max-steps", "2", "--init", "book", "--freeze",
                           "rnn.bias_hh_*")) == 0
    model, _, meta = load_model(run / "last.safetensors")
    assert model.config.init == "book" and meta["train_config"]["freeze"] == ["rnn.bias_hh_*"]
    assert not model.rnn.params["bias_hh_l0"].any() and model.rnn.params["bias_ih_l0"].any()
    arrays = read_checkpoint(run / "last.safetensors")[0]
    assert not any(k.startswith("optim/rnn.bias_hh") for k in arrays)
    capsys.readouterr()
    assert main(train_args(text_file, tmp_path / "typo", "--freeze", "rnn.bias")) == 2
    assert "freeze pattern 'rnn.bias' expected to match" in capsys.readouterr().err
    code = main(train_args(text_file, tmp_path / "both", "--init", "book", "--init-range",
                           "0.1"))
    assert code != 0 and "both set" in capsys.readouterr().err


def test_train_with_the_unigram_output_bias(tmp_path, text_file, capsys):
    from rnnlab.train.state import load_model

    run = tmp_path / "run"
    assert main(train_args(text_file, run, "--max-steps", "2", "--unigram-bias")) == 0
    model, vocab, meta = load_model(run / "last.safetensors")
    assert meta["train_config"]["unigram_bias"] is True
    bias = model.decoder.params["bias"]
    # after two small steps the frequent characters still lead: space over 'q'
    space, q = vocab.encode(" q")
    assert bias[space] > bias[q] + 1.0
    capsys.readouterr()
    assert main(train_args(text_file, tmp_path / "plain", "--max-steps", "2")) == 0
    plain, _, meta = load_model(tmp_path / "plain" / "last.safetensors")
    assert meta["train_config"]["unigram_bias"] is False
    assert abs(plain.decoder.params["bias"]).max() < 0.1


@pytest.mark.parametrize("argv,pattern", [
    (["train", "--hidden-size", "0"], "expected an integer >= 1"),
    (["train", "--cell", "transformer"], "invalid choice"),
    (["train", "--no-such-option"], "unrecognized arguments"),
    (["train", "--lr", "nan"], "expected a finite number"),
    (["generate"], "the following arguments are required: checkpoint"),
    (["train", "--seed", "-1"], "argument --seed: expected an integer >= 0, got -1"),
    (["train", "--resume", "x.safetensors", "--overwrite"], "--overwrite"),
    (["eval", "x.safetensors", "--text", "a", "--corpus", "b"], "not allowed with argument"),
])
def test_bad_options_exit_2(argv, pattern, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert pattern in capsys.readouterr().err


def test_bad_files_exit_1(tmp_path, capsys):
    missing = tmp_path / "missing.safetensors"
    assert main(["generate", str(missing)]) == 1
    assert "cannot be read" in capsys.readouterr().err
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\x00\x01\x02binary")
    assert main(["train", "--corpus", str(binary), "--out", str(tmp_path / "o")]) == 1
    assert "rnnlab: error:" in capsys.readouterr().err
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"caf\xe9 au lait\n" * 20)
    assert main(["train", "--corpus", str(bad), "--out", str(tmp_path / "o")]) == 1
    assert "byte offset 3" in capsys.readouterr().err


def test_generate_with_unknown_prime(tmp_path, text_file, capsys):
    run = tmp_path / "run"
    assert main(train_args(text_file, run, "--max-steps", "1", "--sample-length", "0")) == 0
    capsys.readouterr()
    # a run stopped by --max-steps has no best model yet; last.safetensors serves too
    assert main(["generate", str(run / "last.safetensors"), "--prime", "XYZ"]) == 2
    assert "not in the vocabulary" in capsys.readouterr().err


def test_config_file(tmp_path, text_file, capsys):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"model": {"hidden_size": 8, "embedding_dim": 4},
                                  "train": {"max_steps": 1, "batch_size": 2},
                                  "data": {"corpus": str(text_file)}}))
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "r"),
                 "--no-progress", "--sample-length", "0"]) == 0
    config.write_text(json.dumps({"train": {"learning_rate": 1}}))
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "r2")]) == 2
    assert "unknown keys ['learning_rate']" in capsys.readouterr().err


def test_help_has_examples():
    for command in ("train", "eval", "generate"):
        result = subprocess.run([sys.executable, "-m", "rnnlab", command, "--help"],
                                capture_output=True, text=True, check=True)
        assert "examples:" in result.stdout


def test_a_fifo_or_stdin_as_corpus_says_what_it_is(tmp_path, capsys):
    import os

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert main(["train", "--corpus", str(fifo), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert f"{fifo}: is a named pipe (FIFO), not a regular file" in err, err
    run = tmp_path / "run"
    assert main(train_args(_write(tmp_path / 't.txt'), run, "--max-steps", "1",
                           "--sample-length", "0")) == 0
    capsys.readouterr()
    # eval --text on a FIFO with no writer would block in open(): refused at once
    assert main(["eval", str(run / "last.safetensors"), "--text", str(fifo)]) == 1
    assert "is a named pipe (FIFO)" in capsys.readouterr().err
    result = subprocess.run([sys.executable, "-m", "rnnlab", "train", "--corpus", "/dev/stdin",
                             "--out", str(tmp_path / "o2")], input="some text\n" * 50,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "/dev/stdin: is a named pipe (FIFO), not a regular file" in result.stderr


def test_train_with_locked_dropout(tmp_path, capsys):
    from rnnlab.train.checkpoint import read_checkpoint

    text = tmp_path / "t.txt"
    text.write_text("abcabcabd " * 60, encoding="utf-8")
    out = tmp_path / "run"
    assert main(["train", "--corpus", str(text), "--dropout", "0.2", "--dropout-kind", "locked",
                 "--hidden-size", "8", "--embedding-dim", "4", "--epochs", "1", "--batch-size",
                 "4", "--bptt", "8", "--max-steps", "2", "--out", str(out), "--no-progress",
                 "--sample-length", "0"]) == 0
    capsys.readouterr()
    _, meta = read_checkpoint(out / "last.safetensors")
    assert meta["model_config"]["dropout_kind"] == "locked"


def test_gpu_without_cupy_fails_before_the_corpus_loads(tmp_path, capsys):
    from rnnlab.backend import gpu_available

    if gpu_available():
        pytest.skip("CuPy and a GPU are here")
    code = main(["train", "--device", "gpu", "--corpus", str(tmp_path / "absent.txt"),
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 1 and "device 'gpu'" in err and "absent.txt" not in err
