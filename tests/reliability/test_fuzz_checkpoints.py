"""Checkpoint loading under attack, the fast part: 300 hostile files made from real rnnlab
checkpoints (an evenly spaced selection of the catalogue of :mod:`ckptfuzz`, every
category, plus random mutations) go through ``read_checkpoint``, ``load_model`` and
``Trainer.restore`` (and the seq2seq loader); every twentieth also through ``rnnlab
generate``, ``rnnlab train --resume``, and through using what was accepted. Only
``CheckpointError`` may come out, files that must be refused are, valid ones are not, no
code runs, and the memory each case allocates is bounded by its size. The full run (all
of the catalogue and random cases) is ``benchmarks/reliability_fuzz.py``.

The seq2seq loader (``rnnlab.seq2seq.training.load_checkpoint``) is held to the same
rules in a test of its own, expected to fail until it checks the sizes a file declares
before building the model; its cases with huge declared sizes are left to the benchmark
here (they allocate gigabytes)."""

from __future__ import annotations

import collections
from typing import Any

import numpy as np
import psutil
import pytest

from tests.reliability.ckptfuzz import (
    LOADERS,
    MEMORY_BASE,
    MEMORY_SLOPE,
    Context,
    generate_cases,
    run_case,
    summarize,
)

N_CASES, N_RANDOM, DEEP_EVERY = 300, 60, 20


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: Any) -> dict[str, Any]:
    ctx = Context.build(tmp_path_factory.mktemp("fuzz"))
    cases = generate_cases(list(ctx.seeds.values()), N_CASES, np.random.default_rng(2024),
                           ctx.marker, n_random=N_RANDOM)
    process = psutil.Process()
    rss_before = process.memory_info().rss
    rss_peak = rss_before
    outcomes = []
    for case in cases:
        deep = case.index % DEEP_EVERY == 0 or bool(case.must_accept)
        loaders = LOADERS if deep else ("read", "model", "restore")
        s2s_huge = case.seed.startswith("s2s") and case.category == "huge declared size"
        outcomes.append(run_case(case, ctx, deep=deep, loaders=loaders, seq2seq=not s2s_huge))
        rss_peak = max(rss_peak, process.memory_info().rss)
    return {"ctx": ctx, "cases": cases, "outcomes": outcomes, "summary": summarize(outcomes),
            "rss_growth": rss_peak - rss_before}


def _failures(fuzz: dict[str, Any], seq2seq: bool) -> list[str]:
    return [f"{o.case.category}: {o.case.detail} ({o.case.seed}): {f}"
            for o in fuzz["outcomes"] for f in o.failures
            if f.startswith("seq2seq:") == seq2seq]


def test_only_checkpoint_errors_and_the_right_verdicts(fuzz: dict[str, Any]) -> None:
    failures = _failures(fuzz, seq2seq=False)
    assert not failures, "\n".join(failures[:20])


def test_the_seq2seq_loader_too(fuzz: dict[str, Any]) -> None:
    if fuzz["ctx"].seq2seq_loader is None:
        pytest.skip("no seq2seq loader yet")
    failures = _failures(fuzz, seq2seq=True)
    assert not failures, "\n".join(failures[:20])


def test_every_kind_of_damage_is_tried(fuzz: dict[str, Any]) -> None:
    cases = fuzz["cases"]
    categories = collections.Counter(c.category for c in cases)
    assert len(cases) >= 300
    for category in ("flipped bytes", "truncated", "wrong array", "huge declared size",
                     "missing key", "extra array", "pickle payload renamed", "JSON bomb",
                     "wrong model config", "wrong vocabulary", "wrong training state",
                     "bad safetensors header", "bad best.safetensors", "foreign file",
                     "not a regular file", "valid file"):
        assert categories[category] >= 1, category
    details = " ".join(c.detail for c in cases)
    for kind in ("NaN", "as float64", "one row", "dropped"):
        assert kind in details, kind
    per_loader = fuzz["summary"]["per_loader"]
    assert per_loader["read"]["rejected"] >= 30 and per_loader["restore"]["rejected"] >= 200
    assert set(per_loader) >= set(LOADERS)


def test_no_code_runs(fuzz: dict[str, Any]) -> None:
    ran = [o for o in fuzz["outcomes"] if any("ran code" in f or "marker" in f
                                              for f in o.failures)]
    assert not ran
    assert not fuzz["ctx"].marker.exists()


def test_memory_is_bounded_by_the_file_size(fuzz: dict[str, Any]) -> None:
    over = [(o.case.category, o.case.detail, o.peak, o.size) for o in fuzz["outcomes"]
            if o.peak > MEMORY_BASE + MEMORY_SLOPE * o.size]
    assert not over
    assert fuzz["summary"]["peak_alloc_max_bytes"] < 64 * 2**20
    assert fuzz["rss_growth"] < 256 * 2**20  # the process as a whole, over all cases
