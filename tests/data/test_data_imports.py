"""The modules of rnnlab.data import one another without a cycle (issue 21): every
import statement counts, the ones inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

import rnnlab.data

PACKAGE = Path(rnnlab.data.__file__).parent


def _imports(path: Path) -> set[str]:
    """The rnnlab.data modules that ``path`` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(n for n in names if n.startswith("rnnlab.data."))
    return found


def test_no_import_cycle_in_the_data_package():
    graph = {f"rnnlab.data.{p.stem}": _imports(p) for p in PACKAGE.glob("*.py")
             if p.stem != "__init__"}
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(graph.get(module, ())):
            if target in path:
                cycles.append([*path[path.index(target):], target])
            elif target in graph:
                visit(target, [*path, target])

    for module in sorted(graph):
        visit(module, [module])
    assert not cycles, f"import cycles: {cycles[:3]}"
    # the loaders share the record through rnnlab.data.core, not through each other
    assert "rnnlab.data.corpus" not in graph["rnnlab.data.remote"] | graph["rnnlab.data.stdlib"]
