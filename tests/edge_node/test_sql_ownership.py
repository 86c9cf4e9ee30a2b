"""Every SQL statement and every database connection of the edge lives in `edge_node/store/`.

Other folders ask the store for typed operations; they never compose SQL, open a connection
or call a cursor method.  The scan parses each module with `ast` and looks for:

* imports of `sqlite3` or `aiosqlite`;
* calls of connection and cursor methods (`execute`, `executemany`, `executescript`,
  `fetchone`, `fetchall`, `fetchmany`, `commit`, `rollback`, `cursor`, `backup`,
  `iterdump`, `create_function`);
* string constants, f-string parts included, that read as SQL (a statement keyword first,
  then SQL words).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EDGE = ROOT / "edge_node"
STORE = EDGE / "store"

DB_MODULES = frozenset({"sqlite3", "aiosqlite"})
DB_METHODS = frozenset({"execute", "executemany", "executescript", "fetchone", "fetchall",
                        "fetchmany", "commit", "rollback", "cursor", "backup", "iterdump",
                        "create_function"})
SQL_TEXT = re.compile(
    r"^\s*(SELECT\s.+\sFROM\s|INSERT\s+(OR\s+\w+\s+)?INTO\s|UPDATE\s+\w+\s+SET\s|"
    r"DELETE\s+FROM\s|CREATE\s+(TABLE|INDEX|UNIQUE|TRIGGER|VIEW)\s|DROP\s+(TABLE|INDEX)\s|"
    r"ALTER\s+TABLE\s|PRAGMA\s|BEGIN(\s+IMMEDIATE|\s+EXCLUSIVE)?\s*$|COMMIT\s*$|"
    r"ROLLBACK\s*$|SAVEPOINT\s|RELEASE\s|ATTACH\s|VACUUM\b|WITH\s+\w+.*\sAS\s*\()",
    re.IGNORECASE | re.DOTALL)


def database_uses(source: str, filename: str) -> list[str]:
    """What in `source` is SQL or a database connection use, one line each."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            found.extend(f"{node.lineno}: imports {a.name}" for a in node.names
                         if a.name.split(".")[0] in DB_MODULES)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in DB_MODULES:
                found.append(f"{node.lineno}: imports from {node.module}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in DB_METHODS:
                found.append(f"{node.lineno}: calls .{node.func.attr}()")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and SQL_TEXT.match(node.value):
            found.append(f"{node.lineno}: SQL text {node.value[:40]!r}")
    return found


def test_sql_and_connections_live_only_in_store() -> None:
    problems: list[str] = []
    for path in sorted(EDGE.rglob("*.py")):
        if STORE in path.parents:
            continue
        rel = path.relative_to(ROOT)
        problems.extend(f"{rel}:{use}" for use in database_uses(
            path.read_text(encoding="utf-8"), str(path)))
    assert not problems, ("SQL or connection use outside edge_node/store/ (ask the store for "
                          "a typed operation instead):\n" + "\n".join(problems))


def test_scan_finds_every_form() -> None:
    source = (
        "import sqlite3\n"
        "from aiosqlite import connect\n"
        "Q = 'SELECT seq FROM outbox WHERE seq > ?'\n"
        "U = ('UPDATE sync_state SET cursor = ?')\n"
        "def f(conn, n):\n"
        "    conn.execute(Q)\n"
        "    rows = conn.cursor().fetchall()\n"
        "    return f'DELETE FROM relay_queue WHERE id IN ({n})'\n"
    )
    kinds = [line.split(": ", 1)[1].split()[0] for line in database_uses(source, "<probe>")]
    assert kinds.count("imports") == 2
    assert kinds.count("SQL") == 3
    assert kinds.count("calls") == 3


def test_scan_leaves_plain_words_alone() -> None:
    source = "MSG = 'select a site to approve'\nHELP = 'update the edge, then restart'\n"
    assert database_uses(source, "<probe>") == []
