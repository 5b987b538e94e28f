"""rnnlab against recorded PyTorch float64 results (``tests/fixtures``), without torch.

The fixtures are written by ``tools/make_torch_fixtures.py``: for every layer they hold
PyTorch's ``state_dict``, the inputs, upstream gradients, and PyTorch's outputs, final
states and every gradient. Here each rnnlab layer is built in float64, loaded with the
state dict, run forward and backward, and compared to 1e-10.
"""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rnnlab import nn

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TOL = 1e-10


def load(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return json.loads(str(arrays.pop("config"))), arrays


def fixtures(prefix: str) -> list[Any]:
    paths = sorted(FIXTURES.glob(f"{prefix}*.npz"))
    return [pytest.param(p, id=p.stem) for p in paths]


def close(actual: Any, expected: np.ndarray, what: str) -> None:
    assert actual is not None, f"{what}: rnnlab gave None"
    actual = np.asarray(actual)
    assert actual.dtype == np.float64, f"{what}: dtype {actual.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} vs {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=TOL, atol=TOL, err_msg=what)


def state_dict(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k[len("param."):]: v for k, v in arrays.items() if k.startswith("param.")}


def check_param_grads(layer: nn.Module, arrays: dict[str, np.ndarray]) -> None:
    expected = {k[len("grad."):]: v for k, v in arrays.items() if k.startswith("grad.")}
    assert set(expected) == set(layer.grads)
    for name, grad in expected.items():
        close(layer.grads[name], grad, f"grad of {name}")


# ------------------------------------------------------------------ inventory
def test_fixture_set_is_complete_and_small() -> None:
    names = {p.stem for p in FIXTURES.glob("*.npz")}
    expected = set()
    for kind, layers, bi, state, lengths in product(
        ("rnn_tanh", "rnn_relu", "lstm", "gru"), (1, 2), ("uni", "bi"),
        ("nostate", "state"), ("full", "lengths"),
    ):
        expected.add(f"seq_{kind}_l{layers}_{bi}_{state}_{lengths}")
    for kind in ("rnncell_tanh", "rnncell_relu", "lstmcell", "grucell"):
        expected |= {f"cell_{kind}_nostate", f"cell_{kind}_state"}
    assert expected <= names, f"missing fixtures: {sorted(expected - names)}"
    for prefix in ("linear_", "embedding_", "xent_", "mse_"):
        assert any(n.startswith(prefix) for n in names), prefix
    total = sum(p.stat().st_size for p in FIXTURES.glob("*.npz"))
    assert total < 1_000_000, f"fixtures take {total} bytes"


# ------------------------------------------------------------------ sequences
def build_sequence(cfg: dict[str, Any]) -> nn.Recurrent:
    kwargs: dict[str, Any] = dict(num_layers=cfg["num_layers"], bias=cfg["bias"],
                                  bidirectional=cfg["bidirectional"], dtype=np.float64, rng=0)
    if cfg["kind"] == "rnn":
        kwargs["nonlinearity"] = cfg["nonlinearity"]
    cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cfg["kind"]]
    return cls(cfg["input_size"], cfg["hidden_size"], **kwargs)


def sequence_fixture(path: Path) -> tuple[dict[str, np.ndarray], nn.Recurrent, Any, bool]:
    """``(arrays, layer with torch's parameters, initial state or None, is_lstm)``."""
    cfg, a = load(path)
    layer = build_sequence(cfg)
    layer.load_state_dict(state_dict(a))
    is_lstm = cfg["kind"] == "lstm"
    state = None
    if cfg["with_state"]:
        state = (a["h0"], a["c0"]) if is_lstm else a["h0"]
    return a, layer, state, is_lstm


@pytest.mark.parametrize("transposed", ["0", "1"], ids=["plain", "transposed"])
@pytest.mark.parametrize("path", fixtures("seq_"))
def test_sequence_layer_matches_torch(path: Path, transposed: str,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Both forms of the per-step products (``Trace.times_wt``) match torch."""
    monkeypatch.setenv("RNNLAB_LOOP_TRANSPOSED", transposed)
    a, layer, state, is_lstm = sequence_fixture(path)
    lengths = a.get("lengths")
    out = layer.forward(a["x"], state, lengths)
    close(out, a["out"], "output")
    close(layer.h_n, a["h_n"], "h_n")
    dstate = (a["dh_n"], a["dc_n"]) if is_lstm else a["dh_n"]
    if is_lstm:
        close(layer.c_n, a["c_n"], "c_n")
    dx = layer.backward(a["dout"], dstate)
    close(dx, a["dx"], "dx")
    close(layer.dh0, a["dh0"], "dh0")
    if is_lstm:
        close(layer.dc0, a["dc0"], "dc0")
    check_param_grads(layer, a)


@pytest.mark.parametrize("path", [p for p in fixtures("seq_") if "_full" in p.values[0].stem])
def test_token_input_path_matches_torch(path: Path) -> None:
    """``forward_tokens`` on a table holding each input row once (ids 0..N*T-1) is the
    same computation as ``forward(x)``: torch's outputs, and the table's gradient is dx."""
    a, layer, state, is_lstm = sequence_fixture(path)
    N, T, D = a["x"].shape
    table, grad = a["x"].reshape(N * T, D).copy(), np.zeros((N * T, D))
    out = layer.forward_tokens(np.arange(N * T).reshape(N, T), table, grad, state)
    close(out, a["out"], "output")
    close(layer.h_n, a["h_n"], "h_n")
    dstate = (a["dh_n"], a["dc_n"]) if is_lstm else a["dh_n"]
    assert layer.backward(a["dout"], dstate) is None
    close(grad.reshape(N, T, D), a["dx"], "dx (the table's gradient)")
    close(layer.dh0, a["dh0"], "dh0")
    check_param_grads(layer, a)


# ---------------------------------------------------------------------- cells
@pytest.mark.parametrize("path", fixtures("cell_"))
def test_cell_matches_torch(path: Path) -> None:
    cfg, a = load(path)
    kwargs: dict[str, Any] = dict(bias=cfg["bias"], dtype=np.float64, rng=0)
    if cfg["kind"] == "rnn":
        kwargs["nonlinearity"] = cfg["nonlinearity"]
    cls = {"rnn": nn.RNNCell, "lstm": nn.LSTMCell, "gru": nn.GRUCell}[cfg["kind"]]
    cell = cls(cfg["input_size"], cfg["hidden_size"], **kwargs)
    cell.load_state_dict(state_dict(a))
    if cfg["kind"] == "lstm":
        state = (a["h"], a["c"]) if cfg["with_state"] else None
        h_new, c_new = cell.forward(a["x"], state)
        close(h_new, a["h_new"], "h'")
        close(c_new, a["c_new"], "c'")
        dx, dh_prev, dc_prev = cell.backward(a["dh"], a["dc"])
    else:
        h_new = cell.forward(a["x"], a["h"] if cfg["with_state"] else None)
        close(h_new, a["h_new"], "h'")
        dx, dh_prev = cell.backward(a["dh"])
        dc_prev = None
    close(dx, a["dx"], "dx")
    if cfg["with_state"]:
        close(dh_prev, a["dh_prev"], "dh")
        if dc_prev is not None:
            close(dc_prev, a["dc_prev"], "dc")
    check_param_grads(cell, a)


# --------------------------------------------------------- small layers, losses
@pytest.mark.parametrize("path", fixtures("linear_"))
def test_linear_matches_torch(path: Path) -> None:
    cfg, a = load(path)
    layer = nn.Linear(cfg["in_features"], cfg["out_features"], bias=cfg["bias"],
                      dtype=np.float64, rng=0)
    layer.load_state_dict(state_dict(a))
    close(layer.forward(a["x"]), a["y"], "y")
    close(layer.backward(a["dy"]), a["dx"], "dx")
    check_param_grads(layer, a)


@pytest.mark.parametrize("path", fixtures("embedding_"))
def test_embedding_matches_torch(path: Path) -> None:
    cfg, a = load(path)
    layer = nn.Embedding(cfg["num_embeddings"], cfg["embedding_dim"],
                         padding_idx=cfg["padding_idx"], dtype=np.float64, rng=0)
    layer.load_state_dict(state_dict(a))
    close(layer.forward(a["ids"]), a["out"], "out")
    assert layer.backward(a["dout"]) is None
    check_param_grads(layer, a)


@pytest.mark.parametrize("path", fixtures("xent_"))
def test_cross_entropy_matches_torch(path: Path) -> None:
    cfg, a = load(path)
    loss_fn = nn.SoftmaxCrossEntropy(ignore_index=cfg["ignore_index"],
                                     reduction=cfg["reduction"])
    loss = loss_fn.forward(a["logits"], a["targets"])
    assert isinstance(loss, float)
    close(np.float64(loss), a["loss"], "loss")
    close(loss_fn.backward(float(a["dloss"])), a["dlogits"], "dlogits")


@pytest.mark.parametrize("path", fixtures("mse_"))
def test_mse_matches_torch(path: Path) -> None:
    cfg, a = load(path)
    loss_fn = nn.MSELoss(reduction=cfg["reduction"])
    loss = loss_fn.forward(a["pred"], a["target"])
    close(np.float64(loss), a["loss"], "loss")
    close(loss_fn.backward(float(a["dloss"])), a["dpred"], "dpred")
