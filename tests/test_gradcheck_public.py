"""The public gradient check, ``rnnlab.gradcheck.check_module``, and ``rnnlab gradcheck``."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from rnnlab import nn
from rnnlab.cli import main
from rnnlab.gradcheck import GradCheckReport, check_module


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


class Tanh:
    """A layer written by a user, not derived from Module: ``y = tanh(x W^T + b)``."""

    def __init__(self, d_in: int = 3, d_out: int = 2, wrong: bool = False) -> None:
        rng = np.random.default_rng(1)
        self.params = {"weight": rng.standard_normal((d_out, d_in)),
                       "bias": rng.standard_normal(d_out)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.input_size, self.wrong = d_in, wrong

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x
        self.y = np.tanh(x @ self.params["weight"].T + self.params["bias"])
        return self.y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        da = dy * (1 - self.y**2)
        rows = da.reshape(-1, da.shape[-1])
        self.grads["weight"] += rows.T @ self.x.reshape(-1, self.x.shape[-1])
        self.grads["bias"] += rows.sum(axis=0) * (1.01 if self.wrong else 1.0)
        return da @ self.params["weight"]


def test_a_stacked_bidirectional_lstm_passes_with_every_array_in_the_table() -> None:
    rng = _rng()
    lstm = nn.LSTM(2, 3, num_layers=2, bidirectional=True, dropout=0.5, dtype=np.float64, rng=0)
    state = (rng.standard_normal((4, 2, 3)), rng.standard_normal((4, 2, 3)))
    report = check_module(lstm, rng.standard_normal((2, 3, 2)), state,
                          kwargs={"lengths": np.array([3, 1])})
    assert isinstance(report, GradCheckReport)
    assert report.passed and bool(report) and report.worst < 1e-6
    names = [row.name for row in report]
    assert names[:2] == ["weight_ih_l0", "weight_hh_l0"] and names[-3:] == ["input", "h0", "c0"]
    assert len(report) == 16 + 3
    assert report["c0"].kind == "state" and report["input"].shape == (2, 3, 2)
    assert {d["name"] for d in report.to_dicts()} == set(names)
    text = str(report)
    assert "LSTM(2, 3, num_layers=2, dropout=0.5, bidirectional=True)" in text
    assert "tolerance 1e-06" in text and "passed: all 19 arrays" in text


@pytest.mark.parametrize("layer", [
    nn.GRUCell(3, 2, reset_after=False, dtype=np.float64, rng=0),
    nn.MinGRU(3, 2, num_layers=2, dtype=np.float64, rng=0),
    nn.RNN(3, 2, nonlinearity="relu", stateful=True, dtype=np.float64, rng=0),
], ids=["gru-cell", "mingru", "stateful-relu-rnn"])
def test_cells_min_layers_and_stateful_layers_pass(layer: nn.Module) -> None:
    rng = _rng()
    is_cell = isinstance(layer, nn.GRUCell)
    x = rng.standard_normal((2, 3) if is_cell else (2, 4, 3))
    h0 = rng.standard_normal((2, 2) if is_cell else (layer.num_layers, 2, 2))
    report = check_module(layer, x, h0)
    assert report.passed, str(report)
    assert report["h0"].kind == "state"


def test_a_users_layer_passes_and_a_wrong_gradient_is_named() -> None:
    x = _rng().standard_normal((4, 3))
    assert check_module(Tanh(), x).passed
    report = check_module(Tanh(wrong=True), x)
    assert not report.passed and not report
    assert [row.name for row in report.failures] == ["bias"]
    assert "FAIL" in str(report) and "FAILED: 1 of 3 arrays" in str(report)
    with pytest.raises(AssertionError, match="bias: relative error"):
        report.raise_if_failed()


def test_integer_inputs_are_passed_and_not_differentiated() -> None:
    emb = nn.Embedding(5, 2, dtype=np.float64, rng=0)
    report = check_module(emb, np.array([[0, 4, 4], [1, 0, 2]]))
    assert [row.name for row in report] == ["weight"] and report.passed


def test_a_float32_module_is_checked_as_a_float64_copy() -> None:
    layer = nn.GRU(2, 3, rng=0)
    before = layer.params["weight_hh_l0"].copy()
    report = check_module(layer, _rng().standard_normal((1, 2, 2)).astype(np.float32))
    assert report.passed and "float64 host copy" in str(report)
    assert layer.params["weight_hh_l0"].dtype == np.float32
    assert np.array_equal(layer.params["weight_hh_l0"], before)


def test_missing_gradients_and_bad_arguments() -> None:
    class NoStateGrad(Tanh):
        def forward(self, x: np.ndarray, state: Any) -> np.ndarray:
            return super().forward(x) + state

    x = _rng().standard_normal((2, 3))
    report = check_module(NoStateGrad(), x, np.zeros((2, 2)))
    assert report["h0"].note == "no analytic gradient" and not report.passed

    class TooMany(Tanh):
        def backward(self, dy: np.ndarray) -> tuple[Any, ...]:
            return super().backward(dy), dy, dy

    with pytest.raises(TypeError, match="backward returned 3 gradients, expected at most 1"):
        check_module(TooMany(), x)
    with pytest.raises(ValueError, match="tol expected a positive finite float, got -1"):
        check_module(Tanh(), x, tol=-1)
    with pytest.raises(ValueError, match="eps expected a positive finite float, got 0"):
        check_module(Tanh(), x, eps=0)
    with pytest.raises(TypeError, match=r"module expected an object with forward\(\)"):
        check_module(object(), x)
    with pytest.raises(TypeError, match=r"inputs\[0\] expected a float or integer array"):
        check_module(Tanh(), "abc")
    with pytest.raises(TypeError, match="kwargs expected a mapping"):
        check_module(Tanh(), x, kwargs=[1])


# ------------------------------------------------------------------ the command
def test_command_checks_a_built_in_layer(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gradcheck", "--cell", "lstm", "--layers", "2", "--bidirectional",
                 "--hidden-size", "2", "--input-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "weight_hh_l1_reverse" in out and "c0" in out and "passed: all 19 arrays" in out
    assert main(["gradcheck", "--cell", "gru-reset-before", "--lengths", "--steps", "2"]) == 0
    assert "reset_after=False" in capsys.readouterr().out


@pytest.fixture
def user_package(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = "rnnlab_gradcheck_user_layers"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent("""
        import numpy as np
        from rnnlab.nn import Module

        class Scale(Module):
            def __init__(self, size=3, wrong=False):
                super().__init__()
                self.input_size, self.wrong = size, wrong
                self.add_param("weight", np.linspace(0.5, 1.5, size).astype(self.dtype))

            def forward(self, x):
                self.x = x
                return np.sin(x) * self.params["weight"]

            def backward(self, dy):
                self.grads["weight"] += (dy * np.sin(self.x)).reshape(-1, self.input_size
                                                                     ).sum(axis=0)
                return dy * self.params["weight"] * (np.sin if self.wrong else np.cos)(self.x)
    """))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_command_checks_a_users_class(user_package: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gradcheck", "--module", f"{user_package}:Scale"]) == 0
    out = capsys.readouterr().out
    assert "Scale()" in out and "float64 host copy" in out and "input  (2, 3, 3)" in out
    assert main(["gradcheck", "--module", f"{user_package}:Scale", "--args",
                 '{"size": 2, "wrong": true}', "--input-shape", "4,2"]) == 1
    out = capsys.readouterr().out
    assert "input  (4, 2)" in out and "FAILED: 1 of 2 arrays" in out


def test_command_refuses_bad_options(user_package: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    for argv, message in [
        (["--module", "no_colon"], "--module expected MODULE:CLASS"),
        (["--module", "rnnlab_no_such_module:X"], "cannot import 'rnnlab_no_such_module'"),
        (["--module", f"{user_package}:Nope"], "has no attribute 'Nope'"),
        (["--module", f"{user_package}:Scale", "--args", "{"], "--args expected JSON"),
        (["--module", f"{user_package}:Scale", "--bidirectional"], "--bidirectional is for"),
        (["--cell", "lstm", "--mode", "sequential"], "--mode is for mingru and minlstm"),
        (["--cell", "gru", "--input-shape", "2,3"], "are for --module"),
        (["--cell", "gru", "--dropout", "1"], "--dropout expected a probability"),
    ]:
        with pytest.raises(SystemExit) as exc:
            main(["gradcheck", *argv])
        assert exc.value.code == 2
        assert message in capsys.readouterr().err


def test_command_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["gradcheck", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "rnnlab gradcheck --cell lstm --layers 2 --bidirectional" in out
    assert "--module mylayers:Peephole" in out
