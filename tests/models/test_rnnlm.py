"""RNNLM: shapes, tied weights, stateful windows, gradients, learning."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.models import RNNLM, RNNLMConfig


def tiny(cell: str = "lstm", **kw):
    args = {"vocab_size": 11, "embedding_dim": 6, "hidden_size": 6, "num_layers": 2,
            "cell": cell, "rng": 0, **kw}
    return RNNLM(**args)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_forward_shapes_and_loss(cell):
    model = tiny(cell)
    ids = np.random.default_rng(0).integers(0, 11, size=(3, 5))
    logits = model.forward(ids)
    assert logits.shape == (3, 5, 11) and logits.dtype == np.float32
    model.reset_state()
    loss = model.forward_loss(ids, ids)
    assert np.isfinite(loss) and abs(loss - np.log(11)) < 1.0


def test_tied_weights_share_array_and_sum_gradients():
    model = tiny(tie_weights=True)
    assert model.decoder.params["weight"] is model.embedding.params["weight"]
    assert model.decoder.grads["weight"] is model.embedding.grads["weight"]
    names = [n for n, _ in model.named_parameters()]
    assert "decoder.weight" not in names and "embedding.weight" in names
    assert set(model.state_dict()) >= {"decoder.weight", "embedding.weight"}
    with pytest.raises(ValueError, match="tie_weights needs embedding_dim == hidden_size"):
        RNNLM(11, 4, 6, tie_weights=True)


def _loss(model, ids, targets):
    model.reset_state()
    return model.forward_loss(ids, targets)


@pytest.mark.parametrize("cell,tie,vocab", [
    ("lstm", True, 11), ("gru", False, 11), ("rnn", False, 11),
    ("lstm", False, 4),  # 4 rows < 8 tokens: the token-table path
])
def test_whole_model_gradient_check_float64(cell, tie, vocab):
    model = tiny(cell, tie_weights=tie, vocab_size=vocab, dtype=np.float64)
    rng = np.random.default_rng(1)
    ids, targets = rng.integers(0, vocab, (2, 4)), rng.integers(0, vocab, (2, 4))
    model.zero_grad()
    _loss(model, ids, targets)
    assert model._tokens == (vocab < ids.size)
    model.backward()
    for name, param, grad in model.named_parameters_and_grads():
        flat, g = param.reshape(-1), grad.reshape(-1)
        picks = rng.choice(flat.size, size=min(6, flat.size), replace=False)
        for k in picks:
            old = flat[k]
            flat[k] = old + 1e-6
            up = _loss(model, ids, targets)
            flat[k] = old - 1e-6
            down = _loss(model, ids, targets)
            flat[k] = old
            numeric = (up - down) / 2e-6
            assert abs(numeric - g[k]) <= 1e-6 * max(1.0, abs(numeric)), (name, k)


def test_state_carries_across_windows():
    model = tiny()
    ids = np.random.default_rng(2).integers(0, 11, (2, 8))
    model.eval()
    whole = model.forward(ids)
    model.reset_state()
    first, second = model.forward(ids[:, :5]), model.forward(ids[:, 5:])
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, atol=1e-6)
    state = model.get_state()
    model.reset_state()
    assert model.get_state() is None
    model.set_state(state)
    np.testing.assert_array_equal(model.get_state()[0], state[0])


def test_config_round_trip_and_unknown_keys():
    model = tiny("gru", dropout=0.1)
    cfg = RNNLMConfig.from_dict(model.config.to_dict())
    rebuilt = RNNLM.from_config(cfg, rng=0)
    for (n1, p1), (n2, p2) in zip(model.named_parameters(), rebuilt.named_parameters(),
                                  strict=True):
        assert n1 == n2 and p1.shape == p2.shape
    with pytest.raises(ValueError, match="unknown keys"):
        RNNLMConfig.from_dict({**model.config.to_dict(), "hiden_size": 3})


def test_init_range_bounds_every_parameter():
    model = RNNLM(50, 8, 8, 2, init_range=0.05, rng=3)
    for _, param in model.named_parameters():
        assert np.abs(param).max() <= 0.05


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_learns_a_periodic_sequence(cell):
    """Many SGD steps on a stream with period 7: the loss falls far below log(V)."""
    V, period = 7, np.array([0, 3, 1, 4, 1, 5, 2])
    stream = np.tile(period, 60)
    model = RNNLM(V, 16, 24, 1, cell, rng=4)
    lr, losses = 0.5, []
    for _epoch in range(30):
        model.reset_state()
        for start in range(0, 400 - 10, 10):
            x = stream[start:start + 10].reshape(1, 10)
            y = stream[start + 1:start + 11].reshape(1, 10)
            model.zero_grad()
            losses.append(model.forward_loss(x, y))
            model.backward()
            for _, p, g in model.named_parameters_and_grads():
                p -= lr * np.clip(g, -1, 1)
    assert losses[-1] < 0.2 * losses[0]


@pytest.mark.parametrize("kwargs,pattern", [
    ({"tie_weights": 1}, "tie_weights expected a bool"),
    ({"nonlinearity": "sigmoid"}, "nonlinearity expected 'tanh' or 'relu'"),
    ({"init_range": float("inf")}, "init_range expected a positive finite float"),
    ({"init_range": 0.0}, "init_range expected a positive finite float"),
    ({"cell": "transformer"}, "cell expected one of"),
])
def test_bad_constructor_arguments(kwargs, pattern):
    with pytest.raises((TypeError, ValueError), match=pattern):
        RNNLM(10, 4, 4, **kwargs)


def test_stepper_rejects_out_of_range_ids():
    stepper = tiny().stepper(2)
    with pytest.raises(ValueError, match=r"LMStepper.step: ids expected ids in \[0, 11\)"):
        stepper.step(np.array([3, 11]))
    with pytest.raises(ValueError, match="expected ids in"):
        stepper.step(np.array([-1, 0]))


def _train_steps(model, steps=4, shape=(3, 4), lr=0.1):
    rng = np.random.default_rng(5)
    V, losses = model.config.vocab_size, []
    for _ in range(steps):
        ids, targets = rng.integers(0, V, shape), rng.integers(0, V, shape)
        model.zero_grad()
        losses.append(model.forward_loss(ids, targets))
        model.backward()
        for _, p, g in model.named_parameters_and_grads():
            p -= lr * g
    return losses


@pytest.mark.parametrize("cell,tie", [("lstm", False), ("gru", True), ("rnn", False)])
def test_small_vocabulary_takes_the_token_table_path_with_the_same_result(
        cell, tie, monkeypatch):
    """V = 5 < N*T = 12 tokens: embedding and first projection run as one table."""
    from rnnlab.nn.scan import TokenInput

    fused = tiny(cell, vocab_size=5, tie_weights=tie, dtype=np.float64)
    fused_losses = _train_steps(fused)
    assert fused._tokens
    monkeypatch.setattr(TokenInput, "pays", staticmethod(lambda vocab, tokens: False))
    plain = tiny(cell, vocab_size=5, tie_weights=tie, dtype=np.float64)
    plain_losses = _train_steps(plain)
    assert not plain._tokens
    np.testing.assert_allclose(fused_losses, plain_losses, rtol=1e-12)
    for (name, p1, g1), (_, p2, g2) in zip(fused.named_parameters_and_grads(),
                                           plain.named_parameters_and_grads(), strict=True):
        np.testing.assert_allclose(g1, g2, rtol=1e-10, atol=1e-13, err_msg=name)
        np.testing.assert_allclose(p1, p2, rtol=1e-10, atol=1e-13, err_msg=name)


def test_token_table_path_only_without_active_embedding_dropout():
    model = tiny(vocab_size=5, dropout=0.3)
    ids = np.random.default_rng(6).integers(0, 5, (3, 4))
    model.forward_loss(ids, ids)
    assert not model._tokens  # dropout on the embeddings: the rows are needed
    model.backward()
    model.eval()
    model.forward_loss(ids, ids)
    assert model._tokens  # inactive in eval
    larger = tiny(vocab_size=13)  # 13 rows > 12 tokens: the plain path
    larger.forward_loss(ids, ids)
    assert not larger._tokens


def test_book_initialisation():
    model = RNNLM(2000, 50, 40, 2, init="book", rng=8)
    p = dict((n, a) for n, a in model.named_parameters())
    assert abs(p["embedding.weight"].std() - 0.01) < 0.001
    assert abs(p["rnn.weight_ih_l0"].std() - 1 / np.sqrt(50)) < 0.01
    assert abs(p["rnn.weight_ih_l1"].std() - 1 / np.sqrt(40)) < 0.01
    assert abs(p["decoder.weight"].std() - 1 / np.sqrt(40)) < 0.01
    for name in ("rnn.bias_ih_l0", "rnn.bias_hh_l1", "decoder.bias"):
        assert not p[name].any()
    rebuilt = RNNLM.from_config(RNNLMConfig.from_dict(model.config.to_dict()), rng=8)
    for (_, a), (_, b) in zip(model.named_parameters(), rebuilt.named_parameters(),
                              strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="init expected one of"):
        RNNLM(10, 4, 4, init="xavier")
    with pytest.raises(ValueError, match="both set"):
        RNNLM(10, 4, 4, init="book", init_range=0.1)


def test_init_output_bias_is_log_unigram():
    model = tiny()
    ids = np.array([0, 0, 0, 1, 2, 2, 10] * 3)
    model.init_output_bias(ids)
    counts = np.bincount(ids, minlength=11) + 1.0
    bias = model.decoder.params["bias"]
    assert bias.dtype == np.float32
    np.testing.assert_allclose(bias, np.log(counts / counts.sum()), rtol=1e-6)
    # the untrained model's predictions follow the counts: frequent tokens first
    model.reset_state()
    loss_unigram = model.forward_loss(ids.reshape(3, 7), ids.reshape(3, 7))
    model.decoder.params["bias"].fill(0)
    model.reset_state()
    assert loss_unigram < model.forward_loss(ids.reshape(3, 7), ids.reshape(3, 7))
    model.init_output_bias(np.arange(11).reshape(1, 11), smoothing=0.5)  # any shape
    np.testing.assert_allclose(model.decoder.params["bias"], np.log(np.full(11, 1 / 11)),
                               rtol=1e-6)


@pytest.mark.parametrize(("ids", "kw", "error", "match"), [
    (np.array([0, 11]), {}, ValueError, r"ids expected ids in \[0, 11\), got 11"),
    (np.array([-1, 2]), {}, ValueError, r"got -1"),
    (np.array([], dtype=np.int64), {}, ValueError, "at least one token, got 0"),
    (np.array([0.5, 1.0]), {}, TypeError, "integer dtype, got float64"),
    (np.array([0, 1]), {"smoothing": 0}, ValueError, "smoothing expected a positive"),
    (np.array([0, 1]), {"smoothing": float("nan")}, ValueError, "smoothing expected"),
])
def test_init_output_bias_rejects_bad_input(ids, kw, error, match):
    model = tiny()
    before = model.decoder.params["bias"].copy()
    with pytest.raises(error, match=match):
        model.init_output_bias(ids, **kw)
    np.testing.assert_array_equal(model.decoder.params["bias"], before)


def test_locked_dropout_option_and_old_configs():
    """dropout_kind="locked": one mask over time on the embeddings and outputs; a config
    without the field (an older checkpoint) is per-step dropout."""
    import numpy as np

    from rnnlab.models import RNNLM, RNNLMConfig
    from rnnlab.nn.dropout import LockedDropout

    model = RNNLM(11, 6, 6, dropout=0.5, dropout_kind="locked", rng=0)
    assert isinstance(model.drop_in, LockedDropout) and model.config.dropout_kind == "locked"
    model.train()
    emb = np.ones((2, 5, 6), dtype=np.float32)
    out = model.drop_in(emb)
    assert (out == out[:, :1]).all()  # the same mask at every step
    old = RNNLMConfig.from_dict({"vocab_size": 11})
    assert old.dropout_kind == "step"
    assert not isinstance(RNNLM.from_config(old).drop_in, LockedDropout)
    with pytest.raises(ValueError, match="dropout_kind expected one of"):
        RNNLM(11, dropout_kind="time")
