"""A small trained character model (and its run folder) for the visualisation tests.

Trained once per session with the real :class:`~rnnlab.train.Trainer` on a tiny Python-
like text (strings, comments, brackets, digits, indentation), so every figure is drawn
from a model that has learnt something, and the metrics log is a real one.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rnnlab.data import load_text
from rnnlab.models import RNNLM
from rnnlab.train import DataConfig, TrainConfig, Trainer

TEXT = '''def greet(name, times=3):
    """Say hello to name a few times."""
    for i in range(times):  # count up
        print("hello, " + name + "!")
    return {"name": name, "times": [i, 2 * i]}


class Point(object):
    # a point in the plane
    def __init__(self, x=0, y=1):
        self.x, self.y = (x, y)

    def norm(self):
        return (self.x ** 2 + self.y ** 2) ** 0.5

'''


@dataclass
class Trained:
    run: Path
    model: Any
    vocab: Any
    corpus: Any
    text: str


def _train(tmp: Path, cell: str, steps: int, *, layers: int, hidden: int) -> Trained:
    path = tmp / "tiny.py.txt"
    path.write_text(TEXT * 6, encoding="utf-8")
    corpus = load_text(path, "char")
    model = RNNLM(len(corpus.vocab), 12, hidden, layers, cell=cell, rng=0)
    config = TrainConfig(epochs=1000, batch_size=8, bptt=16, eval_batch_size=2, lr=0.01,
                         clip_norm=5.0, log_every=10, checkpoint_every=10_000,
                         snapshot_every=50, progress=False, seed=0, max_steps=steps)
    run = tmp / f"run-{cell}"
    Trainer(model, corpus, config, run, data_config=DataConfig(corpus=str(path), level="char"),
            echo=io.StringIO().write).fit()
    model.eval()
    model.reset_state()
    return Trained(run, model, corpus.vocab, corpus, TEXT)


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Trained:
    """An LSTM trained for 250 steps (a few seconds; loss about 1.3 nats per character)."""
    return _train(tmp_path_factory.mktemp("viz-lstm"), "lstm", 250, layers=1, hidden=32)


@pytest.fixture(scope="session")
def trained_gru(tmp_path_factory) -> Trained:
    """A 1-layer GRU trained briefly (a second run to overlay)."""
    return _train(tmp_path_factory.mktemp("viz-gru"), "gru", 40, layers=1, hidden=16)


def png_pixels(path: Path) -> np.ndarray:
    """The RGB(A) pixels of an 8-bit PNG as floats in [0, 1]: read by Pillow when it is
    installed (with matplotlib), else decoded here with zlib, so that the page screenshots
    are checked without the plotting extra too."""
    try:
        from PIL import Image
    except ImportError:
        return decode_png(Path(path).read_bytes())
    with Image.open(path) as image:
        image.load()
        mode = "RGBA" if "A" in image.mode or "transparency" in image.info else "RGB"
        return np.asarray(image.convert(mode), dtype=np.float64) / 255.0


def decode_png(data: bytes) -> np.ndarray:
    """A small PNG decoder (8-bit grey, RGB, palette, grey+alpha, RGBA; no interlace)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, palette = 8, b"", None
    width = height = depth = ctype = interlace = 0
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big")
            depth, ctype, interlace = body[8], body[9], body[12]
        elif kind == b"PLTE":
            palette = np.frombuffer(body, dtype=np.uint8).reshape(-1, 3)
        elif kind == b"IDAT":
            idat += body
    assert depth == 8 and interlace == 0 and ctype in (0, 2, 3, 4, 6), (depth, ctype)
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ctype]
    raw = zlib.decompress(idat)
    stride = width * channels
    rows = np.zeros((height, stride), dtype=np.int64)
    prev = np.zeros(stride, dtype=np.int64)
    for y in range(height):
        start = y * (stride + 1)
        f = raw[start]
        line = np.frombuffer(raw[start + 1:start + 1 + stride], dtype=np.uint8).astype(np.int64)
        if f == 0:
            out = line
        elif f == 2:
            out = (line + prev) % 256
        else:  # 1 (sub), 3 (average), 4 (Paeth) depend on the pixel to the left
            out = np.zeros(stride, dtype=np.int64)
            for i in range(stride):
                left = out[i - channels] if i >= channels else 0
                up = prev[i]
                if f == 1:
                    pred = left
                elif f == 3:
                    pred = (left + up) // 2
                else:
                    ul = prev[i - channels] if i >= channels else 0
                    pa, pb, pc = abs(up - ul), abs(left - ul), abs(left + up - 2 * ul)
                    pred = left if pa <= pb and pa <= pc else up if pb <= pc else ul
                out[i] = (line[i] + pred) % 256
        rows[y] = out
        prev = out
    pixels = rows.reshape(height, width, channels)
    if ctype == 3:
        pixels = palette[pixels[..., 0]].astype(np.int64)
    elif ctype in (0, 4):
        pixels = np.repeat(pixels[..., :1], 3, axis=2)
    return pixels.astype(np.float64) / 255.0


def assert_real_png(path: Path, *, min_bytes: int = 5_000, max_bytes: int = 2_000_000,
                    min_colours: int = 16) -> np.ndarray:
    """The file is a PNG of a sensible size with many distinct, non-uniform pixels."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert min_bytes <= len(data) <= max_bytes, f"{path}: {len(data)} bytes"
    pixels = png_pixels(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert float(pixels[..., :3].std()) > 0.02, f"{path}: nearly uniform"
    flat = (pixels[..., :3].reshape(-1, 3) * 255).astype(np.int64)
    colours = np.unique(flat[:, 0] * 65536 + flat[:, 1] * 256 + flat[:, 2])
    assert colours.size >= min_colours, f"{path}: only {colours.size} colours"
    return pixels


#: Words and a title that would break out of the page if pasted in raw: the end of a
#: script element, an HTML comment opener, the page template's own placeholders, the two
#: line separators that end a JavaScript string, markup with a handler, an entity.
HOSTILE_WORDS = ["a", "<!--", "b", "</script>", "__DATA__", "</SCRIPT", "__TITLE__",
                 "<img/src=x/onerror=window.pwned=1>", "&amp;", "-->", "\u2028x\u2029"]
HOSTILE_TITLE = ("t </script><!-- __DATA__ __TITLE__ \u2028 \u2029 "
                 "<img src=x onerror=window.pwned=1> &amp; \"'")


@pytest.fixture(scope="session")
def hostile_states() -> Any:
    """The states of an untrained word model over :data:`HOSTILE_WORDS` (every one of
    them in its vocabulary, so each reaches the page as a token)."""
    from rnnlab.data import Vocab
    from rnnlab.viz.probe import collect_states

    words = [*HOSTILE_WORDS, "<eos>"] * 3
    vocab = Vocab.build(words, level="word")
    model = RNNLM(len(vocab), 8, 16, 1, rng=0)
    return collect_states(model, vocab.encode(words), vocab=vocab)
