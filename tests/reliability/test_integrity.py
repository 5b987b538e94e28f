"""Damage that a checkpoint's structure does not show (issue 26, items 11 and 12): a
flipped bit in an array's data is caught by its checksum, and optimizer state that no
optimizer could have produced (a negative second moment, eps = 0 in a checkpoint) is
refused at load rather than reported later as a divergence.

The optimizers themselves still accept ``eps=0`` when built by hand, as PyTorch's do; a
checkpoint, whose trainer never sets eps, is refused for it."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from rnnlab.cli import main
from rnnlab.optim import SGD, AdaGrad, Adam, AdamW, RMSprop
from rnnlab.train.checkpoint import (
    CHECKSUM_KEY,
    CheckpointError,
    UncheckedDocumentWarning,
    read_checkpoint,
)
from tests.ckptdoc import document_metadata, rewrite_document
from tests.reliability.conftest import TEXT


def _data_offset(data: bytes, name: str) -> int:
    """Where the bytes of array ``name`` start in a safetensors file."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    return 8 + n + header[name]["data_offsets"][0]


def _train(tmp_path: Path, *extra: str) -> Path:
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT)
    run = tmp_path / "run"
    assert main(["train", "--corpus", str(corpus), "--out", str(run), "--max-steps", "3",
                 "--no-progress", "--sample-length", "0", "--hidden-size", "8",
                 "--embedding-dim", "4", "--batch-size", "4", "--bptt", "8", *extra]) == 0
    return run / "last.safetensors"


def test_one_flipped_bit_in_a_weight_is_caught(tmp_path, capsys):
    path = _train(tmp_path)
    data = bytearray(path.read_bytes())
    name = "model/rnn.weight_hh_l0"
    # the top bit of the exponent of the first weight: -0.17 becomes about -5.9e37
    data[_data_offset(bytes(data), name) + 3] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=rf"array '{name}' does not match its checksum"):
        read_checkpoint(path)
    capsys.readouterr()
    assert main(["generate", str(path), "--length", "5"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("rnnlab: error: ") and name in err and "checksum" in err


def test_checksums_are_recorded_and_not_part_of_meta(tmp_path):
    from safetensors import safe_open

    path = _train(tmp_path)
    with safe_open(str(path), framework="np") as fh:
        document = json.loads(fh.metadata()["rnnlab"])
        names = sorted(fh.keys())
    assert sorted(document[CHECKSUM_KEY]) == names
    arrays, meta = read_checkpoint(path)
    assert CHECKSUM_KEY not in meta and sorted(arrays) == names




def test_old_checkpoints_without_checksums_still_load(tmp_path, capsys):
    path = _train(tmp_path)
    rewrite_document(path, lambda doc: doc.pop(CHECKSUM_KEY), checksum=False)
    with pytest.warns(UncheckedDocumentWarning, match="written before rnnlab covered"):
        arrays, _ = read_checkpoint(path)
    assert "model/rnn.weight_hh_l0" in arrays
    capsys.readouterr()
    # the command line says it once, as one line (a notice, not a Python warning)
    assert main(["train", "--resume", str(path), "--max-steps", "4", "--no-progress",
                 "--sample-length", "0"]) == 0
    err = capsys.readouterr().err
    assert err.count("rnnlab: notice:") == 1 and "written before rnnlab covered" in err
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_checkpoint(path)  # the resumed run's checkpoint is covered again


@pytest.mark.parametrize("table,message", [
    ([], "expected an object of 8-digit checksums"),
    ({"model/x": 5}, "expected an object of 8-digit checksums"),
    ({}, "no checksum for"),
])
def test_a_bad_checksum_table_is_refused(tmp_path, table, message):
    path = _train(tmp_path)

    def edit(doc):
        doc[CHECKSUM_KEY] = table

    rewrite_document(path, edit)
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(path)


# ----------------------------------------------------------------- optimizer state
def _model_params(rng):
    w = rng.standard_normal((3, 4)).astype(np.float32)
    return [("w", w, np.zeros_like(w))]


@pytest.mark.parametrize("cls,buffer", [
    (Adam, "exp_avg_sq"), (AdamW, "exp_avg_sq"), (RMSprop, "square_avg"), (AdaGrad, "sum"),
])
def test_negative_second_moments_are_refused_at_load(cls, buffer):
    rng = np.random.default_rng(0)
    params = _model_params(rng)
    opt = cls(params, lr=0.01)
    params[0][2][...] = rng.standard_normal((3, 4))
    opt.step()
    state = opt.state_dict()
    state["state"]["w"][buffer] = state["state"]["w"][buffer].copy()
    state["state"]["w"][buffer][1, 2] = -1e-3
    before = opt.state_dict()
    with pytest.raises(ValueError, match=rf"state\['w'\]\['{buffer}'\] expected values >= 0 "
                                         rf"\(it holds squares\), got -0.001"):
        opt.load_state_dict(state)
    after = opt.state_dict()  # nothing changed
    assert np.array_equal(after["state"]["w"][buffer], before["state"]["w"][buffer])


@pytest.mark.parametrize("cls", [SGD, Adam, RMSprop])
def test_non_finite_buffers_are_refused_at_load(cls):
    params = _model_params(np.random.default_rng(0))
    kw = {"momentum": 0.9} if cls is SGD else {}
    opt = cls(params, lr=0.01, **kw)
    opt.step()
    state = opt.state_dict()
    name = sorted(state["state"]["w"])[0]
    state["state"]["w"][name][0, 0] = np.nan
    with pytest.raises(ValueError, match=rf"state\['w'\]\['{name}'\] expected finite values"):
        opt.load_state_dict(state)


def test_a_checkpoint_with_negative_adam_moments_is_refused_at_resume(tmp_path, capsys):
    path = _train(tmp_path)
    from safetensors import safe_open
    from safetensors.numpy import save

    with safe_open(str(path), framework="np") as fh:
        document = json.loads(fh.metadata()["rnnlab"])
        arrays = {k: fh.get_tensor(k) for k in fh.keys()}
    key = "optim/rnn.weight_hh_l0/exp_avg_sq"
    arrays[key] = -np.abs(arrays[key]) - 1e-6
    document.pop(CHECKSUM_KEY)
    path.write_bytes(save(arrays, metadata=document_metadata(document)))
    capsys.readouterr()
    assert main(["train", "--resume", str(path), "--no-progress", "--sample-length", "0"]) == 1
    err = capsys.readouterr().err
    assert "exp_avg_sq" in err and "expected values >= 0" in err, err


def test_a_checkpoint_with_eps_zero_is_refused_at_resume(tmp_path, capsys):
    path = _train(tmp_path)

    def edit(doc):
        doc["optimizer"]["hyper"]["eps"] = 0.0

    rewrite_document(path, edit)
    capsys.readouterr()
    assert main(["train", "--resume", str(path), "--no-progress", "--sample-length", "0"]) == 1
    err = capsys.readouterr().err
    assert "optimizer eps expected a number > 0, got 0.0" in err, err
