"""One write transaction on a sqlite3 connection in autocommit mode.

    with write_transaction(conn):
        conn.execute(...)

`BEGIN IMMEDIATE` takes the write lock up front (a read that later wants to
write cannot deadlock against another writer); the block's end commits; an
exception in the block, or a failed COMMIT (disk full, I/O error), rolls back
and propagates, so no caller leaves a half-written state or an open
transaction behind.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE for the block; COMMIT at its end, or ROLLBACK and re-raise."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


__all__ = ["write_transaction"]
