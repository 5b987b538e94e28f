"""Gradient flow through time for minGRU / minLSTM models (their own backward)."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.models import RNNLM
from rnnlab.viz.gradients import (
    gradient_flow_of_models,
    gradient_flow_study,
    gradient_norms,
    recurrent_radius,
)
from rnnlab.viz.probe import _decode, _embed, collect_states, softmax


@pytest.mark.parametrize("block", [False, True])
@pytest.mark.parametrize("cell", ["mingru", "minlstm"])
def test_gradient_norms_of_min_models(cell: str, block: bool) -> None:
    model = RNNLM(11, 6, 6, 2, cell=cell, block=block, rng=0, dtype="float64")
    model.eval()
    rng = np.random.default_rng(0)
    windows, targets = rng.integers(0, 11, (4, 9)), rng.integers(0, 11, 4)
    norms = gradient_norms(model, windows, targets)
    assert norms.shape == (4, 9) and np.isfinite(norms).all() and (norms > 0).all()
    assert gradient_norms(model, windows, targets, layer=0).shape == (4, 9)
    if not block:  # lag 0 of the top layer: the decoder's gradient itself
        states = collect_states(model, windows[0])
        p = softmax(_decode(model, states.h[-1][-1:]))
        p[0, targets[0]] -= 1
        dh = p @ model.decoder.params["weight"]
        np.testing.assert_allclose(norms[0, 0], np.linalg.norm(dh), rtol=1e-12)
    with pytest.raises(ValueError, match="layer"):
        gradient_norms(model, windows, targets, layer=2)
    with pytest.raises(ValueError, match="weight_hh"):
        recurrent_radius(model)
    flow = gradient_flow_of_models({cell: model}, rng.integers(0, 11, 200), max_lag=5,
                                   windows=3)
    assert flow.radius[cell]["trained"] is None


def test_collect_states_equals_the_model() -> None:
    model = RNNLM(11, 6, 6, 2, cell="minlstm", rng=0, dtype="float64")
    model.eval()
    ids = np.arange(11)
    states = collect_states(model, ids)
    np.testing.assert_allclose(states.logits, model.forward(ids[None])[0], atol=1e-12)
    assert states.c is None and len(states.h) == 2
    assert _embed(model, ids[None]).shape == (1, 11, 6)


def test_study_includes_the_min_cells() -> None:
    ids = np.tile(np.arange(9), 60)
    flow = gradient_flow_study(ids, 9, variants=["gru", "mingru", "minlstm"], steps=2,
                               hidden_size=6, embedding_dim=4, max_lag=6, windows=3,
                               batch_size=2, bptt=8)
    assert set(flow.variants) == {"gru", "mingru", "minlstm"}
    assert "init-scaled" in flow.norms["gru"] and "init-scaled" not in flow.norms["mingru"]
    assert flow.norms["minlstm"]["trained"].shape == (3, 7)
