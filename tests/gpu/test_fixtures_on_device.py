"""The PyTorch fixtures (tests/fixtures) and float64 gradient checks, run on a device:
always on the strict CPU stand-in for CuPy, and on a real CUDA device when one is present
(``gpu`` marker: skipped with a reason otherwise)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rnnlab import nn
from rnnlab.backend import to_numpy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SEQUENCES = sorted(FIXTURES.glob("seq_*.npz"))
FULL = [p for p in SEQUENCES if p.stem.endswith("_full")]
TOL = 1e-10


def load(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return json.loads(str(arrays.pop("config"))), arrays


def close(actual: Any, expected: np.ndarray, what: str) -> None:
    np.testing.assert_allclose(to_numpy(actual), expected, rtol=TOL, atol=TOL, err_msg=what)


def run_sequence_fixture(path: Path, xp: Any, tokens: bool = False) -> None:
    """One fixture through ``forward``, or with ``tokens`` through ``forward_tokens`` on a
    table holding each input row once (its gradient is then torch's dx)."""
    cfg, a = load(path)
    kwargs: dict[str, Any] = dict(num_layers=cfg["num_layers"], bias=cfg["bias"],
                                  bidirectional=cfg["bidirectional"], dtype=np.float64, rng=0,
                                  device="gpu")
    if cfg["kind"] == "rnn":
        kwargs["nonlinearity"] = cfg["nonlinearity"]
    cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cfg["kind"]]
    layer = cls(cfg["input_size"], cfg["hidden_size"], **kwargs)
    layer.load_state_dict({k[6:]: v for k, v in a.items() if k.startswith("param.")})
    is_lstm = cfg["kind"] == "lstm"
    dev = {k: xp.asarray(v) for k, v in a.items() if k != "lengths"}
    state = None
    if cfg["with_state"]:
        state = (dev["h0"], dev["c0"]) if is_lstm else dev["h0"]
    if tokens:
        N, T, D = a["x"].shape
        table, dx = dev["x"].reshape(N * T, D), xp.zeros((N * T, D))
        out = layer.forward_tokens(xp.asarray(np.arange(N * T).reshape(N, T)), table, dx,
                                   state)
    else:
        out = layer.forward(dev["x"], state, a.get("lengths"))
    close(out, a["out"], "output")
    close(layer.h_n, a["h_n"], "h_n")
    dstate = (dev["dh_n"], dev["dc_n"]) if is_lstm else dev["dh_n"]
    back = layer.backward(dev["dout"], dstate)
    close(dx.reshape(a["dx"].shape) if tokens else back, a["dx"], "dx")
    close(layer.dh0, a["dh0"], "dh0")
    for key, value in a.items():
        if key.startswith("grad."):
            close(layer.grads[key[5:]], value, key)


def gradient_check(xp: Any, cls: Any, **kw: Any) -> None:
    """Central differences on device arrays (float64), every parameter and the input."""
    rng = np.random.default_rng(0)
    layer = cls(3, 4, num_layers=2, bidirectional=True, rng=1, dtype=np.float64,
                device="gpu", **kw)
    xs = xp.asarray(rng.standard_normal((2, 5, 3)))
    w = xp.asarray(rng.standard_normal((2, 5, 8)))

    def loss() -> float:
        return float((layer.forward(xs, lengths=np.array([5, 3])) * w).sum())

    layer.zero_grad()
    loss()
    dx = layer.backward(w)
    for name, param in [*layer.params.items(), ("input", xs)]:
        analytic = to_numpy(dx if name == "input" else layer.grads[name])
        numeric = np.zeros(param.shape)
        for idx in np.ndindex(*param.shape):
            old = float(param[idx])
            param[idx] = old + 1e-6
            up = loss()
            param[idx] = old - 1e-6
            down = loss()
            param[idx] = old
            numeric[idx] = (up - down) / 2e-6
        err = np.linalg.norm(analytic - numeric) / max(
            np.linalg.norm(analytic) + np.linalg.norm(numeric), 1e-300)
        assert err <= 1e-6, (name, err)


@pytest.mark.parametrize("path", SEQUENCES, ids=[p.stem for p in SEQUENCES])
def test_fixture_on_fake_device(fake_gpu, path):
    run_sequence_fixture(path, fake_gpu)


@pytest.mark.parametrize("path", FULL, ids=[p.stem for p in FULL])
def test_token_table_fixture_on_fake_device(fake_gpu, path):
    run_sequence_fixture(path, fake_gpu, tokens=True)


@pytest.mark.parametrize("cls,kw", [(nn.LSTM, {}), (nn.GRU, {})])
def test_gradient_check_on_fake_device(fake_gpu, cls, kw):
    gradient_check(fake_gpu, cls, **kw)


@pytest.mark.gpu
@pytest.mark.parametrize("path", SEQUENCES, ids=[p.stem for p in SEQUENCES])
def test_fixture_on_gpu(real_gpu, path):
    run_sequence_fixture(path, real_gpu)


@pytest.mark.gpu
@pytest.mark.parametrize("path", FULL, ids=[p.stem for p in FULL])
def test_token_table_fixture_on_gpu(real_gpu, path):
    run_sequence_fixture(path, real_gpu, tokens=True)


@pytest.mark.gpu
@pytest.mark.parametrize("cls,kw", [(nn.RNN, {}), (nn.LSTM, {}), (nn.GRU, {}),
                                    (nn.GRU, {"reset_after": False})])
def test_gradient_check_on_gpu(real_gpu, cls, kw):
    gradient_check(real_gpu, cls, **kw)
