"""Generation as a stream: the text comes out chunk by chunk, equals what ``generate``
returns, and ``rnnlab generate`` prints it as it goes and stops cleanly on Ctrl-C
(issue 26, item 9); NumPy integers are accepted wherever ints are (item 11)."""

from __future__ import annotations

import contextlib
import io
import os
import select
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from rnnlab.cli import main
from rnnlab.data import Vocab
from rnnlab.generate import generate, generate_ids, generate_ids_iter, generate_stream
from rnnlab.models import RNNLM

WORDS = "the cat sat on the mat <eos> a dog ran <eos> <eos> the end".split()


@pytest.fixture(scope="module")
def char_model():
    vocab = Vocab.build("abc d\nef", "char")
    return RNNLM(len(vocab), 6, 10, rng=1), vocab


@pytest.fixture(scope="module")
def word_model():
    vocab = Vocab.build(WORDS, "word")
    return RNNLM(len(vocab), 6, 10, rng=2), vocab


@pytest.mark.parametrize("which", ["char_model", "word_model"])
@pytest.mark.parametrize("strategy", ["sample", "greedy", "beam"])
def test_the_stream_joins_to_generate(which, strategy, request):
    model, vocab = request.getfixturevalue(which)
    prime = "a b" if vocab.level == "char" else "the cat\nsat"
    whole = generate(model, vocab, prime, 40, strategy=strategy, seed=5, temperature=2.0)
    assert whole.startswith(prime)
    for chunk in (1, 3, 7, 1000):
        pieces = list(generate_stream(model, vocab, prime, 40, strategy=strategy, seed=5,
                                      temperature=2.0, chunk=chunk))
        assert "".join(pieces) == whole
        if strategy != "beam":  # a beam is decided at its end: one piece
            assert len(pieces) == 1 + -(-40 // chunk)  # the prime, then one per chunk
    assert "".join(generate_stream(model, vocab, "", 13, strategy=strategy, seed=1)) == \
        generate(model, vocab, "", 13, strategy=strategy, seed=1)


def test_id_chunks_equal_generate_ids(char_model):
    model, vocab = char_model
    prime = list(vocab.encode("ab"))
    ids = generate_ids(model, prime, 25, rng=3)
    chunks = list(generate_ids_iter(model, prime, 25, rng=3, chunk=4))
    assert [len(c) for c in chunks] == [4] * 6 + [1]
    assert [t for c in chunks for t in c] == ids
    assert list(generate_ids_iter(model, prime, 0, rng=3)) == []


def test_a_stream_stopped_early_leaves_the_model_alone(char_model):
    model, vocab = char_model
    model.train()
    stream = generate_stream(model, vocab, "ab", 10**9, seed=0, chunk=5)
    assert next(stream) == "ab"
    assert isinstance(next(stream), str)  # five tokens (<unk> among them, untrained)
    stream.close()
    assert model.training
    model.eval()


def test_numpy_integers_and_floats_are_accepted(char_model):
    model, vocab = char_model
    expected = generate(model, vocab, "ab", 5, top_k=2, beam_width=2, seed=0,
                        temperature=0.5, top_p=0.9)
    assert generate(model, vocab, "ab", np.int64(5), top_k=np.int32(2),
                    beam_width=np.uint8(2), seed=np.int64(0), temperature=np.float32(0.5),
                    top_p=np.float64(0.9)) == expected
    assert generate(model, vocab, "ab", np.int64(4), strategy="beam",
                    beam_width=np.int64(2)) == generate(model, vocab, "ab", 4,
                                                        strategy="beam", beam_width=2)
    assert len(generate_ids(model, [1, 2], np.int16(3), rng=0)) == 3
    for kwargs, match in [({"length": True}, "length expected an int >= 0, got True"),
                          ({"length": np.bool_(True)}, "length expected an int"),
                          ({"length": 2.0}, "length expected an int >= 0, got 2.0"),
                          ({"top_k": np.int64(0)}, "top_k expected an int >= 1, got 0"),
                          ({"chunk": 0}, "chunk expected an int >= 1, got 0")]:
        with pytest.raises(ValueError, match=match):
            list(generate_stream(model, vocab, "ab", **{"length": 3, **kwargs}))
    with pytest.raises(ValueError, match="generate_ids: strategy expected one of"):
        generate_ids(model, [1], 3, strategy="nucleus")


# ------------------------------------------------------------------ command line
def _train_checkpoint(folder):
    text = folder / "t.txt"
    text.write_text("to be or not to be that is the question\n" * 40, encoding="utf-8")
    run = folder / "run"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["train", "--corpus", str(text), "--out", str(run), "--no-progress",
                     "--hidden-size", "16", "--embedding-dim", "8", "--batch-size", "4",
                     "--bptt", "16", "--max-steps", "1", "--sample-length", "0"]) == 0
    return run / "last.safetensors"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return _train_checkpoint(tmp_path_factory.mktemp("generate-stream"))


class _Terminal(io.StringIO):
    """A stdout that records each flush and sends Ctrl-C after ``flushes`` of them."""

    def __init__(self, flushes: int) -> None:
        super().__init__()
        self.flushed: list[str] = []
        self.left = flushes

    def flush(self) -> None:
        self.flushed.append(self.getvalue())
        self.left -= 1
        if self.left == 0:
            raise KeyboardInterrupt


def test_cli_streams_and_stops_on_ctrl_c(checkpoint, monkeypatch, capsys):
    terminal = _Terminal(flushes=4)
    monkeypatch.setattr(sys, "stdout", terminal)
    assert main(["generate", str(checkpoint), "--prime", "to be", "--length", "5000",
                 "--seed", "0"]) == 130
    text = terminal.getvalue()
    # printed as it was made: the prime, then growing pieces, each flushed on its own
    assert terminal.flushed[0] == "to be"
    assert len(set(terminal.flushed[:4])) == 4 and text.startswith(terminal.flushed[3])
    assert text.endswith("\n") and len(text) > len("to be") + 10
    err = capsys.readouterr().err
    assert "Traceback" not in err and "interrupted" in err


class _ClosedPipe(io.StringIO):
    """A stdout whose reader goes away after the first piece (``| head -c 5``)."""

    def write(self, text: str) -> int:
        if self.getvalue():
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(text)


def test_cli_stops_quietly_when_the_reader_goes_away(checkpoint, monkeypatch, capsys):
    pipe = _ClosedPipe()
    monkeypatch.setattr(sys, "stdout", pipe)
    assert main(["generate", str(checkpoint), "--prime", "to", "--length", "5000"]) == 141
    assert pipe.getvalue() == "to"
    assert capsys.readouterr().err == ""


def test_cli_output_is_unchanged(checkpoint, capsys):
    from rnnlab.train.state import load_model

    model, vocab, _ = load_model(str(checkpoint))
    assert main(["generate", str(checkpoint), "--prime", "to", "--length", "150",
                 "--seed", "3"]) == 0
    assert capsys.readouterr().out == generate(model, vocab, "to", 150, seed=3) + "\n"


def test_ctrl_c_in_a_real_process(checkpoint):
    """``rnnlab generate --length 1000000000``: text arrives at once, SIGINT stops it with
    status 130, what was printed stays, no traceback."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # a pipe: buffered
    proc = subprocess.Popen([sys.executable, "-m", "rnnlab", "generate", str(checkpoint),
                             "--length", "1000000000", "--seed", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "nothing printed within 60 s"
        first = os.read(proc.stdout.fileno(), 64)  # what the first flushes sent
        assert first
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert b"Traceback" not in err and b"interrupted" in err
    assert len(first + rest) > 64 and (first + rest).endswith(b"\n")
