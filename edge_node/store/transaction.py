"""One write transaction on a sqlite3 connection in autocommit mode.

    with write_transaction(conn):
        conn.execute(...)

`BEGIN IMMEDIATE` takes the write lock up front (a read that later wants to
write cannot deadlock against another writer); the block's end commits; an
exception in the block, or a failed COMMIT (disk full, I/O error), rolls back
and propagates, so no caller leaves a half-written state or an open
transaction behind.

`savepoint(conn, name)` is for a change that must apply whole or not at all
whether or not its caller already opened a transaction (an account added by
`edge init` inside its own transaction, or alone by `edge user add`).
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


@contextmanager
def savepoint(conn: sqlite3.Connection, name: str) -> Iterator[None]:
    """The block whole or not at all, nested in the caller's transaction if there is one
    (else a transaction of its own, committed at the block's end).

    A transaction of its own begins IMMEDIATE: a deferred one that reads first and then
    writes fails at once with "database is locked" when another process (a serving
    edge) committed in between, instead of waiting its turn.
    """
    if not conn.in_transaction:
        with write_transaction(conn):
            yield
        return
    conn.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        conn.execute(f"ROLLBACK TO {name}")
        conn.execute(f"RELEASE {name}")
        raise
    conn.execute(f"RELEASE {name}")


__all__ = ["savepoint", "write_transaction"]
