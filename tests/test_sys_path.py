"""Nothing outside tests/ reaches into tests/ by editing the import path.

Shared fixtures (tiny models, training files) live in ``pyserini_llama.testing``; a benchmark or script that
put ``tests/`` on ``sys.path`` (or on ``PYTHONPATH``) would depend on a folder that is not installed and whose
modules are free to change with the tests.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Where code outside the tests lives (the data folders of a working checkout are not read).
CODE = ("pyserini_llama", "benchmarks", "reproduce", ".ci", "setup.py", "setup.sh")
SHELL_PATH = re.compile(r"PYTHONPATH=.*\btests\b")


def _mentions_tests(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Constant) and isinstance(n.value, str) and "tests" in n.value for n in ast.walk(node))


def _is_sys_path(node: ast.AST) -> bool:
    """``sys.path`` itself, or a subscript of it (``sys.path[:0]``)."""
    if isinstance(node, ast.Subscript):
        node = node.value
    return isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", None) == "sys"


def python_edits(source: str) -> list[int]:
    """Lines that add something naming ``tests`` to ``sys.path`` (insert/append/extend, assignment, ``+=``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and _is_sys_path(node.func.value):
            edit = node.func.attr in ("insert", "append", "extend")
        elif isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            edit = any(_is_sys_path(t) for t in targets)
        else:
            continue
        if edit and _mentions_tests(node):
            found.append(node.lineno)
    return found


def offending_lines(root: Path, names=CODE) -> list[str]:
    files = []
    for name in names:
        path = root / name
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            files.append(path)
    found = []
    for path in files:
        if path.suffix == ".py":
            found += [f"{path.relative_to(root)}:{n}" for n in python_edits(path.read_text(encoding="utf-8"))]
        elif path.suffix == ".sh" or path.name == "run":
            lines = path.read_text(encoding="utf-8").splitlines()
            found += [f"{path.relative_to(root)}:{n}" for n, line in enumerate(lines, 1) if SHELL_PATH.search(line)]
    return found


def test_the_check_finds_each_kind_of_edit(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "a.py").write_text(
        'import sys\nsys.path.insert(0, str(REPO / "tests"))\n"""sys.path: the tests import it"""\n'
    )
    (tmp_path / "benchmarks" / "b.py").write_text('import sys\nsys.path[:0] = [str(REPO), str(REPO / "tests")]\n')
    (tmp_path / "benchmarks" / "c.py").write_text('import sys\nsys.path.insert(0, str(REPO))\nprint("tests")\n')
    (tmp_path / "benchmarks" / "d.sh").write_text('export PYTHONPATH="$PWD/tests:$PYTHONPATH"\n# tests\n')
    assert offending_lines(tmp_path, ("benchmarks",)) == ["benchmarks/a.py:2", "benchmarks/b.py:2", "benchmarks/d.sh:1"]


def test_nothing_outside_tests_puts_tests_on_the_import_path():
    assert (REPO / "benchmarks").is_dir()
    assert offending_lines(REPO) == [], "use pyserini_llama.testing instead of importing from tests/"
