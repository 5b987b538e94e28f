"""rnnlab against PyTorch on the CPU: one full training step, side by side in one run.

    pip install torch==2.13.0          # the optional benchmark dependency
    python benchmarks/bench_vs_torch.py [--threads 2] [--steps 20] [--configs A,B,C,D,E]
                                        [--turn-steps 1]

For each configuration, one training step (embedding, recurrent layers, output layer,
softmax cross-entropy, backward, gradient clipping, SGD update) runs in rnnlab and in the
equivalent PyTorch model, float32, with the same thread count, interleaved in the same
process (rnnlab, torch, rnnlab, torch, ...). The table gives the median tokens/s over
``--steps`` timed steps after warm-up, the ratio rnnlab/torch, and the GFLOP/s of the
matrix products next to the numpy sgemm rate measured in the same run (the standard
count of the model's products, the same for both libraries: on D rnnlab skips three of
them through its token table, so its GF/s there is an effective rate). E is generation:
sampling 2000 characters one at a time with model D at batch 1. Peak resident memory of
each library (VmHWM) is measured in a fresh subprocess per configuration.

Each timed turn starts after ``--pause`` seconds of idle (default 0.25): after a call,
OpenBLAS's worker threads keep spinning on the cores for a while, and PyTorch's OpenMP
workers briefly too, so back-to-back turns would time each library against the other's
spinning threads (measured here: PyTorch's step on A ran at half speed right after any
multi-threaded numpy product; with 0.2 s of idle it matched its standalone speed).
A turn is one step by default. With ``--turn-steps K`` a turn is one untimed step and
then ``K`` timed steps back to back, as steps follow each other in training: on this
kind of shared VM, work on two threads right after a long idle runs slowly for its
first milliseconds, and a one-step turn counts that in every timed step of both
libraries.

Configurations: A  Embedding(10000, 100) -> RNN tanh 100 -> Linear(100, 10000), N 20, T 35
                B  the same with LSTM 100 (the book's Rnnlm)
                C  Embedding(10000, 650) -> 2-layer LSTM 650 -> Linear(650, 10000), N 20, T 35
                D  Embedding(65, 256) -> LSTM 256 -> Linear(256, 65), N 32, T 100
                E  generation, batch 1, model D, 2000 characters
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="rnnlab vs PyTorch, one training step")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=20, help="timed steps per library (>= 20)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--pause", type=float, default=0.25,
                   help="seconds of idle before each timed turn (see the module docstring)")
    p.add_argument("--turn-steps", type=int, default=1,
                   help="timed steps per turn, after one untimed step when above 1 "
                   "(see the module docstring)")
    p.add_argument("--configs", default="A,B,C,D,E")
    p.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                   help="gpu: rnnlab on CuPy against torch on CUDA/cuDNN (same card)")
    p.add_argument("--memory-probe", nargs=2, metavar=("LIB", "CONFIG"),
                   help=argparse.SUPPRESS)  # internal: run in a subprocess
    return p.parse_args(argv)


ARGS = parse()
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)

import numpy as np  # noqa: E402


@dataclass(frozen=True)
class Config:
    name: str
    vocab: int
    embed: int
    hidden: int
    layers: int
    cell: str
    batch: int
    bptt: int

    def matmul_flops(self) -> float:
        """FLOPs of the matrix products of one forward + backward step."""
        M, H, V = self.batch * self.bptt, self.hidden, self.vocab
        gates = {"rnn": 1, "lstm": 4, "gru": 3}[self.cell] * H
        flops = 3 * 2 * M * H * V  # output layer: forward, dW, dx
        for layer in range(self.layers):
            D = self.embed if layer == 0 else H
            flops += 3 * (2 * M * D * gates + 2 * M * H * gates)
        return flops


CONFIGS = {
    "A": Config("A", 10000, 100, 100, 1, "rnn", 20, 35),
    "B": Config("B", 10000, 100, 100, 1, "lstm", 20, 35),
    "C": Config("C", 10000, 650, 650, 2, "lstm", 20, 35),
    "D": Config("D", 65, 256, 256, 1, "lstm", 32, 100),
}
GENERATE_CHARS = 2000


# ------------------------------------------------------------------ rnnlab side
def rnnlab_step_fn(cfg: Config, data: np.ndarray):
    from rnnlab.models import RNNLM
    from rnnlab.optim import SGD, clip_grad_norm

    model = RNNLM(cfg.vocab, cfg.embed, cfg.hidden, cfg.layers, cfg.cell, rng=0,
                  device=ARGS.device)
    opt = SGD(model, lr=0.1)
    position = [0]
    xp = model.xp

    def step() -> None:
        x, y = batch(data, cfg, position)
        model.zero_grad()
        model.forward_loss(xp.asarray(x), xp.asarray(y))
        model.backward()
        clip_grad_norm(model, 0.25)
        opt.step()

    return step


def rnnlab_generate_fn(cfg: Config):
    from rnnlab.generate import generate_ids
    from rnnlab.models import RNNLM

    model = RNNLM(cfg.vocab, cfg.embed, cfg.hidden, cfg.layers, cfg.cell, rng=0)

    def run() -> None:
        generate_ids(model, [0], GENERATE_CHARS, rng=0)

    return run


# ------------------------------------------------------------------- torch side
def torch_step_fn(cfg: Config, data: np.ndarray):
    import torch

    torch.manual_seed(0)
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cfg.cell]

    class Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = torch.nn.Embedding(cfg.vocab, cfg.embed)
            self.rnn = cls(cfg.embed, cfg.hidden, cfg.layers, batch_first=True)
            self.decoder = torch.nn.Linear(cfg.hidden, cfg.vocab)

        def forward(self, x, state):
            out, state = self.rnn(self.embedding(x), state)
            return self.decoder(out), state

    device = "cuda" if ARGS.device == "gpu" else "cpu"
    model = Model().to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    position, carried = [0], [None]

    def detach(state):
        if state is None:
            return None
        return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()

    def step() -> None:
        x, y = batch(data, cfg, position)
        xt = torch.from_numpy(x.astype(np.int64)).to(device)
        yt = torch.from_numpy(y.astype(np.int64)).to(device)
        opt.zero_grad()
        logits, state = model(xt, detach(carried[0]))
        carried[0] = state
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, cfg.vocab), yt.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()

    return step


def torch_generate_fn(cfg: Config):
    import torch

    torch.manual_seed(0)
    embedding = torch.nn.Embedding(cfg.vocab, cfg.embed)
    rnn = torch.nn.LSTM(cfg.embed, cfg.hidden, cfg.layers, batch_first=True)
    decoder = torch.nn.Linear(cfg.hidden, cfg.vocab)

    def run() -> None:
        with torch.no_grad():
            token, state = torch.zeros((1, 1), dtype=torch.long), None
            for _ in range(GENERATE_CHARS):
                out, state = rnn(embedding(token), state)
                probs = torch.softmax(decoder(out[:, -1]), dim=-1)
                token = torch.multinomial(probs, 1)

    return run


# ------------------------------------------------------------------------ shared
def batch(data: np.ndarray, cfg: Config, position: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The next (N, T) window of a fixed random token stream, cycling."""
    span = cfg.batch * (cfg.bptt + 1)
    start = position[0] % (data.size - span)
    position[0] += span
    window = data[start:start + span].reshape(cfg.batch, cfg.bptt + 1)
    return np.ascontiguousarray(window[:, :-1]), np.ascontiguousarray(window[:, 1:])


def sgemm_gflops() -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((700, 650), dtype=np.float32)
    b = rng.standard_normal((650, 10000), dtype=np.float32)
    out = np.empty((700, 10000), np.float32)
    times = []
    for _ in range(12):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        times.append(time.perf_counter() - t0)
    return 2 * 700 * 650 * 10000 / np.median(times[2:]) / 1e9


def synchronize() -> None:
    """Wait for queued GPU work (no-op on the CPU), so that timings cover it."""
    if ARGS.device != "gpu":
        return
    import cupy
    import torch

    cupy.cuda.Device().synchronize()
    torch.cuda.synchronize()


def interleave(fns: dict[str, object], warmup: int, steps: int,
               per_turn: int = 1) -> dict[str, list[float]]:
    """Turns of each library in order, ``warmup`` untimed turns then enough turns for
    ``steps`` timed calls each: a turn is ``--pause`` seconds of idle, then, when
    ``per_turn`` is above 1, one untimed call and ``per_turn`` timed calls back to back
    (else one timed call)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(warmup + -(-steps // per_turn)):
        for name, fn in fns.items():
            synchronize()
            time.sleep(ARGS.pause)  # let the other library's worker threads go idle
            if per_turn > 1:
                fn()
            for _ in range(per_turn):
                t0 = time.perf_counter()
                fn()
                synchronize()
                if i >= warmup:
                    times[name].append(time.perf_counter() - t0)
    return times


def peak_rss() -> int:
    """Peak resident set of this process in bytes (VmHWM: unlike ``ru_maxrss`` it is not
    inherited from the parent across fork and exec)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory_probe(lib: str, name: str) -> int:
    """Run a few steps of one library in this (fresh) process; print peak RSS in bytes."""
    if lib == "torch":
        import torch

        torch.set_num_threads(ARGS.threads)
    data = np.random.default_rng(1).integers(0, CONFIGS["D" if name == "E" else name].vocab,
                                             200_000).astype(np.int32)
    if name == "E":
        fn = (rnnlab_generate_fn if lib == "rnnlab" else torch_generate_fn)(CONFIGS["D"])
    else:
        fn = (rnnlab_step_fn if lib == "rnnlab" else torch_step_fn)(CONFIGS[name], data)
    for _ in range(3 if name == "E" else 6):
        fn()
    print(json.dumps({"peak_rss": peak_rss()}))
    return 0


def measure_memory(lib: str, name: str) -> float | None:
    cmd = [sys.executable, __file__, "--threads", str(ARGS.threads), "--memory-probe", lib, name]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_rss"] / 2**20


def main() -> int:
    if ARGS.memory_probe:
        return memory_probe(*ARGS.memory_probe)
    try:
        import torch

        torch.set_num_threads(ARGS.threads)
    except ImportError:
        print("PyTorch is not installed: pip install torch==2.13.0", file=sys.stderr)
        return 2
    per_turn = max(ARGS.turn_steps, 1)
    steps = -(-max(ARGS.steps, 1) // per_turn) * per_turn  # whole turns
    names = [n.strip().upper() for n in ARGS.configs.split(",") if n.strip()]
    sgemm = sgemm_gflops()
    print(f"rnnlab vs torch {torch.__version__}, numpy {np.__version__}, float32, "
          f"{ARGS.threads} thread(s), median of {steps} steps (E: {max(3, steps // 5)} runs "
          f"of {GENERATE_CHARS} chars), {ARGS.pause:g} s idle before each turn"
          + (f" of 1 + {per_turn} steps" if per_turn > 1 else "")
          + f"; numpy sgemm {sgemm:.0f} GFLOP/s at start")
    print(f"{'cfg':<4}{'rnnlab tok/s':>14}{'torch tok/s':>13}{'ratio':>8}"
          f"{'rnnlab GF/s':>13}{'torch GF/s':>12}{'sgemm':>7}{'% sgemm':>9}"
          f"{'rnnlab MB':>11}{'torch MB':>10}", flush=True)
    for name in names:
        if name == "E":
            cfg = CONFIGS["D"]
            fns = {"rnnlab": rnnlab_generate_fn(cfg), "torch": torch_generate_fn(cfg)}
            times = interleave(fns, 1, max(3, steps // 5))
            tokens, flops = GENERATE_CHARS, None
        else:
            cfg = CONFIGS[name]
            data = np.random.default_rng(1).integers(0, cfg.vocab, 200_000).astype(np.int32)
            fns = {"rnnlab": rnnlab_step_fn(cfg, data), "torch": torch_step_fn(cfg, data)}
            times = interleave(fns, ARGS.warmup, steps, per_turn)
            tokens, flops = cfg.batch * cfg.bptt, cfg.matmul_flops()
        sgemm = sgemm_gflops()  # measured again next to each configuration
        med = {lib: float(np.median(t)) for lib, t in times.items()}
        mem = {lib: (None if ARGS.no_memory else measure_memory(lib, name)) for lib in med}
        ours, theirs = tokens / med["rnnlab"], tokens / med["torch"]
        gf_ours = f"{flops / med['rnnlab'] / 1e9:.0f}" if flops else "-"
        gf_theirs = f"{flops / med['torch'] / 1e9:.0f}" if flops else "-"
        share = f"{flops / med['rnnlab'] / 1e9 / sgemm * 100:.0f}%" if flops else "-"
        m_ours = f"{mem['rnnlab']:.0f}" if mem["rnnlab"] else "-"
        m_theirs = f"{mem['torch']:.0f}" if mem["torch"] else "-"
        print(f"{name:<4}{ours:>14,.0f}{theirs:>13,.0f}{ours / theirs:>7.2f}x{gf_ours:>13}"
              f"{gf_theirs:>12}{sgemm:>7.0f}{share:>9}{m_ours:>11}{m_theirs:>10}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
