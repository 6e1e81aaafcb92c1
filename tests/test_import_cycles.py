"""No import cycles among pyserini_llama's modules: each layer imports only the layers below it; and one
import path per name (see "one import path per name" below).

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


# ------------------------------------------------------------------------------------- one import path per name
#
# A name of ours is imported from the module that defines it (``def``, ``class`` or an assignment at its top
# level), or from a package ``__init__`` that re-exports it from one of its own submodules (``data/__init__.py``
# re-exports ``data.runs.Run``; the top package's lazy ``_LAZY`` table counts as such re-exports). Any other
# module that imports a name only to hand it on gives the name a second import path: refused, as is an
# imported name a module never uses (a re-export in waiting, like the old ``NOTES`` in ``pipeline``).


def defined_names(path: Path) -> set[str]:
    """Names bound at the top level of a module by ``def``, ``class`` or assignment (inside top-level
    ``if``/``try`` blocks too); imports do not define."""
    names: set[str] = set()

    def visit(body):
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            elif isinstance(node, ast.If):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return names


def imported_names(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[int, str, str, str]]:
    """``(line, source module, name, local name)`` for each name ``name`` imports from a module of ours (not
    submodules); the local name is the ``as`` name if any."""
    package = name if _is_package(path) else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - (node.level - 1)])
            base = f"{base}.{node.module}" if node.module else base
        else:
            base = node.module or ""
        if base not in modules:
            continue
        for alias in node.names:
            if f"{base}.{alias.name}" not in modules and alias.name != "*":
                found.append((node.lineno, base, alias.name, alias.asname or alias.name))
    return found


def _lazy_exports(path: Path) -> dict[str, str]:
    """A package ``__init__``'s ``_LAZY = {name: module}`` table (names loaded on first attribute access)."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_LAZY" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def where_defined(source: str, symbol: str, modules: dict[str, Path]) -> str | None:
    """The module whose definition ``from source import symbol`` reaches through allowed re-exports only."""
    path = modules[source]
    if symbol in defined_names(path):
        return source
    if not _is_package(path):
        return None  # a plain module handing on a name it imports: a second import path
    lazy = _lazy_exports(path)
    if symbol in lazy and lazy[symbol].startswith(source + "."):
        return where_defined(lazy[symbol], symbol, modules)
    for _, origin, name, _ in imported_names(source, path, modules):
        if name == symbol and origin.startswith(source + "."):  # a package re-exporting its own submodule
            return where_defined(origin, symbol, modules)
    return None


def used_names(path: Path) -> set[str]:
    """Every identifier a module reads (names, ``__all__`` entries excluded: listing is not using)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        n.value.id for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
    }


def import_path_problems(importers: dict[str, Path], modules: dict[str, Path]) -> list[str]:
    problems = []
    for name, path in sorted(importers.items()):
        used = used_names(path)
        for line, source, symbol, local in imported_names(name, path, modules):
            where = f"{name}:{line}"
            if where_defined(source, symbol, modules) is None:
                problems.append(f"{where}: {symbol} imported from {source}, which does not define it")
            own_submodule = _is_package(path) and source.startswith(name + ".")
            if local not in used and not own_submodule:
                problems.append(f"{where}: {symbol} imported from {source} but not used (a re-export)")
        for symbol, target in _lazy_exports(path).items():
            if target not in modules or where_defined(target, symbol, modules) != target:
                problems.append(f"{name}: _LAZY {symbol} points at {target}, not its home")
    return problems


def test_the_import_path_checker_refuses_re_exports(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text('_LAZY = {"Run": "pkg.data.runs"}\n')
    (pkg / "loading.py").write_text("def file_fingerprint(path): ...\n")
    (pkg / "data" / "__init__.py").write_text("from .runs import Run\n")
    (pkg / "data" / "runs.py").write_text("Run = dict\n")
    (pkg / "pipeline.py").write_text(
        "from .loading import file_fingerprint as NOTES  # noqa: F401\nfrom .data import Run\n"
        "from .loading import file_fingerprint\nx = file_fingerprint(Run)\n"
    )
    (pkg / "mine.py").write_text(
        "from pkg import Run\nfrom .pipeline import file_fingerprint\ny = Run, file_fingerprint\n"
    )
    (pkg / "data" / "extra.py").write_text("from ..loading import file_fingerprint  # noqa: F401\n")
    modules = module_names(pkg, "pkg")
    assert import_path_problems(modules, modules) == [
        "pkg.data.extra:1: file_fingerprint imported from pkg.loading but not used (a re-export)",
        "pkg.mine:2: file_fingerprint imported from pkg.pipeline, which does not define it",
        "pkg.pipeline:1: file_fingerprint imported from pkg.loading but not used (a re-export)",
    ]
    # A package __init__ may hand on its own submodules' names, not another package's; _LAZY must point home.
    (pkg / "data" / "__init__.py").write_text("from .runs import Run\nfrom ..loading import file_fingerprint\n")
    (pkg / "__init__.py").write_text('_LAZY = {"Run": "pkg.data"}\n')
    (pkg / "data" / "extra.py").unlink()
    (pkg / "mine.py").unlink()
    (pkg / "pipeline.py").unlink()
    modules = module_names(pkg, "pkg")
    assert import_path_problems(modules, modules) == [
        "pkg: _LAZY Run points at pkg.data, not its home",
        "pkg.data:2: file_fingerprint imported from pkg.loading but not used (a re-export)",
    ]


def test_one_import_path_per_name():
    """Package and tests import each name of ours from where it is defined (or its package's ``__init__``)."""
    modules = module_names()
    tests = {f"tests.{p.stem}": p for p in sorted(Path(__file__).parent.glob("*.py"))}
    problems = import_path_problems({**modules, **tests}, modules)
    assert not problems, "names imported through a second path:\n" + "\n".join(problems)


def definition_problems(modules: dict[str, Path]) -> list[str]:
    """Public functions, classes and type aliases (capitalised, not constants) defined in more than one module.

    Command modules (those defining ``main``) are left out: their ``main``, ``cli`` and helpers serve that
    command alone, and every command has them.
    """
    homes: dict[str, list[str]] = {}
    for name, path in sorted(modules.items()):
        if "main" in defined_names(path):
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                symbols = [node.name]
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                symbols = [
                    t.id for t in targets if isinstance(t, ast.Name) and t.id[:1].isupper() and not t.id.isupper()
                ]
            else:
                continue
            for symbol in symbols:
                if not symbol.startswith("_"):
                    homes.setdefault(symbol, []).append(name)
    return [f"{symbol}: {', '.join(where)}" for symbol, where in sorted(homes.items()) if len(where) > 1]


def test_the_definition_checker_finds_a_name_defined_twice(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "runs.py").write_text("Run = dict[str, list]\nMAX = 1\n")
    (pkg / "faiss.py").write_text("Run = dict[str, list]\nMAX = 2\n")  # constants are not checked here
    (pkg / "rerank.py").write_text("Run = dict\ndef main(): ...\n")  # a command: its names are its own
    assert definition_problems(module_names(pkg, "pkg")) == ["Run: pkg.faiss, pkg.runs"]
    (pkg / "rerank.py").write_text("Run = dict\n")
    assert definition_problems(module_names(pkg, "pkg")) == ["Run: pkg.faiss, pkg.rerank, pkg.runs"]


def test_each_public_name_is_defined_once():
    problems = definition_problems(module_names())
    assert not problems, "defined in more than one module:\n" + "\n".join(problems)
