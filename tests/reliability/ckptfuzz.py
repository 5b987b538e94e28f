"""Hostile checkpoint files made from real rnnlab checkpoints, and the harness that feeds
each of them to every loader.

The seeds are real runs (:func:`make_seeds`): an LSTM with Adam, a GRU with momentum SGD
and the plateau schedule, a ReLU RNN with RMSprop and the cosine schedule, a tied float64
LSTM with AdaGrad and the exponential schedule (``last.safetensors`` of each, with the full
training state and a carried recurrent state), and a ``best.safetensors`` (model only).

:func:`generate_cases` turns them into :class:`Case` s: a fixed catalogue (foreign formats,
pickles, JSON bombs, hand-made safetensors headers, every kind of wrong array, wrong
configuration, wrong vocabulary, wrong training state, bad ``best.safetensors``) followed
by random mutations (flipped bytes, cut files, random arrays, random metadata values).
Each case says which loaders *must* refuse it (``must_reject``); the others may refuse or
accept it, but every loader may only ever raise ``CheckpointError``.

:func:`run_case` writes the case into a run folder and calls, in turn,

* ``read``: :func:`rnnlab.train.checkpoint.read_checkpoint`,
* ``model``: :func:`rnnlab.train.state.load_model` (if it accepts, the model must generate),
* ``cli``: ``rnnlab generate CKPT`` in process (exit 0, or 1 with one ``rnnlab: error:`` line),
* ``restore``: :meth:`rnnlab.train.Trainer.restore` on a trainer built like the seed's run
  (if it accepts, one more training step and a save must work),
* ``resume``: :func:`rnnlab.families.lm.resume_run` (``rnnlab train --resume``),
* ``seq2seq``: the seq2seq checkpoint loader, when one exists,

while an audit hook watches for code being run (unpickling, ``exec``, processes) and
``tracemalloc`` measures the peak of the memory allocated.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import json
import os
import pickle
import signal
import sys
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tests.ckptdoc import document_metadata

LOADERS = ("read", "model", "cli", "restore", "resume")
ALL = frozenset(LOADERS) | {"seq2seq"}  # "seq2seq" runs when the package has its loader
MODEL = frozenset({"model", "cli", "restore", "resume"})
S2S = frozenset({"seq2seq"})
TRAIN = frozenset({"restore", "resume"})
RESTORE = frozenset({"restore"})
RESUME = frozenset({"resume"})
NONE: frozenset[str] = frozenset()

#: The bound asserted on the memory a case allocates (tracemalloc peak, all loaders):
#: a constant for building a model, a trainer and a text sample, plus a multiple of the
#: file's size (arrays are read whole; JSON expands into Python objects).
MEMORY_BASE = 16 * 2**20
MEMORY_SLOPE = 48

TEXT = ("the quick brown fox jumps over the lazy dog\n"
        "pack my box with five dozen liquor jugs\n"
        "how vexingly quick daft zebras jump\n") * 12

#: Events that mean code from a file is being run (or a process started).
DANGEROUS_EVENTS = frozenset({
    "pickle.find_class", "exec", "compile", "os.system", "subprocess.Popen", "os.exec",
    "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "ctypes.dlopen",
    "marshal.loads", "code.__new__",
})

SEED_SPECS: tuple[tuple[str, dict[str, Any], dict[str, Any]], ...] = (
    ("lstm-adam", {"cell": "lstm", "embedding_dim": 8, "hidden_size": 12, "num_layers": 2,
                   "dropout": 0.1}, {"optimizer": "adam", "lr": 0.01}),
    ("gru-sgd-plateau", {"cell": "gru", "embedding_dim": 8, "hidden_size": 10},
     {"optimizer": "sgd", "lr": 0.5, "momentum": 0.9, "schedule": "plateau"}),
    ("rnn-rmsprop-cosine", {"cell": "rnn", "embedding_dim": 6, "hidden_size": 9,
                            "num_layers": 2, "nonlinearity": "relu"},
     {"optimizer": "rmsprop", "lr": 0.003, "momentum": 0.5, "schedule": "cosine",
      "warmup_steps": 3}),
    ("lstm-tied-f64", {"cell": "lstm", "embedding_dim": 10, "hidden_size": 10,
                       "tie_weights": True, "dtype": "float64"},
     {"optimizer": "adagrad", "lr": 0.05, "schedule": "exp", "decay_start": 1}),
)


# ---------------------------------------------------------------------- seeds
@dataclass
class Seed:
    """A real checkpoint to mutate, and how to rebuild the run that wrote it."""

    name: str
    data: bytes
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]
    training_state: bool
    best: bytes  # the run's best.safetensors
    kind: str = "rnnlm"  # or "seq2seq"

    @property
    def header_len(self) -> int:
        return int.from_bytes(self.data[:8], "little")


def train_kw(extra: dict[str, Any]) -> dict[str, Any]:
    return {"epochs": 2, "batch_size": 4, "bptt": 8, "eval_batch_size": 2, "progress": False,
            "seed": 0, "log_every": 1000, "checkpoint_every": 1000, "snapshot_every": 5,
            **extra}


def make_seeds(root: Path) -> list[Seed]:
    """Train the seed runs under ``root`` (about a second) and read their files."""
    from rnnlab.families.lm import load_data
    from rnnlab.models.rnnlm import RNNLM, RNNLMConfig
    from rnnlab.train import DataConfig, TrainConfig, Trainer
    from rnnlab.train.checkpoint import read_checkpoint

    root.mkdir(parents=True, exist_ok=True)
    text = root / "corpus.txt"
    text.write_text(TEXT, encoding="utf-8")
    data_cfg = DataConfig(corpus=str(text), level="char")
    corpus = load_data(data_cfg)
    seeds = []
    for name, model_kw, extra in SEED_SPECS:
        cfg = TrainConfig(**train_kw(extra))
        model = RNNLM.from_config(RNNLMConfig(vocab_size=len(corpus.vocab), **model_kw),
                                  rng=cfg.seed)
        run = root / name
        trainer = Trainer(model, corpus, cfg, run, data_config=data_cfg, echo=lambda m: None)
        trainer.config = replace(cfg, max_steps=len(trainer.batcher) + 3)
        trainer.fit()
        last, best = (run / "last.safetensors").read_bytes(), (run / "best.safetensors")
        arrays, meta = read_checkpoint(run / "last.safetensors")
        meta["train_config"]["max_steps"] = None  # the seed run as it would be resumed
        seeds.append(Seed(name, last, arrays, meta, True, best.read_bytes()))
        if name == "lstm-adam":
            b_arrays, b_meta = read_checkpoint(best)
            seeds.append(Seed("lstm-adam-best", best.read_bytes(), b_arrays, b_meta, False,
                              best.read_bytes()))
    return seeds + seq2seq_seeds(root)


def seq2seq_seeds(root: Path) -> list[Seed]:
    """Two seq2seq checkpoints (peeky LSTM; bidirectional GRU with attention), if the
    package and its checkpoint functions exist."""
    try:
        from rnnlab.seq2seq import Codec, Pairs, Seq2Seq, Seq2SeqConfig
        from rnnlab.seq2seq.training import save_checkpoint
    except ImportError:
        return []
    from rnnlab.train.checkpoint import read_checkpoint

    rng = np.random.default_rng(0)
    qs = ["".join(rng.choice(list("abcd"), size=int(rng.integers(1, 5)))) for _ in range(40)]
    pairs = Pairs(qs, [q[::-1] for q in qs])
    codec = Codec.build(pairs)
    seeds = []
    for name, kw in (("s2s-peeky", {"decoder": "peeky"}),
                     ("s2s-attention-gru", {"decoder": "attention", "cell": "gru",
                                            "bidirectional": True})):
        model = Seq2Seq(Seq2SeqConfig(len(codec.vocab), 8, 12, **kw), rng=0)
        path = root / f"{name}.safetensors"
        save_checkpoint(path, model, codec, data={"task": "reverse"})
        arrays, meta = read_checkpoint(path)
        seeds.append(Seed(name, path.read_bytes(), arrays, meta, False, b"", kind="seq2seq"))
    return seeds


# ---------------------------------------------------------------------- cases
@dataclass
class Case:
    """One hostile file. ``payload`` is written as the checkpoint (``target="checkpoint"``)
    or as the run's ``best.safetensors`` next to a valid checkpoint (``target="best"``);
    ``special`` makes a path that is not a regular file instead."""

    category: str
    detail: str
    seed: str
    payload: bytes | Callable[[], bytes] | None  # made when the case runs (saves memory)
    must_reject: frozenset[str]
    target: str = "checkpoint"
    special: str | None = None
    index: int = -1
    must_accept: frozenset[str] = NONE


def lazy(make: Callable[..., bytes], *args: Any, **kw: Any) -> Callable[[], bytes]:
    """``make(*args, **kw)``, called when the case runs."""
    return functools.partial(make, *args, **kw)


def encode(arrays: dict[str, np.ndarray], meta: Any, **extra_metadata: str) -> bytes:
    """A safetensors file; ``meta`` is a document (dumped with NaN allowed) or raw text."""
    from safetensors.numpy import save

    doc = meta if isinstance(meta, str) else json.dumps(meta, allow_nan=True)
    return save({k: np.ascontiguousarray(v) for k, v in arrays.items()},
                metadata={**document_metadata(doc), **extra_metadata})


def raw(header: Any, body: bytes, *, header_text: bytes | None = None,
        length: int | None = None) -> bytes:
    """A hand-made safetensors file: 8-byte length, header JSON, data."""
    text = header_text if header_text is not None else json.dumps(header).encode()
    n = len(text) if length is None else length
    return n.to_bytes(8, "little", signed=False) + text + body


def layout(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> tuple[dict, bytes]:
    """The header dict and data of a valid file (to be damaged by hand)."""
    header: dict[str, Any] = {"__metadata__": document_metadata(meta)}
    body = bytearray()
    codes = {"float32": "F32", "float64": "F64", "int32": "I32", "int64": "I64",
             "uint8": "U8", "bool": "BOOL"}
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        header[name] = {"dtype": codes[a.dtype.name], "shape": list(a.shape),
                        "data_offsets": [len(body), len(body) + a.nbytes]}
        body += a.tobytes()
    return header, bytes(body)


class _Boom:
    """Unpickling this would create the marker file (it must never happen)."""

    marker = ""

    def __reduce__(self) -> Any:
        return (open, (self.marker, "w"))


def pickles(marker: Path) -> list[tuple[str, bytes]]:
    boom = _Boom()
    boom.marker = str(marker)
    out = [(f"pickle protocol {p}", pickle.dumps(boom, protocol=p)) for p in range(6)]
    out.append(("pickle of os.system", b"cos\nsystem\n(S'touch " + str(marker).encode()
                + b"'\ntR."))
    out.append(("pickle of a dict of arrays", pickle.dumps({"w": np.zeros(3)})))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:  # the layout of a torch.save file
        zf.writestr("archive/data.pkl", pickle.dumps(boom))
        zf.writestr("archive/version", "3\n")
    out.append(("torch-style zip with data.pkl", buf.getvalue()))
    buf = io.BytesIO()
    np.save(buf, np.array([boom, 1], dtype=object), allow_pickle=True)
    out.append((".npy with an object array", buf.getvalue()))
    buf = io.BytesIO()
    np.savez(buf, w=np.zeros(3, np.float32))
    out.append((".npz archive", buf.getvalue()))
    return out


def _nan_at(a: np.ndarray, rng: np.random.Generator, value: float) -> np.ndarray:
    b = a.copy()
    if b.size:
        b.reshape(-1)[int(rng.integers(b.size))] = value
    return b


def array_mutations(a: np.ndarray, rng: np.random.Generator
                    ) -> list[tuple[str, np.ndarray | None, bool]]:
    """``(what, new array or None for "drop it", changes validity)`` for one array."""
    out: list[tuple[str, np.ndarray | None, bool]] = [("dropped", None, True)]
    if a.dtype.kind == "f" and a.size:
        out += [("one NaN", _nan_at(a, rng, np.nan), True),
                ("one +inf", _nan_at(a, rng, np.inf), True),
                ("one -inf", _nan_at(a, rng, -np.inf), True),
                ("all NaN", np.full_like(a, np.nan), True),
                ("huge finite value", _nan_at(a, rng, float(np.finfo(a.dtype).max) / 2), False),
                ("subnormal value", _nan_at(a, rng, float(np.finfo(a.dtype).smallest_subnormal)),
                 False)]
    other = np.float64 if a.dtype == np.float32 else np.float32
    out += [(f"as {np.dtype(other).name}", a.astype(other), True),
            ("as int32", a.astype(np.int32), True), ("as int64", a.astype(np.int64), True),
            ("as uint8", a.astype(np.uint8), True), ("as bool", a.astype(bool), True),
            ("as float16", a.astype(np.float16), True)]
    if a.ndim >= 1 and a.shape[0] > 1:
        out += [("one row fewer", a[:-1].copy(), True),
                ("one row more", np.concatenate([a, a[:1]]), True)]
    if a.ndim == 2 and a.shape[0] != a.shape[1]:
        out.append(("transposed", np.ascontiguousarray(a.T), True))
    if a.ndim >= 2:
        out.append(("flattened", a.reshape(-1).copy(), True))
    out += [("scalar", a.reshape(-1)[:1].reshape(()).copy() if a.size else np.zeros((), a.dtype),
             True),
            ("empty", a.reshape(-1)[:0].copy(), True),
            ("extra axis", a[None].copy(), True)]
    return out


def group_reject(name: str, changes: bool, training_state: bool) -> frozenset[str]:
    if not changes:
        return NONE
    group = name.split("/", 1)[0]
    if group == "model":
        return MODEL
    if group in ("optim", "state") and training_state:
        return TRAIN
    return NONE


def _set(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """``doc`` with ``value`` at ``path`` (``_DELETE`` removes it); the dicts on the path
    are copied, the rest is shared (documents are only dumped, never changed)."""
    out = dict(doc)
    node = out
    for key in path[:-1]:
        node[key] = dict(node[key])
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


_DELETE = object()
BAD_VALUES: tuple[Any, ...] = (None, -1, 0, True, "x", 1.5, [], {}, 2**63, -(2**70),
                               float("nan"), float("inf"))


def _config_defaults() -> dict[str, Any]:
    from dataclasses import MISSING, fields

    from rnnlab.models.rnnlm import RNNLMConfig

    return {f.name: f.default for f in fields(RNNLMConfig) if f.default is not MISSING}


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values of the same kind (``0 == 0.0``, but ``True != 1``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a is b or (type(a) in (int, float) and type(b) in (int, float) and a == b) or \
        (type(a) is type(b) and a == b)


def _meta_cases(seed: Seed) -> Iterator[tuple[str, str, Any, frozenset[str]]]:
    """``(category, detail, new meta, must_reject)`` for the catalogue."""
    meta, ts = seed.meta, seed.training_state
    train = TRAIN if ts else NONE
    mc = meta["model_config"]
    # ---- format, version, kind
    for value in ("rnnlab-checkpoint-v0", None, 5, _DELETE):
        yield "format", f"format={value!r}", _set(meta, ("format",), value), ALL
    for value in (0, 2, "1", 1.0, None, _DELETE, True):
        if value == 1 and not isinstance(value, bool) and type(value) is float:
            continue  # JSON 1.0 parses back to a float, which is a wrong type: still refused
        yield "format", f"version={value!r}", _set(meta, ("version",), value), ALL
    for value in ("seq2seq", None, 5, _DELETE):
        yield "wrong kind", f"kind={value!r}", _set(meta, ("kind",), value), MODEL
    # ---- missing top-level keys
    for key in sorted(meta):
        if key in ("format", "version", "kind"):
            continue
        must = {"model_config": MODEL, "vocab": MODEL, "train_config": RESUME if ts else NONE,
                "data_config": RESUME if ts else NONE}.get(key, train)
        if key == "scheduler" and meta.get("scheduler") is None:
            must = NONE
        wrong = must
        if key == "corpus_digest":
            # absent in older checkpoints: Trainer.restore goes on (nothing to compare);
            # resume refuses to read the corpus path without it; a wrong one is refused
            must, wrong = (RESUME if ts else NONE), train
        if key == "corpus_bytes":  # only resume reads it (a check before the corpus path)
            must, wrong = NONE, (RESUME if ts else NONE)
        yield "missing key", f"meta[{key!r}] deleted", _set(meta, (key,), _DELETE), must
        yield "wrong type", f"meta[{key!r}] = 'x'", _set(meta, (key,), "x"), wrong
    yield "extra key", "unknown top-level key", {**meta, "zzz": {"a": [1, 2]}}, NONE
    # ---- model config
    defaults = _config_defaults()
    for key in sorted(mc):
        for value in BAD_VALUES:
            if _same(value, mc[key]):
                continue
            must = MODEL
            if (key == "init_range" and value in (1.5, 2**63)) or (key, value) == ("dropout", 0):
                must = RESTORE  # a valid value, a different model: restore refuses
            yield "wrong model config", f"model_config.{key}={value!r}", \
                _set(meta, ("model_config", key), value), must
        # a field left out takes its default: refused by load_model only if that differs
        shaping = key not in ("dropout", "init_range", "init", "nonlinearity")
        must = MODEL if shaping and not _same(defaults.get(key, _DELETE), mc[key]) else RESTORE
        yield "missing key", f"model_config.{key} deleted", \
            _set(meta, ("model_config", key), _DELETE), must
    for key, delta in (("hidden_size", 1), ("hidden_size", -1), ("embedding_dim", 1),
                       ("vocab_size", 1), ("vocab_size", -1), ("num_layers", 1)):
        yield "wrong model config", f"model_config.{key}{delta:+d}", \
            _set(meta, ("model_config", key), mc[key] + delta), MODEL
    for cell in ("lstm", "gru", "rnn"):
        if cell != mc["cell"]:
            yield "wrong model config", f"cell {mc['cell']} -> {cell}", \
                _set(meta, ("model_config", "cell"), cell), MODEL
    yield "wrong model config", "dtype flipped", _set(meta, ("model_config", "dtype"), {
        "float32": "float64", "float64": "float32"}[mc["dtype"]]), MODEL
    for key, value in (("hidden_size", 10**5), ("hidden_size", 3000), ("vocab_size", 10**9),
                       ("embedding_dim", 10**7), ("num_layers", 10**5),
                       ("vocab_size", 2**62)):
        yield "huge declared size", f"model_config.{key}={value}", \
            _set(meta, ("model_config", key), value), MODEL
    yield "extra key", "model_config has an unknown key", \
        _set(meta, ("model_config", "bogus"), 1), MODEL
    # ---- vocabulary
    itos = meta["vocab"]["itos"]
    vocab_cases = [
        ("duplicate token", _set(meta, ("vocab", "itos"), [*itos[:-1], itos[2]]), MODEL),
        ("one token fewer", _set(meta, ("vocab", "itos"), itos[:-1]), MODEL),
        ("one token more", _set(meta, ("vocab", "itos"), [*itos, "\u2603"]), MODEL),
        ("two tokens swapped", _set(meta, ("vocab", "itos"),
                                    [*itos[:2], itos[3], itos[2], *itos[4:]]), train),
        ("a token renamed", _set(meta, ("vocab", "itos"), [*itos[:-1], "\u2603"]), train),
        ("empty token", _set(meta, ("vocab", "itos"), [*itos[:-1], ""]), MODEL),
        ("non-string token", _set(meta, ("vocab", "itos"), [*itos[:-1], 7]), MODEL),
        ("two-character token at char level", _set(meta, ("vocab", "itos"),
                                                   [*itos[:-1], "ab"]), MODEL),
        ("lone surrogate token", _set(meta, ("vocab", "itos"), [*itos[:-1], "\ud800"]), train),
        ("itos not a list", _set(meta, ("vocab", "itos"), "abc"), MODEL),
        ("level word", _set(meta, ("vocab", "level"), "word"), train),
        ("level nonsense", _set(meta, ("vocab", "level"), "byte"), MODEL),
        ("specials not in itos", _set(meta, ("vocab", "specials"), ["<pad>"]), MODEL),
        ("wrong vocab format", _set(meta, ("vocab", "format"), "x"), MODEL),
        ("vocab is a list", _set(meta, ("vocab",), itos), MODEL),
        ("vocab is null", _set(meta, ("vocab",), None), MODEL),
    ]
    for detail, doc, must in vocab_cases:
        yield "wrong vocabulary", detail, doc, must
    if not ts:
        return
    # ---- training state
    prog = meta["progress"]
    for key in sorted(prog):
        for value in ("x", -1, [], None, True, 1.5, float("nan"), float("inf")):
            if key in ("best_valid", "last_valid", "running_loss") and (
                    value is None or value == 1.5 or value == -1):
                continue  # valid values
            if key == "finished" and value is True:
                continue
            yield "wrong training state", f"progress.{key}={value!r}", \
                _set(meta, ("progress", key), value), TRAIN
        yield "missing key", f"progress.{key} deleted", _set(meta, ("progress", key), _DELETE), \
            TRAIN
    yield "extra key", "progress has an unknown key", _set(meta, ("progress", "zzz"), 1), TRAIN
    yield "valid but different", "progress.step=10**6", _set(meta, ("progress", "step"), 10**6), \
        NONE
    data = meta["data"]
    windows = -(-((data["num_ids"] - 1) // data["batch_size"]) // data["bptt"])
    for key, values in (("position", (-1, windows + 1, "x", True, 1.5, None, 2**70)),
                        ("epoch", (-1, "x", 1.5, float("inf"), None, 10**400 // 10**380)),
                        ("batch_size", (data["batch_size"] + 1, 0, "x")),
                        ("bptt", (data["bptt"] * 2,)), ("num_ids", (data["num_ids"] + 1,)),
                        ("drop_last", (True,))):
        for value in values:
            must = TRAIN
            if key == "epoch" and isinstance(value, int) and value > 10**10:
                must = NONE  # a very large epoch count is still an epoch count
            yield "wrong training state", f"data.{key}={value!r}", \
                _set(meta, ("data", key), value), must
    yield "missing key", "data.position deleted", _set(meta, ("data", "position"), _DELETE), TRAIN
    yield "valid but different", "data.position=0", _set(meta, ("data", "position"), 0), NONE
    opt = meta["optimizer"]
    for path, value in ((("type",), "SGD" if opt["type"] != "SGD" else "Adam"),
                        (("type",), None), (("hyper", "lr"), -1.0), (("hyper", "lr"), "x"),
                        (("hyper", "lr"), float("nan")), (("hyper", "lr"), float("inf")),
                        (("hyper",), {}), (("hyper", "zzz"), 1), (("step",), -1),
                        (("step",), "x"), (("step",), 1.5), (("params",), "x"),
                        (("params",), [*opt["params"], "ghost"]), (("params",), opt["params"][1:]),
                        (("params",), [7]), (("params",), _DELETE), (("zzz",), 1)):
        yield "wrong training state", f"optimizer.{'.'.join(path)}={value!r}" if \
            value is not _DELETE else f"optimizer.{'.'.join(path)} deleted", \
            _set(meta, ("optimizer", *path), value), TRAIN
    rng = meta["rng"]
    rng_values: list[tuple[str, Any]] = [
        ("bit_generator MT19937", {**rng, "bit_generator": "MT19937"}),
        ("state too large", {**rng, "state": {"state": 2**200, "inc": 3}}),
        ("state negative", {**rng, "state": {"state": -5, "inc": 3}}),
        ("state a string", {**rng, "state": {"state": "x", "inc": 3}}),
        ("inc missing", {**rng, "state": {"state": 5}}),
        ("state a list", {**rng, "state": [1, 2]}),
        ("rng is a list", [1, 2]), ("rng is null", None),
        ("has_uint32 a string", {**rng, "has_uint32": "x"}),
    ]
    for detail, value in rng_values:
        yield "wrong training state", f"rng: {detail}", _set(meta, ("rng",), value), TRAIN
    yield "valid but different", "rng: another valid state", _set(meta, ("rng",), {
        **rng, "state": {"state": 12345, "inc": 6789}}), NONE
    sched = meta.get("scheduler")
    if sched is not None:
        for key in sorted(sched):
            for value in ("x", -1, None, []):
                if key == "best" and value in (-1, None):
                    continue  # valid: no best yet, or a loss
                yield "wrong training state", f"scheduler.{key}={value!r}", \
                    _set(meta, ("scheduler", key), value), TRAIN
    tc = meta["train_config"]
    for key, value in (("lr", -1.0), ("batch_size", 0), ("optimizer", "lbfgs"), ("zzz", 1),
                       ("bptt", "x"), ("epochs", None)):
        if key in tc or key == "zzz":
            yield "wrong train config", f"train_config.{key}={value!r}", \
                _set(meta, ("train_config", key), value), RESUME
    for key, value in (("corpus", str(Path("/nonexistent") / "corpus.txt")), ("level", "byte"),
                       ("zzz", 1), ("max_chars", -5), ("min_freq", "x")):
        yield "wrong data config", f"data_config.{key}={value!r}", \
            _set(meta, ("data_config", key), value), RESUME


def _json_bombs(seed: Seed) -> Iterator[tuple[str, str, bytes, frozenset[str]]]:
    arrays, meta = seed.arrays, seed.meta
    base = json.dumps(meta)
    yield "JSON bomb", "nesting 100,000 arrays deep", \
        lazy(encode, arrays, "[" * 10**5 + "]" * 10**5), ALL
    yield "JSON bomb", "nesting 50,000 objects deep", \
        lazy(encode, arrays, '{"a":' * 50_000 + "1" + "}" * 50_000), ALL
    yield "JSON bomb", "a 100,000-digit integer", \
        lazy(encode, arrays, base[:-1] + ', "zzz": ' + "9" * 100_000 + "}"), ALL
    yield "JSON bomb", "a 5,000-digit progress.step", \
        lazy(encode, arrays, base.replace('"step": ', '"step": ' + "9" * 5000, 1)), ALL
    doc = json.dumps(_set(meta, ("progress", "running_loss"), 12345.5)).replace("12345.5",
                                                                                "1e999")
    yield "JSON bomb", "1e999 (infinity) as running_loss", lazy(encode, arrays, doc), \
        TRAIN if seed.training_state else NONE
    yield "JSON bomb", "200,000 empty lists", \
        lazy(encode, arrays, base[:-1] + ', "zzz": [' + ",".join(["[]"] * 200_000) + "]}"), NONE
    yield "JSON bomb", "100,000 keys", \
        lazy(encode, arrays, base[:-1] + ', "zzz": {' + ",".join(
            f'"k{i}": 0' for i in range(100_000)) + "}}"), NONE
    yield "JSON bomb", "a 4 MB string", \
        lazy(encode, arrays, base[:-1] + ', "zzz": "' + "a" * 4_000_000 + '"}'), NONE
    yield "JSON bomb", "duplicate format key", \
        lazy(encode, arrays, '{"format": "evil", ' + base[1:]), NONE
    yield "JSON bomb", "top level is a list", lazy(encode, arrays, "[" + base + "]"), ALL
    yield "JSON bomb", "top level is a string", lazy(encode, arrays, json.dumps(base)), ALL
    yield "JSON bomb", "empty document", lazy(encode, arrays, ""), ALL
    yield "JSON bomb", "trailing garbage", lazy(encode, arrays, base + " }"), ALL
    yield "JSON bomb", "NaN literal as lr", \
        lazy(encode, arrays, json.dumps(_set(meta, ("train_config", "lr"), float("nan")))), \
        RESUME if seed.training_state else NONE


def _header_cases(seed: Seed) -> Iterator[tuple[str, str, bytes, frozenset[str]]]:
    header, body = layout(seed.arrays, seed.meta)
    name = sorted(seed.arrays)[0]
    info = header[name]
    n = info["data_offsets"][1] - info["data_offsets"][0]

    def edit(detail: str, **changes: Any) -> tuple[str, str, bytes, frozenset[str]]:
        h = copy.deepcopy(header)
        h[name] = {**info, **changes}
        for key, value in changes.items():
            if value is _DELETE:
                del h[name][key]
        return "bad safetensors header", detail, lazy(raw, h, body), ALL

    for dtype in ("BF16", "F16", "F8_E4M3", "C64", "I8", "U16", "Q7", "f32", "", None):
        if dtype == "F16":
            yield edit("dtype F16 with the byte size of F32", dtype=dtype)
        else:
            yield edit(f"dtype {dtype!r}", dtype=dtype)
    yield edit("declares shape 2^40 x 2^40", shape=[2**40, 2**40])
    yield edit("declares shape 2^62", shape=[2**62])
    yield edit("negative shape", shape=[-1, n // 4])
    yield edit("shape is a string", shape="x")
    yield edit("fractional shape", shape=[1.5])
    yield edit("offsets past the end", data_offsets=[0, len(body) + 4096])
    yield edit("offsets 0..2^62", data_offsets=[0, 2**62])
    yield edit("offsets reversed", data_offsets=[info["data_offsets"][1],
                                                 info["data_offsets"][0]])
    yield edit("negative offset", data_offsets=[-4, n - 4])
    yield edit("offsets not integers", data_offsets=["a", "b"])
    yield edit("offsets missing", data_offsets=_DELETE)
    yield edit("dtype missing", dtype=_DELETE)
    h = copy.deepcopy(header)
    h[sorted(seed.arrays)[1]]["data_offsets"] = info["data_offsets"]
    yield "bad safetensors header", "two tensors share bytes", lazy(raw, h, body), ALL
    text = json.dumps(header).encode()
    yield "bad safetensors header", "header padded with spaces", lazy(raw, None, body,
                                                                     header_text=text + b"    "), \
        NONE
    yield "bad safetensors header", "byte-order mark before the header", \
        lazy(raw, None, body, header_text=b"\xef\xbb\xbf" + text), ALL
    yield "bad safetensors header", "header is not UTF-8", \
        lazy(raw, None, body,
             header_text=text.replace(b'"__metadata__"', b'"__met\xff\xfe__"')), ALL
    yield "bad safetensors header", "header is not JSON", \
        lazy(raw, None, body, header_text=b"<xml>" + text[5:]), ALL
    h = copy.deepcopy(header)
    h["__metadata__"] = {"rnnlab": 5}
    yield "bad safetensors header", "metadata value not a string", lazy(raw, h, body), ALL
    h["__metadata__"] = ["rnnlab"]
    yield "bad safetensors header", "metadata is a list", lazy(raw, h, body), ALL
    for length, detail in ((0, "length 0"), (1, "length 1"), (len(text) - 1, "one short"),
                           (len(text) + 1, "one long"), (2**32, "2^32"),
                           (2**64 - 1, "2^64 - 1"), (len(text) + len(body), "whole file")):
        yield "bad header length", detail, \
            lazy(raw, None, body, header_text=text, length=length), ALL
    yield "bad safetensors header", "body truncated by one byte", lazy(raw, header, body[:-1]), ALL
    yield "bad safetensors header", "body one byte longer", lazy(raw, header, body + b"\0"), ALL


def _foreign(marker: Path, rng: np.random.Generator) -> Iterator[tuple[str, str, bytes]]:
    from safetensors.numpy import save

    yield "foreign file", "empty file", b""
    for k in (1, 7, 8):
        yield "foreign file", f"{k} zero bytes", b"\0" * k
    yield "foreign file", "100 random bytes", rng.bytes(100)
    yield "foreign file", "10,000 random bytes", rng.bytes(10_000)
    yield "foreign file", "PNG signature", b"\x89PNG\r\n\x1a\n" + rng.bytes(64)
    yield "foreign file", "HDF5 signature", b"\x89HDF\r\n\x1a\n" + rng.bytes(64)
    yield "foreign file", "JSON text", json.dumps({"format": "rnnlab-checkpoint"}).encode()
    yield "foreign file", "Python source", b"import os\nos.system('touch " + \
        str(marker).encode() + b"')\n"
    yield "foreign file", "safetensors without metadata", save({"a": np.zeros(3, np.float32)})
    yield "foreign file", "safetensors with other metadata", \
        save({"a": np.zeros(3, np.float32)}, metadata={"format": "pt"})
    yield "foreign file", "safetensors with no tensors and no metadata", save({})
    for detail, payload in pickles(marker):
        yield "pickle payload renamed", detail, payload


def _catalogue(all_seeds: list[Seed], marker: Path, rng: np.random.Generator
               ) -> Iterator[Case]:
    seeds = [s for s in all_seeds if s.kind == "rnnlm"]
    main = seeds[0]
    for seed in seeds:  # the unchanged files: every loader must accept them
        yield Case("valid file", "the seed itself", seed.name, seed.data, NONE,
                   must_accept=frozenset(LOADERS) if seed.training_state else
                   frozenset({"read", "model", "cli"}))
    yield from _seq2seq_catalogue([s for s in all_seeds if s.kind == "seq2seq"], rng)
    for category, detail, payload in _foreign(marker, rng):
        yield Case(category, detail, "-", payload, ALL)
    for special in ("missing", "directory", "devzero", "fifo", "symlink loop"):
        yield Case("not a regular file", special, "-", None, ALL, special=special)
    for category, detail, payload, must in _json_bombs(main):
        yield Case(category, detail, main.name, payload, must)
    for seed in (main, seeds[-1]):
        for category, detail, payload, must in _header_cases(seed):
            yield Case(category, detail, seed.name, payload, must)
    for seed in seeds:
        names = sorted(seed.arrays)
        if seed is not main:  # one array of each group for the other seeds
            names = sorted({n.split("/")[0]: n for n in names}.values())
        for name in names:
            for what, new, changes in array_mutations(seed.arrays[name], rng):
                arrays = dict(seed.arrays)
                if new is None:
                    del arrays[name]
                else:
                    arrays[name] = new
                must = group_reject(name, changes, seed.training_state)
                if new is None and name == "state/h" and "state/c" not in seed.arrays:
                    must = TRAIN  # a mid-epoch checkpoint must carry its state
                yield Case("wrong array", f"{name}: {what}", seed.name,
                           lazy(encode, arrays, seed.meta),
                           must)
        extra = {"model/extra.weight": MODEL, "optim/embedding.weight/bogus": TRAIN,
                 "optim/ghost/exp_avg": TRAIN, "state/x": TRAIN, "junk": NONE}
        for key, must in extra.items():
            if not seed.training_state and key.split("/")[0] in ("optim", "state"):
                must = NONE
            arrays = {**seed.arrays, key: np.zeros(3, np.float32)}
            yield Case("extra array", key, seed.name, lazy(encode, arrays, seed.meta), must)
        for category, detail, doc, must in _meta_cases(seed):
            if not seed.training_state:
                must = must | TRAIN
            yield Case(category, detail, seed.name, lazy(encode, seed.arrays, doc), must)
    # a damaged best.safetensors next to a valid checkpoint: Trainer.restore reads it too
    best = main  # its last.safetensors (valid, with the training state) and its best file
    b_arrays, b_meta = _read(best.best)
    for name in sorted(b_arrays):
        for what, new, changes in array_mutations(b_arrays[name], rng)[:8]:
            arrays = dict(b_arrays)
            if new is None:
                del arrays[name]
            else:
                arrays[name] = new
            yield Case("bad best.safetensors", f"{name}: {what}", best.name,
                       lazy(encode, arrays, b_meta), TRAIN if changes else NONE, target="best")
    yield Case("bad best.safetensors", "extra model array", best.name,
               lazy(encode, {**b_arrays, "model/extra": np.zeros(2, np.float32)}, b_meta), TRAIN,
               target="best")
    yield Case("bad best.safetensors", "truncated", best.name, best.best[:-10], TRAIN,
               target="best")
    yield Case("bad best.safetensors", "pickle", best.name, pickles(marker)[2][1], TRAIN,
               target="best")


def _seq2seq_catalogue(seeds: list[Seed], rng: np.random.Generator) -> Iterator[Case]:
    """Valid seq2seq files, their arrays damaged, their configuration and codec wrong."""
    for i, seed in enumerate(seeds):
        yield Case("valid file", "the seed itself", seed.name, seed.data, MODEL,
                   must_accept=frozenset({"read", "seq2seq"}))
        names = sorted(seed.arrays)
        if i:
            names = names[::4]
        for name in names:
            for what, new, changes in array_mutations(seed.arrays[name], rng)[:9]:
                arrays = dict(seed.arrays)
                if new is None:
                    del arrays[name]
                else:
                    arrays[name] = new
                yield Case("wrong array", f"{name}: {what}", seed.name,
                           lazy(encode, arrays, seed.meta), MODEL | (S2S if changes else NONE))
        mc = seed.meta["model_config"]
        for key in sorted(mc):
            for value in BAD_VALUES:
                if _same(value, mc[key]):
                    continue
                valid = key == "reverse" and isinstance(value, bool)  # same shapes
                yield Case("wrong model config", f"model_config.{key}={value!r}", seed.name,
                           lazy(encode, seed.arrays, _set(seed.meta, ("model_config", key),
                                                          value)), MODEL | (NONE if valid
                                                                            else S2S))
        for key, value in (("hidden_size", 3000), ("hidden_size", 10**5),
                           ("embedding_dim", 10**6), ("vocab_size", 10**9)):
            yield Case("huge declared size", f"model_config.{key}={value}", seed.name,
                       lazy(encode, seed.arrays, _set(seed.meta, ("model_config", key), value)),
                       MODEL | S2S)
        codec = seed.meta["codec"]
        for key in sorted(codec):
            for value in (None, "x", -1, [], {}):
                yield Case("wrong codec", f"codec.{key}={value!r}", seed.name,
                           lazy(encode, seed.arrays, _set(seed.meta, ("codec", key), value)),
                           MODEL)
        for value in ("rnnlm", None, _DELETE):
            yield Case("wrong kind", f"kind={value!r}", seed.name,
                       lazy(encode, seed.arrays, _set(seed.meta, ("kind",), value)),
                       MODEL | S2S if value != "rnnlm" else S2S)
        for category, detail, payload, must in _header_cases(seed):
            yield Case(category, detail, seed.name, payload, must | MODEL)


def _read(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from safetensors.numpy import load

    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    return load(data), json.loads(header["__metadata__"]["rnnlab"])


def _random_case(seeds: list[Seed], rng: np.random.Generator) -> Case:
    seed = seeds[int(rng.integers(len(seeds)))]
    data = bytearray(seed.data)
    kind = rng.choice(["flip", "flip", "cut", "append", "array", "meta", "meta_delete",
                       "header_num"])
    extra = TRAIN if not seed.training_state else NONE
    if seed.kind == "seq2seq":
        extra = MODEL  # not a language model: its loaders always refuse it
    if kind == "flip":
        count = int(rng.integers(1, 9))
        region = rng.choice(["header", "data", "anywhere"])
        lo, hi = {"header": (8, 8 + seed.header_len), "data": (8 + seed.header_len, len(data)),
                  "anywhere": (0, len(data))}[str(region)]
        spots = rng.integers(lo, hi, size=count)
        for spot in spots:
            data[int(spot)] ^= int(rng.integers(1, 256))
        return Case("flipped bytes", f"{count} in the {region} at {sorted(spots.tolist())}",
                    seed.name, bytes(data), extra)
    if kind == "cut":
        at = int(rng.integers(0, len(data)))
        return Case("truncated", f"cut at byte {at} of {len(data)}", seed.name, bytes(data[:at]),
                    ALL)
    if kind == "append":
        k = int(rng.integers(1, 4096))
        return Case("appended bytes", f"{k} random bytes", seed.name,
                    bytes(data) + rng.bytes(k), ALL)
    if kind == "array":
        name = sorted(seed.arrays)[int(rng.integers(len(seed.arrays)))]
        options = array_mutations(seed.arrays[name], rng)
        what, new, changes = options[int(rng.integers(len(options)))]
        arrays = dict(seed.arrays)
        if new is None:
            del arrays[name]
        else:
            arrays[name] = new
        must = group_reject(name, changes, seed.training_state) | extra
        if new is None and name == "state/h" and seed.training_state:
            must = TRAIN
        if seed.kind == "seq2seq" and changes and name.startswith("model/"):
            must = must | S2S
        return Case("wrong array", f"{name}: {what}", seed.name, lazy(encode, arrays, seed.meta),
                    must)
    if kind == "header_num":
        header, body = layout(seed.arrays, seed.meta)
        name = sorted(seed.arrays)[int(rng.integers(len(seed.arrays)))]
        field_ = rng.choice(["shape", "data_offsets"])
        values = list(header[name][str(field_)]) or [0]
        i = int(rng.integers(len(values)))
        values[i] = int(rng.choice([-1, 0, 1, 2**31, 2**63 - 1, values[i] + 1, values[i] * 3]))
        header[name][str(field_)] = values
        return Case("bad safetensors header", f"{name}.{field_}[{i}] = {values[i]}", seed.name,
                    lazy(raw, header, body), NONE)
    # a random value (or deletion) somewhere in the metadata
    path: list[str] = []
    node: Any = seed.meta
    while isinstance(node, dict) and node and (not path or rng.random() < 0.7):
        key = sorted(node)[int(rng.integers(len(node)))]
        path.append(key)
        node = node[key]
    if kind == "meta_delete":
        return Case("random metadata", f"{'.'.join(path)} deleted", seed.name,
                    lazy(encode, seed.arrays, _set(seed.meta, tuple(path), _DELETE)),
                    ALL if path[0] in ("format", "version") else extra)
    value = BAD_VALUES[int(rng.integers(len(BAD_VALUES)))]
    must = ALL if path[0] in ("format", "version") else extra
    if path[0] == "kind":
        must = MODEL
    return Case("random metadata", f"{'.'.join(path)} = {value!r}", seed.name,
                lazy(encode, seed.arrays, _set(seed.meta, tuple(path), value)), must)


def generate_cases(seeds: list[Seed], n: int, rng: np.random.Generator, marker: Path,
                   *, n_random: int = 0) -> list[Case]:
    """``n`` cases: the catalogue (about 3,100 cases), or a selection of it when it does not
    fit in ``n - n_random`` (one case of every category, the rest evenly spaced), then
    random mutations up to ``n``."""
    cases = list(_catalogue(seeds, marker, rng))
    room = max(0, n - n_random)
    if len(cases) > room:
        firsts: dict[str, int] = {}
        for i, case in enumerate(cases):  # one case of every category ...
            firsts.setdefault(case.category, i)
        picks = set(list(firsts.values())[:room])
        spread = np.linspace(0, len(cases) - 1, max(room, 1)).round().astype(int).tolist()
        for i in spread:  # ... and the rest evenly spaced
            if len(picks) >= room:
                break
            picks.add(i)
        cases = [cases[i] for i in sorted(picks)]
    while len(cases) < n:
        cases.append(_random_case(seeds, rng))
    kinds = {s.name: s.kind for s in seeds}
    for i, case in enumerate(cases):
        case.index = i
        if kinds.get(case.seed, "rnnlm") == "rnnlm":  # a language model is no seq2seq model
            case.must_reject = case.must_reject | S2S
    return cases


# -------------------------------------------------------------------- harness
class Watch:
    """An audit hook (installed once per process) that records dangerous events while on."""

    events: ClassVar[list[str]] = []
    active = False
    armed = True  # off while warming up (first imports compile and exec modules)
    _installed = False

    @classmethod
    def install(cls) -> None:
        if not cls._installed:
            sys.addaudithook(cls._hook)
            cls._installed = True

    @classmethod
    def _hook(cls, event: str, args: Any) -> None:
        if cls.active and cls.armed and event in DANGEROUS_EVENTS:
            cls.events.append(f"{event} {str(args)[:80]}")


@dataclass
class Outcome:
    case: Case
    results: dict[str, str] = field(default_factory=dict)  # loader -> rejected/accepted/...
    failures: list[str] = field(default_factory=list)
    messages: dict[str, str] = field(default_factory=dict)
    peak: int = 0  # bytes, tracemalloc, the most any rnnlab loader allocated
    size: int = 0  # bytes of the case file
    peaks: dict[str, int] = field(default_factory=dict)  # per loader


@dataclass
class Context:
    """Everything the loaders need, built once: seeds, corpus, a scratch folder."""

    root: Path
    seeds: dict[str, Seed]
    marker: Path
    seq2seq_loader: Callable[[Path], Any] | None = None
    trainers: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, root: Path) -> Context:
        seeds = make_seeds(root / "seeds")
        ctx = cls(root, {s.name: s for s in seeds}, root / "MARKER-code-ran")
        ctx.seq2seq_loader = find_seq2seq_loader()
        Watch.install()
        Watch.armed = False  # import (and compile) everything the loaders load lazily
        try:
            for seed in seeds:
                run_case(Case("warm-up", "", seed.name, seed.data, NONE, index=99999), ctx)
        finally:
            Watch.armed = True
        return ctx


def find_seq2seq_loader() -> Callable[[Path], Any] | None:
    """The seq2seq checkpoint loader, if the package has one yet."""
    import importlib

    for module_name, attr in (("rnnlab.seq2seq.training", "load_checkpoint"),
                              ("rnnlab.seq2seq", "load_seq2seq"),
                              ("rnnlab.seq2seq.checkpoint", "load_seq2seq"),
                              ("rnnlab.seq2seq.checkpoint", "load_model"),
                              ("rnnlab.seq2seq.train", "load_seq2seq"),
                              ("rnnlab.seq2seq.state", "load_model")):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        loader = getattr(module, attr, None)
        if callable(loader):
            return loader
    return None


def _clear(folder: Path) -> None:
    import shutil

    if not folder.exists():
        folder.mkdir(parents=True)
        return
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _write_case(case: Case, ctx: Context, folder: Path, payload: bytes | None) -> Path:
    """The run folder of a case: ``last.safetensors`` (the case or the seed) and
    ``best.safetensors`` (the seed's or the case); returns the checkpoint path."""
    _clear(folder)
    ckpt = folder / "last.safetensors"
    seed = ctx.seeds.get(case.seed)
    best = seed.best if seed is not None and seed.best else None
    if case.special == "missing":
        return folder / "nope.safetensors"
    if case.special == "directory":
        ckpt.mkdir()
        return ckpt
    if case.special == "devzero":
        ckpt.symlink_to("/dev/zero")
        return ckpt
    if case.special == "fifo":
        os.mkfifo(ckpt)
        return ckpt
    if case.special == "symlink loop":
        ckpt.symlink_to(folder / "loop")
        (folder / "loop").symlink_to(ckpt)
        return ckpt
    assert payload is not None
    if case.target == "best":
        assert seed is not None
        ckpt.write_bytes(seed.data)
        best = payload
    else:
        ckpt.write_bytes(payload)
    if best is not None:
        (folder / "best.safetensors").write_bytes(best)
    return ckpt


class CaseTimeout(BaseException):
    """A loader took longer than the case's time limit (a hang, for the fuzz)."""


def _alarm(signum: int, frame: Any) -> None:
    raise CaseTimeout("no answer within the time limit")


def run_case(case: Case, ctx: Context, *, deep: bool = True,
             loaders: tuple[str, ...] = LOADERS, seq2seq: bool = True,
             timeout: float | None = None) -> Outcome:
    """Feed one case to the ``loaders``; ``deep``: use what a loader accepted (generate
    from the model, train a step after a restore); ``seq2seq``: also the seq2seq loader
    (when there is one); ``timeout``: seconds each loader may take (SIGALRM; a loader
    that takes longer is a failure)."""
    from rnnlab.train import CheckpointError

    payload = case.payload() if callable(case.payload) else case.payload
    path = _write_case(case, ctx, ctx.root / "case", payload)
    out = Outcome(case, size=len(payload or b""))
    del payload
    if not tracemalloc.is_tracing():
        tracemalloc.start()  # left on: the caller stops it when it is done
    calls = {"read": _load_read, "model": _load_model, "cli": _load_cli,
             "restore": _load_restore, "resume": _load_resume}
    if ctx.seq2seq_loader is not None and seq2seq:
        calls["seq2seq"] = _load_seq2seq
        loaders = (*loaders, "seq2seq")
    try:
        for loader in loaders:
            Watch.events.clear()
            Watch.active = True
            if timeout:
                previous = signal.signal(signal.SIGALRM, _alarm)
                signal.setitimer(signal.ITIMER_REAL, timeout)
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            try:
                calls[loader](path, ctx, (case, deep, out))
                out.results[loader] = "accepted"
            except CheckpointError as exc:
                out.results[loader] = "rejected"
                out.messages[loader] = str(exc)
            except (KeyboardInterrupt, SystemExit):
                raise
            except _Unusable as exc:
                out.results[loader] = "accepted"
                out.failures.append(f"{loader}: accepted, then failed: {exc}")
            except BaseException as exc:
                out.results[loader] = f"escaped {type(exc).__name__}"
                out.failures.append(f"{loader}: raised {type(exc).__name__}: "
                                    f"{str(exc)[:300]}")
            finally:
                out.peaks[loader] = max(0, tracemalloc.get_traced_memory()[1] - base)
                Watch.active = False
                if timeout:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    signal.signal(signal.SIGALRM, previous)
            if Watch.events:
                out.failures.append(f"{loader}: ran code: {Watch.events[:3]}")
            if loader in case.must_reject and out.results[loader] == "accepted":
                out.failures.append(f"{loader}: accepted a file it must refuse")
            if loader in case.must_accept and out.results[loader] != "accepted":
                out.failures.append(f"{loader}: refused a valid file: "
                                    f"{out.messages.get(loader, '')[:200]}")
    finally:
        out.peak = max((v for k, v in out.peaks.items() if k != "seq2seq"), default=0)
    if ctx.marker.exists():
        out.failures.append("the pickle marker file exists: code from a file ran")
        ctx.marker.unlink()
    return out


class _Unusable(Exception):
    """A loader accepted the file, but what it returned does not work."""


def _load_seq2seq(path: Path, ctx: Context, info: Any) -> None:
    assert ctx.seq2seq_loader is not None
    ctx.seq2seq_loader(path)


def _load_read(path: Path, ctx: Context, info: Any) -> None:
    from rnnlab.train.checkpoint import read_checkpoint

    read_checkpoint(path)


def _load_model(path: Path, ctx: Context, info: Any) -> None:
    from rnnlab.generate import generate
    from rnnlab.train.state import load_model

    model, vocab, _ = load_model(path)
    _, deep, _ = info
    if deep:
        try:
            with np.errstate(all="ignore"):  # accepted huge weights may overflow: garbage
                generate(model, vocab, "", 3, seed=0)  # text, not an error
        except Exception as exc:
            raise _Unusable(f"generate: {type(exc).__name__}: {exc}") from exc


def _load_cli(path: Path, ctx: Context, info: Any) -> None:
    from rnnlab.cli import main
    from rnnlab.train import CheckpointError

    err, std = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
        try:
            code = main(["generate", str(path), "--length", "2", "--seed", "0"])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    lines = err.getvalue().strip().splitlines()
    if code == 0:
        return
    if code != 1 or len(lines) != 1 or not lines[0].startswith("rnnlab: error: "):
        raise AssertionError(f"exit {code}, stderr {err.getvalue()[:300]!r}")
    raise CheckpointError(lines[0])


def _trainer_for(seed: Seed, out_dir: Path) -> Any:
    from rnnlab.families.lm import load_data
    from rnnlab.models.rnnlm import RNNLM, RNNLMConfig
    from rnnlab.train import DataConfig, TrainConfig, Trainer

    data_cfg = DataConfig.from_dict(seed.meta["data_config"])
    corpus = _corpus_cache.get(data_cfg.corpus)
    if corpus is None:
        corpus = _corpus_cache[data_cfg.corpus] = load_data(data_cfg)
    cfg = TrainConfig.from_dict(seed.meta["train_config"])
    model = RNNLM.from_config(RNNLMConfig(**seed.meta["model_config"]), rng=1)
    return Trainer(model, corpus, cfg, out_dir, data_config=data_cfg, echo=lambda m: None)


_corpus_cache: dict[str, Any] = {}


def _fingerprint(trainer: Any) -> str:
    """A digest of everything :meth:`Trainer.restore` may change."""
    import hashlib
    from dataclasses import asdict

    h = hashlib.sha256()
    for name, param in trainer.model.named_parameters():
        h.update(name.encode() + np.ascontiguousarray(param).tobytes())
    state = trainer.optimizer.state_dict()
    for pname, bufs in state.pop("state").items():
        for bname, buf in sorted(bufs.items()):
            h.update(f"{pname}/{bname}".encode() + np.ascontiguousarray(buf).tobytes())
    carried = trainer.model.get_state()
    for part in carried or ():
        if part is not None:
            h.update(np.ascontiguousarray(part).tobytes())
    h.update(json.dumps([state, None if trainer.scheduler is None else
                         trainer.scheduler.state_dict(), trainer.batcher.state_dict(),
                         asdict(trainer.progress), trainer.model.rng.bit_generator.state,
                         trainer.state.best_params is None], sort_keys=True, default=str).encode())
    return h.hexdigest()


def _load_restore(path: Path, ctx: Context, info: Any) -> None:
    import shutil

    from rnnlab.train import CheckpointError, DivergenceError

    case, deep, out = info
    seed = ctx.seeds.get(case.seed)
    if seed is None or seed.kind != "rnnlm":
        seed = ctx.seeds["lstm-adam"]
    best = path.parent / "best.safetensors"
    if not deep:
        # one trainer per seed, reused: a refused restore must leave it exactly as it was
        trainer = ctx.trainers.get(seed.name)
        if trainer is None:
            trainer = ctx.trainers[seed.name] = _trainer_for(seed, ctx.root / "trainers" /
                                                             seed.name)
        (trainer.out_dir / "best.safetensors").unlink(missing_ok=True)
        if best.is_file():
            shutil.copy(best, trainer.out_dir / "best.safetensors")
        before = _fingerprint(trainer)
        try:
            trainer.restore(path)
        except CheckpointError:
            if _fingerprint(trainer) != before:
                out.failures.append("restore: refused the file but changed the trainer")
            raise
        return
    run = path.parent / "restore-run"
    run.mkdir()
    if best.is_file():
        shutil.copy(best, run / "best.safetensors")
    trainer = _trainer_for(seed, run)
    trainer.restore(path)
    if deep:
        trainer.config = replace(trainer.config, max_steps=trainer.progress.step + 1)
        try:
            trainer.fit()
        except DivergenceError:
            pass
        except Exception as exc:
            raise _Unusable(f"fit after restore: {type(exc).__name__}: {exc}") from exc


def _load_resume(path: Path, ctx: Context, info: Any) -> None:
    from rnnlab.families.lm import resume_run
    from rnnlab.train import DivergenceError

    try:
        resume_run(path, {"max_steps": 1, "progress": False}, sample_length=0,
                   echo=lambda m: None)
    except DivergenceError:
        pass


# ------------------------------------------------------------------ summary
def summarize(outcomes: list[Outcome]) -> dict[str, Any]:
    """Counts per category and loader, the failures, the memory figures."""
    per_category: dict[str, dict[str, int]] = {}
    per_loader: dict[str, dict[str, int]] = {}
    for o in outcomes:
        cat = per_category.setdefault(o.case.category, {"cases": 0, "failures": 0})
        cat["cases"] += 1
        cat["failures"] += bool(o.failures)
        for loader, result in o.results.items():
            row = per_loader.setdefault(loader, {})
            key = result if not result.startswith("escaped") else "escaped"
            row[key] = row.get(key, 0) + 1
    ratios = [o.peak / max(o.size, 1) for o in outcomes if o.size > 0]
    worst = max(outcomes, key=lambda o: o.peak)
    excess = max(outcomes, key=lambda o: o.peak - MEMORY_SLOPE * o.size)  # rnnlab loaders
    kinds: dict[str, int] = {}
    for o in outcomes:
        for f in o.failures:
            loader, _, rest = f.partition(": ")
            if rest.startswith("raised "):
                rest = rest.partition(":")[0]
            elif rest.startswith("accepted, then failed"):
                rest = "accepted, then failed: " + rest.split(": ")[2].partition(":")[0] \
                    if rest.count(": ") >= 2 else rest
            elif rest.startswith(("ran code", "refused a valid file")):
                rest = rest.partition(":")[0]
            key = f"{loader}: {rest}"
            kinds[key] = kinds.get(key, 0) + 1
    return {
        "cases": len(outcomes),
        "failing_cases": sum(bool(o.failures) for o in outcomes),
        "failure_kinds": dict(sorted(kinds.items(), key=lambda kv: -kv[1])),
        "per_category": per_category,
        "per_loader": per_loader,
        "peak_alloc_max_bytes": worst.peak,
        "peak_alloc_max_case": f"{worst.case.category}: {worst.case.detail}",
        "peak_alloc_max_case_size": worst.size,
        "peak_over_size_max": max(ratios) if ratios else 0.0,
        "peak_minus_slope_x_size_max_bytes": excess.peak - MEMORY_SLOPE * excess.size,
        "peak_minus_slope_x_size_max_case": f"{excess.case.category}: {excess.case.detail}",
        "memory_bound": f"peak <= {MEMORY_BASE >> 20} MiB + {MEMORY_SLOPE} x file size",
        "memory_bound_held": all(o.peak <= MEMORY_BASE + MEMORY_SLOPE * o.size
                                 for o in outcomes),
        "top_peaks": [{"case": f"{o.case.category}: {o.case.detail}", "peak": o.peak,
                       "size": o.size}
                      for o in sorted(outcomes, key=lambda o: -o.peak)[:5]],
        "seq2seq_peak_max_bytes": max((o.peaks.get("seq2seq", 0) for o in outcomes),
                                      default=0),
        "seq2seq_memory_bound_held": all(
            o.peaks.get("seq2seq", 0) <= MEMORY_BASE + MEMORY_SLOPE * o.size for o in outcomes),
        "failures": [{"index": o.case.index, "category": o.case.category,
                      "detail": o.case.detail, "seed": o.case.seed, "failures": o.failures}
                     for o in outcomes if o.failures],
    }
