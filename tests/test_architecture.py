"""The house: no import circles, no private name across packages, modules and functions of a readable size.

The layers themselves are import-linter's contracts in ``pyproject.toml`` (``make lint`` and
``make test`` run ``lint-imports``); these tests check what a contract cannot say.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "flywheel"
MAX_MODULE_LINES = 520  # "about 500": a module past it grows into a subpackage
MAX_FUNCTION_LINES = 80
# A long function is allowed when its docstring says why it is one piece.
LONG_REASON = "One piece because"


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively: every strongly connected component of more than one node."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
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
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_circle_finder_finds_a_circle() -> None:
    assert _strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _strongly_connected({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_through_others() -> None:
    graph = grimp.build_graph("flywheel", exclude_type_checking_imports=False)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert _strongly_connected(edges) == []


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _package(path: Path) -> str:
    rel = path.relative_to(PACKAGE).parts
    return rel[0] if len(rel) > 1 else rel[0].removesuffix(".py")


def _private_crossings(text: str, mine: str, shown: str) -> list[str]:
    """``from flywheel.X._y import ...`` or ``import _name`` from another package than ``mine``."""
    crossings = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("flywheel."):
            continue
        parts = node.module.split(".")[1:]
        if parts[0] == mine or parts[0] in ("_version", "_lazy"):  # the package's own internals
            continue
        private = [p for p in parts if p.startswith("_")] + [
            a.name for a in node.names if a.name.startswith("_")
        ]
        if private:
            crossings.append(f"{shown}:{node.lineno} imports {', '.join(private)}")
    return crossings


def test_no_private_name_crosses_a_package() -> None:
    crossings = [
        c
        for p in _modules()
        for c in _private_crossings(p.read_text(encoding="utf-8"), _package(p), str(p.relative_to(PACKAGE)))
    ]
    assert crossings == []


def test_the_private_name_check_sees_a_crossing() -> None:
    text = (
        "from flywheel.serving._app import create_app\n"
        "from flywheel.evaluation import _predict\n"
        "from flywheel.loop._queue import _item\n"
    )
    assert _private_crossings(text, "loop", "probe.py") == [
        "probe.py:1 imports _app",
        "probe.py:2 imports _predict",
    ]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_readable(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_MODULE_LINES, f"{lines} lines: grow it into a subpackage"
    long = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            if size > MAX_FUNCTION_LINES and LONG_REASON not in (ast.get_docstring(node) or ""):
                long.append(f"{node.name} ({size} lines)")
    assert long == [], "split these or say in the docstring why each is one piece"


def test_the_four_phases_are_folders() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert {"scoping", "data", "baselines", "evaluation", "diagnosis", "serving", "loop"} <= folders
