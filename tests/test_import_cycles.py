"""No import cycles between the modules of our packages.

Every ``.py`` file of each package in ``CHECKED_PACKAGES`` is parsed with ``ast``; every
import at any depth (module level, inside functions, under ``TYPE_CHECKING``) becomes an
edge to the module it names, with relative imports resolved.  ``from pkg import name``
is an edge to ``pkg.name`` when that is a module, else to ``pkg``.  Importing a module
runs its parents' ``__init__``; those implicit edges are not drawn.  A cycle in that
graph is a design fault even when a function-level import keeps it from failing at
start-up: one of the modules must own what both need.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The packages whose module graph must be acyclic.  `edge_node` joins once its
#: restructuring lands: add it here.
CHECKED_PACKAGES: tuple[str, ...] = ("sync_protocol", "conflict", "cloud_hub", "edge_node",
                                     "chartsync", "bench")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules(packages: tuple[str, ...]) -> dict[str, Path]:
    """Every module of `packages`, by dotted name."""
    return {module_name(path): path for pkg in packages
            for path in sorted((ROOT / pkg).rglob("*.py"))}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a (possibly relative) `from ... import` names."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level > 1:
        base = base[: -(node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imported_modules(module: str, path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that `module` (at `path`) imports anywhere in its source."""
    found: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_package, node)
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                found.add(submodule if submodule in known else target)
    return {m for m in found if m in known and m != module}


def import_graph(packages: tuple[str, ...]) -> dict[str, set[str]]:
    modules = package_modules(packages)
    known = set(modules)
    return {name: imported_modules(name, path, known) for name, path in modules.items()}


def strongly_connected(graph: dict[str, set[str]]) -> Iterator[list[str]]:
    """Tarjan's components of `graph` with more than one module (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
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
                        yield sorted(component)


def a_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One cycle through the first module of `component`, as a path back to it."""
    members, start = set(component), component[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:  # breadth-first: the shortest way back to `start`
        node = frontier.pop(0)
        for nxt in sorted(graph[node] & members):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                frontier.append(nxt)
    raise AssertionError(f"{component} is not strongly connected")


def test_the_checker_finds_a_cycle_and_names_it() -> None:
    graph = {"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": {"a.x"}, "a.w": {"a.x"}}
    assert list(strongly_connected(graph)) == [["a.x", "a.y", "a.z"]]
    assert a_cycle(graph, ["a.x", "a.y", "a.z"]) == ["a.x", "a.y", "a.z", "a.x"]


def test_relative_imports_resolve_to_their_modules(tmp_path: Path) -> None:
    node = ast.parse("from ..store import base\nfrom . import sibling").body
    assert isinstance(node[0], ast.ImportFrom) and isinstance(node[1], ast.ImportFrom)
    assert _resolve("cloud_hub.api.app", False, node[0]) == "cloud_hub.store"
    assert _resolve("cloud_hub.api", True, node[1]) == "cloud_hub.api"


def test_no_import_cycles() -> None:
    graph = import_graph(CHECKED_PACKAGES)
    assert len(graph) > 50, "the packages' modules were not found"
    cycles = [" -> ".join(a_cycle(graph, c)) for c in strongly_connected(graph)]
    assert not cycles, "import cycles (one module must own what both need):\n" + "\n".join(
        cycles)
