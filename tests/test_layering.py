"""The folder list is the architecture (STYLE.md, rule 1): banned imports stay banned.

Every ``.py`` file under each top-level package is parsed with ``ast``; each import — at any
depth in the file, including function-local and ``TYPE_CHECKING`` imports — is reduced to its
top-level module name.  Relative imports stay inside the package and are ignored.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

BANNED: dict[str, frozenset[str]] = {
    # Functional core: values in, values out — no I/O, clock, randomness or event loop.
    "conflict": frozenset(
        {
            "asyncio",
            "aiohttp",
            "aiosqlite",
            "asyncpg",
            "edge_node",
            "cloud_hub",
            "socket",
            "os",
            "time",
            "random",
        }
    ),
    # Sans-I/O wire format shared by edge and hub.
    "sync_protocol": frozenset(
        {"aiohttp", "aiosqlite", "asyncpg", "edge_node", "cloud_hub", "socket", "asyncio"}
    ),
    # The hub cannot decrypt, so it has no use for merge rules; edge and hub share only the wire.
    "cloud_hub": frozenset({"edge_node", "conflict"}),
    "edge_node": frozenset({"cloud_hub"}),
}


def imports_in(source: str, filename: str) -> set[str]:
    """Top-level module names that ``source`` imports (absolute imports only)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def top_level_imports(package: str) -> dict[str, set[str]]:
    """For each ``.py`` file of ``package`` (path relative to the repo), its top-level imports."""
    root = ROOT / package
    return {
        str(path.relative_to(ROOT)): imports_in(path.read_text(encoding="utf-8"), str(path))
        for path in sorted(root.rglob("*.py"))
    }


@pytest.mark.parametrize("package", sorted(BANNED))
def test_layering(package: str) -> None:
    assert (ROOT / package).is_dir(), f"package {package}/ is missing"
    assert any((ROOT / package).rglob("*.py")), f"package {package}/ has no Python files"
    offending = {
        path: sorted(found & BANNED[package])
        for path, found in top_level_imports(package).items()
        if found & BANNED[package]
    }
    assert not offending, f"{package}/ imports what it must not (STYLE.md rule 1): {offending}"


def test_import_scan_sees_every_form() -> None:
    source = (
        "import os.path\n"
        "from asyncio import sleep\n"
        "from . import sibling\n"
        "from .models import Change\n"
        "def f():\n"
        "    import socket\n"
        "if TYPE_CHECKING:\n"
        "    from edge_node.cli import main\n"
    )
    assert imports_in(source, "<probe>") == {"os", "asyncio", "socket", "edge_node"}


# --- inside edge_node: one straight stack --------------------------------------------------

#: The edge's folders and top modules, lowest first.  Each may import only what stands
#: below it; nothing may import what stands above it or beside it.
EDGE_STACK: tuple[str, ...] = (
    "errors",
    "log_keys",
    "config",
    "fhir",
    "store",
    "node",
    "hub_link",
    "snapshots",
    "sync",
    "api",
    "cli",
    "__main__",
)


def edge_layer(module: str) -> str | None:
    """The stack entry of ``edge_node`` module ``module`` (dotted), or None outside the edge."""
    parts = module.split(".")
    if parts[0] != "edge_node":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def edge_module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def absolute_imports(source: str, filename: str, module: str, is_package: bool) -> set[str]:
    """Dotted modules (or module.name) that ``source`` imports at any depth, relative resolved."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def edge_import_violations() -> list[str]:
    rank = {name: i for i, name in enumerate(EDGE_STACK)}
    problems = []
    for path in sorted((ROOT / "edge_node").rglob("*.py")):
        module = edge_module_name(path)
        own = edge_layer(module)
        if own == "__init__":
            continue  # the package docstring; imports nothing of its own
        assert own in rank, f"{path.relative_to(ROOT)}: {own!r} is not in EDGE_STACK"
        source = path.read_text(encoding="utf-8")
        for target in sorted(absolute_imports(source, str(path), module,
                                              path.name == "__init__.py")):
            layer = edge_layer(target)
            if layer is None or layer == own or layer == "__init__":
                continue
            if layer not in rank:
                continue  # `from edge_node.x import name`: x is checked on its own entry
            if rank[layer] > rank[own]:
                problems.append(f"{module} imports {target}: {layer} stands above {own}")
    return problems


def test_edge_stack_is_complete() -> None:
    present = {p.name.removesuffix(".py") for p in (ROOT / "edge_node").iterdir()
               if (p.is_dir() and (p / "__init__.py").exists()) or p.suffix == ".py"}
    assert present - {"__init__"} == set(EDGE_STACK), "EDGE_STACK must name every folder"


def test_edge_imports_only_downwards() -> None:
    problems = edge_import_violations()
    assert not problems, "edge_node/ imports against its stack:\n" + "\n".join(problems)


def test_edge_stack_scan_resolves_relative_and_local_imports() -> None:
    source = "from ..sync import loop\ndef f():\n    from edge_node.api.app import make_app\n"
    found = absolute_imports(source, "<probe>", "edge_node.store.writer", False)
    assert {"edge_node.sync.loop", "edge_node.api.app"} <= found


# --- nobody reaches into another module's private names ------------------------------------

#: Underscore names that are public API of the standard library's types.
PUBLIC_UNDERSCORE = frozenset({"_replace", "_asdict", "_fields", "_make", "_field_defaults"})


def _is_setattr(func: ast.expr) -> bool:
    return (isinstance(func, ast.Name) and func.id == "setattr") or (
        isinstance(func, ast.Attribute) and func.attr == "setattr")


def private_access_violations(path: Path) -> list[str]:
    """``x._name`` where ``x`` is not self/cls and ``_name`` is not defined in this module,
    and ``from m import _name`` of another module."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source, filename=str(path))
    defined: set[str] = set()
    foreign: set[str] = set()  # names bound to modules that are not ours (argparse, ...)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            foreign.update((a.asname or a.name).split(".")[0] for a in node.names
                           if a.name.split(".")[0] not in PROJECT_PACKAGES)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            defined.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            defined.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defined.add(node.target.id)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.Assign):
                    defined.update(t.id for t in item.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            defined.add(node.value)  # __slots__ entries
    problems: list[str] = []
    rel = path.relative_to(ROOT)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            problems.extend(
                f"{rel}:{node.lineno}: imports {node.module}.{alias.name}"
                for alias in node.names
                if alias.name.startswith("_") and not alias.name.startswith("__")
            )
        elif isinstance(node, ast.Call) and _is_setattr(node.func) and len(node.args) >= 2:
            name_arg = node.args[1]
            if (isinstance(name_arg, ast.Constant) and isinstance(name_arg.value, str)
                    and name_arg.value.startswith("_") and not name_arg.value.startswith("__")):
                problems.append(f"{rel}:{node.lineno}: patches .{name_arg.value}")
        elif isinstance(node, ast.Attribute):
            name = node.attr
            if not name.startswith("_") or name.startswith("__") or name in PUBLIC_UNDERSCORE:
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls", *foreign):
                continue
            if name in defined:
                continue
            problems.append(f"{rel}:{node.lineno}: reaches into .{name}")
    return problems


PRIVATE_CHECKED = ("edge_node", "cloud_hub", "sync_protocol", "conflict", "chartsync", "bench",
                   "tests")
PROJECT_PACKAGES = frozenset(PRIVATE_CHECKED)


@pytest.mark.parametrize("package", PRIVATE_CHECKED)
def test_no_access_to_other_modules_private_names(package: str) -> None:
    problems = [p for path in sorted((ROOT / package).rglob("*.py"))
                if not path.name.startswith("_probe_private_")
                for p in private_access_violations(path)]
    assert not problems, "private names used from outside their module:\n" + "\n".join(problems)


def test_private_scan_sees_reaches_and_allows_own_names(tmp_path: Path) -> None:
    probe = ROOT / "tests" / f"_probe_private_{tmp_path.name}.py"
    probe.write_text(
        "import argparse\nfrom edge_node.store import writer\nfrom m import _hidden\n"
        "class A:\n    def __init__(self):\n        self._mine = 1\n"
        "    def f(self, other, w):\n        return other._mine, w._hlc, writer._LOAD, "
        "argparse._SubParsersAction\n"
        "def g(monkeypatch):\n    monkeypatch.setattr(writer, '_push', None)\n",
        encoding="utf-8",
    )
    try:
        found = private_access_violations(probe)
    finally:
        probe.unlink()
    assert sorted(f.split(": ", 1)[1] for f in found) == [
        "imports m._hidden", "patches ._push", "reaches into ._LOAD", "reaches into ._hlc"]


# --- tests mirror the source tree ----------------------------------------------------------

MIRRORED = ("edge_node", "cloud_hub", "sync_protocol", "conflict")


@pytest.mark.parametrize("package", MIRRORED)
def test_test_folders_mirror_source_folders(package: str) -> None:
    """`tests/edge_node/store/` exists only beside `edge_node/store/`, and so on."""
    tests_root = ROOT / "tests" / package
    strays = [
        str(folder.relative_to(ROOT))
        for folder in sorted(p for p in tests_root.rglob("*") if p.is_dir())
        if folder.name != "__pycache__"
        and not (ROOT / package / folder.relative_to(tests_root)).is_dir()
    ]
    assert not strays, f"test folders with no source folder beside them: {strays}"
