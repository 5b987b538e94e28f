"""``rnnlab.export``: language models as ONNX graphs (run by onnxruntime) and as PyTorch
state_dicts (loaded by torch.nn), matched against rnnlab's own forward."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rnnlab.cli import main
from rnnlab.data import Vocab
from rnnlab.export import GATE_ORDER, build_onnx, export_checkpoint, export_onnx, torch_recipe
from rnnlab.models import RNNLM
from rnnlab.nn import GRU, LSTM, MinGRU
from rnnlab.train.checkpoint import write_checkpoint
from rnnlab.train.state import model_arrays

V, E, H, N, T = 13, 5, 6, 3, 4
ATOL = RTOL = 1e-5
#: name: (RNNLM cell, nonlinearity, GRU reset_after)
KINDS = {
    "rnn-tanh": ("rnn", "tanh", True),
    "rnn-relu": ("rnn", "relu", True),
    "lstm": ("lstm", "tanh", True),
    "gru": ("gru", "tanh", True),
    "gru-reset-before": ("gru", "tanh", False),
}


def make_model(kind: str, layers: int, *, tie: bool = False) -> RNNLM:
    cell, nonlinearity, reset_after = KINDS[kind]
    model = RNNLM(V, E if not tie else H, H, layers, cell, tie_weights=tie,
                  nonlinearity=nonlinearity, init_range=0.5, rng=7)
    if not reset_after:  # RNNLM builds the reset-after GRU; swap in the textbook form
        model.rnn = GRU(E, H, layers, reset_after=False, stateful=True, rng=8)
    return model.eval()


def draw(layers: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, size=(N, T))
    h0 = rng.standard_normal((layers, N, H)).astype(np.float32)
    c0 = rng.standard_normal((layers, N, H)).astype(np.float32)
    return ids, h0, c0


def rnnlab_run(model: RNNLM, ids: np.ndarray, h0: np.ndarray, c0: np.ndarray
               ) -> list[np.ndarray]:
    lstm = model.rnn.has_cell
    model.set_state((h0, c0 if lstm else None))
    logits = model.forward(ids)
    return [logits, model.rnn.h_n] + ([model.rnn.c_n] if lstm else [])


def onnx_run(payload: bytes, ids: np.ndarray, h0: np.ndarray, c0: np.ndarray
             ) -> list[np.ndarray]:
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (the onnx "
                              "extra: pip install 'rnnlab[onnx]')")
    session = ort.InferenceSession(payload, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    feeds = {"ids": ids.astype(np.int64), "h0": h0, "c0": c0}
    return session.run(None, {name: feeds[name] for name in names})


@pytest.fixture
def onnx_extra() -> None:
    pytest.importorskip("onnx", reason="onnx is not installed (pip install 'rnnlab[onnx]')")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install "
                        "'rnnlab[onnx]')")


@pytest.mark.usefixtures("onnx_extra")
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("kind", list(KINDS))
def test_onnx_matches_rnnlab_logits_and_final_states(kind: str, layers: int) -> None:
    model = make_model(kind, layers)
    ids, h0, c0 = draw(layers)
    expected = rnnlab_run(model, ids, h0, c0)
    proto = build_onnx(model)
    got = onnx_run(proto.SerializeToString(), ids, h0, c0)
    assert [o.name for o in proto.graph.output] == ["logits", "h_n", "c_n"][:len(expected)]
    assert len(got) == len(expected)
    for name, g, e in zip(["logits", "h_n", "c_n"], got, expected, strict=False):
        assert g.dtype == np.float32 and g.shape == e.shape, name
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL, err_msg=name)
    op = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[KINDS[kind][0]]
    assert {"RNN", "LSTM", "GRU"} & {node.op_type for node in proto.graph.node} == {op}
    recurrent = [n for n in proto.graph.node if n.op_type in ("RNN", "LSTM", "GRU")]
    attrs = {a.name: a for a in recurrent[0].attribute}
    if kind == "rnn-relu":
        assert list(attrs["activations"].strings) == [b"Relu"]
    if kind.startswith("gru"):
        assert attrs["linear_before_reset"].i == (1 if KINDS[kind][2] else 0)


@pytest.mark.usefixtures("onnx_extra")
def test_onnx_of_a_tied_model_in_a_longer_batch() -> None:
    model = make_model("lstm", 2, tie=True)
    rng = np.random.default_rng(3)
    ids = rng.integers(0, V, size=(5, 9))
    h0, c0 = (rng.standard_normal((2, 5, H)).astype(np.float32) for _ in range(2))
    expected = rnnlab_run(model, ids, h0, c0)
    proto = build_onnx(model)
    assert "decoder.weight" not in {t.name for t in proto.graph.initializer}
    for g, e in zip(onnx_run(proto.SerializeToString(), ids, h0, c0), expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL)


def test_gate_orders() -> None:
    # ONNX LSTM i, o, f, c from rnnlab i, f, g, o; ONNX GRU z, r, h from rnnlab r, z, n
    assert [("i", "f", "g", "o")[k] for k in GATE_ORDER["lstm"]] == ["i", "o", "f", "g"]
    assert [("r", "z", "n")[k] for k in GATE_ORDER["gru"]] == ["z", "r", "n"]


def save_checkpoint(path: Path, model: RNNLM) -> Vocab:
    vocab = Vocab.build("abcdefghijk")
    assert len(vocab) == V
    write_checkpoint(path, model_arrays(model), {
        "kind": "rnnlm", "model_config": model.config.to_dict(), "vocab": vocab.to_dict()})
    return vocab


@pytest.mark.usefixtures("onnx_extra")
def test_command_exports_a_checkpoint_to_onnx(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import onnx

    model = make_model("gru", 2)
    vocab = save_checkpoint(tmp_path / "best.safetensors", model)
    out = tmp_path / "lm.onnx"
    assert main(["export", str(tmp_path / "best.safetensors"), "--format", "onnx",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "GRU, 2 layers" in printed and "h_n" in printed
    ids, h0, c0 = draw(2, seed=5)
    for g, e in zip(onnx_run(out.read_bytes(), ids, h0, c0), rnnlab_run(model, ids, h0, c0),
                    strict=True):
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL)
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(props["rnnlab.vocab"]) == vocab.to_dict()
    assert json.loads(props["rnnlab.model_config"])["cell"] == "gru"
    # the default output lies beside the checkpoint
    assert main(["export", str(tmp_path / "best.safetensors")]) == 0
    assert (tmp_path / "best.onnx").is_file()


def test_what_cannot_be_exported_is_refused(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    model = make_model("lstm", 1)
    model.rnn = MinGRU(E, H, stateful=True, rng=0)
    for fmt in ("onnx", "torch"):
        with pytest.raises(ValueError, match=r"export \(.*\): a MinGRU layer cannot be "
                                             r"exported"):
            (build_onnx if fmt == "onnx" else torch_recipe)(model)
    model.rnn = LSTM(E, H, bidirectional=True, stateful=True, rng=0)
    with pytest.raises(ValueError, match="a bidirectional LSTM cannot be exported"):
        torch_recipe(model)
    with pytest.raises(ValueError, match=r"GRU with reset_after=False cannot be exported"):
        torch_recipe(make_model("gru-reset-before", 1))
    with pytest.raises(TypeError, match="model expected a language model"):
        torch_recipe(LSTM(2, 3))
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, make_model("rnn-tanh", 1))
    with pytest.raises(ValueError, match=r"fmt expected one of \['onnx', 'torch'\], got 'tf'"):
        export_checkpoint(path, tmp_path / "x", "tf")
    with pytest.raises(ValueError, match="got the checkpoint itself"):
        export_checkpoint(path, path, "onnx")
    assert main(["export", str(tmp_path / "missing.safetensors")]) == 1
    assert "missing.safetensors" in capsys.readouterr().err


# --------------------------------------------------------------------- torch
def torch_logits(lm: Any, ids: np.ndarray, h0: np.ndarray, c0: np.ndarray, lstm: bool
                 ) -> list[np.ndarray]:
    import torch

    with torch.no_grad():
        state = (torch.from_numpy(h0), torch.from_numpy(c0)) if lstm else torch.from_numpy(h0)
        hs, final = lm["rnn"](lm["embedding"](torch.from_numpy(ids)), state)
        logits = lm["decoder"](hs)
    finals = list(final) if lstm else [final]
    return [logits.numpy()] + [f.numpy() for f in finals]


@pytest.mark.parametrize("kind", ["rnn-relu", "lstm", "gru"])
def test_torch_state_dict_loads_into_torch_nn_modules(kind: str, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    pytest.importorskip("torch", reason="torch is not installed")
    model = make_model(kind, 2, tie=kind == "lstm")
    save_checkpoint(tmp_path / "best.safetensors", model)
    out = tmp_path / "lm.pt"
    assert main(["export", str(tmp_path / "best.safetensors"), "--format", "torch",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "torch.nn.ModuleDict" in printed and "weights_only=True" in printed
    scope: dict[str, Any] = {}
    exec(torch_recipe(model, out), scope)  # the printed recipe builds and loads the modules
    lm = scope["lm"]
    ids, h0, c0 = draw(2, seed=2)
    lstm = kind == "lstm"
    for g, e in zip(torch_logits(lm, ids, h0, c0, lstm), rnnlab_run(model, ids, h0, c0),
                    strict=True):
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=ATOL)


def test_export_onnx_writes_a_file(tmp_path: Path) -> None:
    pytest.importorskip("onnx", reason="onnx is not installed (pip install 'rnnlab[onnx]')")
    path = export_onnx(make_model("rnn-tanh", 1), tmp_path / "sub" / "m.onnx")
    assert path.is_file() and path.stat().st_size > 0


@pytest.mark.parametrize(("fmt", "package", "message"), [
    ("onnx", "onnx", "needs the onnx package: pip install 'rnnlab[onnx]'"),
    ("torch", "torch", "needs torch to write a torch.save file"),
])
def test_a_missing_package_is_one_line(fmt: str, package: str, message: str, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, make_model("lstm", 1))
    monkeypatch.setitem(sys.modules, package, None)  # import fails as if not installed
    assert main(["export", str(path), "--format", fmt]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rnnlab: error: export") and message in err
    assert not (tmp_path / f"m.{'onnx' if fmt == 'onnx' else 'pt'}").exists()


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "--format torch" in out and "MinGRU" in out
