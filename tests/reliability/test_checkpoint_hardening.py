"""The hardening the checkpoint fuzz asked for, one property per test: what is refused,
and that it is refused before memory is spent or state is changed."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save

from rnnlab.families.lm import start_run
from rnnlab.train import CheckpointError, Trainer, checkpoint
from rnnlab.train.checkpoint import read_checkpoint, write_checkpoint
from rnnlab.train.state import load_model
from tests.ckptdoc import document_metadata
from tests.reliability.conftest import small_config, small_model


def _refusal_peak(load: Any, path: Path) -> int:
    """Bytes allocated at the peak while ``load(path)`` refuses the file."""
    tracemalloc.start()
    try:
        load(path)
    except CheckpointError:
        pass
    else:
        raise AssertionError(f"{path} was accepted")
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_foreign_file_is_refused_before_its_arrays_are_read(tmp_path: Path) -> None:
    big = np.zeros(8 * 2**20, np.float32)  # 32 MiB
    foreign = tmp_path / "model.safetensors"
    foreign.write_bytes(save({"w": big}, metadata={"format": "pt"}))
    with pytest.raises(CheckpointError, match="no rnnlab metadata"):
        read_checkpoint(foreign)
    assert _refusal_peak(read_checkpoint, foreign) < 2**20
    doc = json.dumps({"format": "rnnlab-checkpoint", "version": 1})
    header = {"__metadata__": {"rnnlab": doc}, "a": {"dtype": "F32", "shape": [8 * 2**20],
                                                     "data_offsets": [0, 32 * 2**20]},
              "b": {"dtype": "BF16", "shape": [2], "data_offsets": [32 * 2**20,
                                                                   32 * 2**20 + 4]}}
    text = json.dumps(header).encode()
    odd = tmp_path / "odd.safetensors"
    odd.write_bytes(len(text).to_bytes(8, "little") + text + big.tobytes() + b"\0" * 4)
    with pytest.raises(CheckpointError, match="array 'b' has unsupported dtype BF16"):
        read_checkpoint(odd)
    assert _refusal_peak(read_checkpoint, odd) < 2**20


@pytest.mark.parametrize("text", ['{"format": "rnnlab-checkpoint", "version": true}',
                                  '{"format": "rnnlab-checkpoint", "version": 1.0}',
                                  '{"format": "rnnlab-checkpoint", "version": 1, "x": 1' +
                                  "0" * 5000 + "}"])
def test_document_edge_cases(tmp_path: Path, text: str) -> None:
    path = tmp_path / "c.safetensors"
    path.write_bytes(save({"a": np.zeros(2, np.float32)}, metadata={"rnnlab": text}))
    with pytest.raises(CheckpointError, match=r"version|not valid JSON"):
        read_checkpoint(path)


def test_a_header_too_large_to_read_back_is_not_written(tmp_path: Path,
                                                        monkeypatch: Any) -> None:
    path = tmp_path / "c.safetensors"
    write_checkpoint(path, {"a": np.zeros(2, np.float32)}, {"n": 1})
    monkeypatch.setattr(checkpoint, "MAX_HEADER_BYTES", 1000)
    with pytest.raises(CheckpointError, match="more than the 1,000 safetensors reads back"):
        write_checkpoint(path, {"a": np.zeros(2, np.float32)}, {"vocab": ["x" * 10] * 200})
    assert read_checkpoint(path)[1]["n"] == 1 and len(list(tmp_path.iterdir())) == 1


def test_huge_declared_sizes_are_refused_before_allocation(tmp_path: Path,
                                                           corpus: Any) -> None:
    trainer = Trainer(small_model(corpus), corpus, small_config(), tmp_path,
                      echo=lambda m: None)
    trainer.save(tmp_path / "m.safetensors", training_state=False)
    arrays, meta = read_checkpoint(tmp_path / "m.safetensors")
    for key, value in (("hidden_size", 100_000), ("vocab_size", 10**9),
                       ("num_layers", 10**5), ("embedding_dim", 3000)):
        bad = {**meta, "model_config": {**meta["model_config"], key: value}}
        path = tmp_path / f"{key}.safetensors"
        path.write_bytes(save(arrays, metadata=document_metadata(bad)))
        with pytest.raises(CheckpointError, match="declares at least"):
            load_model(path)
        assert _refusal_peak(load_model, path) < 4 * 2**20


def test_a_refused_restore_leaves_the_trainer_as_it_was(tmp_path: Path, corpus: Any) -> None:
    run = tmp_path / "run"
    Trainer(small_model(corpus), corpus, small_config(max_steps=9), run,
            echo=lambda m: None).fit()
    arrays, meta = read_checkpoint(run / "last.safetensors")
    arrays["state/h"] = np.full_like(arrays["state/h"], np.nan)  # the last thing checked
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(save(arrays, metadata=document_metadata(meta)))
    trainer = Trainer(small_model(corpus, seed=3), corpus, small_config(max_steps=2),
                      tmp_path / "other", echo=lambda m: None)
    trainer.fit()
    before = {n: p.copy() for n, p in trainer.model.named_parameters()}
    state_before = trainer.optimizer.state_dict()
    rng_before = trainer.model.rng.bit_generator.state
    with pytest.raises(CheckpointError, match="state/h holds NaN"):
        trainer.restore(bad)
    for name, param in trainer.model.named_parameters():
        np.testing.assert_array_equal(param, before[name])
    after = trainer.optimizer.state_dict()
    assert after["step"] == state_before["step"] == 2
    assert trainer.model.rng.bit_generator.state == rng_before
    assert trainer.progress.step == 2 and trainer.batcher.position == 2


def test_sizes_beyond_the_machine_are_refused_before_allocation(text_file: Path) -> None:
    with pytest.raises(ValueError, match="more than this machine's memory"):
        start_run({"hidden_size": 10**7, "embedding_dim": 8}, {"progress": False},
                  {"corpus": str(text_file)}, out=text_file.parent / "run",
                  echo=lambda m: None)
