"""Seed 000: a tanh RNN learns a toy next-symbol sequence, trained by BPTT.

The five symbols 0, 1, 2, 3, 4 arrive one-hot, one per time step; the target at each
step is the "next" symbol 1, 2, 0, 4, 3. The model is the notebook's SimpleRNN:

    h_t = tanh(x_t W_ih^T + h_{t-1} W_hh^T + b)      (rnnlab.nn.RNN)
    y_t = h_t W^T + b_y                                (rnnlab.nn.Linear, no softmax)
    loss = mean squared error against the one-hot target   (rnnlab.nn.MSELoss)

trained with backpropagation through time, element-wise gradient clipping at 5 and
plain SGD. Afterwards the trained layer is run one step at a time, the hidden state
carried from step to step by hand, exactly as the notebook's prediction loop does.

The notebook's loss halves the squared errors of a step, so its gradient is y - t;
``MSELoss`` averages over all 25 numbers (gradient 2 (y - t) / 25), hence a learning
rate of 0.5 here against the notebook's 0.1.

Success: all five next symbols are predicted (argmax of y_t) in the step-by-step loop,
and the step-by-step outputs equal the whole-sequence forward; the full run also needs
a final loss below 1e-4.

    python examples/seed000_toy_sequence.py            # full: 600 epochs
    python examples/seed000_toy_sequence.py --quick    # the test suite's run
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from rnnlab.nn import RNN, Linear, MSELoss
from rnnlab.optim import SGD, clip_grad_value

INPUTS = [0, 1, 2, 3, 4]
TARGETS = [1, 2, 0, 4, 3]
VOCAB = 5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run (the test suite's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial weights")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default 600, or 300 with --quick)")
    parser.add_argument("--hidden", type=int, default=4, help="hidden size (the seed's 4)")
    parser.add_argument("--lr", type=float, default=0.5, help="SGD learning rate")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    epochs = args.epochs or (300 if args.quick else 600)
    started = time.perf_counter()

    # One sequence (batch N = 1) of T = 5 one-hot vectors, batch-first (N, T, V).
    eye = np.eye(VOCAB, dtype=np.float32)
    xs = eye[INPUTS][None]  # (1, 5, 5)
    ys = eye[TARGETS][None]  # (1, 5, 5)

    # The model: two layers and a loss, all seeded from one generator.
    rng = np.random.default_rng(args.seed)
    rnn = RNN(VOCAB, args.hidden, rng=rng)  # tanh by default
    head = Linear(args.hidden, VOCAB, rng=rng)  # time-distributed: (N, T, H) -> (N, T, V)
    loss_fn = MSELoss()
    # (name, parameter, gradient) triples of both layers, for the optimizer and clipping
    params = [*rnn.named_parameters_and_grads("rnn."), *head.named_parameters_and_grads("head.")]
    optimizer = SGD(params, lr=args.lr)
    print(f"seed000: tanh RNN(5 -> {args.hidden}) + Linear({args.hidden} -> 5), MSE loss, "
          f"BPTT, clip 5, SGD lr {args.lr}, {epochs} epochs, seed {args.seed}")
    print(f"  inputs  {INPUTS}\n  targets {TARGETS}")

    for epoch in range(1, epochs + 1):
        # forward over the whole sequence
        hs = rnn.forward(xs)  # (1, 5, H), starts from h_0 = 0
        pred = head.forward(hs)  # (1, 5, 5)
        loss = loss_fn.forward(pred, ys)
        # backward through time: loss -> head -> every step of the RNN
        optimizer.zero_grad()
        dhs = head.backward(loss_fn.backward())
        rnn.backward(dhs)
        clip_grad_value(params, 5.0)  # the notebook's np.clip(dparam, -5, 5)
        optimizer.step()
        if epoch == 1 or epoch % max(1, epochs // 10) == 0:
            w = rnn.params["weight_hh_l0"]
            print(f"  epoch {epoch:4d}  loss {loss:.6f}  W_hh[0, :2] = "
                  f"[{w[0, 0]:+.4f} {w[0, 1]:+.4f}]")

    # Step-by-step prediction, carrying the hidden state by hand (the notebook's test loop).
    print("step-by-step prediction (hidden state carried by hand):")
    h = None  # None = zeros, as h_0 in training
    predicted, outputs = [], []
    for t, symbol in enumerate(INPUTS):
        x_t = xs[:, t : t + 1]  # (1, 1, 5): one time step
        h_seq = rnn.forward(x_t, state=h)  # one step from the carried state
        h = rnn.h_n  # (num_layers, N, H): the state to carry into the next step
        y_t = head.forward(h_seq)[0, 0]
        outputs.append(y_t)
        predicted.append(int(np.argmax(y_t)))
        mark = "ok" if predicted[-1] == TARGETS[t] else "WRONG"
        print(f"  input {symbol} -> predicted {predicted[-1]} (target {TARGETS[t]})  {mark}")

    # The step-by-step loop must agree with one forward over the whole sequence.
    whole = head.forward(rnn.forward(xs))[0]
    same = bool(np.allclose(np.stack(outputs), whole, atol=1e-5))
    correct = sum(p == t for p, t in zip(predicted, TARGETS, strict=True))
    low_loss = args.quick or loss < 1e-4
    elapsed = time.perf_counter() - started
    print(f"step-by-step == whole-sequence forward: {same}")
    if correct == len(TARGETS) and same and low_loss:
        print(f"SUCCESS: all {correct}/5 next symbols predicted (final loss {loss:.2e}, "
              f"{elapsed:.1f} s)")
        return 0
    print(f"FAILURE: {correct}/5 next symbols predicted, step-by-step agrees: {same}, "
          f"final loss {loss:.2e} (full mode needs < 1e-4)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
