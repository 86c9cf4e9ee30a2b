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
