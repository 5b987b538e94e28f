"""The size check before a model is built counts what building really allocates: every
weight and its gradient (issue: it compared the weights alone, while building peaked at
about three times them before the initialisation drew in chunks)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from rnnlab.models import RNNLMConfig
from rnnlab.train import state


def _memory(monkeypatch: pytest.MonkeyPatch, total: int) -> None:
    real = os.sysconf

    def fake(name: str) -> int:
        if name == "SC_PAGE_SIZE":
            return 1
        if name == "SC_PHYS_PAGES":
            return total
        return real(name)

    monkeypatch.setattr(state.os, "sysconf", fake)


def test_twice_the_weights_must_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    config = RNNLMConfig(vocab_size=1000, embedding_dim=64, hidden_size=64)
    weights = state.weight_count(config) * np.dtype(config.dtype).itemsize
    _memory(monkeypatch, int(1.5 * weights))  # the weights fit, with their gradients not
    with pytest.raises(ValueError, match="with their gradients need"):
        state.check_fits_in_memory(config)
    _memory(monkeypatch, 2 * weights + 1)
    state.check_fits_in_memory(config)
