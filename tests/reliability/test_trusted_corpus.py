"""A checkpoint's corpus path is data from elsewhere (issue 26, items 4 and 5): it is
used only if it still holds the data the model was trained on (the digest of the token
ids in the checkpoint), a folder it names is never walked, and anything else makes the
command ask for ``--corpus`` (or ``--text``) with a clear message."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rnnlab.cli import main
from rnnlab.data import load_text, textio
from rnnlab.families.lm import evaluate_checkpoint
from rnnlab.train.checkpoint import read_checkpoint
from tests.ckptdoc import rewrite_document
from tests.reliability.conftest import TEXT

SMALL = ["--no-progress", "--sample-length", "0", "--hidden-size", "8", "--embedding-dim",
         "4", "--batch-size", "4", "--bptt", "8"]


@pytest.fixture
def run(tmp_path: Path) -> Path:
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    out = tmp_path / "run"
    assert main(["train", "--corpus", str(corpus), "--out", str(out), "--max-steps", "3",
                 *SMALL]) == 0
    return out




def _resume(run: Path, *extra: str) -> int:
    return main(["train", "--resume", str(run / "last.safetensors"), "--max-steps", "5",
                 "--no-progress", "--sample-length", "0", *extra])


def test_the_digest_of_the_ids_is_stored(run, tmp_path):
    _, meta = read_checkpoint(run / "last.safetensors")
    corpus = load_text(tmp_path / "c.txt")
    assert meta["corpus_digest"] == corpus.digest()
    assert meta["corpus_digest"].startswith("blake2b-128:")
    assert meta["corpus_bytes"] == (tmp_path / "c.txt").stat().st_size


def test_resume_notices_data_edited_in_place(run, tmp_path, capsys):
    """Same length, same characters, same vocabulary: only the digest tells."""
    corpus = tmp_path / "c.txt"
    text = corpus.read_text()
    edited = text.replace("quick brown", "brown quick", 1)
    assert len(edited) == len(text) and sorted(edited) == sorted(text) and edited != text
    corpus.write_text(edited)
    assert load_text(corpus).vocab == load_text(tmp_path / "c.txt").vocab
    capsys.readouterr()
    assert _resume(run) == 1
    err = capsys.readouterr().err
    assert "no longer holds the data" in err and "--corpus" in err, err
    assert main(["eval", str(run / "last.safetensors")]) == 1
    assert "no longer holds the data" in capsys.readouterr().err
    # the original data under another name: resume and eval take it, checked
    original = tmp_path / "original.txt"
    original.write_text(text)
    assert _resume(run, "--corpus", str(original)) == 0
    assert read_checkpoint(run / "last.safetensors")[1]["data_config"]["corpus"] == \
        str(original)
    capsys.readouterr()
    assert main(["eval", str(run / "last.safetensors")]) == 0  # names original.txt now
    # other data given on the command line is refused as well
    assert _resume(run, "--corpus", str(corpus)) == 1
    assert "does not hold the data" in capsys.readouterr().err


def test_trainer_restore_refuses_another_corpus(run, tmp_path):
    from rnnlab.train import CheckpointError, Trainer
    from rnnlab.train.config import TrainConfig
    from rnnlab.train.state import build_model

    arrays, meta = read_checkpoint(run / "last.safetensors")
    text = (tmp_path / "c.txt").read_text()
    other = tmp_path / "other.txt"
    other.write_text(text.replace("lazy dog", "dog lazy", 1))
    corpus = load_text(other)
    model = build_model(meta, "x", arrays=arrays)
    trainer = Trainer(model, corpus, TrainConfig.from_dict(meta["train_config"]),
                      tmp_path / "restore", echo=lambda m: None)
    with pytest.raises(CheckpointError, match="corpus differs from the one this checkpoint "
                                              "was trained on"):
        trainer.restore(run / "last.safetensors")


def test_a_checkpoint_naming_a_folder_is_not_walked(run, tmp_path, capsys, monkeypatch):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "x.txt").write_text(TEXT)
    for name in ("last.safetensors", "best.safetensors"):
        if (run / name).exists():
            rewrite_document(run / name, lambda d: d["data_config"].update(corpus=str(tree)))

    def walked(*args, **kw):
        raise AssertionError("a folder named by a checkpoint was walked")

    monkeypatch.setattr(textio, "walk_files", walked)
    capsys.readouterr()
    assert main(["eval", str(run / "last.safetensors")]) == 1
    err = capsys.readouterr().err
    assert "is not walked" in err and f"--corpus {tree}" in err, err
    assert _resume(run) == 1
    assert "is not walked" in capsys.readouterr().err


def test_an_older_checkpoint_without_a_digest_asks_for_the_corpus(run, tmp_path, capsys):
    rewrite_document(run / "last.safetensors", lambda d: (d.pop("corpus_digest"),
                                                  d.pop("corpus_bytes")))
    capsys.readouterr()
    assert main(["eval", str(run / "last.safetensors")]) == 1
    err = capsys.readouterr().err
    assert "holds no digest" in err and "--corpus" in err and "--text" in err, err
    # given on the command line it is used (the vocabulary is still compared)
    assert main(["eval", str(run / "last.safetensors"), "--corpus",
                 str(tmp_path / "c.txt")]) == 0
    assert _resume(run, "--corpus", str(tmp_path / "c.txt")) == 0


def test_a_size_mismatch_is_refused_before_reading(run, tmp_path, monkeypatch):
    rewrite_document(run / "last.safetensors", lambda d: d.update(corpus_bytes=123))
    from rnnlab.data import textio as tio

    def no_read(*args, **kw):
        raise AssertionError("read a file whose size already differs")

    monkeypatch.setattr(tio, "iter_text", no_read)
    from rnnlab.train import CheckpointError

    with pytest.raises(CheckpointError, match="has changed since"):
        evaluate_checkpoint(run / "last.safetensors")


@pytest.mark.parametrize("value,message", [
    (5, "corpus expected a non-empty string, got 5"),
    (["a"], "corpus expected a non-empty string, got ['a']"),
    ("", "corpus expected a non-empty string, got ''"),
    (None, "corpus expected a non-empty string, got None"),
])
def test_a_corpus_that_is_not_a_string_gets_a_clear_message(run, capsys, value, message):
    rewrite_document(run / "last.safetensors", lambda d: d["data_config"].update(corpus=value))
    capsys.readouterr()
    assert main(["eval", str(run / "last.safetensors")]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert _resume(run) == 1
    assert message in capsys.readouterr().err


def test_named_corpora_are_checked_too(tmp_path, capsys):
    """stdlib is a name, not a path: loaded by rnnlab itself, then checked by digest."""
    out = tmp_path / "run"
    assert main(["train", "--corpus", "stdlib", "--max-chars", "20000", "--out", str(out),
                 "--max-steps", "2", *SMALL]) == 0
    capsys.readouterr()
    assert main(["eval", str(out / "last.safetensors")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert math.isfinite(result["valid"]["loss"])
    rewrite_document(out / "last.safetensors",
             lambda d: d.update(corpus_digest="blake2b-128:" + "0" * 32))
    assert main(["eval", str(out / "last.safetensors")]) == 1
    assert "no longer holds the data" in capsys.readouterr().err
