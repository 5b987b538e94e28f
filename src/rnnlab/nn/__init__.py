"""Layers with explicit forward and backward passes, PyTorch names and layouts.

All sequence arrays are batch-first, ``(N, T, D)``.
"""

from rnnlab.nn.dropout import Dropout, LockedDropout
from rnnlab.nn.embedding import Embedding
from rnnlab.nn.layernorm import LayerNorm
from rnnlab.nn.linear import Linear
from rnnlab.nn.losses import MSELoss, SoftmaxCrossEntropy
from rnnlab.nn.minrnn import MinGRU, MinLSTM
from rnnlab.nn.module import Module, StateDictError
from rnnlab.nn.onestep import GRUCell, LSTMCell, RNNCell
from rnnlab.nn.recurrent import GRU, LSTM, RNN, Recurrent
from rnnlab.nn.stack import (
    CELL_KINDS,
    CLASSIC_CELLS,
    MIN_CELLS,
    CellKind,
    RecurrentStack,
    StackStepper,
    cell_kind,
)

__all__ = [
    "CELL_KINDS",
    "CLASSIC_CELLS",
    "GRU",
    "LSTM",
    "MIN_CELLS",
    "RNN",
    "CellKind",
    "Dropout",
    "Embedding",
    "GRUCell",
    "LSTMCell",
    "LayerNorm",
    "Linear",
    "LockedDropout",
    "MSELoss",
    "MinGRU",
    "MinLSTM",
    "Module",
    "RNNCell",
    "Recurrent",
    "RecurrentStack",
    "SoftmaxCrossEntropy",
    "StackStepper",
    "StateDictError",
    "cell_kind",
]
