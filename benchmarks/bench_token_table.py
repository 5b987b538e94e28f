"""What the token table buys a character model: configuration D of bench_vs_torch.

    python benchmarks/bench_token_table.py [--steps 20] [--threads 2]

One training step of RNNLM(65, 256, 256, LSTM) at batch 32, T 100 (forward, backward,
clipping, SGD), with the embedding and first input projection as one ``(V, G*H)`` table
(``Recurrent.forward_tokens``, RNNLM's choice for this model) and through the plain path
(the table switched off), interleaved, each turn after 0.2 s of idle; then the products
the table replaces and those it does instead, timed alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    os.environ["OPENBLAS_NUM_THREADS"] = str(args.threads)

    import numpy as np

    from rnnlab.models import RNNLM
    from rnnlab.nn.embedding import scatter_add_rows
    from rnnlab.nn.scan import TokenInput
    from rnnlab.optim import SGD, clip_grad_norm

    V, E, H, N, T = 65, 256, 256, 32, 100
    rng = np.random.default_rng(0)
    model = RNNLM(V, E, H, 1, "lstm", rng=0)
    opt = SGD(model, lr=0.1)
    pays = TokenInput.pays

    def use_table(on: bool) -> None:
        TokenInput.pays = pays if on else staticmethod(lambda vocab, tokens: False)

    def step() -> None:
        x, y = rng.integers(0, V, (N, T)), rng.integers(0, V, (N, T))
        model.zero_grad()
        model.forward_loss(x, y)
        model.backward()
        clip_grad_norm(model, 0.25)
        opt.step()

    times: dict[str, list[float]] = {"token table": [], "plain": []}
    for mode in times:
        use_table(mode == "token table")
        for _ in range(3):
            step()
    for _ in range(args.steps):
        for mode in times:
            use_table(mode == "token table")
            time.sleep(0.2)
            start = time.perf_counter()
            step()
            times[mode].append(time.perf_counter() - start)
    use_table(True)

    def alone(fn, n: int = 50) -> float:
        for _ in range(5):
            fn()
        samples = []
        for _ in range(n):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
        return float(np.median(samples)) * 1e3

    f32 = np.float32
    X, W = rng.standard_normal((N * T, E)).astype(f32), rng.standard_normal((4 * H, E)).astype(f32)
    dZ = rng.standard_normal((N * T, 4 * H)).astype(f32)
    emb, dP = rng.standard_normal((V, E)).astype(f32), np.zeros((V, 4 * H), f32)
    ids, xw = rng.integers(0, V, N * T), np.empty((N * T, 4 * H), f32)
    table = emb @ W.T

    print(f"RNNLM D (V {V}, LSTM {H}, N {N}, T {T}), float32, {args.threads} thread(s), "
          f"median of {args.steps} steps")
    print(f"{'path':<14}{'ms/step':>10}{'tokens/s':>12}")
    for mode, samples in times.items():
        ms = float(np.median(samples)) * 1e3
        print(f"{mode:<14}{ms:>10.1f}{N * T / ms * 1e3:>12,.0f}")
    print("\nproducts (ms, alone)")
    rows = [
        ("plain: X W_ih^T (3200 x 256 x 1024)", lambda: X @ W.T),
        ("plain: dW_ih = dZ^T X", lambda: dZ.T @ X),
        ("plain: dX = dZ W_ih", lambda: dZ @ W),
        ("table: E W_ih^T (65 x 256 x 1024)", lambda: emb @ W.T),
        ("table: dW_ih = dP^T E", lambda: dP.T @ emb),
        ("table: dE = dP W_ih", lambda: dP @ W),
        ("table: gather xw = table[ids]", lambda: np.take(table, ids, axis=0, out=xw)),
        ("table: dP = scatter of dZ by id", lambda: scatter_add_rows(np, dP, ids, dZ)),
    ]
    for name, fn in rows:
        print(f"  {name:<40}{alone(fn):>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
