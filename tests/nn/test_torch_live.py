"""rnnlab against PyTorch, live, on random sizes (float64, 1e-10). Skipped without torch.

The rnnlab layer is built from a seed, its ``state_dict`` is loaded into the PyTorch
layer, both run the same inputs, and outputs, final states and every gradient are
compared. Sizes, flags and the seed are drawn by hypothesis.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab import nn

torch = pytest.importorskip("torch", reason="PyTorch is not installed (live comparison)")
F = torch.nn.functional
rnn_utils = pytest.importorskip("torch.nn.utils.rnn")

TOL = 1e-10
SEEDS = st.integers(0, 2**32 - 1)

torch.set_num_threads(1)


def t64(a: np.ndarray, grad: bool = False) -> Any:
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def close(actual: Any, expected: Any, what: str) -> None:
    if hasattr(expected, "detach"):
        expected = expected.detach().numpy()
    np.testing.assert_allclose(actual, expected, rtol=TOL, atol=TOL, err_msg=what)


def to_torch(layer: nn.Module, module: Any) -> None:
    module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in
                            layer.state_dict().items()})


def compare_grads(layer: nn.Module, module: Any) -> None:
    for name, p in module.named_parameters():
        close(layer.grads[name], p.grad, f"grad of {name}")


KINDS = {
    "rnn_tanh": (nn.RNN, "RNN", {"nonlinearity": "tanh"}),
    "rnn_relu": (nn.RNN, "RNN", {"nonlinearity": "relu"}),
    "lstm": (nn.LSTM, "LSTM", {}),
    "gru": (nn.GRU, "GRU", {}),
}


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from(sorted(KINDS)), num_layers=st.integers(1, 3),
       bidirectional=st.booleans(), bias=st.booleans(), N=st.integers(1, 4),
       T=st.integers(1, 6), D=st.integers(1, 5), H=st.integers(1, 5),
       with_state=st.booleans(), with_lengths=st.booleans(), with_dstate=st.booleans(),
       seed=SEEDS)
def test_sequence_layers_match_torch(kind: str, num_layers: int, bidirectional: bool,
                                     bias: bool, N: int, T: int, D: int, H: int,
                                     with_state: bool, with_lengths: bool,
                                     with_dstate: bool, seed: int) -> None:
    cls, torch_name, extra = KINDS[kind]
    rng = np.random.default_rng(seed)
    layer = cls(D, H, num_layers=num_layers, bias=bias, bidirectional=bidirectional,
                dtype=np.float64, rng=rng, **extra)
    module = getattr(torch.nn, torch_name)(D, H, num_layers=num_layers, bias=bias,
                                           bidirectional=bidirectional, batch_first=True,
                                           **extra).double()
    to_torch(layer, module)
    is_lstm = kind == "lstm"
    S = num_layers * (2 if bidirectional else 1)
    x_np = rng.standard_normal((N, T, D))
    h0_np, c0_np = rng.standard_normal((S, N, H)), rng.standard_normal((S, N, H))
    dout_np = rng.standard_normal((N, T, H * (2 if bidirectional else 1)))
    dh_np, dc_np = rng.standard_normal((S, N, H)), rng.standard_normal((S, N, H))
    lengths = rng.integers(1, T + 1, size=N) if with_lengths else None

    # torch
    x = t64(x_np, grad=True)
    h0, c0 = t64(h0_np, grad=True), t64(c0_np, grad=True)
    hx = ((h0, c0) if is_lstm else h0) if with_state else None
    if lengths is None:
        out, st_ = module(x, hx)
    else:
        packed = rnn_utils.pack_padded_sequence(x, torch.as_tensor(lengths), batch_first=True,
                                                enforce_sorted=False)
        out, st_ = module(packed, hx)
        out, _ = rnn_utils.pad_packed_sequence(out, batch_first=True, total_length=T)
    h_n, c_n = st_ if is_lstm else (st_, None)
    loss = (out * t64(dout_np)).sum()
    if with_dstate:
        loss = loss + (h_n * t64(dh_np)).sum()
        if is_lstm:
            loss = loss + (c_n * t64(dc_np)).sum()
    loss.backward()

    # rnnlab
    state = ((h0_np, c0_np) if is_lstm else h0_np) if with_state else None
    dstate = ((dh_np, dc_np) if is_lstm else dh_np) if with_dstate else None
    close(layer.forward(x_np, state, lengths), out, "output")
    close(layer.h_n, h_n, "h_n")
    if is_lstm:
        close(layer.c_n, c_n, "c_n")
    close(layer.backward(dout_np, dstate), x.grad, "dx")
    compare_grads(layer, module)
    if with_state:
        close(layer.dh0, h0.grad, "dh0")
        if is_lstm:
            close(layer.dc0, c0.grad, "dc0")


CELLS = {
    "rnn_tanh": (nn.RNNCell, "RNNCell", {"nonlinearity": "tanh"}),
    "rnn_relu": (nn.RNNCell, "RNNCell", {"nonlinearity": "relu"}),
    "lstm": (nn.LSTMCell, "LSTMCell", {}),
    "gru": (nn.GRUCell, "GRUCell", {}),
}


@settings(max_examples=25, deadline=None)
@given(kind=st.sampled_from(sorted(CELLS)), bias=st.booleans(), N=st.integers(1, 4),
       D=st.integers(1, 5), H=st.integers(1, 5), seed=SEEDS)
def test_cells_match_torch(kind: str, bias: bool, N: int, D: int, H: int, seed: int) -> None:
    cls, torch_name, extra = CELLS[kind]
    rng = np.random.default_rng(seed)
    cell = cls(D, H, bias=bias, dtype=np.float64, rng=rng, **extra)
    module = getattr(torch.nn, torch_name)(D, H, bias=bias, **extra).double()
    to_torch(cell, module)
    x_np, h_np, c_np = (rng.standard_normal((N, D)), rng.standard_normal((N, H)),
                        rng.standard_normal((N, H)))
    dh_np, dc_np = rng.standard_normal((N, H)), rng.standard_normal((N, H))
    x, h, c = t64(x_np, True), t64(h_np, True), t64(c_np, True)
    if kind == "lstm":
        h1, c1 = module(x, (h, c))
        ((h1 * t64(dh_np)).sum() + (c1 * t64(dc_np)).sum()).backward()
        mh, mc = cell.forward(x_np, (h_np, c_np))
        close(mh, h1, "h'")
        close(mc, c1, "c'")
        dx, dh, dc = cell.backward(dh_np, dc_np)
        close(dc, c.grad, "dc")
    else:
        h1 = module(x, h)
        (h1 * t64(dh_np)).sum().backward()
        close(cell.forward(x_np, h_np), h1, "h'")
        dx, dh = cell.backward(dh_np)
    close(dx, x.grad, "dx")
    close(dh, h.grad, "dh")
    compare_grads(cell, module)


@settings(max_examples=15, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=3), out_f=st.integers(1, 4),
       bias=st.booleans(), seed=SEEDS)
def test_linear_matches_torch(shape: list[int], out_f: int, bias: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    layer = nn.Linear(shape[-1], out_f, bias=bias, dtype=np.float64, rng=rng)
    module = torch.nn.Linear(shape[-1], out_f, bias=bias).double()
    to_torch(layer, module)
    x_np = rng.standard_normal(shape)
    dy_np = rng.standard_normal((*shape[:-1], out_f))
    x = t64(x_np, True)
    y = module(x)
    (y * t64(dy_np)).sum().backward()
    close(layer.forward(x_np), y, "y")
    close(layer.backward(dy_np), x.grad, "dx")
    compare_grads(layer, module)


@settings(max_examples=15, deadline=None)
@given(V=st.integers(1, 8), E=st.integers(1, 4), ids_shape=st.lists(st.integers(1, 5),
       min_size=1, max_size=2), use_padding=st.booleans(), seed=SEEDS)
def test_embedding_matches_torch(V: int, E: int, ids_shape: list[int], use_padding: bool,
                                 seed: int) -> None:
    rng = np.random.default_rng(seed)
    padding_idx = int(rng.integers(0, V)) if use_padding else None
    layer = nn.Embedding(V, E, padding_idx=padding_idx, dtype=np.float64, rng=rng)
    module = torch.nn.Embedding(V, E, padding_idx=padding_idx).double()
    to_torch(layer, module)
    ids = rng.integers(0, V, size=ids_shape)
    dout_np = rng.standard_normal((*ids_shape, E))
    out = module(torch.as_tensor(ids))
    (out * t64(dout_np)).sum().backward()
    close(layer.forward(ids), out, "out")
    layer.backward(dout_np)
    compare_grads(layer, module)


@settings(max_examples=20, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=2, max_size=3),
       ignore_index=st.sampled_from([-100, 0, 2]), reduction=st.sampled_from(["mean", "sum"]),
       scale=st.sampled_from([0.1, 3.0, 50.0]), seed=SEEDS)
def test_cross_entropy_matches_torch(shape: list[int], ignore_index: int, reduction: str,
                                     scale: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    V = shape[-1]
    logits_np = rng.standard_normal(shape) * scale
    targets = rng.integers(0, V, size=shape[:-1])
    targets[rng.random(targets.shape) < 0.3] = ignore_index
    valid = targets != ignore_index
    loss_fn = nn.SoftmaxCrossEntropy(ignore_index=ignore_index, reduction=reduction)
    loss = loss_fn.forward(logits_np, targets)
    dlogits = loss_fn.backward(0.6)
    if reduction == "mean" and not valid.any():
        # documented difference: PyTorch gives NaN, rnnlab 0 with a zero gradient
        assert loss == 0.0
        assert not dlogits.any()
        return
    logits = t64(logits_np, True)
    ref = F.cross_entropy(logits.reshape(-1, V), torch.as_tensor(targets.reshape(-1)),
                          ignore_index=ignore_index, reduction=reduction)
    ref.backward(t64(np.array(0.6)))
    close(loss, ref, "loss")
    close(dlogits, logits.grad, "dlogits")


@settings(max_examples=10, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       reduction=st.sampled_from(["mean", "sum"]), seed=SEEDS)
def test_mse_matches_torch(shape: list[int], reduction: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    pred_np, target_np = rng.standard_normal(shape), rng.standard_normal(shape)
    loss_fn = nn.MSELoss(reduction=reduction)
    loss = loss_fn.forward(pred_np, target_np)
    pred = t64(pred_np, True)
    ref = F.mse_loss(pred, t64(target_np), reduction=reduction)
    ref.backward(t64(np.array(1.7)))
    close(loss, ref, "loss")
    close(loss_fn.backward(1.7), pred.grad, "dpred")


# ------------------------------------------- named_parameters, as PyTorch's
@pytest.mark.parametrize(("num_layers", "bidirectional", "bias"),
                         [(1, False, True), (2, True, True), (2, False, False)])
def test_named_parameters_match_torch(num_layers: int, bidirectional: bool, bias: bool) -> None:
    """``for name, p in m.named_parameters()`` works as in PyTorch and gives PyTorch's
    names, order and shapes, for an LSTM layer and a model holding one (children's
    parameters under dotted names); ``parameters()`` gives the arrays alone."""
    kw = {"num_layers": num_layers, "bidirectional": bidirectional, "bias": bias}
    layer = nn.LSTM(3, 5, rng=0, dtype=np.float64, **kw)
    tlayer = torch.nn.LSTM(3, 5, batch_first=True, dtype=torch.float64, **kw)
    ours = [(name, tuple(p.shape)) for name, p in layer.named_parameters()]
    theirs = [(name, tuple(p.shape)) for name, p in tlayer.named_parameters()]
    assert ours == theirs
    assert [tuple(p.shape) for p in layer.parameters()] == \
        [tuple(p.shape) for p in tlayer.parameters()]

    class Ours(nn.Module):
        def __init__(self) -> None:
            super().__init__(dtype=np.float64)
            self.emb = nn.Embedding(11, 3, rng=0, dtype=np.float64)
            self.rnn = nn.LSTM(3, 5, rng=0, dtype=np.float64, **kw)
            self.head = nn.Linear(5 * (1 + bidirectional), 11, rng=0, dtype=np.float64)

    class Theirs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(11, 3)
            self.rnn = torch.nn.LSTM(3, 5, batch_first=True, **kw)
            self.head = torch.nn.Linear(5 * (1 + bidirectional), 11)

    model, tmodel = Ours(), Theirs().double()
    ours = [(name, tuple(p.shape)) for name, p in model.named_parameters()]
    theirs = [(name, tuple(p.shape)) for name, p in tmodel.named_parameters()]
    assert ours == theirs
    assert [n for n, _ in model.named_parameters("m")] == \
        [n for n, _ in tmodel.named_parameters("m")]
    assert [n for n, _ in model.named_children()] == [n for n, _ in tmodel.named_children()]
    # the names load across: PyTorch's state_dict into ours, and ours into PyTorch's
    tmodel.load_state_dict({n: torch.from_numpy(p.copy()) for n, p in model.named_parameters()})
    for (name, p), (_, tp) in zip(model.named_parameters(), tmodel.named_parameters(),
                                  strict=True):
        close(p, tp, name)
