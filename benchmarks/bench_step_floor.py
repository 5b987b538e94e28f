"""What a training step costs against its matrix products alone, in one process.

    python benchmarks/bench_step_floor.py                  # Zaremba, B, C; 20 rounds
    python benchmarks/bench_step_floor.py --models Zaremba --rounds 30

For each language model, rounds of: one rnnlab training step (zero_grad, forward and
loss, backward, clipping at 0.25, SGD; each phase timed), then every matrix product of
such a step through NumPy's BLAS, each timed on its own in the shapes and layouts
rnnlab's layers use:

* the output layer: logits ``h W^T``, the input gradient ``dZ W``, the weight gradient
  ``dZ^T h``;
* each recurrent layer: the input projection of all steps ``x W_ih^T``, the ``T`` per-step
  products of the forward ``h W_hh^T`` and of the backward ``dG W_hh``, the input
  gradient ``dG W_ih``, and the weight gradients ``dG^T x`` and ``dG^T h``.

It prints the median step and its phases, each product's median time and rate, their
sum (the step's cost if everything else took no time and the products ran one after
another at BLAS's rate of the moment) and the square ``2000 x 2000`` sgemm rate measured
in the same rounds. For Zaremba it also projects the 13 epochs of the
``bench_lm.py zaremba-small`` preset (30,212 steps on PTB, evaluation not counted) at the
median step, at the products' sum, and at their arithmetic done at the square sgemm
rate (every product as fast as BLAS goes on this host at that moment). rnnlab computes
some of these products otherwise (packed per-step products, weight gradients on the
second core beside the input gradients; D's token table skips three products), so its
step may come out below the sum; the sum says what two BLAS threads need for the
arithmetic at the host's rate of the moment.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np
from bench_loop_products import MODELS  # the same models (benchmarks/ is on sys.path)

#: steps of bench_lm.py's zaremba-small preset: 13 epochs of 2,324 windows (PTB train,
#: 929,589 tokens as 20 streams read in windows of 20; metrics.jsonl's last step)
ZAREMBA_RUN_STEPS = 30_212


def product_table(V: int, E: int, H: int, L: int, N: int, T: int, G: int,
                  rng: np.random.Generator) -> list[tuple[str, str, int, float, Callable]]:
    """``(name, shape, count, flops, fn)`` for every matrix product of one step; ``fn``
    runs the ``count`` products once each."""
    M = N * T

    def arr(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32)

    rows: list[tuple[str, str, int, float, Callable]] = []

    def add(name: str, a: np.ndarray, b: np.ndarray, count: int = 1) -> None:
        out = np.empty((a.shape[0], b.shape[1]), np.float32)

        def run() -> None:
            for _ in range(count):
                np.matmul(a, b, out=out)

        shape = f"({a.shape[0]},{a.shape[1]})@({b.shape[0]},{b.shape[1]})"
        rows.append((name, shape, count, 2.0 * a.shape[0] * a.shape[1] * b.shape[1] * count,
                     run))

    h, W, dZ = arr(M, H), arr(V, H), arr(M, V)
    add("output: logits h W^T", h, W.T)
    add("output: input grad dZ W", dZ, W)
    add("output: weight grad dZ^T h", dZ.T, h)
    for layer in range(L):
        D = E if layer == 0 else H
        x, W_ih, W_hh, dG = arr(M, D), arr(G * H, D), arr(G * H, H), arr(M, G * H)
        tag = f"layer {layer}:"
        add(f"{tag} input projection", x, W_ih.T)
        add(f"{tag} per-step forward", arr(N, H), W_hh.T, count=T)
        add(f"{tag} per-step backward", arr(N, G * H), W_hh, count=T)
        add(f"{tag} input grad dG W_ih", dG, W_ih)  # layer 0's: to the embedding
        add(f"{tag} weight grad dG^T x", dG.T, x)
        add(f"{tag} weight grad dG^T h", dG.T, arr(M, H))
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="Zaremba,B,C", help=f"of {','.join(MODELS)}")
    p.add_argument("--rounds", type=int, default=20, help="timed rounds (after 3 warm-up)")
    p.add_argument("--threads", type=int, default=2, help="BLAS threads")
    args = p.parse_args()
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        p.error(f"--models: unknown {unknown}, expected names from {list(MODELS)}")
    if args.rounds < 1:
        p.error(f"--rounds: expected at least 1, got {args.rounds}")

    from threadpoolctl import threadpool_limits

    from rnnlab.models import RNNLM
    from rnnlab.nn.cells import make_cell
    from rnnlab.optim import SGD, clip_grad_norm

    rng = np.random.default_rng(0)
    sq_a, sq_b = rng.standard_normal((2, 2000, 2000), dtype=np.float32)
    sq_out = np.empty((2000, 2000), np.float32)
    with threadpool_limits(args.threads):
        for name in names:
            V, E, H, L, N, T, cell = MODELS[name]
            model = RNNLM(V, embedding_dim=E, hidden_size=H, num_layers=L, cell=cell, rng=0)
            opt = SGD(model, lr=0.1)
            x = rng.integers(0, V, (N, T)).astype(np.int32)
            y = rng.integers(0, V, (N, T)).astype(np.int32)
            table = product_table(V, E, H, L, N, T, make_cell(cell).n_gates, rng)
            phases = ("zero", "forward+loss", "backward", "clip", "SGD")
            step_t: dict[str, list[float]] = {k: [] for k in (*phases, "step")}
            prod_t: list[list[float]] = [[] for _ in table]
            sgemm_t: list[float] = []
            for i in range(args.rounds + 3):
                marks = [time.perf_counter()]
                model.zero_grad()
                marks.append(time.perf_counter())
                model.forward_loss(x, y)
                marks.append(time.perf_counter())
                model.backward()
                marks.append(time.perf_counter())
                clip_grad_norm(model, 0.25)
                marks.append(time.perf_counter())
                opt.step()
                marks.append(time.perf_counter())
                spans = [(k, marks[j + 1] - marks[j]) for j, k in enumerate(phases)]
                spans.append(("step", marks[-1] - marks[0]))
                for j, (*_, run) in enumerate(table):
                    start = time.perf_counter()
                    run()
                    if i >= 3:
                        prod_t[j].append(time.perf_counter() - start)
                start = time.perf_counter()
                np.matmul(sq_a, sq_b, out=sq_out)
                if i >= 3:  # warm-up
                    sgemm_t.append(time.perf_counter() - start)
                    for k, v in spans:
                        step_t[k].append(v)
            ms = {k: float(np.median(v)) * 1e3 for k, v in step_t.items()}
            sgemm = 2 * 2000**3 / float(np.median(sgemm_t)) / 1e9
            print(f"{name}: {L} x {cell.upper()} {H}, embedding {E}, vocabulary {V}, batch {N}, "
                  f"T {T}; {args.threads} BLAS thread(s), median of {args.rounds} rounds; "
                  f"sgemm 2000^3 {sgemm:.0f} GF/s")
            print(f"  step {ms['step']:.1f} ms: "
                  + ", ".join(f"{k} {ms[k]:.1f}" for k in phases))
            print(f"  {'matrix product':<32}{'shape':>26}{'count':>7}{'ms':>9}{'GF/s':>7}")
            total_ms, total_flops = 0.0, 0.0
            for (label, shape, count, flops, _), times in zip(table, prod_t, strict=True):
                t = float(np.median(times)) * 1e3
                total_ms, total_flops = total_ms + t, total_flops + flops
                print(f"  {label:<32}{shape:>26}{count:>7}{t:>9.2f}{flops / t / 1e6:>7.0f}")
            print(f"  products alone: {total_ms:.1f} ms ({total_flops / 1e9:.2f} GFLOP at "
                  f"{total_flops / total_ms / 1e6:.0f} GF/s), {total_ms / ms['step']:.0%} of "
                  f"the step; everything else in the step: {ms['step'] - total_ms:.1f} ms")
            if name == "Zaremba":
                print(f"  zaremba-small, 13 epochs = {ZAREMBA_RUN_STEPS:,} steps (evaluation "
                      f"not counted): at the step {ZAREMBA_RUN_STEPS * ms['step'] / 6e4:.1f} "
                      f"min, the products alone {ZAREMBA_RUN_STEPS * total_ms / 6e4:.1f} min, "
                      f"their arithmetic at the sgemm rate "
                      f"{ZAREMBA_RUN_STEPS * total_flops / sgemm / 6e10:.1f} min")
            print(flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
