"""One training step of MinGRU / MinLSTM against rnnlab's LSTM and torch.nn.LSTM.

    python benchmarks/bench_minrnn.py [--threads 2] [--steps 10] [--lengths 256 1024]
                                      [--blocks 64]

``rnnlab MinGRU`` / ``MinLSTM`` run with the engine (its compiled pass over the gates and
the recurrence, the same for either mode); the ``reference`` rows run the plain NumPy
reference (``RNNLAB_FAST=0`` for that contestant) in each mode. Each contestant is a
character model of the same width: ``Embedding(65, 256)``, the
recurrent layer (H = 256), ``Linear(256, 65)``, softmax cross-entropy, and one step is
forward, backward and a plain SGD update, float32, batch 32. The rnnlab contestants
(MinGRU and MinLSTM, LSTM) share the same plumbing (embedding rows, then
the layer's ``forward``; not RNNLM's token table). ``--blocks`` adds a parallel row for
each block length of the log-space scan (``minrnn_math.SCAN_BLOCK``; 0 is one block
over the whole sequence). Thread counts are fixed before numpy and torch load; the
contestants run interleaved in one process, each after ``--pause`` seconds of idle, and
the table shows the median of ``--steps`` timed steps after ``--warmup`` untimed ones.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=10, help="timed steps per contestant")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--lengths", type=int, nargs="+", default=[256, 1024])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--vocab", type=int, default=65)
    p.add_argument("--blocks", type=int, nargs="*", default=[],
                   help="extra parallel rows with these scan block lengths (0: unblocked)")
    p.add_argument("--pause", type=float, default=0.25,
                   help="seconds of idle before each timed step")
    p.add_argument("--no-torch", action="store_true")
    return p.parse_args()


ARGS = parse()
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)

import numpy as np  # noqa: E402

from rnnlab import fast, nn  # noqa: E402
from rnnlab.nn import minrnn_math  # noqa: E402
from rnnlab.optim import SGD  # noqa: E402

try:
    import torch

    torch.set_num_threads(ARGS.threads)
except ImportError:  # pragma: no cover - torch is optional
    torch = None


class CharModel(nn.Module):
    """Embedding -> recurrent layer -> Linear -> softmax cross-entropy."""

    def __init__(self, rnn: nn.Module) -> None:
        super().__init__()
        V, H = ARGS.vocab, ARGS.hidden
        self.emb = nn.Embedding(V, H, rng=1)
        self.rnn = rnn
        self.head = nn.Linear(H, V, rng=2)
        self.loss = nn.SoftmaxCrossEntropy()

    def step(self, opt: SGD, x: np.ndarray, y: np.ndarray) -> float:
        self.zero_grad()
        loss = self.loss.forward(self.head.forward(self.rnn.forward(self.emb.forward(x))), y)
        self.emb.backward(self.rnn.backward(self.head.backward(self.loss.backward())))
        opt.step()
        return loss


def rnnlab_step(make: Callable[[], nn.Module], block: int | None = None,
                engine: bool = True) -> Callable[..., Any]:
    model = CharModel(make())
    opt = SGD(model, lr=0.1)

    def step(x: np.ndarray, y: np.ndarray) -> None:
        saved = minrnn_math.SCAN_BLOCK
        if block is not None:
            minrnn_math.SCAN_BLOCK = block or x.shape[1]
        fast.set_enabled(engine)
        try:
            model.step(opt, x, y)
        finally:
            minrnn_math.SCAN_BLOCK = saved
            fast.set_enabled(None)

    return step


def torch_step() -> Callable[..., Any]:
    torch.manual_seed(0)
    V, H = ARGS.vocab, ARGS.hidden
    emb, rnn = torch.nn.Embedding(V, H), torch.nn.LSTM(H, H, batch_first=True)
    head = torch.nn.Linear(H, V)
    params = [*emb.parameters(), *rnn.parameters(), *head.parameters()]
    opt = torch.optim.SGD(params, lr=0.1)

    def step(x: np.ndarray, y: np.ndarray) -> None:
        xt, yt = torch.from_numpy(x.astype(np.int64)), torch.from_numpy(y.astype(np.int64))
        opt.zero_grad()
        logits = head(rnn(emb(xt))[0])
        torch.nn.functional.cross_entropy(logits.reshape(-1, V), yt.reshape(-1)).backward()
        opt.step()

    return step


def contestants() -> dict[str, Callable[..., Any]]:
    H = ARGS.hidden
    out = {}
    for cls in (nn.MinGRU, nn.MinLSTM):
        out[f"rnnlab {cls.__name__}"] = rnnlab_step(lambda cls=cls: cls(H, H, rng=0))
        for mode in ("parallel", "sequential"):
            out[f"rnnlab {cls.__name__} {mode}, reference"] = rnnlab_step(
                lambda cls=cls, mode=mode: cls(H, H, mode=mode, rng=0), engine=False)
        for block in ARGS.blocks:
            out[f"rnnlab {cls.__name__} parallel, block {block or 'T'}, reference"] = \
                rnnlab_step(lambda cls=cls: cls(H, H, rng=0), block, engine=False)
    out["rnnlab LSTM"] = rnnlab_step(lambda: nn.LSTM(H, H, rng=0))
    if torch is not None and not ARGS.no_torch:
        out["torch LSTM"] = torch_step()
    return out


def main() -> int:
    rng = np.random.default_rng(0)
    print(f"one training step, N {ARGS.batch}, H {ARGS.hidden}, vocab {ARGS.vocab}, float32, "
          f"{ARGS.threads} thread(s), median of {ARGS.steps} steps after {ARGS.warmup} "
          f"(numpy {np.__version__}, torch {torch.__version__ if torch else 'absent'})")
    print(f"{'T':>5}  {'contestant':<44} {'ms':>9} {'LSTM / it':>10}")
    for T in ARGS.lengths:
        runs = contestants()
        times: dict[str, list[float]] = {name: [] for name in runs}
        for k in range(ARGS.warmup + ARGS.steps):
            data = rng.integers(0, ARGS.vocab, (ARGS.batch, T + 1))
            x, y = data[:, :-1].copy(), data[:, 1:].copy()
            for name, step in runs.items():  # interleaved
                time.sleep(ARGS.pause)
                t0 = time.perf_counter()
                step(x, y)
                if k >= ARGS.warmup:
                    times[name].append(time.perf_counter() - t0)
        med = {name: float(np.median(t)) * 1e3 for name, t in times.items()}
        for name, ms in med.items():
            print(f"{T:>5}  {name:<44} {ms:>9.1f} {med['rnnlab LSTM'] / ms:>9.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
