"""No import cycles among pyserini_llama's modules: each layer imports only the layers below it.

Every ``import`` / ``from ... import`` statement counts, wherever it is written (module level,
inside functions, under ``if TYPE_CHECKING:``): a lazy import is still a dependency, it only
moves the moment the cycle would bite. Rules for turning statements into edges:

* ``import a.b.c`` depends on ``a.b.c``; ``from a.b import c`` depends on ``a.b.c`` when that is a
  module of ours, else on ``a.b`` (``c`` is a name defined there); relative imports are resolved
  against the importing module's package.
* The implicit import of parent packages is not an edge. Python always initialises ``a`` before
  ``a.b``; counting that would make every package ``__init__`` that re-exports its own submodules
  (``data/__init__.py`` importing ``.corpus``) a cycle with each of them. A submodule that imports a
  *name* from its own package's ``__init__`` (``from . import Document``) is a real edge, though,
  and does close a cycle with an ``__init__`` that imports it: write ``from .corpus import Document``.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "pyserini_llama"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE


def module_names(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted name -> file for every module of the package (``__init__`` files name the package)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join([package, *parts])] = path
    return modules


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ours that ``name`` (at ``path``) imports, by the rules in the module docstring."""
    package = name if _is_package(path) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                if node.level - 1 >= len(parts):
                    raise AssertionError(f"{path}:{node.lineno}: relative import beyond the top-level package")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {target for target in found if target in modules and target != name}


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def strongly_connected_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (the graph is small, but recursion depth is not ours to spend)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def test_the_checker_finds_cycles_and_resolves_relative_imports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "data").mkdir(parents=True)
    (pkg / "search").mkdir()
    (pkg / "__init__.py").write_text("from . import _startup\n")
    (pkg / "_startup.py").write_text("def hook():\n    from pkg.search import lucene\n")
    (pkg / "data" / "__init__.py").write_text("from .corpus import Document\n")
    (pkg / "data" / "corpus.py").write_text("def store():\n    from ..search.lucene import Store\n")
    (pkg / "search" / "__init__.py").write_text("")
    (pkg / "search" / "lucene.py").write_text("from ..data.corpus import Document\nimport pkg.data\n")
    modules = module_names(pkg, "pkg")
    graph = import_graph(modules)
    assert graph["pkg"] == {"pkg._startup"}
    assert graph["pkg.search.lucene"] == {"pkg.data.corpus", "pkg.data"}
    assert graph["pkg.data.corpus"] == {"pkg.search.lucene"}  # a lazy import counts
    cycles = [c for c in strongly_connected_components(graph) if len(c) > 1]
    assert cycles == [["pkg.data", "pkg.data.corpus", "pkg.search.lucene"]]

    (pkg / "data" / "corpus.py").write_text("class Document: ...\n")
    assert all(len(c) == 1 for c in strongly_connected_components(import_graph(module_names(pkg, "pkg"))))


def test_no_import_cycles():
    modules = module_names()
    assert len(modules) > 30 and f"{PACKAGE}.data.corpus" in modules
    graph = import_graph(modules)
    cycles = [c for c in strongly_connected_components(graph) if len(c) > 1]
    details = [" <-> ".join(c) + ": " + "; ".join(f"{m} -> {sorted(graph[m] & set(c))}" for m in c) for c in cycles]
    assert not cycles, "import cycles:\n" + "\n".join(details)
