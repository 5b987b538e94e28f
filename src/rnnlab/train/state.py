"""What a language-model checkpoint holds, and how it is taken apart and put back.

Array names::

    model/<parameter name>       every parameter once (tied arrays under their first name)
    optim/<parameter>/<buffer>   optimizer buffers (momentum, Adam moments ...)
    state/h, state/c             the recurrent state carried between windows (if any)

JSON metadata: ``kind`` ("rnnlm"), ``model_config``, ``vocab``, and for training runs
``train_config``, ``data_config``, ``optimizer`` (type, hyper-parameters, step),
``scheduler``, ``rng`` (bit-generator state), ``data`` (batcher position), ``progress``.
Loading checks names, shapes, dtypes and finiteness before anything is copied.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.backend import to_numpy
from rnnlab.models.rnnlm import RNNLM, RNNLMConfig
from rnnlab.nn import Module
from rnnlab.train.checkpoint import CheckpointError, meta_get, read_checkpoint, take_group


def model_arrays(model: Module) -> dict[str, Any]:
    """``model/<name>`` for every parameter (shared arrays once)."""
    return {f"model/{name}": param for name, param, _ in model.named_parameters()}


def check_finite_params(model: Module) -> None:
    """Refuse to save a model holding NaN or infinity (a diverged state)."""
    for name, param, _ in model.named_parameters():
        if not bool(model.xp.isfinite(param).all()):
            raise CheckpointError(f"refusing to save: parameter {name!r} holds NaN or infinity")


def load_model_arrays(model: Module, arrays: Mapping[str, np.ndarray], where: str) -> None:
    """Copy ``model/...`` arrays into ``model`` after validating all of them."""
    given = take_group(arrays, "model")
    own = {name: param for name, param, _ in model.named_parameters()}
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
    state: dict[str, dict[str, Any]] = {name: {} for name in names}
    for key, value in take_group(arrays, "optim").items():
        pname, _, bname = key.rpartition("/")
        if pname not in state:
            raise CheckpointError(f"optimizer array {key!r} names an unknown parameter")
        state[pname][bname] = xp.asarray(value)
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


def restore_carried_state(model: RNNLM, arrays: Mapping[str, np.ndarray], where: str) -> None:
    group = take_group(arrays, "state")
    if not group:
        model.reset_state()
        return
    if "h" not in group or (model.rnn.has_cell != ("c" in group)):
        raise CheckpointError(f"{where}: carried state arrays {sorted(group)} do not fit the "
                              f"model's {model.config.cell} layer")
    try:
        xp = model.xp
        model.set_state((xp.asarray(group["h"]),
                         xp.asarray(group["c"]) if "c" in group else None))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: carried state does not fit the model ({exc})") from exc


def build_model(meta: Mapping[str, Any], where: str, device: str | None = None) -> RNNLM:
    """An :class:`RNNLM` built from the checkpoint's ``model_config`` (weights not loaded)."""
    config = meta_get(meta, "model_config", dict, where)
    try:
        return RNNLM.from_config(RNNLMConfig.from_dict(config), device=device)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: model_config is invalid ({exc})") from exc


def load_model(path: str | Path, device: str | None = None) -> tuple[RNNLM, Any, dict[str, Any]]:
    """``(model, vocab, meta)`` from a checkpoint; the model is in eval mode."""
    from rnnlab.data import Vocab

    arrays, meta = read_checkpoint(path)
    where = f"checkpoint {str(path)!r}"
    if meta.get("kind") != "rnnlm":
        raise CheckpointError(f"{where}: holds a {meta.get('kind')!r} model, expected 'rnnlm'")
    model = build_model(meta, where, device)
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
    return rng.bit_generator.state


def restore_rng(rng: np.random.Generator, state: Any, where: str) -> None:
    try:
        rng.bit_generator.state = state
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{where}: random generator state is invalid ({exc})") from exc


def host(arrays: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return {k: to_numpy(v) for k, v in arrays.items()}
