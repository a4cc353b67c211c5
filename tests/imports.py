"""Reading the packages' import statements (ast), for the import tests: no file is executed."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support import ROOT

PACKAGES = ("gateway", "policies")


def modules(packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Every module of ``packages`` (a package by its own name), mapped to its source file."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


@dataclass(frozen=True)
class Import:
    module: str  # the module imported (for ``from X import name``: X.name when that is a module, else X)
    line: int
    deferred: bool  # inside a function or an ``if TYPE_CHECKING:`` block: not run when the module loads


def imports(path: Path, known: dict[str, Path]) -> Iterator[Import]:
    """The absolute imports of one source file."""
    tree = ast.parse(path.read_text(), str(path))
    yield from _walk(tree.body, known, deferred=False)


def _walk(body: list[ast.stmt], known: dict[str, Path], deferred: bool) -> Iterator[Import]:
    for node in body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, node.lineno, deferred)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                yield Import(sub if sub in known else node.module, node.lineno, deferred)
        elif isinstance(node, ast.If):
            checking = "TYPE_CHECKING" in ast.unparse(node.test)
            yield from _walk(node.body, known, deferred or checking)
            yield from _walk(node.orelse, known, deferred)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _walk(node.body, known, True)
        elif isinstance(node, ast.ClassDef | ast.With | ast.Try | ast.For | ast.While):
            for field in ("body", "orelse", "finalbody"):
                yield from _walk(getattr(node, field, []), known, deferred)
            for handler in getattr(node, "handlers", []):
                yield from _walk(handler.body, known, deferred)


def _packages(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:end]) for end in range(1, len(parts))}


def load_time_graph(known: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the project modules it imports when it loads (deferred imports left out).

    Importing ``a.b.c`` first runs the ``__init__`` of ``a`` and ``a.b``: those count too, except
    the packages the importing module is itself inside (they are loading already when it runs).
    """
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        own = _packages(name)
        needed: set[str] = set()
        for found in imports(path, known):
            if not found.deferred and found.module in known:
                needed |= {found.module} | (_packages(found.module) - own)
        graph[name] = (needed & known.keys()) - {name} - own
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
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
                if len(component) > 1:
                    found.append(sorted(component))
    return found
