"""The modules of python/lrcore import each other without cycles.

The graph is read from the sources with ``ast``, so the test needs neither the compiled
core nor the optional dependencies. An edge is an explicit import of one module of the
package by another, at the top of a file or inside a function (a lazy import is an
import all the same once it runs); imports under ``if TYPE_CHECKING:`` are left out,
since they never run. The package ``__init__`` files that Python runs before a
submodule are left out too: they only re-export, and no module of the package imports
the package itself (if one did, the edge would be there and the cycle found).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "python" / "lrcore"


def module_name(path: Path, root: Path) -> str:
    """Dotted name of a source file under the package directory ``root``."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement except those under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports at run time."""
    files = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    # Compiled modules (lrcore._core) have a stub and import nothing of the package.
    modules = set(files) | {module_name(p, root) for p in root.rglob("*.pyi")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    # Relative: from the module's package (the package itself for __init__).
                    parts = name.split(".")
                    keep = len(parts) - node.level + (1 if is_package else 0)
                    base = ".".join(parts[:keep] + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                # `from pkg import mod` imports the module pkg.mod; otherwise pkg itself.
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                    for alias in node.names
                ]
            graph[name].update(t for t in targets if t in files and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a list of modules (first = last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def test_the_package_has_no_import_cycle():
    graph = import_graph(PACKAGE_ROOT)
    # The graph was read: the modules that must import others do.
    assert {"lrcore._corecalls", "lrcore._tiling", "lrcore.network"} <= graph["lrcore.slice2d"]
    assert "lrcore.network" in graph["lrcore.path1d"]
    assert "lrcore._torch_sequential" in graph["lrcore.network"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_type_checking_imports_are_not_edges():
    graph = import_graph(PACKAGE_ROOT)
    # _verify names the result classes for typing only; the result modules import it.
    assert "lrcore.path1d" not in graph["lrcore._verify"]
    assert "lrcore._verify" in graph["lrcore.path1d"]


def _write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_the_checker_finds_cycles(tmp_path):
    # A cycle through a lazy import, one through `from . import module`, and a
    # TYPE_CHECKING import that must not count.
    root = _write(
        tmp_path / "pkg",
        {
            "__init__.py": "from .a import f\n",
            "a.py": "def f():\n    from .b import g\n    return g\n",
            "b.py": "from . import a, _ext\n",
            "_ext.pyi": "def h() -> None: ...\n",
            "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .d import x\n",
            "d.py": "from .c import y\n",
            "sub/__init__.py": "from .e import z\n",
            "sub/e.py": "from ..c import y\n",
        },
    )
    graph = import_graph(root)
    assert graph == {
        "pkg": {"pkg.a"},
        "pkg.a": {"pkg.b"},
        "pkg.b": {"pkg.a"},
        "pkg.c": set(),
        "pkg.d": {"pkg.c"},
        "pkg.sub": {"pkg.sub.e"},
        "pkg.sub.e": {"pkg.c"},
    }
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.a"]
    graph["pkg.b"] = set()
    assert find_cycle(graph) is None
