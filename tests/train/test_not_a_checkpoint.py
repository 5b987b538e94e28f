"""Issue 22, item 5: a file that is not a checkpoint is called so, not a corrupt header."""

from __future__ import annotations

import pytest

from rnnlab.cli import main
from rnnlab.train.checkpoint import CheckpointError, read_checkpoint

NOT = "not an rnnlab checkpoint (a safetensors file starts with the 8-byte length of its JSON"


def test_text_file(tmp_path, capsys):
    path = tmp_path / "some.txt"
    path.write_text("the quick brown fox jumps over the lazy dog\n" * 3, encoding="utf-8")
    with pytest.raises(CheckpointError, match="this file starts with text") as info:
        read_checkpoint(path)
    assert NOT in str(info.value) and "declares" not in str(info.value)
    assert main(["eval", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"rnnlab: error: checkpoint {str(path)!r}: {NOT}")


def test_absurd_header_length(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(bytes([0x93, 0xff, 0x01, 0x80, 0x00, 0xfe, 0x10, 0x77]) + b"\x00" * 40)
    with pytest.raises(CheckpointError, match=r"this file starts with the bytes b'\\x93"):
        read_checkpoint(path)


def test_damaged_checkpoint_is_still_corrupt(tmp_path):
    path = tmp_path / "t.safetensors"
    path.write_bytes((500).to_bytes(8, "little") + b'{"a": 1}')
    with pytest.raises(CheckpointError, match=r"corrupt header \(declares 500 header bytes, "
                                              r"the file has 8\): a damaged or truncated"):
        read_checkpoint(path)
