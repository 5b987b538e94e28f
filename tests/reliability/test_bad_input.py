"""Bad input everywhere, property-tested: layer inputs (shapes, dtypes, NaN), token ids out
of range, empty and one-token corpora, non-UTF-8 and binary files, very long lines, prime
text with unknown symbols, invalid command-line options and paths. Each gets a clear
error of a documented type whose message names what is wrong; none gets an exception from
deep inside numpy, and the command line answers with an exit status and one line."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rnnlab import nn
from rnnlab.cli import main
from rnnlab.data import BPTTBatcher, Corpus, DataError, Vocab, load_text, open_ids, save_ids
from rnnlab.generate import generate, generate_ids
from rnnlab.models import RNNLM
from rnnlab.train import Trainer
from tests.reliability.conftest import TEXT, small_config, small_model

FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
DTYPES = (np.float16, np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_,
          np.complex64)


def _named(exc: BaseException, owner: str) -> None:
    """The message starts with the owner (``"LSTM.forward: xs expected ..."``)."""
    assert isinstance(exc, TypeError | ValueError), repr(exc)
    message = str(exc)
    assert message.startswith(owner), message
    assert "expected" in message or "NaN" in message, message


# --------------------------------------------------------------------- layers
@FAST
@given(kind=st.sampled_from(["RNN", "LSTM", "GRU", "Linear"]),
       shape=st.lists(st.integers(0, 4), min_size=0, max_size=4),
       dtype=st.sampled_from(DTYPES), nan=st.booleans())
def test_layer_inputs(kind: str, shape: list[int], dtype: Any, nan: bool) -> None:
    layer = getattr(nn, kind)(3, 4, check_finite=True)
    x = np.zeros(shape, dtype=dtype)
    if nan and x.dtype.kind in "fc" and x.size:
        x.reshape(-1)[-1] = np.nan
    ranks = (3,) if kind != "Linear" else (2, 3)
    invalid = (x.ndim not in ranks or x.shape[-1] != 3 or x.dtype != np.float32
               or (nan and x.dtype.kind == "f" and x.size > 0)
               or (kind != "Linear" and 0 in x.shape))
    try:
        layer.forward(x)
    except Exception as exc:
        _named(exc, f"{kind}.forward: ")
        return
    assert not invalid, f"{kind} accepted {x.dtype}{x.shape} (nan={nan})"


@FAST
@given(ids=st.lists(st.integers(-3, 12), min_size=0, max_size=12),
       dtype=st.sampled_from((np.int32, np.int64, np.uint8, np.float32, np.bool_)),
       as_2d=st.booleans())
def test_embedding_ids(ids: list[int], dtype: Any, as_2d: bool) -> None:
    layer = nn.Embedding(10, 3)
    array = np.array(ids, dtype=np.int64)
    if dtype is np.uint8:
        array = array[array >= 0]
    array = array.astype(dtype)
    if as_2d:
        array = array.reshape(1, -1)
    invalid = array.dtype.kind not in "iu" or (array.size and (array.min() < 0
                                                               or array.max() >= 10))
    try:
        layer.forward(array)
    except Exception as exc:
        _named(exc, "Embedding.forward: ")
        if array.dtype.kind in "iu" and array.size:
            assert re.search(r"expected ids in \[0, 10\), got -?\d+", str(exc))
        return
    assert not invalid


_LM = RNNLM(7, 4, 5, rng=0)


@FAST
@given(shift_ids=st.integers(-2, 2), shift_targets=st.integers(-2, 2),
       bad_shape=st.booleans(), float_targets=st.booleans())
def test_language_model_ids_and_targets(shift_ids: int, shift_targets: int, bad_shape: bool,
                                        float_targets: bool) -> None:
    V = 7
    model = _LM
    ids = np.arange(6, dtype=np.int64).reshape(2, 3) % V
    targets = (ids + 1) % V
    ids = ids + (shift_ids * V if shift_ids else 0)
    targets = targets + (shift_targets * V if shift_targets else 0)
    if bad_shape:
        targets = targets[:, :2]
    if float_targets:
        targets = targets.astype(np.float32)
    invalid = shift_ids or shift_targets or bad_shape or float_targets
    try:
        model.forward_loss(ids, targets)
    except Exception as exc:
        owner = "Embedding.forward: " if shift_ids else "SoftmaxCrossEntropy.forward: "
        _named(exc, owner)
        return
    assert not invalid


# ---------------------------------------------------------- ids, corpora, vocab
def test_ids_out_of_range_are_named() -> None:
    vocab = Vocab.build("hello", "char")
    with pytest.raises(DataError, match=r"Vocab.decode: ids expected in \[0, 6\), got 9"):
        vocab.decode([1, 9])
    with pytest.raises(DataError, match=r"Vocab.decode: ids expected in \[0, 6\), got -1"):
        vocab.decode(np.array([-1, 2]))
    with pytest.raises(TypeError, match=r"Vocab.decode: ids expected integers, got dtype float"):
        vocab.decode(np.array([1.0]))
    with tempfile.TemporaryDirectory() as tmp:
        with pytest.raises(DataError, match=r"save_ids: ids expected in \[0, 2147483647\]"):
            save_ids(Path(tmp) / "x", [1, -4])
        with pytest.raises(DataError, match=r"not a readable \.npy file"):
            (Path(tmp) / "bad.npy").write_bytes(b"\x93NUMPY garbage")
            open_ids(Path(tmp) / "bad.npy")
    with pytest.raises(TypeError, match="BPTTBatcher: ids expected an integer dtype"):
        BPTTBatcher(np.zeros(10, np.float32), 2, 3)
    model = RNNLM(len(vocab), 4, 4, rng=0)
    for prime in ([1, 99], [-1], [2, 6]):
        with pytest.raises(ValueError, match=rf"generate_ids: prime_ids expected token ids "
                                             rf"in \[0, 6\), got {prime[-1]}"):
            generate_ids(model, prime, 3)
    with pytest.raises(ValueError, match=r"Embedding.forward: ids expected ids in \[0, 6\)"):
        model.forward(np.array([[1, 6]]))


def test_trainer_refuses_a_corpus_that_does_not_fit_before_training(tmp_path: Path,
                                                                    corpus: Any) -> None:
    V = len(corpus.vocab)
    for part, ids, message in (
            ("valid", np.array([1], np.int32), "the validation split has 1 token"),
            ("valid", np.array([1, V + 3], np.int32), f"holds the id {V + 3}"),
            ("test", np.array([2, -1], np.int32), "holds the id -1"),
            ("train", np.concatenate([corpus.train, [V]]).astype(np.int32),
             f"holds the id {V}")):
        parts = {**corpus.parts, part: ids}
        bad = Corpus("bad", "char", corpus.vocab, parts["train"], parts["valid"], parts["test"])
        with pytest.raises(DataError, match=message):
            Trainer(small_model(corpus), bad, small_config(), tmp_path, echo=lambda m: None)


@pytest.mark.parametrize(("text", "level", "message"), [
    ("", "char", "empty corpus"),
    ("   \n\t\n", "word", "empty corpus"),
    ("a", "char", "leaves the valid part empty"),
    ("one", "word", "leaves the valid part empty"),
    ("ab\n", "char", "leaves the"),
])
def test_empty_and_one_token_corpora(tmp_path: Path, text: str, level: str,
                                     message: str) -> None:
    path = tmp_path / "c.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_text(path, level)
    code, _, err = _cli(["train", "--corpus", str(path), "--level", level, "--out",
                           str(tmp_path / "run"), "--no-progress"])
    assert code == 1 and err.startswith("rnnlab: error: ") and message in err


@settings(max_examples=80, deadline=None)
@given(data=st.binary(min_size=0, max_size=300), level=st.sampled_from(["char", "word"]))
def test_any_bytes_load_or_fail_clearly(data: bytes, level: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "file.txt"
        path.write_bytes(data)
        try:
            corpus = load_text(path, level)
        except DataError as exc:
            message = str(exc)
            assert "file.txt" in message or "split=" in message, message
            if b"\x00" in data:
                assert "binary" in message
            return
        text = data.decode("utf-8")  # it loaded, so it was UTF-8
        assert "\x00" not in text and len(corpus.train) > 0


@settings(max_examples=30, deadline=None)
@given(data=st.binary(min_size=1, max_size=64).filter(lambda b: b"\x00" not in b))
def test_non_utf8_names_the_byte_offset(data: bytes) -> None:
    try:
        data.decode("utf-8")
        assume(False)
    except UnicodeDecodeError as exc:
        offset = exc.start
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "latin.txt"
        path.write_bytes(b"ok\n" * 20 + data)
        with pytest.raises(DataError, match=rf"latin.txt: not valid UTF-8 at byte offset "
                                            rf"{offset + 60:,}"):
            load_text(path)


@pytest.mark.parametrize("level", ["char", "word"])
def test_a_very_long_line(tmp_path: Path, level: str) -> None:
    path = tmp_path / "long.txt"
    words = [f"w{i % 5000}" for i in range(600_000)]  # one line of about 3.6 MB
    path.write_text(" ".join(words), encoding="utf-8")
    corpus = load_text(path, level)
    expected = len(words) + 1 if level == "word" else len(" ".join(words)) + 1  # + newline
    assert sum(len(p) for p in corpus.parts.values()) == expected


# ------------------------------------------------------------------ generation
@pytest.fixture(scope="module")
def trained(tmp_path_factory: Any) -> tuple[Any, Any]:
    path = tmp_path_factory.mktemp("gen") / "t.txt"
    path.write_text(TEXT, encoding="utf-8")
    corpus = load_text(path, "char", split=(0.8, 0.1, 0.1))
    return small_model(corpus), corpus.vocab


@FAST
@given(prime=st.text(max_size=12))
def test_prime_text_with_unknown_symbols(trained: tuple[Any, Any], prime: str) -> None:
    model, vocab = trained
    unknown = sorted({ch for ch in prime if ch not in vocab.stoi})
    try:
        text = generate(model, vocab, prime, 3, seed=0)
    except ValueError as exc:
        assert unknown, f"refused a prime of known symbols: {exc}"
        message = str(exc)
        assert message.startswith(f"generate: prime has {len(unknown)} symbol(s) not in the "
                                  f"vocabulary: ")
        assert repr(unknown[0]) in message
        return
    assert not unknown and text.startswith(prime)
    with pytest.warns(UserWarning, match="replaced by <unk>") if unknown else \
            contextlib.nullcontext():
        generate(model, vocab, prime, 2, seed=0, unknown="unk")


# --------------------------------------------------------------- command line
def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def _one_error_line(err: str, code: int) -> str:
    """The error is the last line of stderr, the only one that says ``error:`` (progress
    lines may come first; argparse prints its usage before its error line)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and "Traceback" not in err, err
    last = lines[-1]
    errors = [line for line in lines if ": error: " in line]
    assert errors == [last], err
    assert last.startswith("rnnlab: error: ") or (code == 2 and last.startswith("rnnlab ")), err
    return last


TRAIN_OPTIONS = ("--hidden-size", "--embedding-dim", "--num-layers", "--dropout", "--epochs",
                 "--batch-size", "--bptt", "--lr", "--momentum", "--clip-norm", "--lr-decay",
                 "--decay-start", "--warmup-steps", "--patience", "--seed", "--max-steps",
                 "--max-time", "--log-every", "--checkpoint-every", "--init-range",
                 "--weight-decay", "--cell", "--optimizer", "--schedule", "--dtype",
                 "--level", "--max-size", "--min-freq", "--eval-batch-size")
BAD_VALUES = ("0", "-1", "-0.5", "nan", "inf", "-inf", "1e999", "", "abc", "1.5", "0x10",
              "99999999999999999999999", "２")


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(option=st.sampled_from(TRAIN_OPTIONS), value=st.sampled_from(BAD_VALUES))
def test_bad_training_options(text_file: Path, option: str, value: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["train", "--corpus", str(text_file), "--out", tmp, "--no-progress",
                "--sample-length", "0", "--epochs", "1", "--hidden-size", "4",
                "--embedding-dim", "4", "--batch-size", "2", "--bptt", "4", option, value]
        if option != "--max-steps":
            argv += ["--max-steps", "1"]  # a valid value must not start a long run
        code, _, err = _cli(argv)
    if code == 0:  # a value that is valid for this option (e.g. --seed 0, --dropout 0)
        return
    # 1: data or files, 2: options, 3: a valid but absurd value (--lr 1e23) that diverged
    assert code in (1, 2, 3), (argv, code, err)
    line = _one_error_line(err, code)
    assert "Traceback" not in err
    name = option.lstrip("-").replace("-", "_")
    if code == 3:
        assert "training diverged" in line, line
    else:
        assert option in line or name in line or "expected" in line, line


@pytest.mark.parametrize("argv_for", [
    lambda d: ["train", "--corpus", str(d / "missing.txt"), "--out", str(d / "o")],
    lambda d: ["train", "--corpus", str(d / "bin.dat"), "--out", str(d / "o")],
    lambda d: ["train", "--corpus", str(d / "latin1.txt"), "--out", str(d / "o")],
    lambda d: ["train", "--corpus", str(d / "ok.txt"), "--out", str(d / "afile")],
    lambda d: ["train", "--config", str(d / "missing.json")],
    lambda d: ["train", "--config", str(d / "bin.dat")],
    lambda d: ["train", "--config", str(d / "list.json")],
    lambda d: ["train", "--config", str(d / "section.json")],
    lambda d: ["train", "--resume", str(d / "missing.safetensors")],
    lambda d: ["train", "--resume", str(d)],
    lambda d: ["train", "--resume", str(d / "ok.txt")],
    lambda d: ["eval", str(d / "missing.safetensors")],
    lambda d: ["eval", str(d / "bin.dat")],
    lambda d: ["generate", str(d)],
    lambda d: ["generate", "/dev/null"],
    lambda d: ["generate", str(d / "ok.txt"), "--length", "-3"],
    lambda d: ["generate", str(d / "ok.txt"), "--temperature", "nan"],
    lambda d: ["generate", str(d / "ok.txt"), "--top-p", "7"],
    lambda d: ["generate", str(d / "ok.txt"), "--strategy", "magic"],
    lambda d: ["nosuchcommand"],
])
def test_bad_paths_and_options_exit_with_one_line(tmp_path: Path, argv_for: Any) -> None:
    (tmp_path / "bin.dat").write_bytes(b"\x00\x01\x02\xff" * 50)
    (tmp_path / "latin1.txt").write_bytes(b"caf\xe9\n" * 50)
    (tmp_path / "ok.txt").write_text(TEXT, encoding="utf-8")
    (tmp_path / "afile").write_text("not a folder", encoding="utf-8")
    (tmp_path / "list.json").write_text("[1, 2]", encoding="utf-8")
    (tmp_path / "section.json").write_text('{"model": "big"}', encoding="utf-8")
    code, _, err = _cli(argv_for(tmp_path))
    assert code in (1, 2), err
    _one_error_line(err, code)


def test_eval_text_that_is_a_folder_binary_or_a_device(tmp_path: Path, text_file: Path
                                                       ) -> None:
    run = tmp_path / "run"
    assert _cli(["train", "--corpus", str(text_file), "--out", str(run), "--no-progress",
                 "--sample-length", "0", "--max-steps", "1", "--hidden-size", "4",
                 "--embedding-dim", "4", "--batch-size", "2", "--bptt", "4"])[0] == 0
    (tmp_path / "bin.dat").write_bytes(b"ab\x00cd")
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    for text, message in ((tmp_path, "is a folder"), (tmp_path / "bin.dat", "binary"),
                          ("/dev/zero", "is a character device"),
                          (tmp_path / "empty.txt", "at least 2"),
                          (tmp_path / "nope.txt", "cannot be read")):
        code, _, err = _cli(["eval", str(run / "last.safetensors"), "--text", str(text)])
        assert code == 1 and message in _one_error_line(err, code), err


def test_the_real_process_prints_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "bin.dat").write_bytes(b"\x00garbage")
    for argv, status in ((["generate", str(tmp_path / "bin.dat")], 1),
                         (["train", "--corpus", str(tmp_path), "--out", str(tmp_path / "o")],
                          1),
                         (["train", "--hidden-size", "-4"], 2)):
        result = subprocess.run([sys.executable, "-m", "rnnlab", *argv], capture_output=True,
                                text=True, timeout=120, check=False)
        assert result.returncode == status, result.stderr
        assert "Traceback" not in result.stderr
        _one_error_line(result.stderr, status)
