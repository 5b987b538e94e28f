"""Hidden states and gradient norms computed by rnnlab.viz agree with the library's own
sequence layers (forward outputs, final states, and ``dh0`` from their backward)."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.models import RNNLM
from rnnlab.viz.gradients import (
    gradient_flow_study,
    gradient_norms,
    median_curve,
    recurrent_radius,
    sample_windows,
    scale_recurrent,
)
from rnnlab.viz.probe import collect_states

VARIANTS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")]


def make_model(cell, nonlinearity="tanh", layers=1, hidden=10, dtype="float64", seed=0):
    kw = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
    return RNNLM(13, 6, hidden, layers, cell=cell, rng=seed, dtype=dtype, **kw)


@pytest.mark.parametrize(("cell", "nonlinearity"), VARIANTS)
@pytest.mark.parametrize("layers", [1, 2])
def test_collect_states_matches_the_sequence_layer(cell, nonlinearity, layers):
    model = make_model(cell, nonlinearity, layers)
    model.eval()
    ids = np.random.default_rng(1).integers(0, 13, size=17)
    model.reset_state()
    expected_logits = model.forward(ids[None])[0]
    expected_h_n = model.rnn.h_n.copy()
    expected_c_n = None if model.rnn.c_n is None else model.rnn.c_n.copy()
    carried = model.get_state()
    states = collect_states(model, ids)
    np.testing.assert_allclose(states.logits, expected_logits, rtol=1e-9, atol=1e-10)
    for k in range(layers):
        np.testing.assert_allclose(states.h[k][-1], expected_h_n[k, 0], rtol=1e-9, atol=1e-12)
        if cell == "lstm":
            np.testing.assert_allclose(states.c[k][-1], expected_c_n[k, 0], rtol=1e-9,
                                       atol=1e-12)
    assert (states.c is None) == (cell != "lstm")
    assert states.label == (f"rnn-{nonlinearity}" if cell == "rnn" else cell)
    # the model itself was not run: its carried state is unchanged
    after = model.get_state()
    np.testing.assert_array_equal(after[0], carried[0])
    probs = states.probs()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert states.loss() > 0


def test_collect_states_encodes_text_and_checks_input(trained):
    states = collect_states(trained.model, "def f(x):\n", vocab=trained.vocab)
    assert states.tokens == list("def f(x):\n")
    assert states.states(-1, "h").shape == (10, trained.model.config.hidden_size)
    assert states.states(0, "c").shape == (10, trained.model.config.hidden_size)
    with pytest.raises(ValueError, match="kind"):
        states.states(-1, "x")
    with pytest.raises(ValueError, match="layer"):
        states.states(3)
    with pytest.raises(TypeError, match="vocab"):
        collect_states(trained.model, "text without a vocabulary")
    with pytest.raises(ValueError, match=r"ids expected in"):
        collect_states(trained.model, np.array([0, 10_000]))
    gru = collect_states(make_model("gru"), np.arange(5))
    with pytest.raises(ValueError, match="LSTM"):
        gru.states(-1, "c")


def dh0_by_sequence_layer(model, window, target, lag):
    """||dL/dh|| at ``lag`` steps before the last via the sequence layer's backward: run
    the layer over the rest of the window from that state and read ``dh0``."""
    states = collect_states(model, window)
    K = len(window)
    start = K - 1 - lag  # index of the state whose gradient we want
    h0 = states.h[0][start][None, None].copy()
    state = (h0, states.c[0][start][None, None].copy()) if states.c is not None else h0
    rest = window[start + 1:]
    model.zero_grad()
    if len(rest) == 0:
        h_last = h0[0]
    else:
        xs = model.embedding.params["weight"][rest][None]
        hs = model.rnn.forward(xs, state=state)
        h_last = hs[:, -1]
    logits = h_last @ model.decoder.params["weight"].T + model.decoder.params["bias"]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    p[0, target] -= 1.0
    dh_last = p @ model.decoder.params["weight"]
    if len(rest) == 0:
        return float(np.linalg.norm(dh_last))
    dhs = np.zeros_like(hs)
    dhs[:, -1] = dh_last
    model.rnn.backward(dhs)
    return float(np.linalg.norm(model.rnn.dh0[0, 0]))


@pytest.mark.parametrize(("cell", "nonlinearity"), VARIANTS)
def test_gradient_norms_match_the_sequence_backward(cell, nonlinearity):
    model = make_model(cell, nonlinearity, hidden=8)
    model.eval()
    model.rnn.stateful = False
    windows, targets = sample_windows(np.arange(13).repeat(3), 3, 9, rng=4)
    norms = gradient_norms(model, windows, targets)
    assert norms.shape == (3, 9) and np.isfinite(norms).all() and (norms > 0).all()
    for b in range(3):
        for lag in (0, 1, 4, 8):
            expected = dh0_by_sequence_layer(model, windows[b], targets[b], lag)
            assert norms[b, lag] == pytest.approx(expected, rel=1e-7)


def test_gradient_norms_of_a_two_layer_model_reach_every_layer():
    model = make_model("lstm", layers=2, hidden=8)
    windows, targets = sample_windows(np.arange(13).repeat(2), 4, 6, rng=0)
    top = gradient_norms(model, windows, targets, layer=-1)
    bottom = gradient_norms(model, windows, targets, layer=0)
    assert top.shape == bottom.shape == (4, 6)
    assert (bottom > 0).all() and not np.allclose(top, bottom)
    with pytest.raises(ValueError, match="layer"):
        gradient_norms(model, windows, targets, layer=2)


def test_vanishing_and_exploding_are_visible():
    """At initialisation the tanh RNN's gradient falls by orders of magnitude over 30
    steps; with W_hh scaled x3 the ReLU RNN's grows; the LSTM's stays bounded."""
    windows, targets = sample_windows(np.random.default_rng(0).integers(0, 13, 400), 8, 31,
                                      rng=0)
    tanh = make_model("rnn", "tanh", hidden=32)
    assert median_curve(gradient_norms(tanh, windows, targets))[30] < 1e-3
    relu = make_model("rnn", "relu", hidden=32)
    scale_recurrent(relu, 3.0)
    assert recurrent_radius(relu) > 1.2
    assert median_curve(gradient_norms(relu, windows, targets))[30] > 10
    lstm = make_model("lstm", hidden=32)
    scale_recurrent(lstm, 3.0)
    assert median_curve(gradient_norms(lstm, windows, targets))[30] < 1


def test_gradient_flow_study_is_reproducible(trained):
    ids = trained.corpus.train
    kw = {"steps": 3, "hidden_size": 8, "embedding_dim": 4, "max_lag": 6, "windows": 3,
          "batch_size": 4, "bptt": 8, "seed": 5}
    flow = gradient_flow_study(ids, len(trained.vocab), **kw)
    again = gradient_flow_study(ids, len(trained.vocab), **kw)
    assert flow.variants == ["rnn-tanh", "rnn-relu", "lstm", "gru", "mingru",
                             "minlstm"]
    assert flow.stages == ["init", "init-scaled", "trained"]
    assert flow.max_lag == 6
    for v in flow.variants:
        for s in flow.norms[v]:  # min cells: no scaled stage (no W_hh)
            np.testing.assert_array_equal(flow.norms[v][s], again.norms[v][s])
            assert flow.norms[v][s].shape == (3, 7)
    summary = flow.summary()
    assert summary["lstm"]["init"][0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="variants"):
        gradient_flow_study(ids, len(trained.vocab), variants=["transformer"], **kw)
