"""The training stack's layout holds: train/ imports only the rooms below it, no module of
the stack imports rnnlab inside a function, the loop never asks how many processes run,
and the command line is one package whose door imports only the standard library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "rnnlab"
#: The rooms train/ may import (and itself).
BELOW = ("rnnlab.backend", "rnnlab.nn", "rnnlab.optim", "rnnlab.data", "rnnlab.models",
         "rnnlab.train", "rnnlab._config")


def imports(path: Path) -> list[tuple[str, bool]]:
    """``(module, inside a function)`` for every ``rnnlab`` import of a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] if node.module != "rnnlab" else \
                [f"rnnlab.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        nested = node.col_offset > 0
        found += [(name, nested) for name in names if name.split(".")[0] == "rnnlab"]
    return found


def test_train_imports_only_the_rooms_below_it():
    for path in sorted((SRC / "train").glob("*.py")):  # the package's door included
        for name, _ in imports(path):
            assert name.startswith(BELOW), f"{path.name} imports {name}"


def test_the_older_spelling_without_the_families_says_what_to_do():
    """``Trainer(model, data, config, out_dir)`` finds its task only once rnnlab.families
    is imported (train/ imports no family); without it the error says what to pass."""
    code = ("import sys\n"
            "from rnnlab.models import RNNLM\n"
            "from rnnlab.train import TrainConfig, Trainer\n"
            "assert not any(m.startswith('rnnlab.families') for m in sys.modules)\n"
            "try:\n"
            "    Trainer(RNNLM(10, 4, 4, 1, 'lstm', rng=0), None, TrainConfig(), 'x')\n"
            "except TypeError as exc:\n"
            "    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert "no task is registered for RNNLM" in done.stdout
    assert "LanguageModelTask" in done.stdout and "import rnnlab.families" in done.stdout


def test_no_function_level_rnnlab_imports_in_the_training_stack():
    files = [*(SRC / "train").glob("*.py"), *(SRC / "families").glob("*.py"),
             *(SRC / "cli").glob("*.py"), SRC / "seq2seq" / "training.py",
             SRC / "viz" / "forecast.py"]
    for path in files:
        nested = [name for name, inside in imports(path) if inside]
        assert not nested, f"{path.relative_to(SRC)} imports {nested} inside a function"


def test_the_loop_has_no_branch_on_the_number_of_processes():
    """From ``fit`` on (the setup in ``__init__`` builds the world's collaborators)."""
    text = (SRC / "train" / "loop.py").read_text(encoding="utf-8")
    text = text[text.index("    def fit("):]
    assert "size >" not in text and "size ==" not in text and "is_root:" not in text


def test_the_command_line_door_is_light_and_runs_as_a_module():
    code = "import sys; import rnnlab.cli; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
    out = subprocess.run([sys.executable, "-m", "rnnlab.cli", "--version"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.startswith("rnnlab ")
