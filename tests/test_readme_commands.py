"""Every ``rnnlab`` command line of the README and of the user guide runs, as written.

The command lines are read from README.md and docs/guide.md (their code blocks, and the
complete commands quoted in their text), so a command or an option they show that the
program no longer takes fails here. Each runs in one scratch folder, in the README's
order, with options appended that make it small (argparse keeps the last value given):
a few steps of a tiny model. Under ``mpiexec -n K`` a line runs on one process (the
MPI tests run the many-process ones); a line with ``...`` runs without it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import shlex
from pathlib import Path

import pytest

from rnnlab.cli import main

ROOT = Path(__file__).resolve().parents[1]
DATA = os.environ.get("RNNLAB_DATA")

#: Appended to a new ``rnnlab train`` of a language model (a run of two steps).
TINY_LM = ["--hidden-size", "8", "--embedding-dim", "8", "--num-layers", "1", "--batch-size",
           "4", "--bptt", "8", "--eval-batch-size", "64", "--max-steps", "2", "--no-progress",
           "--sample-length", "5"]
TINY_FORECAST = ["--hidden-size", "4", "--max-steps", "2", "--no-progress", "--plot", ""]
TINY_SEQ2SEQ = ["--source", "generated", "--n", "200", "--hidden-size", "8", "--batch-size",
                "32", "--max-steps", "2", "--quiet"]
#: What a command needs that no README line before it makes (written by these commands
#: with the same tiny settings), and the files the README names.
SETUP = [["train", "--cell", "gru", *TINY_LM]]  # runs/stdlib-gru, for plot curves


#: The user's documents whose command lines run here, in this order: the README, then the
#: user guide the README links to (the site's "Using rnnlab" page).
DOCUMENTS = ("README.md", "docs/guide.md")


def readme_commands() -> list[str]:
    text = "\n".join((ROOT / name).read_text(encoding="utf-8") for name in DOCUMENTS)
    lines = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            line = line.split("  #")[0].strip()
            if re.match(r"(mpiexec -n \d+ )?rnnlab ", line):
                lines.append(line)
    quoted = re.findall(r"`(rnnlab [^`]+)`", re.sub(r"\s*\n\s*", " ", text))
    lines += [q for q in quoted if len(q.split()) > 3 and q not in lines]
    return lines


def tiny(argv: list[str]) -> list[str]:
    """``argv`` with the options that make it small."""
    if argv[:1] == ["train"] and "--resume" in argv:
        return [*argv, "--max-steps", "4", "--no-progress", "--sample-length", "0"] + \
            (["--plot", ""] if "forecast" in argv else [])
    if argv[:1] == ["train"]:
        return [*argv, *(TINY_FORECAST if "forecast" in argv else TINY_LM)]
    if argv[:2] == ["seq2seq", "train"] and "--resume" in argv:
        return [*argv, "--max-steps", "4", "--quiet"]
    if argv[:2] == ["seq2seq", "train"]:  # the README's text leaves out the task it means
        task = [] if "--task" in argv else ["--task", "date"]
        return [*argv, *task, *TINY_SEQ2SEQ, "--overwrite"]
    if argv[:2] == ["plot", "gradients"]:
        return [*argv, "--steps", "3"]
    if argv[:2] == ["plot", "activations"] and "--unit" in argv:
        # the README's unit is one of a full-size model's; the tiny one has 8 units
        return [*argv, "--max-tokens", "200", "--unit", "3"]
    if argv[:1] == ["plot"] and "curves" not in argv:
        return [*argv, "--max-tokens", "200"] if "--string" not in argv else argv
    return argv


def has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def run(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue() + err.getvalue()


@pytest.mark.skipif(not DATA, reason="RNNLAB_DATA is not set (the README trains on PTB)")
def test_every_readme_command_line_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("the notes of a meeting\n" * 200)
    with open(tmp_path / "sales.csv", "w") as f:
        f.write("day,units\n" + "".join(f"{d},{10 + d % 7}\n" for d in range(200)))
    commands = readme_commands()
    assert len(commands) >= 15, commands
    ran = []
    for line in commands:
        words = shlex.split(line.replace("...", ""))
        if words[0] == "mpiexec":
            words = words[3:]
        argv = words[1:]
        if argv[:1] == ["export"] and "onnx" in argv and not has("onnx"):
            continue  # the onnx extra (its own tests run it when installed)
        if argv == ["train", "--resume", "runs/notes/last.safetensors", "--corpus", "notes/"]:
            # the notes run the README resumes: made first
            assert run(["train", "--corpus", "notes/", "--out", "runs/notes", *TINY_LM])[0] == 0
        if not ran:
            for setup in SETUP:
                code, text = run(setup)
                assert code == 0, (setup, text)
        code, text = run(tiny(argv))
        assert code == 0, (line, text[-2000:])
        ran.append(line)
    assert any("--task forecast" in line for line in ran)
