"""Behaviour of the layer protocol: gradient accumulation, untouched caches, zero_grad,
state dicts, dtypes, train/eval, tied parameters, device moves.

(Padded batches and stateful layers: ``test_sequence_semantics.py``; dropout and
losses: ``test_dropout_and_losses.py``.)
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from rnnlab import nn
from rnnlab.nn import StateDictError

Case = tuple[nn.Module, Callable[[], Any], Callable[[], tuple[Any, ...]]]


def sequence_case(cls: type, dtype: Any = np.float64, **kwargs: Any) -> Case:
    rng = np.random.default_rng(11)
    layer = cls(3, 4, num_layers=2, bidirectional=True, dtype=dtype, rng=rng, **kwargs)
    is_lstm = cls is nn.LSTM
    xs = rng.standard_normal((3, 5, 3)).astype(dtype)
    h0 = rng.standard_normal((4, 3, 4)).astype(dtype)
    c0 = rng.standard_normal((4, 3, 4)).astype(dtype)
    dhs = rng.standard_normal((3, 5, 8)).astype(dtype)
    dh, dc = rng.standard_normal((4, 3, 4)).astype(dtype), rng.standard_normal((4, 3, 4))
    lengths = np.array([5, 2, 0])

    def forward() -> Any:
        return layer.forward(xs, (h0, c0) if is_lstm else h0, lengths)

    def backward() -> tuple[Any, ...]:
        dxs = layer.backward(dhs, (dh, dc.astype(dtype)) if is_lstm else dh)
        return (dxs, layer.dh0) + ((layer.dc0,) if is_lstm else ())

    return layer, forward, backward


def cell_case(cls: type, dtype: Any = np.float64, **kwargs: Any) -> Case:
    rng = np.random.default_rng(12)
    cell = cls(3, 4, dtype=dtype, rng=rng, **kwargs)
    x, h, c = (rng.standard_normal(s).astype(dtype) for s in ((2, 3), (2, 4), (2, 4)))
    dh, dc = rng.standard_normal((2, 4)).astype(dtype), rng.standard_normal((2, 4))
    if cls is nn.LSTMCell:
        return (cell, lambda: cell.forward(x, (h, c)),
                lambda: cell.backward(dh, dc.astype(dtype)))
    return cell, lambda: cell.forward(x, h), lambda: cell.backward(dh)


def linear_case(shape: tuple[int, ...], dtype: Any = np.float64) -> Case:
    rng = np.random.default_rng(13)
    layer = nn.Linear(shape[-1], 5, dtype=dtype, rng=rng)
    x = rng.standard_normal(shape).astype(dtype)
    dy = rng.standard_normal((*shape[:-1], 5)).astype(dtype)
    return layer, lambda: layer.forward(x), lambda: (layer.backward(dy),)


def embedding_case(dtype: Any = np.float64) -> Case:
    rng = np.random.default_rng(14)
    layer = nn.Embedding(6, 3, padding_idx=0, dtype=dtype, rng=rng)
    ids = np.array([[1, 1, 0, 5], [5, 2, 1, 0]])
    dout = rng.standard_normal((2, 4, 3)).astype(dtype)

    def backward() -> tuple[Any, ...]:
        layer.backward(dout)
        return ()

    return layer, lambda: layer.forward(ids), backward


CASES: dict[str, Callable[..., Case]] = {
    "rnn_tanh": lambda dtype=np.float64: sequence_case(nn.RNN, dtype),
    "rnn_relu": lambda dtype=np.float64: sequence_case(nn.RNN, dtype, nonlinearity="relu"),
    "lstm": lambda dtype=np.float64: sequence_case(nn.LSTM, dtype),
    "gru": lambda dtype=np.float64: sequence_case(nn.GRU, dtype),
    "gru_reset_before": lambda dtype=np.float64: sequence_case(nn.GRU, dtype,
                                                               reset_after=False),
    "rnn_cell": lambda dtype=np.float64: cell_case(nn.RNNCell, dtype),
    "lstm_cell": lambda dtype=np.float64: cell_case(nn.LSTMCell, dtype),
    "gru_cell": lambda dtype=np.float64: cell_case(nn.GRUCell, dtype),
    "gru_cell_reset_before": lambda dtype=np.float64: cell_case(nn.GRUCell, dtype,
                                                                reset_after=False),
    "linear_2d": lambda dtype=np.float64: linear_case((4, 3), dtype),
    "linear_3d": lambda dtype=np.float64: linear_case((2, 4, 3), dtype),
    "embedding": lambda dtype=np.float64: embedding_case(dtype),
}


def as_tuple(out: Any) -> tuple[Any, ...]:
    return out if isinstance(out, tuple) else (out,)


_SKIP = {"params", "grads", "_scratch", "_back_traces", "back_cache", "_modules", "dh0", "dc0",
         "rng"}


def snapshot(obj: Any, path: str = "", seen: set[int] | None = None) -> dict[str, np.ndarray]:
    """Copies of every array reachable from ``obj``'s attributes (forward caches,
    traces, final states), skipping parameters, gradients and backward work areas."""
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, ModuleType | str | bytes | int | float | type):
        return {}
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        return {path: obj.copy()}
    out: dict[str, np.ndarray] = {}
    if isinstance(obj, dict):
        items = list(obj.items())
    elif isinstance(obj, list | tuple):
        items = list(enumerate(obj))
    elif hasattr(obj, "__dict__"):
        items = [(k, v) for k, v in vars(obj).items() if k not in _SKIP]
    else:
        return {}
    for key, value in items:
        out.update(snapshot(value, f"{path}.{key}", seen))
    return out


# --------------------------------------------------------------- accumulation
@pytest.mark.parametrize("name", sorted(CASES))
def test_backward_twice_gives_same_dx_and_doubles_grads(name: str) -> None:
    layer, forward, backward = CASES[name]()
    forward()
    grad_ids = {k: id(g) for k, g in layer.grads.items()}
    first = [a.copy() for a in backward()]
    once = {k: g.copy() for k, g in layer.grads.items()}
    assert any(g.any() for g in once.values())
    second = backward()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    for k, g in layer.grads.items():
        np.testing.assert_array_equal(g, 2 * once[k], err_msg=k)
    assert {k: id(g) for k, g in layer.grads.items()} == grad_ids  # added in place


@pytest.mark.parametrize("name", sorted(CASES))
def test_backward_never_mutates_forward_caches_or_inputs(name: str) -> None:
    layer, forward, backward = CASES[name]()
    out = as_tuple(forward())
    out_before = [o.copy() for o in out]
    before = snapshot(layer)
    assert before, "nothing cached?"
    backward()
    backward()
    after = snapshot(layer)
    assert before.keys() == after.keys()
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value, err_msg=key)
    for o, b in zip(out, out_before, strict=True):
        np.testing.assert_array_equal(o, b)


def test_backward_does_not_modify_its_arguments() -> None:
    layer, forward, _ = CASES["lstm"]()
    forward()
    rng = np.random.default_rng(0)
    dhs, dh, dc = rng.standard_normal((3, 5, 8)), rng.standard_normal((4, 3, 4)), \
        rng.standard_normal((4, 3, 4))
    copies = [dhs.copy(), dh.copy(), dc.copy()]
    layer.backward(dhs, (dh, dc))
    for a, b in zip((dhs, dh, dc), copies, strict=True):
        np.testing.assert_array_equal(a, b)


def test_forward_is_repeatable_and_does_not_alias_outputs() -> None:
    layer, forward, _ = CASES["gru"]()
    first = forward()
    h_n = layer.h_n.copy()
    second = forward()
    assert first is not second
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(layer.h_n, h_n)
    second[...] = 0  # the caller owns the output; the next backward must not see this
    layer.backward(np.ones_like(first))
    dx_after = layer.backward(np.ones_like(first))
    layer.zero_grad()
    forward()
    np.testing.assert_array_equal(layer.backward(np.ones_like(first)), dx_after)


@pytest.mark.parametrize("name", sorted(CASES))
def test_zero_grad_zeroes_in_place(name: str) -> None:
    layer, forward, backward = CASES[name]()
    forward()
    backward()
    grads = dict(layer.grads)
    layer.zero_grad()
    for k, g in layer.grads.items():
        assert g is grads[k]
        assert not g.any()


# ----------------------------------------------------------------- state dicts
@pytest.mark.parametrize("name", sorted(CASES))
def test_state_dict_round_trip(name: str) -> None:
    a, _, _ = CASES[name]()
    b, forward_b, _ = CASES[name]()
    rng = np.random.default_rng(1)
    for p in a.params.values():
        p[...] = rng.standard_normal(p.shape)
    b.load_state_dict(a.state_dict())
    assert b.state_dict().keys() == a.state_dict().keys()
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(b.params[k], v)
        assert b.params[k] is not v  # copied, not shared
        assert b.params[k].dtype == v.dtype
    forward_b()  # still runs


def test_recurrent_state_dict_names_are_pytorchs() -> None:
    layer = nn.GRU(3, 4, num_layers=2, bidirectional=True, rng=0)
    names = [f"{w}_l{k}{s}" for k in range(2) for s in ("", "_reverse")
             for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    assert sorted(layer.state_dict()) == sorted(names)
    assert layer.params["weight_ih_l1_reverse"].shape == (12, 8)
    assert layer.params["weight_hh_l0"].shape == (12, 4)
    assert layer.params["bias_hh_l1"].shape == (12,)
    assert sorted(nn.LSTM(3, 4, bias=False, rng=0).state_dict()) == ["weight_hh_l0",
                                                                     "weight_ih_l0"]


def _assert_unchanged(layer: nn.Module, before: dict[str, np.ndarray]) -> None:
    for k, v in before.items():
        np.testing.assert_array_equal(layer.params[k], v, err_msg=k)


@pytest.mark.parametrize(("edit", "error", "match"), [
    (lambda s: s.pop("bias_hh_l0"), StateDictError, r"missing keys \['bias_hh_l0'\]"),
    (lambda s: s.update(extra=np.zeros(2)), StateDictError, r"unexpected keys \['extra'\]"),
    (lambda s: s.update(weight_ih_l0=np.zeros((3, 4))), StateDictError,
     r"LSTM\.load_state_dict: weight_ih_l0 expected shape \(16, 3\), got \(3, 4\)"),
    (lambda s: s.update(weight_hh_l0=np.zeros((16, 4), dtype=np.float32)), StateDictError,
     r"weight_hh_l0 expected dtype float64, got float32"),
    (lambda s: s.update(bias_ih_l0=np.zeros(16, dtype=np.int64)), StateDictError,
     r"bias_ih_l0 expected dtype float64, got int64"),
])
def test_load_state_dict_validates_and_changes_nothing(edit: Callable[[dict[str, Any]], Any],
                                                       error: type, match: str) -> None:
    layer = nn.LSTM(3, 4, dtype=np.float64, rng=0)
    before = {k: v.copy() for k, v in layer.params.items()}
    state = {k: np.full_like(v, 7.0) for k, v in layer.params.items()}  # valid new values
    edit(state)
    with pytest.raises(error, match=match):
        layer.load_state_dict(state)
    _assert_unchanged(layer, before)
    assert issubclass(StateDictError, ValueError)


def test_load_state_dict_non_strict_and_bad_types() -> None:
    layer = nn.Linear(3, 2, dtype=np.float64, rng=0)
    bias = layer.params["bias"].copy()
    layer.load_state_dict({"weight": np.ones((2, 3)), "other": np.zeros(1)}, strict=False)
    np.testing.assert_array_equal(layer.params["weight"], np.ones((2, 3)))
    np.testing.assert_array_equal(layer.params["bias"], bias)
    with pytest.raises(TypeError, match=r"Linear\.load_state_dict: expected a mapping, got list"):
        layer.load_state_dict([np.ones((2, 3))])  # type: ignore[arg-type]
    with pytest.raises(StateDictError, match=r"weight expected shape \(2, 3\)"):
        layer.load_state_dict({"weight": np.ones((3, 2))}, strict=False)


def test_load_state_dict_of_a_composite_uses_dotted_names() -> None:
    a, b = Model(rng=0), Model(rng=1)
    state = a.state_dict()
    assert "rnn.weight_ih_l0" in state and "head.bias" in state and "emb.weight" in state
    b.load_state_dict(state)
    for k, v in state.items():
        np.testing.assert_array_equal(b.state_dict()[k], v)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_state_dict_loads_exactly(dtype: Any) -> None:
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    for module, layer in [
        (torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True),
         nn.LSTM(3, 4, num_layers=2, bidirectional=True, dtype=dtype, rng=0)),
        (torch.nn.GRU(3, 4, bias=False, batch_first=True),
         nn.GRU(3, 4, bias=False, dtype=dtype, rng=0)),
        (torch.nn.RNN(3, 4, nonlinearity="relu"),
         nn.RNN(3, 4, nonlinearity="relu", dtype=dtype, rng=0)),
        (torch.nn.Linear(3, 5), nn.Linear(3, 5, dtype=dtype, rng=0)),
        (torch.nn.Embedding(6, 3, padding_idx=1), nn.Embedding(6, 3, dtype=dtype, rng=0)),
        (torch.nn.LSTMCell(3, 4), nn.LSTMCell(3, 4, dtype=dtype, rng=0)),
    ]:
        state = module.to(tdtype).state_dict()
        layer.load_state_dict(state)
        for k, v in state.items():
            np.testing.assert_array_equal(layer.params[k], v.numpy())
            assert layer.params[k].dtype == dtype


# ---------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("name", sorted(CASES))
def test_float32_is_the_default_and_is_kept(name: str) -> None:
    layer, forward, backward = CASES[name](np.float32)
    assert layer.dtype == np.float32
    out = as_tuple(forward())
    assert all(o.dtype == np.float32 for o in out)
    assert all(d.dtype == np.float32 for d in backward())
    assert all(p.dtype == np.float32 for p in layer.params.values())
    assert all(g.dtype == np.float32 for g in layer.grads.values())


def test_default_dtype_without_argument() -> None:
    for layer in (nn.RNN(2, 3), nn.LSTM(2, 3), nn.GRU(2, 3), nn.LSTMCell(2, 3),
                  nn.Linear(2, 3), nn.Embedding(4, 2), nn.Dropout(0.1)):
        assert layer.dtype == np.float32
        assert all(p.dtype == np.float32 for p in layer.params.values())


def test_float32_and_float64_layers_from_one_seed_agree() -> None:
    a, b = nn.LSTM(3, 4, rng=5), nn.LSTM(3, 4, rng=5, dtype=np.float64)
    for k in a.params:
        np.testing.assert_allclose(a.params[k], b.params[k], rtol=1e-7)
    xs = np.random.default_rng(0).standard_normal((2, 6, 3))
    np.testing.assert_allclose(a.forward(xs.astype(np.float32)), b.forward(xs), atol=1e-5)


def test_rng_seeds_init() -> None:
    for make in (lambda r: nn.GRU(3, 4, rng=r), lambda r: nn.Linear(3, 4, rng=r),
                 lambda r: nn.Embedding(5, 2, rng=r), lambda r: nn.RNNCell(2, 3, rng=r)):
        a, b, c = make(3), make(np.random.default_rng(3)), make(4)
        for k in a.params:
            np.testing.assert_array_equal(a.params[k], b.params[k])
        assert any(not np.array_equal(a.params[k], c.params[k]) for k in a.params)


def test_init_bounds_follow_pytorch() -> None:
    layer = nn.LSTM(3, 16, rng=0)
    bound = 1 / np.sqrt(16)
    for p in layer.params.values():
        assert np.abs(p).max() <= bound
    lin = nn.Linear(25, 4, rng=0)
    assert np.abs(lin.params["weight"]).max() <= 1 / 5
    emb = nn.Embedding(10, 3, padding_idx=4, rng=0)
    assert not emb.params["weight"][4].any()


# ------------------------------------------------------- composites and modes
class Model(nn.Module):
    """Embedding -> LSTM -> LockedDropout -> Linear, with a nested child."""

    def __init__(self, rng: int = 0, dtype: Any = np.float64) -> None:
        super().__init__(dtype=dtype)
        self.emb = nn.Embedding(7, 3, rng=rng, dtype=dtype)
        self.rnn = nn.LSTM(3, 4, num_layers=2, dropout=0.3, rng=rng, dtype=dtype)
        self.block = Block(dtype)
        self.head = nn.Linear(4, 7, rng=rng, dtype=dtype)


class Block(nn.Module):
    def __init__(self, dtype: Any) -> None:
        super().__init__(dtype=dtype)
        self.drop = nn.LockedDropout(0.2, rng=0, dtype=dtype)


def test_train_and_eval_propagate_to_children() -> None:
    model = Model()
    modules = list(model.modules())
    assert len(modules) == 6  # model, emb, rnn, block, drop, head
    assert model.eval() is model
    assert not any(m.training for m in modules)
    assert model.train() is model
    assert all(m.training for m in modules)
    model.train(False)
    assert not model.block.drop.training
    model.block.train()
    assert model.block.drop.training and not model.rnn.training


def test_reassigning_a_child_replaces_it_and_plain_values_unregister() -> None:
    model = Model()
    model.head = nn.Linear(4, 2, rng=0, dtype=np.float64)
    assert dict(model.named_children())["head"] is model.head
    assert model.head in list(model.children())
    model.block = None
    assert "block" not in dict(model.named_children())
    assert model.num_parameters() == sum(p.size for p in model.state_dict().values())


def test_zero_grad_reaches_children() -> None:
    model = Model()
    for _, _, g in model.named_parameters_and_grads():
        g += 1.0
    model.zero_grad()
    assert not any(g.any() for _, _, g in model.named_parameters_and_grads())


# ------------------------------------------------ iteration, as PyTorch's
MODEL_NAMES = ["emb.weight", *(f"rnn.{k}_l{i}" for i in range(2)
                               for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")),
               "head.weight", "head.bias"]


def test_named_parameters_yields_pytorchs_pairs() -> None:
    """``for name, p in module.named_parameters()`` as in PyTorch, on a layer and a model;
    ``parameters()`` the same arrays without names, ``prefix`` before every name."""
    layer = nn.Linear(3, 2, rng=0, dtype=np.float64)
    pairs = []
    for name, p in layer.named_parameters():
        pairs.append((name, p))
    assert [(n, p is layer.params[n]) for n, p in pairs] == [("weight", True), ("bias", True)]
    assert [n for n, _ in layer.named_parameters("head.")] == ["head.weight", "head.bias"]
    assert [n for n, _ in layer.named_parameters("head")] == ["head.weight", "head.bias"]
    model = Model()
    named = list(model.named_parameters())
    assert all(len(item) == 2 for item in named)
    assert [n for n, _ in named] == MODEL_NAMES
    state = model.state_dict()
    assert all(p is state[n] for n, p in named)
    params = list(model.parameters())
    assert len(params) == len(named) and all(a is b for a, (_, b) in zip(params, named,
                                                                         strict=True))
    assert model.num_parameters() == sum(p.size for p in params)


def test_named_parameters_and_grads_gives_the_gradient_arrays_themselves() -> None:
    model = Model()
    triples = list(model.named_parameters_and_grads())
    assert [n for n, _, _ in triples] == MODEL_NAMES  # the order of named_parameters()
    assert all(a is b for (_, a, _), (_, b) in zip(triples, model.named_parameters(),
                                                   strict=True))
    owners = {"emb": model.emb, "rnn": model.rnn, "head": model.head}
    for name, param, grad in triples:
        owner, key = name.split(".")
        assert param is owners[owner].params[key]
        assert grad is owners[owner].grads[key]  # not a copy: in place reaches the module
    grad = triples[0][2]
    grad += 1.0
    assert model.emb.grads["weight"].all()
    assert [n for n, _, _ in model.head.named_parameters_and_grads("head.")] == \
        ["head.weight", "head.bias"]


def test_children_and_named_children_as_pytorchs() -> None:
    model = Model()
    assert list(model.children()) == [model.emb, model.rnn, model.block, model.head]
    assert [n for n, _ in model.named_children()] == ["emb", "rnn", "block", "head"]
    assert all(getattr(model, n) is c for n, c in model.named_children())
    assert list(model.modules())[:3] == [model, model.emb, model.rnn]


# --------------------------------------------------------------------- ties
def tied_pair(dtype: Any = np.float64) -> tuple[nn.Embedding, nn.Linear]:
    emb = nn.Embedding(6, 4, rng=0, dtype=dtype)
    head = nn.Linear(4, 6, rng=1, dtype=dtype)
    head.tie("weight", emb, "weight")
    return emb, head


def run_tied(emb: nn.Embedding, head: nn.Linear) -> None:
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 6, size=(2, 5))
    x = emb.forward(ids)
    y = head.forward(x)
    dx = head.backward(rng.standard_normal(y.shape))
    emb.backward(dx + rng.standard_normal(dx.shape))


def test_tied_parameters_share_arrays_and_sum_gradients() -> None:
    emb, head = tied_pair()
    assert head.params["weight"] is emb.params["weight"]
    assert head.grads["weight"] is emb.grads["weight"]
    # the same computation untied, from the same values
    emb2 = nn.Embedding(6, 4, rng=0, dtype=np.float64)
    head2 = nn.Linear(4, 6, rng=1, dtype=np.float64)
    head2.params["weight"][...] = emb2.params["weight"]
    run_tied(emb, head)
    run_tied(emb2, head2)
    np.testing.assert_allclose(emb.grads["weight"],
                               emb2.grads["weight"] + head2.grads["weight"], atol=1e-13)
    # an update through one is seen by the other
    emb.params["weight"] *= 2
    np.testing.assert_array_equal(head.params["weight"], emb.params["weight"])


def test_tied_parameters_are_listed_once() -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__(dtype=np.float64)
            self.emb, self.head = tied_pair()

    model = Tied()
    names = [n for n, _ in model.named_parameters()]
    assert names == ["emb.weight", "head.bias"]
    assert model.num_parameters() == 6 * 4 + 6
    assert len(list(model.parameters())) == 2
    assert set(model.state_dict()) == {"emb.weight", "head.weight", "head.bias"}
    model.emb.grads["weight"] += 1
    model.zero_grad()
    assert not model.head.grads["weight"].any()


def test_tie_rejects_mismatched_shapes() -> None:
    emb = nn.Embedding(6, 4, rng=0)
    head = nn.Linear(6, 4, rng=0)
    with pytest.raises(ValueError, match=r"Linear\.tie: weight has shape \(4, 6\), "
                                         r"Embedding\.weight has shape \(6, 4\)"):
        head.tie("weight", emb, "weight")


def test_to_cpu_keeps_ties_and_values() -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__(dtype=np.float64)
            self.emb, self.head = tied_pair()

    model = Tied()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    assert model.to("cpu") is model
    assert model.head.params["weight"] is model.emb.params["weight"]
    assert model.head.grads["weight"] is model.emb.grads["weight"]
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    run_tied(model.emb, model.head)
    assert model.emb.grads["weight"].any()


def test_to_cpu_resets_recurrent_caches_and_still_runs() -> None:
    layer, forward, backward = CASES["lstm"]()
    forward()
    layer.to("cpu")
    with pytest.raises(RuntimeError, match=r"LSTM\.backward: called before forward"):
        layer.backward(np.zeros((3, 5, 8)))
    forward()
    backward()


def test_repr_names_the_layers() -> None:
    text = repr(Model())
    assert "LSTM(3, 4, num_layers=2, dropout=0.3)" in text
    assert "(head): Linear(in_features=4, out_features=7)" in text
    assert "reset_after=False" in repr(nn.GRU(2, 3, reset_after=False))
