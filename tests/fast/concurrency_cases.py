"""Programs for ``test_concurrency.py``: each runs rnnlab work in threads or a forked child
and checks it against the same work done alone. Run as
``python -m tests.fast.concurrency_cases CASE``; exit status 0 when the results agree.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading

import numpy as np

from rnnlab import nn
from rnnlab.models import RNNLM
from rnnlab.optim import SGD, clip_grad_norm


def _digest(values: list) -> str:
    h = hashlib.sha1()
    for v in values:
        h.update(np.ascontiguousarray(v).tobytes())
    return h.hexdigest()


def book_eval(seed: int) -> str:
    """The book's word model, evaluated: forward_loss 15 times."""
    m = RNNLM(10000, 100, 100, rng=seed)
    m.eval()
    ids = np.random.default_rng(seed).integers(0, 10000, (20, 36))
    return _digest([m.forward_loss(ids[:, :-1], ids[:, 1:]) for _ in range(15)])


def big_train(seed: int, steps: int = 2) -> str:
    """A few SGD steps of a 2 x LSTM 650 language model (shared packed products, the
    weight gradients beside the backward, the threaded loss sweep): losses and
    parameters."""
    m = RNNLM(10000, 650, 650, 2, rng=seed)
    params = list(m.named_parameters_and_grads())
    opt = SGD(params, lr=1.0)
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(steps):
        ids = rng.integers(0, 10000, (20, 36))
        m.zero_grad()
        losses.append(m.forward_loss(ids[:, :-1], ids[:, 1:]))
        m.backward()
        clip_grad_norm(params, 0.25)
        opt.step()
    return np.concatenate([np.array(losses)] + [p.ravel() for _, p, _ in params])


def _agree(got: list, alone: list) -> bool:
    """Same results to float32 rounding. Alone, the engine runs the weight gradients
    beside the backward with one BLAS thread each; beside other threads it cannot change
    BLAS's thread count (a process-wide setting), and OpenBLAS's products then round
    differently. Bit for bit wherever BLAS's thread count plays no part (the other
    cases)."""
    return all(np.allclose(g, a, rtol=1e-5, atol=1e-7) for g, a in zip(got, alone, strict=True))


def _in_threads(jobs: list) -> list:
    out = [None] * len(jobs)

    def run(k: int) -> None:
        out[k] = jobs[k]()

    ts = [threading.Thread(target=run, args=(k,)) for k in range(len(jobs))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def _matmuls(stop: threading.Event) -> None:
    rng = np.random.default_rng(0)
    while not stop.is_set():
        for n in (300, 450, 600):
            a = rng.standard_normal((n, n)).astype(np.float32)
            _ = a @ a


def two_evals() -> bool:
    alone = [book_eval(1), book_eval(2)]
    return _in_threads([lambda: book_eval(1), lambda: book_eval(2)]) == alone


def two_trainings() -> bool:
    alone = [big_train(1), big_train(2)]
    return _agree(_in_threads([lambda: big_train(1), lambda: big_train(2)]), alone)


def training_beside_matmul(rnnlab_in_worker: bool) -> bool:
    alone = big_train(3)
    stop = threading.Event()
    if rnnlab_in_worker:
        other = threading.Thread(target=_matmuls, args=(stop,))
        other.start()
        try:
            got = _in_threads([lambda: big_train(3)])[0]
        finally:
            stop.set()
            other.join()
    else:
        other = threading.Thread(target=_matmuls, args=(stop,))
        other.start()
        try:
            got = big_train(3)
        finally:
            stop.set()
            other.join()
    return _agree([got], [alone])


def after_fork() -> bool:
    z = np.random.default_rng(0).standard_normal((2000, 600)).astype(np.float32)
    t = np.random.default_rng(1).integers(0, 600, 2000)
    loss = nn.SoftmaxCrossEntropy().forward(z.copy(), t)  # starts the pool's threads
    pid = os.fork()
    if pid == 0:
        same = nn.SoftmaxCrossEntropy().forward(z.copy(), t) == loss
        os._exit(0 if same else 1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


CASES = {
    "two_evals": two_evals,
    "two_trainings": two_trainings,
    "beside_matmul_main": lambda: training_beside_matmul(False),
    "beside_matmul_worker": lambda: training_beside_matmul(True),
    "after_fork": after_fork,
}

if __name__ == "__main__":
    sys.exit(0 if CASES[sys.argv[1]]() else 1)
