"""Sequence-to-sequence models: encoder-decoder, peeky and attention decoders, search.

The book's two toy tasks and its text format, plus the project's own generators::

    from rnnlab.seq2seq import (Codec, Seq2Seq, Seq2SeqConfig, TrainOptions, fit,
                                load_task, predict, split_pairs)
    pairs, _ = load_task("date")                 # date.txt if found, else generated
    train, test = split_pairs(pairs)             # seeded shuffle, 90/10
    codec = Codec.build(pairs)
    model = Seq2Seq(Seq2SeqConfig(len(codec.vocab), 16, 256, decoder="bahdanau",
                                  reverse=True), rng=0)
    fit(model, codec, train, test, TrainOptions(epochs=3, lr=3e-3, schedule="cosine"))
    predict(model, codec, ["September 27, 1994"])      # ['1994-09-27'] (100 % on the test set)

Modules: :mod:`.tasks` (generators), :mod:`.data` (file format, split, codec, batches),
:mod:`.attention`, :mod:`.encoder`, :mod:`.decoders`, :mod:`.model`, :mod:`.search`
(greedy, beam, exact match), :mod:`.training` (fit, checkpoints), :mod:`.plot`
(attention heat maps) and :mod:`.cli` (``rnnlab seq2seq ...``). Names are imported
from their submodules on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the submodule that defines it (imported on first use, so that the
#: command line can register ``rnnlab seq2seq`` without importing numpy).
_EXPORTS = {
    "SCORES": "attention", "Attention": "attention", "Memory": "attention",
    "IGNORE_INDEX": "data", "Batch": "data", "Codec": "data", "find_data_file": "data",
    "iterate_batches": "data", "read_pairs": "data", "split_indices": "data",
    "split_pairs": "data",
    "AttentionDecoder": "decoders", "BahdanauDecoder": "decoders", "Decoder": "decoders",
    "Encoder": "encoder", "EncoderOutput": "encoder",
    "DECODERS": "model", "Seq2Seq": "model", "Seq2SeqConfig": "model",
    "beam_search": "search", "exact_match": "search", "greedy_decode": "search",
    "predict": "search",
    "DATE_FORMATS": "tasks", "Pairs": "tasks", "format_line": "tasks",
    "make_addition": "tasks", "make_dates": "tasks",
    "TrainOptions": "training", "fit": "training", "load_checkpoint": "training",
    "load_task": "training", "save_checkpoint": "training",
    "plot_attention": "plot",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rnnlab.seq2seq' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"rnnlab.seq2seq.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
