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
    total, count = loss_sums(model, ids, batch_size=batch_size, bptt=bptt)
    return total / count


def eval_batch_size(ids: Any, batch_size: int) -> int:
    """The streams :func:`evaluate_ids` reads ``ids`` in: ``batch_size``, fewer for a
    short sequence. Refuses a sequence with nothing to predict."""
    if len(ids) < 2:
        raise ValueError(f"evaluate: need at least 2 tokens, got {len(ids)}")
    return max(1, min(batch_size, len(ids) - 1))


def loss_sums(model: Any, ids: Any, *, batch_size: int = 10, bptt: int = 35,
              streams: slice = slice(None)) -> tuple[float, int]:
    """``(summed loss, tokens)`` of :func:`evaluate_ids`, over the streams ``streams``
    only (one process's share of them, when several divide the work)."""
    batch_size = eval_batch_size(ids, batch_size)
    carried, was_training = model.get_state(), model.training
    model.eval()
    model.reset_state()
    total, count = 0.0, 0
    try:
        for x, y in BPTTBatcher(ids, batch_size, bptt):
            x, y = x[streams], y[streams]
            loss = model.forward_loss(model.xp.asarray(x), model.xp.asarray(y))
            total += loss * y.size
            count += y.size
    finally:
        model.set_state(carried)
        model.train(was_training)
    return total, count
