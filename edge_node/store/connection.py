"""The edge's connections: the writer's on its own thread, the sync loop's pool, a command's.

aiosqlite hops to its thread once per statement (~100 µs each, measured on
this machine); a group commit runs about nine statements (load states, BEGIN,
one `executemany` per table, COMMIT), so the writer instead hands the whole
transaction to this thread as one function: one hop per group, whatever its
size.  Same model as aiosqlite (a dedicated thread owns the connection),
without paying the hop per statement.

A command (`chartsync edge ...`) opens its own connection with `open_sync`
(checked, migrated) or runs one function on it with `with_database`.

`ReadConnections` keeps read connections for the sync tasks' bookkeeping reads;
`call_on_new_connection` runs one read on a connection opened for it.  Both run a
store function of the connection first, `fn(conn, *args, **kwargs)`, so callers
outside the store never hold a connection.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from edge_node.errors import StoreError
from edge_node.store.schema import check_version, configure, db_path, migrate

T = TypeVar("T")
P = ParamSpec("P")


def connect(path: Path) -> sqlite3.Connection:
    """A synchronous connection in autocommit mode with the edge's settings."""
    conn = sqlite3.connect(path, isolation_level=None)
    configure(conn)
    return conn


def open_sync(data_dir: Path) -> sqlite3.Connection:
    """Open an existing data directory's database (migrated) for a command.

    Raises `StoreError` for a directory without a database and `SchemaTooNew`
    (before touching the file) for one written by a newer chartsync.
    """
    path = db_path(data_dir)
    if not path.exists():
        raise StoreError(f"{data_dir} holds no edge database",
                         hint=f"run `chartsync edge init --data {data_dir}` first")
    check_version(path)
    conn = connect(path)
    migrate(conn, path)
    return conn


def with_database(data_dir: Path, fn: Callable[[sqlite3.Connection], T]) -> T:
    """`fn` on the data directory's database (migrated), closed after; raises `EdgeError`
    for a directory without one."""
    conn = open_sync(data_dir)
    try:
        return fn(conn)
    finally:
        conn.close()


class WriteConnection:
    """Runs functions of a sqlite3 connection on the connection's own thread."""

    def __init__(self, executor: ThreadPoolExecutor, conn: sqlite3.Connection) -> None:
        self._executor = executor
        self._conn = conn

    @classmethod
    @asynccontextmanager
    async def open(cls, path: Path) -> AsyncIterator[WriteConnection]:
        """Open `path` (WAL, synchronous=FULL, autocommit) on a new thread; close on exit."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-writer")
        loop = asyncio.get_running_loop()

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            configure(conn)
            return conn

        try:
            conn = await loop.run_in_executor(executor, connect)
            try:
                yield cls(executor, conn)
            finally:
                await loop.run_in_executor(executor, conn.close)
        finally:
            executor.shutdown(wait=True)

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` on the connection's thread; its exceptions propagate."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, self._conn)


class ReadConnections:
    """Small bookkeeping reads on long-lived connections, each on a pool thread.

    Opening a connection (WAL and sync pragmas) costs about 0.8 ms of CPU, more
    than the reads the sync loop makes per batch; these connections are opened
    once per pool thread and kept.  Autocommit: each statement sees the latest
    commit and no read transaction is held between calls (checkpoints go on).
    """

    def __init__(self, path: Path, threads: int) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=threads,
                                            thread_name_prefix="edge-reads")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[sqlite3.Connection] = []

    @classmethod
    @asynccontextmanager
    async def open(cls, path: Path, threads: int = 2) -> AsyncIterator[ReadConnections]:
        """Connections to `path`, opened lazily per thread; all closed on exit."""
        pool = cls(path, threads)
        try:
            yield pool
        finally:
            pool._executor.shutdown(wait=True)
            for conn in pool._opened:
                conn.close()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            configure(conn)
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn

    async def call(self, fn: Callable[Concatenate[sqlite3.Connection, P], T],
                   *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `fn(connection, *args, **kwargs)` on a pool thread; its exceptions propagate."""
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, lambda: fn(self._conn(), *args, **kwargs))


async def call_on_new_connection(path: Path, fn: Callable[Concatenate[sqlite3.Connection, P], T],
                                 *args: P.args, **kwargs: P.kwargs) -> T:
    """Run `fn(connection, *args, **kwargs)` in a thread on a connection to `path` opened
    for the call and closed after (for callers without long-lived read connections)."""

    def run() -> T:
        conn = sqlite3.connect(path, isolation_level=None)
        configure(conn)
        try:
            return fn(conn, *args, **kwargs)
        finally:
            conn.close()

    return await asyncio.to_thread(run)
