"""Perplexity of a language model over a token sequence."""

from __future__ import annotations

from typing import Any

from rnnlab.data import BPTTBatcher


def evaluate_ids(model: Any, ids: Any, *, batch_size: int = 10, bptt: int = 35) -> float:
    """Mean next-token loss (nats per token) of ``model`` over ``ids``.

    The sequence is read as ``batch_size`` contiguous streams in windows of ``bptt`` with
    the state carried across windows; each target is predicted once (up to
    ``batch_size - 1`` tokens at the very end, which fit no stream, are not scored). The
    model's mode and carried state are restored afterwards.
    """
    if len(ids) < 2:
        raise ValueError(f"evaluate: need at least 2 tokens, got {len(ids)}")
    batch_size = max(1, min(batch_size, len(ids) - 1))
    carried, was_training = model.get_state(), model.training
    model.eval()
    model.reset_state()
    total, count = 0.0, 0
    try:
        for x, y in BPTTBatcher(ids, batch_size, bptt):
            loss = model.forward_loss(model.xp.asarray(x), model.xp.asarray(y))
            total += loss * y.size
            count += y.size
    finally:
        model.set_state(carried)
        model.train(was_training)
    return total / count
