"""Seed 003: a character-level RNN learns "hello", then a list of words, then generates.

The notebook's VanillaRNN reads one character per step and predicts the next one. Here
the same model is ``rnnlab.models.RNNLM`` with ``cell="rnn"`` (embedding, tanh RNN,
linear output, softmax cross-entropy), and text comes back out through
``rnnlab.generate.generate``:

1. "hello": input ``h e l l o``, target ``e l l o \\n`` (a newline ends a word). The two
   ``l`` need different answers (``l`` then ``o``), which only the hidden state can tell
   apart. Generating greedily from "h" must give "hello".
2. ``train_words``: several words at once, one padded batch (row = word; padded targets
   use the loss's ``ignore_index`` so they count for nothing), each word starting from a
   zero hidden state. Then every word is generated from its first letter (the words
   have distinct first letters, so one letter determines the word), and a few seed texts
   are continued, greedily and by sampling.

Training: Adam, gradient norm clipped at 5 (the notebook clips element-wise at 5).

Success: "hello" and every training word are reproduced from their first letters.
``--quick`` trains fewer epochs (the criterion is the same).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from rnnlab.data import Vocab
from rnnlab.generate import generate
from rnnlab.models import RNNLM
from rnnlab.optim import Adam, clip_grad_norm

WORDS = ["hello", "world", "numpy", "recurrent", "gradient", "learning", "vector", "python"]
END = "\n"  # the end-of-word symbol the model learns to emit
PAD = -100  # RNNLM's loss ignores targets equal to -100 (SoftmaxCrossEntropy's default)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs (the test suite's)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the initial weights and of the sampling")
    parser.add_argument("--hidden", type=int, default=64, help="hidden size")
    parser.add_argument("--lr", type=float, default=0.01, help="Adam learning rate")
    return parser.parse_args()


def make_batch(words: list[str], vocab: Vocab) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``(N, T)`` = each word, targets = the word shifted by one, then END.

    Short words are padded: their extra inputs are END (never read: the RNN runs left to
    right, so padding after a word cannot change what the model computed inside it) and
    their extra targets are PAD (ignored by the loss).
    """
    T = max(len(w) for w in words)
    xs = np.full((len(words), T), vocab.stoi[END], dtype=np.int64)
    ts = np.full((len(words), T), PAD, dtype=np.int64)
    for row, word in enumerate(words):
        ids = vocab.encode(word + END)
        xs[row, : len(word)] = ids[:-1]
        ts[row, : len(word)] = ids[1:]
    return xs, ts


def train_words(model: RNNLM, words: list[str], vocab: Vocab, epochs: int, lr: float,
                print_every: int) -> float:
    """Train ``model`` to spell every word of ``words`` (the notebook's ``train_words``)."""
    xs, ts = make_batch(words, vocab)
    optimizer = Adam(model, lr=lr)
    loss = float("nan")
    for epoch in range(1, epochs + 1):
        model.reset_state()  # every word starts from h = 0, as in generation
        loss = model.forward_loss(xs, ts)
        optimizer.zero_grad()
        model.backward()
        clip_grad_norm(model, 5.0)
        optimizer.step()
        if epoch == 1 or epoch % print_every == 0:
            print(f"  epoch {epoch:4d}  loss {loss:.4f}")
    return loss


def spell(model: RNNLM, vocab: Vocab, prime: str, max_len: int = 20) -> str:
    """Greedy continuation of ``prime`` up to the first END."""
    text = generate(model, vocab, prime=prime, length=max_len, strategy="greedy")
    return text.split(END)[0]


def main() -> int:
    args = parse_args()
    started = time.perf_counter()
    epochs = 150 if args.quick else 400
    # every letter of the words and END, no special tokens (<unk>, <eos>) needed
    vocab = Vocab.build(END.join(WORDS) + END, "char", specials=())
    rng = np.random.default_rng(args.seed)
    print(f"seed003: char-level RNNLM(cell='rnn', hidden {args.hidden}), Adam lr {args.lr}, "
          f"vocabulary {len(vocab)} symbols, seed {args.seed}")

    # 1. "hello"
    print('1. learn "hello" (targets "ello\\n")')
    hello = RNNLM(len(vocab), embedding_dim=16, hidden_size=args.hidden, cell="rnn", rng=rng)
    train_words(hello, ["hello"], vocab, epochs // 2, args.lr, print_every=epochs // 4)
    got_hello = spell(hello, vocab, "h")
    print(f"  from 'h': {got_hello!r}")

    # 2. a list of words
    print(f"2. train_words({WORDS})")
    model = RNNLM(len(vocab), embedding_dim=16, hidden_size=args.hidden, cell="rnn", rng=rng)
    train_words(model, WORDS, vocab, epochs, args.lr, print_every=epochs // 4)
    print("  from the first letter (greedy):")
    correct = 0
    for word in WORDS:
        got = spell(model, vocab, word[0])
        correct += got == word
        print(f"    {word[0]!r} -> {got!r}  {'ok' if got == word else 'WRONG, expected ' + word}")

    print("  from seed texts:")
    for prime in ("recu", "py", "le"):
        print(f"    greedy  {prime!r} -> {spell(model, vocab, prime)!r}")
    for temperature in (1.0, 2.0):  # sampling: a hotter distribution strays from the words
        samples = [generate(model, vocab, prime="r", length=15, temperature=temperature,
                            seed=args.seed + k).split(END)[0] for k in range(4)]
        print(f"    sampled, temperature {temperature}: 'r' -> {samples}")

    elapsed = time.perf_counter() - started
    if got_hello == "hello" and correct == len(WORDS):
        print(f"SUCCESS: 'hello' and all {correct}/{len(WORDS)} words reproduced from their "
              f"first letters ({elapsed:.1f} s)")
        return 0
    print(f"FAILURE: hello -> {got_hello!r}; {correct}/{len(WORDS)} words reproduced")
    return 1


if __name__ == "__main__":
    sys.exit(main())
