"""`write_transaction`: all of the block or nothing, and never an open transaction left
behind — also when COMMIT itself fails."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge_node.store.transaction import savepoint, write_transaction


def _conn(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    conn.execute("CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES "
                 "parent (id) DEFERRABLE INITIALLY DEFERRED)")
    return conn


def _rows(conn: sqlite3.Connection) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM child ORDER BY id")]


def test_commits_the_block(tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    with write_transaction(conn):
        conn.execute("INSERT INTO parent VALUES (1)")
        conn.execute("INSERT INTO child VALUES (1, 1)")
    assert _rows(conn) == [1] and not conn.in_transaction


def test_an_error_in_the_block_rolls_back(tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    with pytest.raises(ValueError, match="refused"), write_transaction(conn):
        conn.execute("INSERT INTO parent VALUES (1)")
        conn.execute("INSERT INTO child VALUES (1, 1)")
        raise ValueError("refused")
    assert _rows(conn) == [] and not conn.in_transaction


def test_a_failed_commit_rolls_back(tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    with pytest.raises(sqlite3.IntegrityError), write_transaction(conn):
        conn.execute("INSERT INTO child VALUES (1, 99)")  # checked only at COMMIT
    assert _rows(conn) == [] and not conn.in_transaction
    with write_transaction(conn):  # the connection is usable again
        conn.execute("INSERT INTO parent VALUES (99)")
        conn.execute("INSERT INTO child VALUES (2, 99)")
    assert _rows(conn) == [2]


def test_a_savepoint_is_undone_alone_inside_a_transaction_and_commits_outside(
        tmp_path: Path) -> None:
    conn = _conn(tmp_path)
    with write_transaction(conn):
        conn.execute("INSERT INTO parent VALUES (1)")
        with pytest.raises(ValueError), savepoint(conn, "inner"):
            conn.execute("INSERT INTO child VALUES (1, 1)")
            raise ValueError("refused")
        with savepoint(conn, "inner"):
            conn.execute("INSERT INTO child VALUES (2, 1)")
    assert _rows(conn) == [2] and not conn.in_transaction
    with savepoint(conn, "alone"):
        conn.execute("INSERT INTO child VALUES (3, 1)")
    assert not conn.in_transaction and _rows(conn) == [2, 3]
