"""No hidden imports: a function of rnnlab imports no rnnlab module (``import rnnlab...``,
``from rnnlab... import``, or a relative import) unless that module needs an optional
extra (numba, llvmlite, cupy) to be imported at all. Everything else is imported at the
top of the file, where a reader sees the file's dependencies."""

from __future__ import annotations

import ast
from pathlib import Path

import rnnlab

SRC = Path(rnnlab.__file__).parent

#: rnnlab modules that import an optional extra at their top: a function may import them
#: where it needs them (their import fails without the extra).
OPTIONAL_EXTRA_MODULES = frozenset({
    "rnnlab.fast.cuda_kernels",  # cupy
    "rnnlab.fast.numba_gemm",  # numba, llvmlite
    "rnnlab.fast.numba_kernels",  # numba, llvmlite
    "rnnlab.fast.numba_minrnn",  # numba
})

#: TEMPORARY: files other helpers of this round still own and move to top-level imports
#: themselves (the training stack: train/, the command lines, seq2seq's launchers; the
#: reliability files export.py and gradcheck.py; the engine's engine.py). The lead
#: empties this list after merging their branches.
STILL_OWNED_ELSEWHERE: frozenset[str] = frozenset()


def _temporarily_allowed(relative: str) -> bool:
    return any(relative == entry or (entry.endswith("/") and relative.startswith(entry))
               for entry in STILL_OWNED_ELSEWHERE)


def _package_of(path: Path) -> str:
    """The dotted package a relative import in ``path`` starts from."""
    module = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
    return module.removesuffix(".__init__") if path.name == "__init__.py" \
        else module.rpartition(".")[0]


def _function_imports(source: str, package: str) -> list[tuple[int, str]]:
    """``(line, module)`` of every rnnlab import inside a function (or lambda) of the
    module ``source`` of ``package`` (relative imports as their dotted module)."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, inside: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if inside and isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    module = ".".join([*base, *([child.module] if child.module else [])])
                    found.append((child.lineno, module))
                elif (child.module or "").split(".")[0] == "rnnlab":
                    found.append((child.lineno, child.module or ""))
            elif inside and isinstance(child, ast.Import):
                found.extend((child.lineno, alias.name) for alias in child.names
                             if alias.name.split(".")[0] == "rnnlab")
            visit(child, inside or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef
                                              | ast.Lambda))

    visit(ast.parse(source), False)
    return found


def test_no_function_level_rnnlab_imports():
    hidden = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if _temporarily_allowed(relative):
            continue
        hidden += [f"rnnlab/{relative}:{line}: {module}"
                   for line, module in _function_imports(path.read_text(encoding="utf-8"),
                                                         _package_of(path))
                   if module not in OPTIONAL_EXTRA_MODULES]
    assert not hidden, "function-level rnnlab imports (import at the top of the file, or " \
                       "move the code to the room it belongs in):\n" + "\n".join(hidden)


def test_the_scan_sees_imports_inside_functions_methods_and_relative_ones():
    text = ("import rnnlab.nn\n"
            "def f():\n    from rnnlab.data import Vocab\n"
            "class C:\n    def m(self):\n        import rnnlab.optim\n"
            "        from . import probe\n")
    assert _package_of(SRC / "viz" / "probe.py") == "rnnlab.viz"
    assert _package_of(SRC / "viz" / "__init__.py") == "rnnlab.viz"
    assert _function_imports(text, "rnnlab.viz") == [
        (3, "rnnlab.data"), (6, "rnnlab.optim"), (7, "rnnlab.viz")]


def test_the_allowed_files_exist():
    """An entry of STILL_OWNED_ELSEWHERE that names nothing is stale: remove it."""
    stale = [entry for entry in STILL_OWNED_ELSEWHERE
             if not (SRC / entry.rstrip("/")).exists()]
    assert set(stale) <= {"cli/"}, stale  # cli/ is the package the command line becomes
