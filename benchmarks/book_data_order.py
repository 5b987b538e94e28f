"""The book's Rnnlm recipe in a plain loop with the book's own data order (an experiment).

    python benchmarks/book_data_order.py --order book       # the book's RnnlmTrainer
    python benchmarks/book_data_order.py --order epochs     # every epoch from the start
    python benchmarks/book_data_order.py --order epochs --forget-bias 1

Model and update as ``bench_lm.py book`` (LSTM 100, embedding 100, the book's
initialisation, SGD lr 20, clip 0.25, 4 epochs, batch 20, T 35). The difference is the
loop: like the book's ``RnnlmTrainer.fit`` it takes ``len(ids - 1) // (N T)`` full windows
an epoch (1,327 on PTB; rnnlab's ``Trainer`` also takes the shorter last window, 1,328).
With ``--order book`` the read positions run on from epoch to epoch (``time_idx`` is never
reset, reads wrap around the corpus) and the state is carried across epochs; with
``--order epochs`` each epoch starts at position 0 from a zero state. ``--forget-bias``
sets the forget-gate block of ``b_ih`` (Jozefowicz et al. 2015 use 1). Validation
perplexity is printed after each epoch, test perplexity at the end (batch 10, T 35).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--order", choices=("book", "epochs"), default="book")
    p.add_argument("--forget-bias", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir")
    args = p.parse_args()
    from rnnlab.data import load_ptb
    from rnnlab.models import RNNLM
    from rnnlab.optim import SGD, clip_grad_norm
    from rnnlab.train.evaluate import evaluate_ids

    corpus = load_ptb(args.data_dir)
    ids = np.asarray(corpus.train)
    xs, ts = ids[:-1], ids[1:]
    N, T, H = 20, 35, 100
    size = len(xs)
    offsets = np.arange(N)[:, None] * (size // N) + np.arange(T)[None, :]
    windows = size // (N * T)
    model = RNNLM(len(corpus.vocab), embedding_dim=100, hidden_size=H, num_layers=1,
                  cell="lstm", init="book", rng=args.seed)
    model.rnn.params["bias_ih_l0"][H:2 * H] = args.forget_bias
    opt = SGD(model, lr=20.0)
    time_idx, started = 0, time.perf_counter()
    for epoch in range(4):
        if args.order == "epochs":
            time_idx = 0
            model.reset_state()
        total = 0.0
        for _ in range(windows):
            pos = (offsets + time_idx) % size
            time_idx += T
            model.zero_grad()
            total += model.forward_loss(xs[pos].astype(np.int32), ts[pos].astype(np.int32))
            model.backward()
            clip_grad_norm(model, 0.25)
            opt.step()
        valid = evaluate_ids(model, corpus.valid, batch_size=10, bptt=T)
        print(f"epoch {epoch + 1}: train ppl {math.exp(total / windows):.2f}, valid ppl "
              f"{math.exp(valid):.2f} ({time.perf_counter() - started:.0f} s)", flush=True)
    model.reset_state()
    test = evaluate_ids(model, corpus.test, batch_size=10, bptt=T)
    print(f"order {args.order}, forget bias {args.forget_bias:g}, seed {args.seed}: "
          f"test ppl {math.exp(test):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
