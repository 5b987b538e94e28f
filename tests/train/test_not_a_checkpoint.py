"""Issue 22, item 5: a file that is not a checkpoint is called so, not a corrupt header
(also when its first 8 bytes declare a huge header and a '{' follows)."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.cli import main
from rnnlab.train.checkpoint import (
    MAX_HEADER_BYTES,
    CheckpointError,
    read_checkpoint,
    write_checkpoint,
)

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


HUGE = "not an rnnlab checkpoint, or a damaged one (a checkpoint starts with the 8-byte length"


@pytest.mark.parametrize("declared", [2**62, 2**64 - 1, MAX_HEADER_BYTES + 1])
def test_huge_declared_header_then_brace(tmp_path, capsys, declared):
    """First 8 bytes declaring more header than any checkpoint has, then the '{' a
    safetensors header starts with: not a checkpoint (or a damaged one), the file named,
    what a checkpoint holds there and what this one declares, not a 'corrupt header'."""
    path = tmp_path / "weird.bin"
    path.write_bytes(declared.to_bytes(8, "little") + b'{"a": 1}' + b"\x00" * 30)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    msg = str(info.value)
    assert msg.startswith(f"checkpoint {str(path)!r}: {HUGE}"), msg
    assert f"at most {MAX_HEADER_BYTES:,} bytes" in msg
    assert f"declare {declared:,} header bytes, and the file has 38 bytes after them" in msg
    assert "corrupt header" not in msg
    assert main(["eval", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"rnnlab: error: checkpoint {str(path)!r}: {HUGE}")


def test_truncated_checkpoint_is_still_called_damaged(tmp_path):
    """A real checkpoint cut short declares a plausible header longer than what is left:
    still 'corrupt header ... damaged or truncated checkpoint'."""
    path = tmp_path / "cut.safetensors"
    write_checkpoint(path, {"model/w": np.zeros((4, 4), np.float32)}, {"kind": "test"})
    data = path.read_bytes()
    header = int.from_bytes(data[:8], "little")
    path.write_bytes(data[: 8 + header // 2])
    with pytest.raises(CheckpointError, match=rf"cut.safetensors'?: corrupt header \(declares "
                                              rf"{header} header bytes, the file has "
                                              rf"{header // 2}\): a damaged or truncated"):
        read_checkpoint(path)
