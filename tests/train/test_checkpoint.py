"""The checkpoint file format: round trip, atomic replace, and every way a file can be bad."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from rnnlab.train.checkpoint import (
    CheckpointError,
    atomic_write_bytes,
    read_checkpoint,
    write_checkpoint,
)

ARRAYS = {"model/w": np.arange(12, dtype=np.float32).reshape(3, 4),
          "optim/w/m": np.ones((3, 4), np.float64), "state/h": np.zeros((1, 2, 3), np.float32)}


def test_round_trip(tmp_path):
    path = tmp_path / "a.safetensors"
    write_checkpoint(path, ARRAYS, {"kind": "x", "nested": {"list": [1, 2.5, "s"]}})
    arrays, meta = read_checkpoint(path)
    assert set(arrays) == set(ARRAYS)
    for name, value in ARRAYS.items():
        assert arrays[name].dtype == value.dtype
        np.testing.assert_array_equal(arrays[name], value)
    assert meta["kind"] == "x" and meta["nested"] == {"list": [1, 2.5, "s"]}
    assert meta["format"] == "rnnlab-checkpoint" and meta["version"] == 1


def test_atomic_replace_leaves_no_temporary(tmp_path):
    path = tmp_path / "c.safetensors"
    write_checkpoint(path, ARRAYS, {"n": 1})
    write_checkpoint(path, ARRAYS, {"n": 2})
    assert read_checkpoint(path)[1]["n"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["c.safetensors"]


def test_failed_write_keeps_old_file(tmp_path):
    path = tmp_path / "c.safetensors"
    write_checkpoint(path, ARRAYS, {"n": 1})
    with pytest.raises(CheckpointError, match="not JSON-able"):
        write_checkpoint(path, ARRAYS, {"bad": float("nan")})
    assert read_checkpoint(path)[1]["n"] == 1
    assert len(list(tmp_path.iterdir())) == 1


def test_nan_metadata_and_bad_dtype_rejected_on_write(tmp_path):
    with pytest.raises(CheckpointError, match="unsupported dtype"):
        write_checkpoint(tmp_path / "x", {"a": np.zeros(2, np.complex64)}, {})


@pytest.mark.parametrize("damage", ["truncate", "flip_header", "empty", "garbage"])
def test_damaged_files(tmp_path, damage):
    path = tmp_path / "d.safetensors"
    write_checkpoint(path, ARRAYS, {"n": 1})
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip_header":
        data[20] ^= 0xFF
    elif damage == "empty":
        data = bytearray()
    else:
        data = bytearray(b"\x00" * 7 + b"garbage" * 20)
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=str(path.name)):
        read_checkpoint(path)


def test_huge_declared_header(tmp_path):
    path = tmp_path / "h.safetensors"
    path.write_bytes((2**62).to_bytes(8, "little") + b"{}")
    with pytest.raises(CheckpointError, match=r"h\.safetensors'?: not an rnnlab checkpoint, "
                                              r"or a damaged one"):
        read_checkpoint(path)


def test_pickle_renamed_is_rejected_without_running(tmp_path):
    class Boom:
        def __reduce__(self):
            return (print, ("this must never run",))

    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(CheckpointError):
        read_checkpoint(path)


def test_foreign_safetensors_and_versions(tmp_path):
    from safetensors.numpy import save

    path = tmp_path / "f.safetensors"
    path.write_bytes(save({"a": np.zeros(2, np.float32)}))
    with pytest.raises(CheckpointError, match="no rnnlab metadata"):
        read_checkpoint(path)
    doc = json.dumps({"format": "rnnlab-checkpoint", "version": 99})
    path.write_bytes(save({"a": np.zeros(2, np.float32)}, metadata={"rnnlab": doc}))
    with pytest.raises(CheckpointError, match="version 99"):
        read_checkpoint(path)
    path.write_bytes(save({"a": np.zeros(2, np.float32)}, metadata={"rnnlab": "{not json"}))
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_checkpoint(path)


def test_missing_and_oversized(tmp_path):
    with pytest.raises(CheckpointError, match="cannot be read"):
        read_checkpoint(tmp_path / "nope.safetensors")
    path = tmp_path / "big.safetensors"
    write_checkpoint(path, ARRAYS, {})
    with pytest.raises(CheckpointError, match="larger than the limit"):
        read_checkpoint(path, max_bytes=100)
    with pytest.raises(CheckpointError, match="is not a file"):
        read_checkpoint(tmp_path)


def test_atomic_write_bytes_creates_parent(tmp_path):
    target = tmp_path / "sub" / "dir" / "f.bin"
    atomic_write_bytes(target, b"abc")
    assert target.read_bytes() == b"abc"
