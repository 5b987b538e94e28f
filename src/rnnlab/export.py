"""Export a language model for other runtimes: an ONNX graph, or a PyTorch ``state_dict``.

A model of the :class:`~rnnlab.models.RNNLM` shape (an embedding, a stack of
``RNN``/``LSTM``/``GRU`` layers, a linear output layer) is written for inference:

``export_onnx(model, path)``
    An ONNX graph (built with ``onnx.helper``; needs the ``onnx`` extra) that uses
    ONNX's own ``RNN``, ``LSTM`` and ``GRU`` operators, opset :data:`OPSET`::

        inputs   ids     (batch, steps) int64    token ids
                 h0      (layers, batch, hidden) float32
                 c0      (layers, batch, hidden) float32     (LSTM only)
        outputs  logits  (batch, steps, vocab) float32
                 h_n     (layers, batch, hidden) float32
                 c_n     (layers, batch, hidden) float32     (LSTM only)

    Gather (embedding) -> one recurrent operator per layer (time-major, as ONNX's default
    ``layout=0``; the ids are transposed once) -> MatMul + Add (output layer). The weights
    are float32 (a float64 model is rounded: onnxruntime's recurrent kernels are float32).
    The gate blocks are reordered for ONNX, whose orders differ from PyTorch's (and
    rnnlab's)::

        LSTM   rnnlab/PyTorch i, f, g, o     ONNX i, o, f, c    blocks [0, 3, 1, 2]
        GRU    rnnlab/PyTorch r, z, n        ONNX z, r, h       blocks [1, 0, 2]
        RNN    one block

    ``B`` is ``[bias_ih; bias_hh]`` reordered the same way. The GRU's form is kept:
    ``reset_after=True`` (PyTorch's, ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``)
    is ``linear_before_reset=1``; ``reset_after=False`` (``n = tanh(W_in x + b_in +
    W_hn (r * h) + b_hn)``) is ONNX's default ``0``. A ReLU RNN has ``activations=["Relu"]``.
    The model's configuration (and the vocabulary, when given) are stored in the model's
    metadata (``rnnlab.model_config``, ``rnnlab.vocab``, JSON).

``export_torch(model, path)``
    A ``torch.save`` of the ``state_dict`` (tensors only, PyTorch's names, which rnnlab
    uses too): ``torch.nn.ModuleDict({"embedding": torch.nn.Embedding(V, E), "rnn":
    torch.nn.LSTM(E, H, L, batch_first=True), "decoder": torch.nn.Linear(H, V)})`` loads
    it with ``load_state_dict(torch.load(path, weights_only=True))`` (see
    :func:`torch_recipe`). torch.save rather than safetensors because it is the file a
    PyTorch user loads without another package, and ``weights_only=True`` reads tensors
    only (no code runs); rnnlab's own checkpoints are the safetensors form.

What cannot be exported is refused with a ``ValueError`` naming it: ``MinGRU``/``MinLSTM``
layers (neither ONNX nor ``torch.nn`` has them), bidirectional layers (a language model
reads left to right), and for ``torch`` a GRU with ``reset_after=False`` (``torch.nn.GRU``
has only the reset-after form).

The file is written atomically (a temporary renamed over it). An existing file is
refused unless ``overwrite=True``, and a file that reads as an rnnlab checkpoint is never
replaced, even then (:func:`check_out`): exporting over a run's ``best.safetensors``
would leave a run that cannot resume.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.backend import to_numpy
from rnnlab.data.safefiles import write_atomic
from rnnlab.nn import Embedding, Linear
from rnnlab.nn.recurrent import Recurrent
from rnnlab.train.checkpoint import is_checkpoint
from rnnlab.train.state import load_model

__all__ = ["FORMATS", "GATE_ORDER", "OPSET", "check_out", "export_checkpoint", "export_onnx",
           "export_torch", "torch_recipe"]

#: The ONNX opset the graphs declare (its RNN/LSTM/GRU are those of opset 14).
OPSET = 17
FORMATS = ("onnx", "torch")
#: For each cell, the rnnlab (PyTorch) gate block that goes to each ONNX block.
GATE_ORDER = {"rnn": (0,), "lstm": (0, 3, 1, 2), "gru": (1, 0, 2)}
_ONNX_OP = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
_TORCH_CLASS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
#: protobuf's limit on one serialised message (an ONNX file without external data).
_PROTOBUF_LIMIT = 2**31 - 1


def _parts(model: Any, fmt: str) -> tuple[Any, Any, Any]:
    """The embedding, recurrent and output layers of a language model, checked."""
    where = f"export ({fmt})"
    missing = [a for a in ("embedding", "rnn", "decoder") if not hasattr(model, a)]
    if missing:
        raise TypeError(f"{where}: model expected a language model with embedding, rnn and "
                        f"decoder layers (an RNNLM), got {type(model).__name__} without "
                        f"{', '.join(missing)}")
    emb, rnn, dec = model.embedding, model.rnn, model.decoder
    if not isinstance(rnn, Recurrent) or getattr(rnn, "kind", None) not in GATE_ORDER:
        name = type(rnn).__name__
        raise ValueError(f"{where}: a {name} layer cannot be exported: only RNN, LSTM and GRU "
                         f"have {'ONNX operators' if fmt == 'onnx' else 'torch.nn modules'} "
                         f"(the model's recurrent layer is {name})")
    if rnn.bidirectional:
        raise ValueError(f"{where}: a bidirectional {type(rnn).__name__} cannot be exported "
                         f"as a language model (the model reads both directions); export a "
                         f"unidirectional one")
    if not isinstance(emb, Embedding):
        raise TypeError(f"{where}: model.embedding expected an Embedding, got "
                        f"{type(emb).__name__}")
    if not isinstance(dec, Linear) or "bias" not in dec.params:
        raise TypeError(f"{where}: model.decoder expected a Linear layer with a bias, got "
                        f"{dec!r}")
    E = emb.params["weight"].shape[1]
    if rnn.input_size != E or dec.params["weight"].shape[1] != rnn.hidden_size:
        raise ValueError(f"{where}: the layers do not chain: embedding dim {E}, recurrent "
                         f"input {rnn.input_size}, hidden {rnn.hidden_size}, output input "
                         f"{dec.params['weight'].shape[1]}")
    if fmt == "torch" and rnn.kind == "gru" and not rnn.reset_after:
        raise ValueError("export (torch): a GRU with reset_after=False cannot be exported: "
                         "torch.nn.GRU has only the reset-after form (export it as onnx)")
    return emb, rnn, dec


def _host32(array: Any) -> np.ndarray:
    return np.ascontiguousarray(to_numpy(array), dtype=np.float32)


def _gates(array: np.ndarray, kind: str, H: int) -> np.ndarray:
    """The gate blocks (rows of ``H``) of a recurrent weight or bias in ONNX's order."""
    return np.concatenate([array[k * H : (k + 1) * H] for k in GATE_ORDER[kind]], axis=0)


def build_onnx(model: Any, *, vocab: Any = None) -> Any:
    """The ``onnx.ModelProto`` of a language model (see the module docstring)."""
    emb, rnn, dec = _parts(model, "onnx")
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise ImportError("export (onnx): needs the onnx package: pip install "
                          "'rnnlab[onnx]' (or pip install onnx)") from exc
    kind, H, L = rnn.kind, rnn.hidden_size, rnn.num_layers
    G = len(GATE_ORDER[kind])
    V = emb.params["weight"].shape[0]
    inits: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, name))
        return name

    emb_name = const("embedding.weight", _host32(emb.params["weight"]))
    tied = dec.params["weight"] is emb.params["weight"]
    dec_name = emb_name if tied else const("decoder.weight", _host32(dec.params["weight"]))
    const("decoder.bias", _host32(dec.params["bias"]))
    nodes.append(helper.make_node("Transpose", ["ids"], ["ids_tm"], perm=[1, 0],
                                  name="ids_time_major"))
    nodes.append(helper.make_node("Gather", [emb_name, "ids_tm"], ["x_l0"], axis=0,
                                  name="embedding"))
    const("squeeze_axes", np.array([1], dtype=np.int64))
    states = ["h", "c"] if kind == "lstm" else ["h"]
    x = "x_l0"
    finals: dict[str, list[str]] = {s: [] for s in states}
    for layer in range(L):
        sfx = f"_l{layer}"
        W = _gates(_host32(rnn.params[f"weight_ih{sfx}"]), kind, H)[None]
        R = _gates(_host32(rnn.params[f"weight_hh{sfx}"]), kind, H)[None]
        if rnn.bias:
            b_ih = _gates(_host32(rnn.params[f"bias_ih{sfx}"]), kind, H)
            b_hh = _gates(_host32(rnn.params[f"bias_hh{sfx}"]), kind, H)
            B = np.concatenate([b_ih, b_hh])[None]
        else:
            B = np.zeros((1, 2 * G * H), dtype=np.float32)
        ins = [x, const(f"W{sfx}", W), const(f"R{sfx}", R), const(f"B{sfx}", B), ""]
        if L == 1:
            ins += [f"{s}0" for s in states]  # (1, batch, H) as the operator takes it
        else:
            index = const(f"index{sfx}", np.array([layer], dtype=np.int64))
            for s in states:  # this layer's (1, batch, H) slice of the stacked state
                nodes.append(helper.make_node("Gather", [f"{s}0", index], [f"{s}0{sfx}"],
                                              axis=0, name=f"{s}0{sfx}"))
                ins.append(f"{s}0{sfx}")
        outs = [f"y{sfx}"] + [f"{s}_n{sfx}" for s in states]
        attrs: dict[str, Any] = {"hidden_size": H, "direction": "forward"}
        if kind == "rnn":
            attrs["activations"] = ["Relu" if rnn.nonlinearity == "relu" else "Tanh"]
        elif kind == "gru":
            attrs["linear_before_reset"] = 1 if rnn.reset_after else 0
        nodes.append(helper.make_node(_ONNX_OP[kind], ins, outs, name=f"rnn{sfx}", **attrs))
        for s in states:
            finals[s].append(f"{s}_n{sfx}")
        x = f"x_l{layer + 1}"
        nodes.append(helper.make_node("Squeeze", [f"y{sfx}", "squeeze_axes"], [x],
                                      name=f"squeeze{sfx}"))
    for s in states:
        nodes.append(helper.make_node("Concat", finals[s], [f"{s}_n"], axis=0,
                                      name=f"{s}_n"))
    nodes.append(helper.make_node("Transpose", [x], ["hs"], perm=[1, 0, 2],
                                  name="batch_major"))
    nodes.append(helper.make_node("Transpose", [dec_name], ["decoder_t"], perm=[1, 0],
                                  name="decoder_transpose"))
    nodes.append(helper.make_node("MatMul", ["hs", "decoder_t"], ["scores"], name="decoder"))
    nodes.append(helper.make_node("Add", ["scores", "decoder.bias"], ["logits"],
                                  name="decoder_bias"))

    f32 = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "steps"])]
    inputs += [helper.make_tensor_value_info(f"{s}0", f32, [L, "batch", H]) for s in states]
    outputs = [helper.make_tensor_value_info("logits", f32, ["batch", "steps", V])]
    outputs += [helper.make_tensor_value_info(f"{s}_n", f32, [L, "batch", H]) for s in states]
    graph = helper.make_graph(nodes, f"rnnlab_{kind}_lm", inputs, outputs, initializer=inits)
    opsets = [helper.make_opsetid("", OPSET)]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="rnnlab",
                              doc_string=f"rnnlab {type(model).__name__}: {kind}, {L} "
                              f"layer(s), hidden {H}, vocabulary {V}")
    proto.ir_version = helper.find_min_ir_version_for(opsets)
    meta = {}
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "to_dict"):
        meta["rnnlab.model_config"] = json.dumps(config.to_dict())
    if kind == "gru":
        meta["rnnlab.reset_after"] = json.dumps(bool(rnn.reset_after))
    if vocab is not None:
        meta["rnnlab.vocab"] = json.dumps(vocab.to_dict() if hasattr(vocab, "to_dict")
                                          else vocab)
    helper.set_model_props(proto, meta)
    size = sum(t.ByteSize() for t in proto.graph.initializer)
    if size > _PROTOBUF_LIMIT:
        raise ValueError(f"export (onnx): the weights take {size / 2**30:.2f} GiB, above the "
                         f"2 GiB an ONNX file without external data can hold")
    onnx.checker.check_model(proto)
    return proto


def check_out(path: str | Path, *, overwrite: bool = False, owner: str = "export") -> Path:
    """Refuse an export target that must not be written: an existing file unless
    ``overwrite`` (the command line's ``--overwrite``), and, even with it, a folder or a
    file that reads as an rnnlab checkpoint (a run's ``best.safetensors``: replacing it
    would end the run). Returns the path."""
    path = Path(path)
    if os.path.isdir(path):
        raise ValueError(f"{owner}: out expected a file name, got the folder {str(path)!r}")
    if is_checkpoint(path):
        raise ValueError(f"{owner}: out {str(path)!r} is an rnnlab checkpoint; an export never "
                         f"replaces one (even with overwrite), choose another file name")
    if os.path.lexists(path) and not overwrite:
        raise ValueError(f"{owner}: out {str(path)!r} exists; pass overwrite=True "
                         f"(--overwrite) to replace it, or choose another file name")
    return path


def export_onnx(model: Any, path: str | Path, *, vocab: Any = None,
                overwrite: bool = False) -> Path:
    """Write the ONNX graph of a language model to ``path`` (atomically); return the path.

    An existing file is refused unless ``overwrite``, an rnnlab checkpoint always
    (:func:`check_out`)."""
    path = check_out(path, overwrite=overwrite, owner="export (onnx)")
    proto = build_onnx(model, vocab=vocab)
    write_atomic(path, proto.SerializeToString())
    return path


def torch_state_dict(model: Any) -> dict[str, np.ndarray]:
    """The arrays a ``torch.nn`` Embedding/RNN/Linear trio loads, under PyTorch's names
    (tied weights under both names, as PyTorch's own ``state_dict`` lists them)."""
    _parts(model, "torch")
    return {name: np.array(to_numpy(value)) for name, value in model.state_dict().items()
            if name.split(".", 1)[0] in ("embedding", "rnn", "decoder")}


def torch_recipe(model: Any, path: str | Path = "model.pt") -> str:
    """The PyTorch code that builds modules of this model's shape and loads the file."""
    emb, rnn, dec = _parts(model, "torch")
    V, E = emb.params["weight"].shape
    cls = _TORCH_CLASS[rnn.kind]
    extra = ", nonlinearity='relu'" if rnn.kind == "rnn" and rnn.nonlinearity == "relu" else ""
    extra += "" if rnn.bias else ", bias=False"
    return (
        "import torch\n"
        "lm = torch.nn.ModuleDict({\n"
        f"    'embedding': torch.nn.Embedding({V}, {E}),\n"
        f"    'rnn': torch.nn.{cls}({E}, {rnn.hidden_size}, num_layers={rnn.num_layers}, "
        f"batch_first=True{extra}),\n"
        f"    'decoder': torch.nn.Linear({dec.params['weight'].shape[1]}, {V}),\n"
        "})\n"
        f"lm.load_state_dict(torch.load({str(path)!r}, weights_only=True))\n"
        "# logits: lm['decoder'](lm['rnn'](lm['embedding'](ids), state)[0])\n")


def export_torch(model: Any, path: str | Path, *, overwrite: bool = False) -> Path:
    """``torch.save`` the model's ``state_dict`` (torch tensors) to ``path``, atomically.

    An existing file is refused unless ``overwrite``, an rnnlab checkpoint always
    (:func:`check_out`)."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError("export (torch): needs torch to write a torch.save file: pip "
                          "install torch") from exc
    path = check_out(path, overwrite=overwrite, owner="export (torch)")
    state = {name: torch.from_numpy(array) for name, array in torch_state_dict(model).items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getvalue())
    return path


def export_checkpoint(checkpoint: str | Path, out: str | Path | None = None,
                      fmt: str = "onnx", *, overwrite: bool = False) -> tuple[Path, Any]:
    """Export the language model of an rnnlab checkpoint; return ``(path written, model)``.

    ``out`` defaults to the checkpoint's name with ``.onnx`` or ``.pt``. An existing
    ``out`` is refused unless ``overwrite``; a file that reads as an rnnlab checkpoint
    (the one exported included) is never replaced (:func:`check_out`). Both are checked
    before the checkpoint is loaded.
    """
    if fmt not in FORMATS:
        raise ValueError(f"export: fmt expected one of {list(FORMATS)}, got {fmt!r}")
    checkpoint = Path(checkpoint)
    if out is None:
        out = checkpoint.with_suffix(".onnx" if fmt == "onnx" else ".pt")
    out = Path(out)
    if out.exists() and out.resolve() == checkpoint.resolve():
        raise ValueError(f"export: out expected a new file, got the checkpoint itself ({out})")
    check_out(out, overwrite=overwrite)
    model, vocab, _ = load_model(checkpoint, device="cpu")
    if fmt == "onnx":
        return export_onnx(model, out, vocab=vocab, overwrite=overwrite), model
    return export_torch(model, out, overwrite=overwrite), model
