"""Schedules without PyTorch: explicit sequences, call frequency, state dicts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rnnlab import optim


def _opt(lr=1.0):
    return optim.SGD([("w", np.zeros(2), np.zeros(2))], lr=lr)


def _per_epoch(opt, sched, epochs):
    """Learning rate used by each epoch 1..epochs, stepping at the end of each epoch."""
    used = []
    for _ in range(epochs):
        used.append(opt.lr)
        sched.step()
    return used


def test_zaremba_halving_sequence():
    opt = _opt(1.0)
    used = _per_epoch(opt, optim.ExponentialDecay(opt, gamma=0.5, start_epoch=4), 13)
    assert used == [1.0 * 0.5 ** max(0, e - 4) for e in range(1, 14)]
    assert used[:6] == [1.0, 1.0, 1.0, 1.0, 0.5, 0.25]


def test_step_lr_sequence():
    opt = _opt(0.8)
    used = _per_epoch(opt, optim.StepLR(opt, step_size=3, gamma=0.5), 8)
    assert used == [0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2, 0.2]


def test_textbook_divide_by_four_on_plateau():
    ppls = [310.0, 250.0, 262.0, 240.0, 240.0, 231.0, 235.0, 236.0, 200.0, math.nan, 199.0]
    # The textbook's loop, verbatim in spirit.
    lr, best, book = 20.0, float("inf"), []
    for ppl in ppls:
        if best > ppl:
            best = ppl
        else:
            lr /= 4.0
        book.append(lr)
    opt = _opt(20.0)
    sched = optim.ReduceOnPlateau(opt)
    ours, improved = [], []
    for ppl in ppls:
        improved.append(sched.step(ppl))
        ours.append(opt.lr)
    assert ours == book
    assert improved == [True, True, False, True, False, True, False, False, True, False, True]
    assert sched.best == 199.0 and sched.step_count == len(ppls)


def test_plateau_patience_cooldown_min_lr_and_max_mode():
    opt = _opt(1.0)
    sched = optim.ReduceOnPlateau(opt, factor=0.5, patience=1, cooldown=1, min_lr=0.3)
    lrs = []
    for acc in [5, 5, 5, 5, 5, 5, 5]:
        sched.step(acc)
        lrs.append(opt.lr)
    # bad epochs: 1, 2 -> cut, cooldown eats 1, then 1, 2 -> cut to min_lr, ...
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.5, 0.3, 0.3]
    opt = _opt(1.0)
    sched = optim.ReduceOnPlateau(opt, mode="max", threshold=0.1, threshold_mode="abs")
    assert [sched.step(a) for a in [0.5, 0.55, 0.7]] == [True, False, True]
    assert opt.lr == 0.25


def test_plateau_accepts_numpy_metrics():
    sched = optim.ReduceOnPlateau(_opt())
    assert sched.step(np.float32(3.0)) and sched.step(np.array(2.0))
    assert sched.best == 2.0


def test_cosine_with_warmup_per_batch():
    opt = _opt(1.0)
    sched = optim.CosineAnnealing(opt, total_steps=6, warmup_steps=2, eta_min=0.1)
    used = []
    for _ in range(8):
        used.append(opt.lr)
        sched.step()
    cos = [0.1 + 0.9 * (1 + math.cos(math.pi * k / 4)) / 2 for k in range(5)]
    assert used[0] == 0.5 and used[1] == 1.0
    np.testing.assert_allclose(used[2:], [*cos, 0.1], rtol=1e-15)
    assert opt.lr == pytest.approx(0.1)


def test_cosine_without_warmup_starts_at_base():
    opt = _opt(0.3)
    optim.CosineAnnealing(opt, total_steps=10)
    assert opt.lr == 0.3


MAKERS = [
    lambda o: optim.StepLR(o, 2, gamma=0.3),
    lambda o: optim.ExponentialDecay(o, 0.7, start_epoch=3),
    lambda o: optim.CosineAnnealing(o, 9, eta_min=0.01, warmup_steps=3),
    lambda o: optim.ReduceOnPlateau(o, factor=0.5, patience=1, cooldown=1),
]


@pytest.mark.parametrize("make", MAKERS, ids=["step", "exp", "cos", "plateau"])
def test_schedule_resume_through_json(make):
    metrics = [5.0, 4.0, 4.5, 4.6, 4.7, 3.0, 3.1, 3.2, 3.3, 3.4, 3.5, 3.6]

    def advance(sched, ms):
        for m in ms:
            if isinstance(sched, optim.ReduceOnPlateau):
                sched.step(m)
            else:
                sched.step()

    opt = _opt(2.0)
    sched = make(opt)
    advance(sched, metrics)
    opt1 = _opt(2.0)
    sched1 = make(opt1)
    advance(sched1, metrics[:5])
    saved_opt = json.loads(json.dumps(opt1.state_dict()))
    saved = json.loads(json.dumps(sched1.state_dict()))
    opt2 = _opt(7.0)
    sched2 = make(opt2)
    sched2.load_state_dict(saved)  # either order works
    opt2.load_state_dict(saved_opt)
    assert opt2.lr == opt1.lr
    advance(sched2, metrics[5:])
    assert opt2.lr == opt.lr
    assert sched2.state_dict() == sched.state_dict()


@pytest.mark.parametrize("make", MAKERS, ids=["step", "exp", "cos", "plateau"])
def test_schedule_load_rejects_bad_state(make):
    opt = _opt(2.0)
    sched = make(opt)
    good, lr = sched.state_dict(), opt.lr
    name = type(sched).__name__
    with pytest.raises(ValueError, match=rf"{name}.load_state_dict: type expected '{name}', "
                                         r"got 'Other'"):
        sched.load_state_dict({**good, "type": "Other"})
    with pytest.raises(ValueError, match=r"unexpected keys \['bogus'\]"):
        sched.load_state_dict({**good, "bogus": 1})
    with pytest.raises(ValueError, match=r"step_count expected an integer >= 0, got -2"):
        sched.load_state_dict({**good, "step_count": -2})
    assert sched.state_dict() == good and opt.lr == lr
