"""A few steps of next-token training of an ``RNNLM``, shared by the tests that compare
two code paths of the same model step by step."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlab.optim import clip_grad_norm


def train_steps(model: Any, opt: Any, ids: np.ndarray, steps: int, clip: float, *,
                reset: bool = False) -> tuple[list[float], dict[str, np.ndarray]]:
    """``steps`` steps on the window ``ids`` ``(N, T + 1)`` (inputs ``ids[:, :-1]``,
    targets ``ids[:, 1:]``), clipping the gradient norm at ``clip``; with ``reset`` each
    step starts from a zero state. Returns the losses and a copy of the parameters."""
    losses = []
    for _ in range(steps):
        if reset:
            model.reset_state()
        model.zero_grad()
        losses.append(model.forward_loss(ids[:, :-1], ids[:, 1:]))
        model.backward()
        clip_grad_norm(model, clip)
        opt.step()
    return losses, {name: p.copy() for name, p in model.named_parameters()}
