"""Issue 30 (reliability, third round), checkpoints and the tools that read them: the
JSON document covered by a checksum (item 11), a header too large for safetensors said
before the first save and never as safetensors' own error (16), a gradient check that
samples and shows its progress (17), and ``generate`` options that are refused clearly
(18: a negative seed, a beam search of 10**9 tokens).

Every test here failed before the fix (item numbers are the issue's)."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rnnlab import generate as gen
from rnnlab import gradcheck, nn
from rnnlab.train import checkpoint
from rnnlab.train.checkpoint import CheckpointError, read_checkpoint, write_checkpoint
from tests.ckptdoc import rewrite_document
from tests.reliability.conftest import small_model


def _rnnlab(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rnnlab", *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


# --------------------------------------------------------- item 11: the document
def _flip_learning_rate(path: Path) -> None:
    """The training configuration's learning rate 0.01 made 0.03 (one bit, 0x31 -> 0x33)."""
    data = bytearray(path.read_bytes())
    at = data.index(b'\\"train_config\\": {')
    at = data.index(b'lr\\": 0.01', at) + len(b'lr\\": 0.0')
    assert data[at:at + 1] == b"1"
    data[at] ^= 0x02
    path.write_bytes(bytes(data))


def test_item11_one_flipped_bit_in_the_document_is_caught(run):
    path = run / "last.safetensors"
    _flip_learning_rate(path)
    with pytest.raises(CheckpointError, match=r"its JSON document .* does not match its "
                                              r"checksum .*: the file is damaged"):
        read_checkpoint(path)


def test_item11_a_damaged_document_is_refused_by_resume_on_the_command_line(run):
    path = run / "last.safetensors"
    _flip_learning_rate(path)
    done = _rnnlab("train", "--resume", str(path), "--no-progress", "--sample-length", "0")
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("rnnlab: error: ") and "does not match its checksum" \
        in done.stderr


def test_item11_old_checkpoints_load_with_a_notice(run):
    path = run / "last.safetensors"
    rewrite_document(path, lambda doc: None, checksum=False)
    with pytest.warns(checkpoint.UncheckedDocumentWarning,
                      match="written before rnnlab covered") as caught:
        arrays, meta = read_checkpoint(path)
    assert caught[0].message.path == str(path)
    assert meta["train_config"]["lr"] == 0.01 and arrays
    done = _rnnlab("generate", str(path), "--length", "3", "--seed", "0")
    assert done.returncode == 0 and "written before rnnlab covered" in done.stderr


def test_item11_the_document_checksum_is_beside_the_document(tmp_path):
    from safetensors import safe_open

    path = tmp_path / "c.safetensors"
    write_checkpoint(path, {"a": np.arange(3, dtype=np.float32)}, {"lr": 0.002})
    with safe_open(str(path), framework="np") as fh:
        metadata = fh.metadata()
    text = metadata[checkpoint.DOCUMENT_KEY]
    assert metadata[checkpoint.DOCUMENT_CHECKSUM_KEY] == checkpoint.document_crc32(text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_checkpoint(path)[1]["lr"] == 0.002
    assert checkpoint.is_checkpoint(path) and not checkpoint.is_checkpoint(tmp_path)


# ------------------------------------------------------ item 16: a header too large
def _huge_meta() -> dict[str, Any]:
    token = "w" * 1000
    return {"vocab": {"itos": [token] * 100_001}}  # 100 MB of JSON: an 8.5 M-word vocabulary


def test_item16_a_header_too_large_is_said_before_the_first_save(tmp_path):
    arrays = {"model/w": np.zeros((4, 3), np.float32)}
    with pytest.raises(CheckpointError, match=r"check_document_size: the checkpoint's header "
                                              r"would take 100,[0-9,]+ bytes, more than the "
                                              r"100,000,000 .* limit it with max_size"):
        checkpoint.check_document_size(_huge_meta(), arrays)
    size = checkpoint.check_document_size({"vocab": ["a", "b"]}, arrays)
    path = tmp_path / "c.safetensors"
    write_checkpoint(path, arrays, {"vocab": ["a", "b"]})
    actual = int.from_bytes(path.read_bytes()[:8], "little")
    assert actual <= size <= actual + 64 * len(arrays)  # never an underestimate


def test_item16_the_save_itself_never_ends_in_safetensors_own_error(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    with pytest.raises(CheckpointError, match="write_checkpoint: the checkpoint's header"):
        write_checkpoint(path, {"a": np.zeros(2, np.float32)}, _huge_meta())
    # were rnnlab's own limit above safetensors', safetensors' refusal is made clear too
    monkeypatch.setattr(checkpoint, "MAX_HEADER_BYTES", 10**9)
    with pytest.raises(CheckpointError, match=r"safetensors cannot write the checkpoint "
                                              r"\(.*header too large.*limit it with max_size"):
        write_checkpoint(path, {"a": np.zeros(2, np.float32)}, _huge_meta())
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------- item 17: a sampled gradcheck
class _WrongTanh:
    """tanh whose backward is wrong (by half) in every entry of the input gradient."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.y = np.tanh(x)
        return self.y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dx = dy * (1 - self.y ** 2)
        return dx * 1.5  # wrong everywhere: any sample sees it


def test_item17_a_large_layer_is_checked_on_a_random_sample_of_entries():
    rng = np.random.default_rng(0)
    lstm = nn.LSTM(30, 40, dtype=np.float64, rng=0)
    xs = rng.standard_normal((2, 3, 30))
    state = (rng.standard_normal((1, 2, 40)), rng.standard_normal((1, 2, 40)))
    report = gradcheck.check_module(lstm, xs, state, samples=50, progress=False)
    assert report.passed
    assert report["weight_ih_l0"].entries == 50 and report["h0"].entries == 50
    assert report["input"].entries == 50 and report["bias_ih_l0"].entries == 50
    assert any("50 random entries (seed 0) checked" in note for note in report.notes)
    again = gradcheck.check_module(lstm, xs, state, samples=50, progress=False)
    assert again.errors == report.errors  # the same entries every time
    whole = gradcheck.check_module(lstm, xs, state, samples=None, progress=False)
    assert all(row.entries is None for row in whole) and whole.passed
    wrong = gradcheck.check_module(_WrongTanh(), rng.standard_normal((40, 40)), samples=7,
                                   progress=False)
    assert not wrong.passed and wrong["input"].entries == 7


def test_item17_the_default_fits_a_minute_for_any_layer_size():
    sizes = [2048 * 512, 2048 * 512, 2048, 2048, 3072, 1024, 1024]  # LSTM 512 x 512
    for per_forward in (1e-4, 0.02, 0.2):
        n = gradcheck.auto_samples(per_forward, sizes)
        entries = sum(min(n, size) for size in sizes)
        assert n == gradcheck.DEFAULT_SAMPLES or 2 * entries * per_forward <= 1.05 * 60, n
    assert gradcheck.auto_samples(10.0, sizes) == gradcheck.MIN_AUTO_SAMPLES
    assert gradcheck.auto_samples(1.0, [3, 4]) == gradcheck.DEFAULT_SAMPLES
    with pytest.raises(ValueError, match=r"samples expected an int >= 1 \(entries checked"):
        gradcheck.check_module(_WrongTanh(), np.zeros(3), samples=0)


def test_item17_progress_is_shown_with_an_estimate(capsys):
    rng = np.random.default_rng(1)
    gradcheck.check_module(nn.GRU(3, 4, dtype=np.float64, rng=0),
                           rng.standard_normal((2, 3, 3)), progress=True)
    err = capsys.readouterr().err
    assert "entry" in err and "<" in err  # tqdm: count, elapsed<remaining, rate


# ------------------------------------------------------ item 18: generate's options
@pytest.fixture
def lm(corpus: Any) -> tuple[Any, Any]:
    return small_model(corpus), corpus.vocab


def test_item18_a_negative_seed_names_its_argument(lm):
    model, vocab = lm
    for call in (lambda: gen.generate(model, vocab, "the", 5, seed=-1),
                 lambda: gen.generate_stream(model, vocab, "the", 5, seed=-1),
                 lambda: gen.generate_ids(model, [1, 2], 5, rng=-1)):
        with pytest.raises(ValueError, match=r"seed expected an int >= 0 or None, got -1"):
            call()


def test_item18_a_beam_search_of_a_billion_tokens_is_refused_at_once(lm):
    model, vocab = lm
    with pytest.raises(ValueError, match=r"length expected at most 10,000 tokens with "
                                         r"strategy 'beam'"):
        gen.generate_stream(model, vocab, "the", 10**9, strategy="beam")
    assert len(gen.generate_stream(model, vocab, "the", 10**9, seed=0).__next__()) > 0


def test_item18_generate_on_the_command_line_names_the_seed_and_the_length(run):
    path = str(run / "last.safetensors")
    done = _rnnlab("generate", path, "--seed", "-1", "--length", "3")
    assert done.returncode != 0 and "argument --seed: expected an integer >= 0" in \
        done.stderr, done.stderr  # the option named (the library says "seed expected ...")
    done = _rnnlab("generate", path, "--strategy", "beam", "--length", "1000000000")
    assert done.returncode != 0 and "at most 10,000 tokens" in done.stderr, done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("plot", ["hidden", "gradients"])
def test_item18_a_plots_negative_seed_names_its_option(plot):
    done = _rnnlab("plot", plot, *(["x.safetensors"] if plot == "hidden" else []),
                   "--seed", "-1")
    assert done.returncode == 2 and "argument --seed: expected an integer >= 0" in \
        done.stderr, done.stderr


def test_the_beam_search_keeps_its_results_with_back_pointers(lm):
    """The back-pointer beam (memory O(length * width)) chooses what the copying one did."""
    model, _ = lm
    prime = [1, 2, 3]

    def copying_beam(length: int, width: int) -> list[int]:
        first = gen._log_softmax(gen._feed(model.stepper(1), np, prime))[0]
        stepper = model.stepper(width)
        gen._feed(stepper, np, prime, batch=width)
        best = np.argsort(-first, kind="stable")[:width]
        seqs, scores = [[int(t)] for t in best], first[best]
        for _ in range(length - 1):
            logp = gen._log_softmax(np.asarray(stepper.step(np.array(
                [s[-1] for s in seqs], dtype=np.int64)), dtype=np.float64))
            total = (scores[:, None] + logp).ravel()
            best = np.argsort(-total, kind="stable")[:width]
            stepper.reorder(best // logp.shape[1])
            seqs = [seqs[b] + [int(t)] for b, t in zip(best // logp.shape[1],
                                                      best % logp.shape[1], strict=True)]
            scores = total[best]
        return seqs[int(np.argmax(scores))]

    for length, width in ((1, 3), (7, 1), (12, 4)):
        assert gen.generate_ids(model, prime, length, strategy="beam",
                                beam_width=width) == copying_beam(length, width)
