"""``rnnlab seq2seq train | eval | translate``: exit codes, output and error messages."""

from __future__ import annotations

import json

import pytest

from rnnlab.cli import main
from rnnlab.seq2seq import format_line, make_addition


def last_json(out: str) -> dict:
    return json.loads(out[out.index("{\n"):])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny attention model trained through the command line (shared by the tests)."""
    folder = tmp_path_factory.mktemp("s2s")
    pairs = make_addition(100, seed=0, max_digits=1)
    data = folder / "sums.txt"
    data.write_text("\n".join(format_line(q, a) for q, a in
                              zip(pairs.questions, pairs.answers, strict=True)) + "\n")
    ckpt = folder / "sums.safetensors"
    code = main(["seq2seq", "train", "--task", str(data), "--hidden-size", "16",
                 "--embedding-dim", "8", "--batch-size", "16", "--epochs", "2", "--lr", "0.01",
                 "--out", str(ckpt), "--quiet"])
    assert code == 0 and ckpt.is_file()
    return folder, data, ckpt


def test_train_prints_a_summary(tmp_path, run, capsys):
    _, data, _ = run
    out = tmp_path / "peeky.safetensors"
    assert main(["seq2seq", "train", "--task", str(data), "--decoder", "peeky", "--no-reverse",
                 "--hidden-size", "8", "--embedding-dim", "4", "--epochs", "3",
                 "--max-steps", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "train / 10 test pairs" in text and "epoch 1: valid loss" in text
    summary = last_json(text)
    assert summary["steps"] == 2 and summary["checkpoint"] == str(out)
    assert 0.0 <= summary["test_exact_match"] <= 1.0


def test_eval_and_translate(run, capsys):
    _, data, ckpt = run
    capsys.readouterr()
    assert main(["seq2seq", "eval", str(ckpt), "--show-errors", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["pairs"] == 10 and "test split" in result["data"]
    assert len(result["errors"]) <= 2
    assert main(["seq2seq", "eval", str(ckpt), "--data", str(data), "--beam-width", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["pairs"] == 100
    assert main(["seq2seq", "translate", str(ckpt), "1+2"]) == 0
    answer = capsys.readouterr().out.strip()
    assert answer.isdigit() or answer == ""
    assert main(["seq2seq", "translate", str(ckpt), "1+2", "3+4", "--attention"]) == 0
    out = capsys.readouterr().out
    assert "1+2 -> " in out and "3+4 -> " in out and "0." in out


def test_translate_plots_attention(run, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    _, _, ckpt = run
    png = tmp_path / "att.png"
    assert main(["seq2seq", "translate", str(ckpt), "5+5", "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "heat map written" in capsys.readouterr().out


def test_plot_without_matplotlib_names_the_extra(run, tmp_path, monkeypatch, capsys):
    import sys

    _, _, ckpt = run
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    assert main(["seq2seq", "translate", str(ckpt), "5+5", "--plot",
                 str(tmp_path / "a.png")]) == 2
    assert 'pip install "rnnlab[viz]"' in capsys.readouterr().err


@pytest.mark.parametrize(("args", "code", "message"), [
    (["eval", "{tmp}/absent.safetensors"], 1, "absent.safetensors"),
    (["translate", "{ckpt}", "1x2"], 1, "outside the vocabulary: 'x'"),
    (["translate", "{ckpt}", "12345"], 1, "the model reads at most 3"),
    (["train", "--task", "{tmp}/nothing.txt"], 1, "no such file"),
    (["train", "--task", "{data}", "--decoder", "peeky", "--score", "dot"], 2,
     "score expected None for decoder 'peeky'"),
    (["train", "--task", "{data}", "--epochs", "0"], 2, "expected an integer >= 1"),
    (["train"], 2, "--task"),
    (["eval", "{data}"], 1, "rnnlab: error: checkpoint '"),
])
def test_errors_are_one_line(run, tmp_path, capsys, args, code, message):
    _, data, ckpt = run
    filled = [a.format(tmp=tmp_path, ckpt=ckpt, data=data) for a in args]
    try:
        result = main(["seq2seq", *filled])
    except SystemExit as exc:  # argparse errors
        result = exc.code
    assert result == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_attention_on_a_model_without_it(run, tmp_path, capsys):
    _, data, _ = run
    out = tmp_path / "plain.safetensors"
    assert main(["seq2seq", "train", "--task", str(data), "--decoder", "plain", "--hidden-size",
                 "4", "--embedding-dim", "2", "--max-steps", "1", "--out", str(out),
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["seq2seq", "translate", str(out), "1+1", "--attention"]) == 2
    assert "has no attention" in capsys.readouterr().err


def test_help_has_examples(capsys):
    for sub in ("train", "eval", "translate"):
        with pytest.raises(SystemExit) as exc:
            main(["seq2seq", sub, "--help"])
        assert exc.value.code == 0
        assert "examples:" in capsys.readouterr().out
    assert main(["seq2seq"]) == 2
    assert "SUBCOMMAND" in capsys.readouterr().err
