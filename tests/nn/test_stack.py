"""The recurrent-stack protocol: every stack follows it, and the cell-kind table agrees with
the layers' own gate counts, states and parameters."""

import numpy as np
import pytest

from rnnlab.models.minblock import MinBlockStack
from rnnlab.nn import GRU, LSTM, RNN, MinGRU, MinLSTM
from rnnlab.nn.cells import make_cell
from rnnlab.nn.minrnn_math import CELLS as MIN_MATH
from rnnlab.nn.stack import (
    CELL_KINDS,
    CLASSIC_CELLS,
    MIN_CELLS,
    RecurrentStack,
    StackStepper,
    cell_kind,
)

LAYERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU, "mingru": MinGRU, "minlstm": MinLSTM}


def test_the_table_names_every_layer_once():
    assert set(CELL_KINDS) == set(LAYERS)
    assert MIN_CELLS == ("mingru", "minlstm")
    assert CLASSIC_CELLS == ("lstm", "gru", "rnn")


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_each_layer_agrees_with_its_kind(name):
    layer = LAYERS[name](3, 4, num_layers=2, rng=0)
    kind = layer.cell_kind
    assert kind is CELL_KINDS[name] and kind.name == name
    assert layer.n_gates == kind.n_gates
    assert layer.params["weight_ih_l0"].shape == (kind.n_gates * 4, 3)
    assert ("weight_hh_l0" in layer.params) == kind.recurrent
    assert layer.has_cell == kind.has_cell
    assert layer.token_input == layer.defers_grads == kind.recurrent
    assert isinstance(layer, RecurrentStack)
    assert isinstance(layer.stepper(2), StackStepper)
    assert layer.stepper(2).takes_rows


def test_the_table_agrees_with_the_cell_maths():
    for name in CLASSIC_CELLS:
        math = make_cell(name)
        assert (math.n_gates, math.has_cell) == (CELL_KINDS[name].n_gates,
                                                 CELL_KINDS[name].has_cell)
    for name in MIN_CELLS:
        assert MIN_MATH[name][0] == CELL_KINDS[name].n_gates


@pytest.mark.parametrize("name", MIN_CELLS)
def test_a_block_stack_follows_the_protocol(name):
    stack = MinBlockStack(name, 4, 2, rng=0)
    assert isinstance(stack, RecurrentStack)
    assert stack.cell_kind is CELL_KINDS[name] and stack.n_gates == CELL_KINDS[name].n_gates
    assert not stack.token_input and not stack.defers_grads
    stepper = stack.stepper(1)
    assert isinstance(stepper, StackStepper) and not stepper.takes_rows
    with pytest.raises(TypeError, match="takes_rows"):
        stepper.input_table(np.zeros((5, 4), np.float32))


@pytest.mark.parametrize("make", [lambda: MinGRU(3, 4, rng=0),
                                  lambda: MinBlockStack("minlstm", 3, 1, rng=0)])
def test_unsupported_token_input_and_deferral_are_refused(make):
    stack = make()
    ids = np.zeros((2, 5), np.int64)
    with pytest.raises(TypeError, match="token_input"):
        stack.forward_tokens(ids, np.zeros((7, 3), np.float32))
    stack.forward(np.ones((2, 5, 3), np.float32))
    with pytest.raises(TypeError, match="defers_grads"):
        stack.backward(np.ones((2, 5, stack.hidden_size), np.float32), defer=lambda f: f())


def test_cell_kind_names_the_owner_on_a_bad_name():
    assert cell_kind("gru").n_gates == 3
    with pytest.raises(ValueError, match=r"RNNLMConfig.cell: expected one of .*'lstm'.*got 'lstn'"):
        cell_kind("lstn", "RNNLMConfig.cell")


def test_an_lstm_stepper_refuses_a_state_without_its_cell_state():
    stepper = LSTM(3, 4, num_layers=2, rng=0).stepper(2)
    with pytest.raises(TypeError, match=r"Stepper.set_state: c expected .* LSTM, got None"):
        stepper.set_state(np.zeros((2, 2, 4), np.float32))
    GRU(3, 4, rng=0).stepper(2).set_state(np.zeros((1, 2, 4), np.float32))  # no c: fine
