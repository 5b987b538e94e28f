"""Training and data configurations: commented dataclasses, saved with every checkpoint
(``to_dict`` / ``from_dict`` from :class:`rnnlab._config.ConfigDict`, which rejects
unknown keys), and :func:`read_config_file`, the reader of a ``--config`` JSON file."""

from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import dataclass
from typing import Any

from rnnlab._config import ConfigDict
from rnnlab.data.errors import DataError
from rnnlab.data.textio import read_limited

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw")
#: Corpus names that ``DataConfig.corpus`` may hold besides a path (rnnlab's own loaders).
NAMED_CORPORA = ("stdlib", "ptb", "tinyshakespeare", "shakespeare")
SCHEDULES = ("none", "step", "exp", "plateau", "cosine")
#: The sections a configuration file may hold.
CONFIG_SECTIONS = ("model", "train", "data")
#: Largest configuration file :func:`read_config_file` reads unless told otherwise (bytes).
MAX_CONFIG_BYTES = 1 << 20


def _positive(owner: str, name: str, value: Any, *, integer: bool = False,
              allow_zero: bool = False) -> None:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
        raise TypeError(f"{owner}: {name} expected a finite {'int' if integer else 'number'}, "
                        f"got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{owner}: {name} expected {bound}, got {value!r}")


@dataclass
class TrainConfig(ConfigDict):
    """How to train a language model (truncated BPTT over contiguous streams).

    The defaults suit a character model (Adam, clip 5); the textbook's PTB recipe is
    ``optimizer="sgd", lr=20, clip_norm=0.25, batch_size=20, bptt=35``.
    """

    epochs: int = 2
    batch_size: int = 32  # number of parallel streams N
    bptt: int = 64  # window length T
    eval_batch_size: int = 10
    optimizer: str = "adam"  # one of OPTIMIZERS
    lr: float = 0.002
    momentum: float = 0.0  # sgd / rmsprop momentum (momentum / nesterov default to 0.9)
    weight_decay: float = 0.0
    clip_norm: float | None = 5.0  # global L2 norm clip; None for none
    clip_value: float | None = None  # element-wise clip; None for none
    schedule: str = "none"  # one of SCHEDULES
    lr_decay: float = 0.5  # gamma of step / exp, factor of plateau (0.25 = divide by 4)
    decay_start: int = 4  # exp: decay after this epoch; step: every this many epochs (>= 1)
    warmup_steps: int = 0  # cosine schedule warm-up
    patience: int | None = None  # early stopping after this many epochs without improvement
    seed: int = 0
    max_steps: int | None = None  # stop after this many optimizer steps in total
    max_time: float | None = None  # stop (with a checkpoint) after this many seconds
    log_every: int = 50  # steps between metric lines
    checkpoint_every: int = 500  # steps between checkpoints (and one at every epoch end)
    snapshot_every: int = 100  # steps between in-memory rollback points
    divergence_factor: float = 4.0  # a loss above this times the running mean is a blow-up
    divergence_lr_factor: float = 0.5  # learning rate multiplier after a rollback
    max_divergences: int = 3  # give up after this many rollbacks
    # many processes (MPI): steps between checks that the parameters of all processes are
    # the same; None: the world's own setting (World(check_every=...), 50 by default)
    check_every: int | None = None
    progress: bool = True  # tqdm progress bar
    freeze: tuple[str, ...] = ()  # parameter names (fnmatch patterns) kept as initialised
    # set the output bias to the log unigram distribution of the training split before
    # the first step (RNNLM.init_output_bias); a resumed run keeps its own
    unigram_bias: bool = False

    def __post_init__(self) -> None:
        owner = "TrainConfig"
        if isinstance(self.freeze, str) or not isinstance(self.freeze, list | tuple) \
                or not all(isinstance(n, str) and n for n in self.freeze):
            raise TypeError(f"{owner}: freeze expected a list of parameter names, got "
                            f"{self.freeze!r}")
        self.freeze = tuple(self.freeze)
        if not isinstance(self.unigram_bias, bool):
            raise TypeError(f"{owner}: unigram_bias expected a bool, got {self.unigram_bias!r}")
        for name in ("epochs", "batch_size", "bptt", "eval_batch_size", "log_every",
                     "checkpoint_every", "snapshot_every"):
            _positive(owner, name, getattr(self, name), integer=True)
        for name in ("lr", "divergence_factor", "divergence_lr_factor", "lr_decay"):
            _positive(owner, name, getattr(self, name))
        for name in ("momentum", "weight_decay"):
            _positive(owner, name, getattr(self, name), allow_zero=True)
        _positive(owner, "decay_start", self.decay_start, integer=True)
        _positive(owner, "warmup_steps", self.warmup_steps, integer=True, allow_zero=True)
        _positive(owner, "max_divergences", self.max_divergences, integer=True, allow_zero=True)
        _positive(owner, "seed", self.seed, integer=True, allow_zero=True)
        for name in ("clip_norm", "clip_value", "max_time"):
            if getattr(self, name) is not None:
                _positive(owner, name, getattr(self, name))
        for name in ("patience", "max_steps", "check_every"):
            if getattr(self, name) is not None:
                _positive(owner, name, getattr(self, name), integer=True)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"{owner}: optimizer expected one of {OPTIMIZERS}, "
                             f"got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"{owner}: schedule expected one of {SCHEDULES}, "
                             f"got {self.schedule!r}")


@dataclass
class DataConfig(ConfigDict):
    """Which corpus, at which level, with which vocabulary limits."""

    corpus: str = "stdlib"  # "ptb", "tinyshakespeare", "stdlib" or a path to a file/folder
    level: str = "char"  # "char" or "word" (for paths; PTB is word, the others char)
    max_chars: int | None = 2_000_000  # stdlib only: character budget
    max_size: int | None = None  # vocabulary size limit (paths)
    min_freq: int = 1  # minimum token frequency (paths)
    data_dir: str | None = None  # local folder with the canonical files

    def __post_init__(self) -> None:
        # a DataConfig may come from a checkpoint: wrong types get a message, not a crash
        if not isinstance(self.corpus, str) or not self.corpus:
            raise TypeError(f"DataConfig: corpus expected a non-empty string, got "
                            f"{self.corpus!r}")
        if self.data_dir is not None and (not isinstance(self.data_dir, str)
                                          or not self.data_dir):
            raise TypeError(f"DataConfig: data_dir expected null or a non-empty string, got "
                            f"{self.data_dir!r}")
        if self.level not in ("char", "word"):
            raise ValueError(f"DataConfig: level expected 'char' or 'word', got {self.level!r}")
        if self.max_chars is not None:
            _positive("DataConfig", "max_chars", self.max_chars, integer=True)
        if self.max_size is not None:
            _positive("DataConfig", "max_size", self.max_size, integer=True)
        _positive("DataConfig", "min_freq", self.min_freq, integer=True)

    @property
    def is_path(self) -> bool:
        """Whether :attr:`corpus` is a path (not one of :data:`NAMED_CORPORA`)."""
        return self.corpus not in NAMED_CORPORA

    def source_bytes(self) -> int | None:
        """The size of the corpus file, when :attr:`corpus` names a regular file; else
        None. Saved beside the digest, so that a file of another size is refused before
        it is read."""
        if not self.is_path:
            return None
        try:
            info = os.stat(self.corpus)
        except (OSError, ValueError):
            return None
        return info.st_size if stat.S_ISREG(info.st_mode) else None


def read_config_file(path: str | os.PathLike[str], *, max_bytes: int = MAX_CONFIG_BYTES,
                     what: str = "--config") -> dict[str, dict[str, Any]]:
    """The sections of a JSON configuration file: ``{"model": {...}, "train": {...},
    "data": {...}}`` (a missing section is an empty dict).

    The file must be a regular file of at most ``max_bytes`` bytes (a FIFO or a device
    such as ``/dev/zero`` is refused without blocking or reading it, see
    :func:`~rnnlab.data.textio.read_limited`), UTF-8 JSON holding an object whose keys are
    among :data:`CONFIG_SECTIONS` and whose values are objects. The options themselves are
    checked by the config classes. Every refusal is a :class:`~rnnlab.data.DataError`
    (a ``ValueError``) whose message starts with ``what`` and the path.
    """
    name = f"{what} {path}" if what else str(path)
    raw = read_limited(path, max_bytes, what=what)
    try:
        loaded = json.loads(raw.decode("utf-8-sig"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError included
        raise DataError(f"{name}: cannot be read as JSON ({exc})") from exc
    if not isinstance(loaded, dict) or set(loaded) - set(CONFIG_SECTIONS):
        extra = sorted(set(loaded) - set(CONFIG_SECTIONS)) if isinstance(loaded, dict) else []
        got = f"unknown sections {extra}" if extra else f"a JSON {type(loaded).__name__}"
        raise DataError(f"{name}: expected an object with 'model', 'train' and 'data' "
                        f"sections, got {got}")
    for key, section in loaded.items():
        if not isinstance(section, dict):
            raise DataError(f"{name}: section {key!r} expected an object of options, got "
                            f"{type(section).__name__}")
    return {key: dict(loaded.get(key, {})) for key in CONFIG_SECTIONS}
