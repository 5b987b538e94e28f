"""The engine is one room: it imports nothing from the layers, models or trainer, and the
reference reaches it through ``rnnlab.fast.engine_for`` alone."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "rnnlab"


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(a.name, []) for a in node.names]
    return found


def test_the_engine_imports_nothing_above_it() -> None:
    for path in sorted((SRC / "fast").glob("*.py")):
        for module, _ in _imports(path):
            assert not module.startswith(("rnnlab.nn", "rnnlab.models", "rnnlab.train",
                                          "rnnlab.optim", "rnnlab.data")), (path, module)


def test_the_reference_asks_the_engine_by_one_name() -> None:
    for room in ("nn", "models", "optim"):
        for path in sorted((SRC / room).rglob("*.py")):
            for module, names in _imports(path):
                if module.startswith("rnnlab.fast"):
                    assert module == "rnnlab.fast" and names == ["engine_for"], (path, names)
