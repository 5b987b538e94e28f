"""What every recurrent stack is: the cell-kind facts, and the protocol the layers follow.

The facts about each cell kind live here and nowhere else: how many gate blocks a layer
has (``G``: ``weight_ih`` is ``(G*H, D)``), whether it carries a second state ``c``, and
whether its gates read the previous state (a ``weight_hh``; the min cells' gates read the
input only, so the layer runs as a scan)::

    kind      G   cell state   weight_hh
    lstm      4   yes          yes
    gru       3   no           yes
    rnn       1   no           yes
    mingru    2   no           no
    minlstm   3   no           no

:class:`RecurrentStack` is what a model or a plot may ask of its recurrent layers
(:class:`~rnnlab.nn.RNN`, :class:`~rnnlab.nn.LSTM`, :class:`~rnnlab.nn.GRU`,
:class:`~rnnlab.nn.MinGRU`, :class:`~rnnlab.nn.MinLSTM` and
:class:`~rnnlab.models.minblock.MinBlockStack`), so that none needs to ask which class
it holds; :class:`StackStepper` is what their one-step runners (``stack.stepper(batch)``)
offer for generation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from rnnlab.backend import Array


@dataclass(frozen=True)
class CellKind:
    """The facts of one cell kind (see the table of this module)."""

    name: str
    #: Gate blocks per layer: ``weight_ih`` has ``n_gates * hidden_size`` rows.
    n_gates: int
    #: A second state ``c`` beside ``h`` (the LSTM): states are ``(h, c)``.
    has_cell: bool
    #: The gates read ``h_{t-1}`` through ``weight_hh``. False for the min cells, whose
    #: gates read the input only (no recurrent weights, a scan over time).
    recurrent: bool


#: Every cell kind by name, in the order the command line lists them.
CELL_KINDS: dict[str, CellKind] = {kind.name: kind for kind in (
    CellKind("lstm", 4, has_cell=True, recurrent=True),
    CellKind("gru", 3, has_cell=False, recurrent=True),
    CellKind("rnn", 1, has_cell=False, recurrent=True),
    CellKind("mingru", 2, has_cell=False, recurrent=False),
    CellKind("minlstm", 3, has_cell=False, recurrent=False),
)}
#: The kinds whose gates read the input only (:mod:`rnnlab.nn.minrnn`).
MIN_CELLS: tuple[str, ...] = tuple(name for name, k in CELL_KINDS.items() if not k.recurrent)
#: The kinds with recurrent weights (:mod:`rnnlab.nn.recurrent`).
CLASSIC_CELLS: tuple[str, ...] = tuple(name for name, k in CELL_KINDS.items() if k.recurrent)


def cell_kind(name: str, owner: str = "cell") -> CellKind:
    """The :class:`CellKind` called ``name``; a ValueError naming ``owner`` otherwise."""
    kind = CELL_KINDS.get(name) if isinstance(name, str) else None
    if kind is None:
        raise ValueError(f"{owner}: expected one of {list(CELL_KINDS)}, got {name!r}")
    return kind


@runtime_checkable
class StackStepper(Protocol):
    """A unidirectional stack run one time step at a time (inference only).

    ``takes_rows`` says whether layer 0's input projection can come from a table
    (:meth:`input_table`, then ``step(rows=ids)``).
    """

    table: Array | None

    @property
    def takes_rows(self) -> bool: ...

    def input_table(self, embedding_weight: Array) -> Array:
        """``embedding_weight (V, D) @ W_ih^T + bias`` of layer 0: ``(V, G*H)``."""
        ...

    def reset(self) -> None: ...

    def set_state(self, h: Array, c: Array | None = None) -> None: ...

    def get_state(self) -> tuple[Array, Array | None]: ...

    def reorder(self, index: Array) -> None: ...

    def step(self, x: Array | None = None, rows: Array | None = None) -> Array:
        """Inputs ``x`` ``(N, D)`` (or table rows ``rows`` ``(N,)``) -> the top output
        ``(N, H)``."""
        ...


@runtime_checkable
class RecurrentStack(Protocol):
    """A stack of recurrent layers over batch-first sequences (see the module's table).

    Shapes: ``xs`` ``(N, T, D)`` -> ``hs`` ``(N, T, K*H)`` (``K`` = 2 if bidirectional);
    states ``(L*K, N, H)``, ``(h, c)`` when ``has_cell``.
    """

    h_n: Array | None
    dh0: Array | None

    @property
    def cell_kind(self) -> CellKind: ...

    @property
    def n_gates(self) -> int: ...

    @property
    def input_size(self) -> int: ...

    @property
    def hidden_size(self) -> int: ...

    @property
    def num_layers(self) -> int: ...

    @property
    def bidirectional(self) -> bool: ...

    @property
    def has_cell(self) -> bool: ...

    @property
    def stateful(self) -> bool: ...

    @property
    def token_input(self) -> bool:
        """Whether :meth:`forward_tokens` is supported."""
        ...

    @property
    def defers_grads(self) -> bool:
        """Whether :meth:`backward` takes ``defer`` (weight-gradient products handed out)."""
        ...

    def forward(self, xs: Array, state: object = None) -> Array: ...

    def __call__(self, xs: Array, state: object = None) -> Array:
        """:meth:`forward`."""
        ...

    def forward_tokens(self, ids: Array, weight: Array, grad: Array | None = None,
                       state: object = None) -> Array:
        """``forward(weight[ids])`` without building ``weight[ids]`` (where
        :attr:`token_input`; a TypeError elsewhere)."""
        ...

    def backward(self, dhs: Array | None, dstate: object = None, *,
                 defer: Callable[[Callable[[], None]], None] | None = None) -> Array | None:
        """``dxs`` of the last forward (``None`` after :meth:`forward_tokens`)."""
        ...

    def reset_state(self) -> None: ...

    def get_state(self) -> tuple[Array, Array | None] | None: ...

    def set_state(self, state: object) -> None: ...

    def stepper(self, batch: int) -> StackStepper: ...


def refuse_defer(owner: str, defer: object) -> None:
    """The TypeError of a stack without deferred weight gradients given ``defer``."""
    if defer is not None:
        raise TypeError(f"{owner}: defer expected None (this stack's weight gradients are "
                        f"not deferred; see defers_grads), got {type(defer).__name__}")


def refuse_tokens(owner: str) -> TypeError:
    """The TypeError of a stack without token input asked for it."""
    return TypeError(f"{owner}: token input expected a stack with recurrent weights "
                     f"(RNN, LSTM or GRU; see token_input); embed the ids and call forward")
