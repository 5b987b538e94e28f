"""Write the PyTorch reference fixtures that ``tests/nn/test_torch_fixtures.py`` reads.

Run from anywhere, with PyTorch installed::

    python tools/make_torch_fixtures.py

Every fixture is one compressed ``.npz`` (float64 arrays, read with
``allow_pickle=False``) in ``tests/fixtures/``. All inputs and weights are drawn from
``numpy.random.default_rng`` with a fixed seed per fixture and loaded into PyTorch, so
the files do not depend on PyTorch's own random number generator: rerunning the script
rewrites byte-identical files (as long as PyTorch computes the same numbers).

Keys of a fixture:

``config``
    a 0-d unicode array holding JSON: the layer kind and its constructor arguments.
``param.<name>``
    the PyTorch ``state_dict`` (PyTorch's names, e.g. ``param.weight_ih_l0_reverse``).
``grad.<name>``
    PyTorch's gradient of every parameter.
inputs
    ``x`` (or ``ids``, ``logits``...), ``h0`` / ``c0`` (the initial state, when the
    fixture has one), ``lengths`` (packed sequences), upstream gradients ``dout``,
    ``dh_n``, ``dc_n`` (the loss is ``sum(out * dout) + sum(h_n * dh_n) + sum(c_n * dc_n)``).
outputs
    ``out``, ``h_n``, ``c_n`` and the gradients ``dx``, ``dh0``, ``dc0``.

Cells (``cell_*``) store ``x``, ``h``/``c`` (with a state), ``dh``/``dc`` upstream,
``h_new``/``c_new`` and ``dx``, ``dh_prev``/``dc_prev``; ``linear_*``, ``embedding_*``,
``xent_*`` (cross-entropy with ignore index) and ``mse_*`` follow the same pattern with
the names of their layer's arguments.

For fixtures without an initial state PyTorch runs with ``hx=None``; ``dh0`` / ``dc0``
then come from a second run with an explicit zero state that requires a gradient (the
script checks that both runs give the same outputs).
"""

from __future__ import annotations

import json
import sys
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

try:
    import torch
    import torch.nn.functional as F
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
except ImportError:  # pragma: no cover - the script needs torch
    sys.exit("make_torch_fixtures.py needs PyTorch: pip install torch")

OUT_DIR = Path(__file__).resolve().parents[1] / "tests" / "fixtures"

# Sizes shared by the sequence fixtures. D != H so that a swapped W_ih / W_hh cannot load.
N, T, D, H = 3, 4, 2, 3
LENGTHS = np.array([2, 4, 1])  # unsorted (enforce_sorted=False), one full, one of length 1

SEQUENCE_KINDS = {
    # name: (torch class, rnnlab kind, nonlinearity)
    "rnn_tanh": ("RNN", "rnn", "tanh"),
    "rnn_relu": ("RNN", "rnn", "relu"),
    "lstm": ("LSTM", "lstm", None),
    "gru": ("GRU", "gru", None),
}


def t64(a: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64,
                        requires_grad=grad)


def npy(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().astype(np.float64, copy=True)


def config_array(cfg: dict[str, Any]) -> np.ndarray:
    cfg = dict(cfg, torch_version=torch.__version__)
    return np.array(json.dumps(cfg, sort_keys=True))


def load_params(module: torch.nn.Module, rng: np.random.Generator, scale: float) -> None:
    """Overwrite every parameter with seeded numpy draws (uniform in [-scale, scale])."""
    with torch.no_grad():
        for _, p in module.named_parameters():
            p.copy_(t64(rng.uniform(-scale, scale, size=tuple(p.shape))))


def param_arrays(module: torch.nn.Module) -> dict[str, np.ndarray]:
    out = {f"param.{k}": npy(v) for k, v in module.state_dict().items()}
    out.update({f"grad.{k}": npy(p.grad) for k, p in module.named_parameters()})
    return out


def save(name: str, arrays: dict[str, np.ndarray]) -> int:
    for key, value in arrays.items():
        if key != "config" and value.dtype.kind == "f":
            assert value.dtype == np.float64, key
    path = OUT_DIR / f"{name}.npz"
    np.savez_compressed(path, **arrays)
    return path.stat().st_size


# ------------------------------------------------------------------ sequences
def run_sequence(module: torch.nn.Module, x: torch.Tensor, hx: Any, lengths: np.ndarray | None
                 ) -> tuple[torch.Tensor, Any]:
    if lengths is None:
        return module(x, hx)
    packed = pack_padded_sequence(x, torch.as_tensor(lengths), batch_first=True,
                                  enforce_sorted=False)
    out, state = module(packed, hx)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return out, state


def sequence_fixture(name: str, num_layers: int, bidirectional: bool, with_state: bool,
                     with_lengths: bool, bias: bool, seed: int) -> dict[str, np.ndarray]:
    torch_name, kind, nonlinearity = SEQUENCE_KINDS[name]
    rng = np.random.default_rng(seed)
    kwargs: dict[str, Any] = dict(num_layers=num_layers, bidirectional=bidirectional,
                                  bias=bias, batch_first=True)
    if nonlinearity is not None:
        kwargs["nonlinearity"] = nonlinearity
    module = getattr(torch.nn, torch_name)(D, H, **kwargs).double()
    load_params(module, rng, scale=0.8)
    K = 2 if bidirectional else 1
    is_lstm = kind == "lstm"
    x_np = rng.standard_normal((N, T, D))
    h0_np = rng.standard_normal((num_layers * K, N, H)) * 0.5
    c0_np = rng.standard_normal((num_layers * K, N, H)) * 0.5
    dout_np = rng.standard_normal((N, T, K * H))
    dhn_np = rng.standard_normal((num_layers * K, N, H))
    dcn_np = rng.standard_normal((num_layers * K, N, H))
    lengths = LENGTHS if with_lengths else None

    def loss_of(out: torch.Tensor, state: Any) -> torch.Tensor:
        h_n, c_n = state if is_lstm else (state, None)
        loss = (out * t64(dout_np)).sum() + (h_n * t64(dhn_np)).sum()
        if c_n is not None:
            loss = loss + (c_n * t64(dcn_np)).sum()
        return loss

    # the run that the fixture records
    x = t64(x_np, grad=True)
    h0 = t64(h0_np if with_state else np.zeros_like(h0_np), grad=True)
    c0 = t64(c0_np if with_state else np.zeros_like(c0_np), grad=True)
    hx = ((h0, c0) if is_lstm else h0) if with_state else None
    out, state = run_sequence(module, x, hx, lengths)
    loss_of(out, state).backward()
    h_n, c_n = state if is_lstm else (state, None)
    params = param_arrays(module)
    if not with_state:
        # dh0 / dc0 of the zero state: a second run with an explicit zero state
        out2, state2 = run_sequence(module, t64(x_np), (h0, c0) if is_lstm else h0, lengths)
        h2 = state2[0] if is_lstm else state2
        assert torch.equal(out2, out) and torch.equal(h2, h_n)
        loss_of(out2, state2).backward()
    cfg = dict(layer=torch_name, kind=kind, nonlinearity=nonlinearity or "tanh",
               input_size=D, hidden_size=H, num_layers=num_layers,
               bidirectional=bidirectional, bias=bias, with_state=with_state,
               with_lengths=with_lengths)
    arrays = {"config": config_array(cfg), "x": x_np, "dout": dout_np, "dh_n": dhn_np,
              "out": npy(out), "h_n": npy(h_n), "dx": npy(x.grad), "dh0": npy(h0.grad)}
    arrays.update(params)
    if with_state:
        arrays["h0"] = h0_np
    if with_lengths:
        arrays["lengths"] = LENGTHS.astype(np.int64)
    if is_lstm:
        arrays.update(dc_n=dcn_np, c_n=npy(c_n), dc0=npy(c0.grad))
        if with_state:
            arrays["c0"] = c0_np
    return arrays


def sequence_name(kind: str, layers: int, bidirectional: bool, with_state: bool,
                  with_lengths: bool, bias: bool = True) -> str:
    parts = [f"seq_{kind}", f"l{layers}", "bi" if bidirectional else "uni",
             "state" if with_state else "nostate", "lengths" if with_lengths else "full"]
    if not bias:
        parts.append("nobias")
    return "_".join(parts)


# ---------------------------------------------------------------------- cells
CELL_KINDS = {
    "rnncell_tanh": ("RNNCell", "rnn", "tanh"),
    "rnncell_relu": ("RNNCell", "rnn", "relu"),
    "lstmcell": ("LSTMCell", "lstm", None),
    "grucell": ("GRUCell", "gru", None),
}


def cell_fixture(name: str, with_state: bool, bias: bool, seed: int) -> dict[str, np.ndarray]:
    torch_name, kind, nonlinearity = CELL_KINDS[name]
    rng = np.random.default_rng(seed)
    kwargs: dict[str, Any] = dict(bias=bias)
    if nonlinearity is not None:
        kwargs["nonlinearity"] = nonlinearity
    module = getattr(torch.nn, torch_name)(D, H, **kwargs).double()
    load_params(module, rng, scale=0.8)
    is_lstm = kind == "lstm"
    x_np = rng.standard_normal((N, D))
    h_np = rng.standard_normal((N, H)) * 0.5 if with_state else np.zeros((N, H))
    c_np = rng.standard_normal((N, H)) * 0.5 if with_state else np.zeros((N, H))
    dh_np, dc_np = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    x, h, c = t64(x_np, grad=True), t64(h_np, grad=True), t64(c_np, grad=True)
    if is_lstm:
        h_new, c_new = module(x, (h, c) if with_state else None)
        loss = (h_new * t64(dh_np)).sum() + (c_new * t64(dc_np)).sum()
    else:
        h_new, c_new = module(x, h if with_state else None), None
        loss = (h_new * t64(dh_np)).sum()
    loss.backward()
    cfg = dict(layer=torch_name, kind=kind, nonlinearity=nonlinearity or "tanh",
               input_size=D, hidden_size=H, bias=bias, with_state=with_state)
    arrays = {"config": config_array(cfg), "x": x_np, "dh": dh_np, "h_new": npy(h_new),
              "dx": npy(x.grad)}
    arrays.update(param_arrays(module))
    if with_state:
        arrays.update(h=h_np, dh_prev=npy(h.grad))
    if is_lstm:
        arrays.update(dc=dc_np, c_new=npy(c_new))
        if with_state:
            arrays.update(c=c_np, dc_prev=npy(c.grad))
    return arrays


# --------------------------------------------------------- small layers, losses
def linear_fixture(shape: tuple[int, ...], bias: bool, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    in_f, out_f = shape[-1], 4
    module = torch.nn.Linear(in_f, out_f, bias=bias).double()
    load_params(module, rng, scale=0.6)
    x_np = rng.standard_normal(shape)
    dy_np = rng.standard_normal((*shape[:-1], out_f))
    x = t64(x_np, grad=True)
    y = module(x)
    (y * t64(dy_np)).sum().backward()
    cfg = dict(layer="Linear", in_features=in_f, out_features=out_f, bias=bias)
    arrays = {"config": config_array(cfg), "x": x_np, "dy": dy_np, "y": npy(y),
              "dx": npy(x.grad)}
    arrays.update(param_arrays(module))
    return arrays


def embedding_fixture(ids: np.ndarray, padding_idx: int | None, seed: int
                      ) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    V, E = 7, 3
    module = torch.nn.Embedding(V, E, padding_idx=padding_idx).double()
    with torch.no_grad():
        weight = rng.standard_normal((V, E))
        if padding_idx is not None:
            weight[padding_idx] = 0.0
        module.weight.copy_(t64(weight))
    dout_np = rng.standard_normal((*ids.shape, E))
    out = module(torch.as_tensor(ids))
    (out * t64(dout_np)).sum().backward()
    cfg = dict(layer="Embedding", num_embeddings=V, embedding_dim=E, padding_idx=padding_idx)
    arrays = {"config": config_array(cfg), "ids": ids.astype(np.int64), "dout": dout_np,
              "out": npy(out)}
    arrays.update(param_arrays(module))
    return arrays


def cross_entropy_fixture(shape: tuple[int, ...], ignore_index: int, reduction: str,
                          seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    V = shape[-1]
    logits_np = rng.standard_normal(shape) * 3.0
    targets = rng.integers(0, V, size=shape[:-1])
    flat = targets.reshape(-1)
    flat[rng.permutation(flat.size)[: max(1, flat.size // 3)]] = ignore_index
    targets = flat.reshape(shape[:-1])
    dloss = 0.7
    logits = t64(logits_np, grad=True)
    loss = F.cross_entropy(logits.reshape(-1, V), torch.as_tensor(targets.reshape(-1)),
                           ignore_index=ignore_index, reduction=reduction)
    loss.backward(t64(np.array(dloss)))
    cfg = dict(layer="SoftmaxCrossEntropy", ignore_index=ignore_index, reduction=reduction)
    return {"config": config_array(cfg), "logits": logits_np,
            "targets": targets.astype(np.int64), "dloss": np.array(dloss),
            "loss": np.array(loss.item()), "dlogits": npy(logits.grad)}


def mse_fixture(shape: tuple[int, ...], reduction: str, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    pred_np, target_np = rng.standard_normal(shape), rng.standard_normal(shape)
    dloss = 1.3
    pred = t64(pred_np, grad=True)
    loss = F.mse_loss(pred, t64(target_np), reduction=reduction)
    loss.backward(t64(np.array(dloss)))
    cfg = dict(layer="MSELoss", reduction=reduction)
    return {"config": config_array(cfg), "pred": pred_np, "target": target_np,
            "dloss": np.array(dloss), "loss": np.array(loss.item()), "dpred": npy(pred.grad)}


# ------------------------------------------------------------------------ main
def all_fixtures() -> dict[str, dict[str, np.ndarray]]:
    fixtures: dict[str, dict[str, np.ndarray]] = {}
    seed = 0
    for kind, layers, bi, state, lengths in product(SEQUENCE_KINDS, (1, 2), (False, True),
                                                    (False, True), (False, True)):
        seed += 1
        fixtures[sequence_name(kind, layers, bi, state, lengths)] = sequence_fixture(
            kind, layers, bi, state, lengths, bias=True, seed=seed)
    for kind in SEQUENCE_KINDS:
        seed += 1
        fixtures[sequence_name(kind, 2, True, True, True, bias=False)] = sequence_fixture(
            kind, 2, True, True, True, bias=False, seed=seed)
    for kind, state in product(CELL_KINDS, (False, True)):
        seed += 1
        fixtures[f"cell_{kind}_{'state' if state else 'nostate'}"] = cell_fixture(
            kind, state, bias=True, seed=seed)
    for kind in CELL_KINDS:
        seed += 1
        fixtures[f"cell_{kind}_state_nobias"] = cell_fixture(kind, True, bias=False, seed=seed)
    fixtures["linear_2d"] = linear_fixture((5, 3), bias=True, seed=101)
    fixtures["linear_3d"] = linear_fixture((2, 4, 3), bias=True, seed=102)
    fixtures["linear_3d_nobias"] = linear_fixture((2, 4, 3), bias=False, seed=103)
    ids_2d = np.array([[1, 2, 2, 6], [0, 2, 1, 1], [6, 6, 3, 2]])
    fixtures["embedding_2d_padding"] = embedding_fixture(ids_2d, padding_idx=2, seed=104)
    fixtures["embedding_1d"] = embedding_fixture(np.array([4, 0, 4, 5, 1]), None, seed=105)
    fixtures["xent_3d_mean"] = cross_entropy_fixture((3, 4, 5), -100, "mean", seed=106)
    fixtures["xent_3d_sum"] = cross_entropy_fixture((3, 4, 5), -100, "sum", seed=107)
    fixtures["xent_2d_ignore0_mean"] = cross_entropy_fixture((6, 4), 0, "mean", seed=108)
    fixtures["mse_mean"] = mse_fixture((3, 4, 2), "mean", seed=109)
    fixtures["mse_sum"] = mse_fixture((5, 2), "sum", seed=110)
    return fixtures


def main() -> None:
    torch.set_num_threads(1)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for old in OUT_DIR.glob("*.npz"):
        old.unlink()
    total = 0
    fixtures = all_fixtures()
    for name, arrays in fixtures.items():
        total += save(name, arrays)
    print(f"wrote {len(fixtures)} fixtures, {total / 1024:.0f} KiB, to {OUT_DIR}")
    if total >= 1_000_000:
        sys.exit(f"fixtures are {total} bytes, over the 1 MB budget")


if __name__ == "__main__":
    main()
