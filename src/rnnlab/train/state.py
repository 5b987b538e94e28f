"""What a language-model checkpoint holds, and how it is taken apart and put back.

Array names::

    model/<parameter name>       every parameter once (tied arrays under their first name)
    optim/<parameter>/<buffer>   optimizer buffers (momentum, Adam moments ...)
    state/h, state/c             the recurrent state carried between windows (if any)

JSON metadata: ``kind`` ("rnnlm"), ``model_config``, ``vocab``, and for training runs
``train_config``, ``data_config``, ``optimizer`` (type, hyper-parameters, step),
``scheduler``, ``rng`` (bit-generator state), ``data`` (batcher position), ``progress``.
Loading checks names, shapes, dtypes and finiteness before anything is copied.

A checkpoint may come from someone else, so its ``model_config`` is checked field by field
(types and ranges) before a model is built from it, and a model is only built when the
parameters it declares could be in the file: the weight matrices of the configuration
(embedding, recurrent and output matrices, without biases) must not hold more numbers
than the file's ``model/`` arrays. The memory a load takes is therefore bounded by the
size of the file, however large the sizes a hostile file declares.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.backend import to_numpy
from rnnlab.data import Vocab
from rnnlab.models.rnnlm import RNNLM, RNNLMConfig
from rnnlab.nn import Module
from rnnlab.nn.stack import CELL_KINDS
from rnnlab.train.checkpoint import CheckpointError, meta_get, read_checkpoint, take_group


def model_arrays(model: Module) -> dict[str, Any]:
    """``model/<name>`` for every parameter (shared arrays once)."""
    return {f"model/{name}": param for name, param in model.named_parameters()}


def check_finite_params(model: Module) -> None:
    """Refuse to save a model holding NaN or infinity (a diverged state)."""
    for name, param in model.named_parameters():
        if not bool(model.xp.isfinite(param).all()):
            raise CheckpointError(f"refusing to save: parameter {name!r} holds NaN or infinity")


def check_model_arrays(model: Module, arrays: Mapping[str, np.ndarray], where: str
                       ) -> dict[str, np.ndarray]:
    """The ``model/...`` arrays, checked to fit ``model`` exactly (names, shapes, dtypes)
    and to be finite; nothing is copied."""
    given = take_group(arrays, "model")
    own = {name: param for name, param in model.named_parameters()}
    missing, unexpected = sorted(set(own) - set(given)), sorted(set(given) - set(own))
    if missing or unexpected:
        raise CheckpointError(f"{where}: model arrays do not match the model: missing "
                              f"{missing}, unexpected {unexpected}")
    for name, value in given.items():
        target = own[name]
        if tuple(value.shape) != tuple(target.shape) or value.dtype != target.dtype:
            raise CheckpointError(
                f"{where}: model/{name} expected {target.dtype}{tuple(target.shape)}, "
                f"got {value.dtype}{tuple(value.shape)}")
        if not np.isfinite(value).all():
            raise CheckpointError(f"{where}: model/{name} holds NaN or infinity")
    return given


def load_model_arrays(model: Module, arrays: Mapping[str, np.ndarray], where: str) -> None:
    """Copy ``model/...`` arrays into ``model`` after validating all of them."""
    given = check_model_arrays(model, arrays, where)
    own = {name: param for name, param in model.named_parameters()}
    for name, value in given.items():
        own[name][...] = model.xp.asarray(value)


def optimizer_arrays(state: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split an optimizer ``state_dict`` into arrays and JSON."""
    arrays = {}
    for pname, buffers in state["state"].items():
        for bname, value in buffers.items():
            arrays[f"optim/{pname}/{bname}"] = value
    meta = {k: v for k, v in state.items() if k != "state"}
    meta["params"] = list(state["state"])  # parameters without buffers have no arrays
    return arrays, meta


def optimizer_state(arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any], xp: Any
                    ) -> dict[str, Any]:
    """Rebuild an optimizer ``state_dict`` from :func:`optimizer_arrays`' output."""
    names = meta.get("params")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise CheckpointError("optimizer metadata has no list of parameter names")
    hyper = meta.get("hyper")
    eps = hyper.get("eps") if isinstance(hyper, dict) else None
    if type(eps) in (int, float) and eps == 0:
        # the optimizers accept eps=0 when built by hand (as PyTorch's do), but rnnlab's
        # trainer never sets it: a file saying 0 was edited, and its first zero gradient
        # would make 0/0 = NaN, reported later as a divergence
        raise CheckpointError(f"optimizer eps expected a number > 0, got {eps!r} (with eps = 0 "
                              f"a zero gradient gives 0/0)")
    state: dict[str, dict[str, Any]] = {name: {} for name in names}
    for key, value in take_group(arrays, "optim").items():
        pname, _, bname = key.rpartition("/")
        if pname not in state:
            raise CheckpointError(f"optimizer array {key!r} names an unknown parameter")
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise CheckpointError(f"optimizer array {key!r} holds NaN or infinity")
        state[pname][bname] = xp.asarray(value)
    # every step updates every parameter, so all of them hold the same buffers
    kinds = {name: sorted(bufs) for name, bufs in state.items()}
    if len({tuple(k) for k in kinds.values()}) > 1:
        full = max(kinds.values(), key=len)
        short = sorted(name for name, k in kinds.items() if k != full)
        raise CheckpointError(f"optimizer arrays are incomplete: parameters {short[:5]} lack "
                              f"some of the buffers {full}")
    return {**{k: v for k, v in meta.items() if k != "params"}, "state": state}


def state_arrays(model: RNNLM) -> dict[str, Any]:
    """The carried recurrent state as ``state/h`` (and ``state/c``)."""
    carried = model.get_state()
    if carried is None:
        return {}
    out = {"state/h": carried[0]}
    if carried[1] is not None:
        out["state/c"] = carried[1]
    return out


def restore_carried_state(model: RNNLM, arrays: Mapping[str, np.ndarray], where: str, *,
                          batch_size: int | None = None) -> None:
    """Set the model's carried state from ``state/h`` (and ``state/c``), checked first:
    names, shapes ``(num_layers, batch_size, hidden_size)``, dtype, finiteness."""
    group = take_group(arrays, "state")
    if not group:
        model.reset_state()
        return
    names = ("h", "c") if model.rnn.has_cell else ("h",)
    if sorted(group) != sorted(names):
        raise CheckpointError(f"{where}: carried state arrays {sorted(group)} do not fit the "
                              f"model's {model.config.cell} layer (expected {list(names)})")
    cfg = model.config
    for name in names:
        value = group[name]
        shape = tuple(value.shape)
        if (len(shape) != 3 or shape[0] != cfg.num_layers or shape[2] != cfg.hidden_size
                or (batch_size is not None and shape[1] != batch_size)):
            batch = batch_size if batch_size is not None else "N"
            raise CheckpointError(f"{where}: state/{name} expected shape ({cfg.num_layers}, "
                                  f"{batch}, {cfg.hidden_size}), got {shape}")
        if value.dtype != np.dtype(cfg.dtype):
            raise CheckpointError(f"{where}: state/{name} expected dtype {cfg.dtype}, got "
                                  f"{value.dtype}")
        if not np.isfinite(value).all():
            raise CheckpointError(f"{where}: state/{name} holds NaN or infinity")
    if "c" in group and group["c"].shape != group["h"].shape:
        raise CheckpointError(f"{where}: state/c has shape {group['c'].shape}, state/h "
                              f"{group['h'].shape}")
    try:
        xp = model.xp
        model.set_state((xp.asarray(group["h"]),
                         xp.asarray(group["c"]) if "c" in group else None))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: carried state does not fit the model ({exc})") from exc


_CONFIG_CHOICES = {"cell": tuple(CELL_KINDS),
                   "nonlinearity": ("tanh", "relu"),
                   "dtype": ("float32", "float64"), "init": ("pytorch", "book"),
                   "dropout_kind": ("step", "locked")}
_CONFIG_SIZES = ("vocab_size", "embedding_dim", "hidden_size", "num_layers")


def _is_real(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value)


def check_model_config(config: Any, where: str) -> dict[str, Any]:
    """The ``model_config`` document, every field checked for type and range.

    Fields left out take the :class:`RNNLMConfig` defaults; unknown fields are refused
    (by :meth:`RNNLMConfig.from_dict`).
    """
    if not isinstance(config, dict):
        raise CheckpointError(f"{where}: model_config expected a dict, got "
                              f"{type(config).__name__}")
    for key, value in config.items():
        bad = None
        if key in _CONFIG_SIZES:
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                bad = "an int >= 1"
        elif key in _CONFIG_CHOICES:
            if not isinstance(value, str) or value not in _CONFIG_CHOICES[key]:
                bad = f"one of {list(_CONFIG_CHOICES[key])}"
        elif key == "dropout":
            if not _is_real(value) or not 0 <= value < 1:
                bad = "a number in [0, 1)"
        elif key in ("tie_weights", "block"):
            if not isinstance(value, bool):
                bad = "true or false"
        elif key == "init_range" and value is not None and (not _is_real(value) or value <= 0):
            bad = "null or a number > 0"
        if bad is not None:
            raise CheckpointError(f"{where}: model_config.{key} expected {bad}, got {value!r}")
    return config


def weight_count(config: RNNLMConfig) -> int:
    """The numbers in the weight matrices of a model of this configuration (embedding,
    recurrent and output matrices; biases left out): a lower bound on its parameters."""
    V, E, H, L = config.vocab_size, config.embedding_dim, config.hidden_size, config.num_layers
    kind = CELL_KINDS.get(config.cell)
    G = kind.n_gates if kind is not None else 1
    if kind is not None and not kind.recurrent:  # input weights only (and the block's FF)
        ff = 8 * H * H * L if getattr(config, "block", False) else 0
        return V * E + G * H * E + G * H * H * (L - 1) + ff \
            + (0 if config.tie_weights else V * H)
    return V * E + G * H * E + G * H * H * (2 * L - 1) + (0 if config.tie_weights else V * H)


def check_fits_in_memory(config: RNNLMConfig) -> None:
    """Refuse (``ValueError``) sizes that cannot even be built in this machine's memory,
    before anything is allocated (instead of an out-of-memory kill). Building a model
    allocates every weight and its gradient (the initialisation draws a small chunk at a
    time into them), so it needs twice the weights' bytes; training needs more still
    (the optimizer's state, the activations), which this check does not promise."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        weights = weight_count(config)
        need = 2 * weights * np.dtype(config.dtype).itemsize
    except (ValueError, OSError, AttributeError, TypeError):
        return  # no figure for the memory, or sizes the model itself will refuse
    if need > total:
        c = config
        raise ValueError(f"RNNLM: vocab_size={c.vocab_size}, embedding_dim={c.embedding_dim}, "
                         f"hidden_size={c.hidden_size}, num_layers={c.num_layers} make at "
                         f"least {_count(weights)} weights, which with their gradients need "
                         f"{_count(need / 2**30)} GiB, more than this machine's memory "
                         f"({total / 2**30:,.1f} GiB)")


def _count(n: float) -> str:
    try:
        return f"{n:,.0f}" if n < 1e12 else f"{float(n):.3g}"
    except OverflowError:
        return "more than 1e308"


def check_model_size(config: RNNLMConfig, arrays: Mapping[str, np.ndarray], where: str
                     ) -> None:
    """Refuse a configuration whose weight matrices hold more numbers than the file's
    ``model/`` arrays (checked before anything is allocated)."""
    declared = weight_count(config)
    stored = sum(int(value.size) for value in take_group(arrays, "model").values())
    if declared > stored:
        raise CheckpointError(f"{where}: model_config declares at least {declared:,} weights, "
                              f"the file holds {stored:,} numbers in its model arrays")


def build_model(meta: Mapping[str, Any], where: str, device: str | None = None, *,
                arrays: Mapping[str, np.ndarray] | None = None, rng: Any = None) -> RNNLM:
    """An :class:`RNNLM` built from the checkpoint's ``model_config`` (weights not loaded).

    The configuration is checked first; with ``arrays`` (the file's), a model larger than
    what the file holds is refused before it is allocated.
    """
    config = check_model_config(meta_get(meta, "model_config", dict, where), where)
    try:
        parsed = RNNLMConfig.from_dict(config)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: model_config is invalid ({exc})") from exc
    if arrays is not None:
        check_model_size(parsed, arrays, where)
    try:
        return RNNLM.from_config(parsed, rng=rng, device=device)
    except (TypeError, ValueError, OverflowError) as exc:
        raise CheckpointError(f"{where}: model_config is invalid ({exc})") from exc


def load_model(path: str | Path, device: str | None = None) -> tuple[RNNLM, Any, dict[str, Any]]:
    """``(model, vocab, meta)`` from a checkpoint; the model is in eval mode."""
    arrays, meta = read_checkpoint(path)
    where = f"checkpoint {str(path)!r}"
    if meta.get("kind") != "rnnlm":
        raise CheckpointError(f"{where}: holds a {meta.get('kind')!r} model, expected 'rnnlm'")
    model = build_model(meta, where, device, arrays=arrays)
    load_model_arrays(model, arrays, where)
    try:
        vocab = Vocab.from_dict(meta_get(meta, "vocab", dict, where))
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{where}: vocabulary is invalid ({exc})") from exc
    if len(vocab) != model.config.vocab_size:
        raise CheckpointError(f"{where}: vocabulary has {len(vocab)} entries, the model "
                              f"{model.config.vocab_size}")
    model.eval()
    return model, vocab, meta


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return dict(rng.bit_generator.state)


def restore_rng(rng: np.random.Generator, state: Any, where: str) -> None:
    try:
        rng.bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise CheckpointError(f"{where}: random generator state is invalid ({exc})") from exc


def host(arrays: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return {k: to_numpy(v) for k, v in arrays.items()}
