"""`rnnlab plot` without --text reads the checkpoint's corpus only when it is a file that
still holds the same token ids; a folder named by a checkpoint is never walked."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnlab.cli import main
from tests.ckptdoc import rewrite_document

TEXT = "def f(x):\n    return x + 1\n" * 40
SMALL = ["--no-progress", "--sample-length", "0", "--hidden-size", "8", "--embedding-dim",
         "4", "--batch-size", "4", "--bptt", "8", "--max-steps", "2"]


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    assert main(["train", "--corpus", str(corpus), "--out", str(tmp_path / "run"),
                 *SMALL]) == 0
    return tmp_path / "run" / "last.safetensors"


def _name_corpus(path: Path, corpus: str) -> None:
    rewrite_document(path, lambda document: document["data_config"].update(corpus=corpus))


def test_plot_reads_the_checkpoints_own_corpus(checkpoint: Path, tmp_path: Path) -> None:
    assert main(["plot", "activations", str(checkpoint), "--out",
                 str(tmp_path / "a.html")]) == 0


def test_plot_never_walks_a_folder_a_checkpoint_names(checkpoint: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    tree = tmp_path / "tree"
    (tree / "deep").mkdir(parents=True)
    (tree / "deep" / "a.txt").write_text(TEXT, encoding="utf-8")
    _name_corpus(checkpoint, str(tree))
    assert main(["plot", "activations", str(checkpoint), "--out",
                 str(tmp_path / "a.html")]) != 0
    assert "--text" in capsys.readouterr().err


def test_plot_refuses_a_corpus_edited_in_place(checkpoint: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT.replace("x + 1", "1 + x"), encoding="utf-8")
    assert main(["plot", "activations", str(checkpoint), "--out",
                 str(tmp_path / "a.html")]) != 0
    assert "--text" in capsys.readouterr().err
