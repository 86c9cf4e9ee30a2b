"""The edge node as one object: its store opened, its writer running, its site known.

    async with Edge.open(config, clock=..., entropy=...) as edge:
        ...  # edge.writer, edge.reader, edge.site

`init_data_dir` creates a data directory (`chartsync edge init`).  Opening
checks the schema version read-only first (a newer file is refused untouched),
then runs migrations, loads the site, the next outbox sequence number, the HLC
and the audit chain head, and starts the group-commit writer in a TaskGroup.
Time (`clock`, ms) and randomness (`entropy(n)`) are inputs.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from edge_node.config import EdgeConfig
from edge_node.errors import StoreError
from edge_node.store.account_events import chain_account_events
from edge_node.store.audit import AuditChain
from edge_node.store.connection import WriteConnection
from edge_node.store.reads import Reader
from edge_node.store.schema import check_version, configure, db_path, migrate
from edge_node.store.site import Site, insert_site, load_site, new_site_id, write_key_file
from edge_node.store.transaction import write_transaction
from edge_node.store.users import Role, User, add_user
from edge_node.store.writer import Writer
from sync_protocol.hlc import HybridClock
from sync_protocol.ids import SiteId
from sync_protocol.keys import SiteKeyPair

Clock = Callable[[], int]
Entropy = Callable[[int], bytes]


def connect(path: Path) -> sqlite3.Connection:
    """A synchronous connection in autocommit mode with the edge's settings."""
    conn = sqlite3.connect(path, isolation_level=None)
    configure(conn)
    return conn


def init_data_dir(data_dir: Path, *, now_ms: int, entropy: Entropy, admin_name: str,
                  site_id: SiteId | None = None, keys: SiteKeyPair | None = None,
                  practice_id: UUID | None = None) -> tuple[Site, User, str]:
    """Create a data directory: database, site id and keys, and a first admin.

    Returns the site, the admin and the admin's token (show it once).  Raises
    `StoreError` if the directory already holds an edge database.  An enrolled
    site (issue #5) passes the `site_id` the hub assigned to its `keys`.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = db_path(data_dir)
    if path.exists():
        raise StoreError(f"{path} already exists",
                         hint="this directory is initialised; use `chartsync edge serve`")
    file_key = entropy(32)
    write_key_file(data_dir, file_key)
    site_id = site_id if site_id is not None else new_site_id(now_ms, entropy(10))
    keys = keys if keys is not None else SiteKeyPair.generate(entropy(64))
    conn = connect(path)
    try:
        migrate(conn, path)
        with write_transaction(conn):
            insert_site(conn, site_id=site_id, created_ms=now_ms, keys=keys,
                        file_key=file_key, nonce=entropy(24))
            if practice_id is not None:
                conn.execute("UPDATE site SET practice_id = ?", (str(practice_id),))
            admin, token = add_user(conn, name=admin_name, role=Role.ADMIN, now_ms=now_ms,
                                    random_bytes=entropy(42))
        site = load_site(conn, data_dir)
    finally:
        conn.close()
    return site, admin, token


def open_sync(data_dir: Path) -> sqlite3.Connection:
    """Open an existing data directory's database (migrated) for a command."""
    path = db_path(data_dir)
    if not path.exists():
        raise StoreError(f"{data_dir} holds no edge database",
                         hint=f"run `chartsync edge init --data {data_dir}` first")
    check_version(path)
    conn = connect(path)
    migrate(conn, path)
    return conn


@dataclass(frozen=True, slots=True)
class _Boot:
    site: Site
    next_seq: int
    last_hlc: int
    chain: AuditChain


def _boot(data_dir: Path) -> _Boot:
    conn = open_sync(data_dir)
    try:
        site = load_site(conn, data_dir)
        row = conn.execute("SELECT max(seq), max(hlc) FROM history WHERE origin = ?",
                           (str(site.site_id),)).fetchone()
        any_hlc = conn.execute("SELECT max(hlc) FROM history").fetchone()[0] or 0
        out_max = conn.execute("SELECT max(seq) FROM outbox").fetchone()[0] or 0
        next_seq = max(row[0] or 0, out_max) + 1
        with write_transaction(conn):  # account changes made while no writer ran
            chain = AuditChain.load(conn)
            chain_account_events(conn, chain)
        return _Boot(site, next_seq, max(row[1] or 0, any_hlc), chain)
    finally:
        conn.close()


@dataclass(slots=True)
class Edge:
    """A running edge: site identity, writer and reader of one data directory."""

    config: EdgeConfig
    site: Site
    writer: Writer
    reader: Reader
    clock: Clock
    entropy: Entropy

    @classmethod
    @asynccontextmanager
    async def open(cls, config: EdgeConfig, *, clock: Clock, entropy: Entropy
                   ) -> AsyncIterator[Edge]:
        """Open the data directory and run its writer until the block exits.

        Raises `StoreError` / `SchemaTooNew` before touching a file it cannot use.
        Leaving the block commits everything queued, then closes the store.
        """
        boot = await asyncio.to_thread(_boot, config.data_dir)
        path = db_path(config.data_dir)
        async with WriteConnection.open(path) as conn:
            writer = Writer(conn, site_id=boot.site.site_id, next_seq=boot.next_seq,
                            hlc=HybridClock(boot.last_hlc), chain=boot.chain, clock=clock,
                            max_group_ops=config.max_group_ops,
                            require_if_match=config.require_if_match)
            async with Reader.open(path, config.read_connections) as reader, \
                    asyncio.TaskGroup() as tg:
                tg.create_task(writer.run())
                try:
                    yield cls(config, boot.site, writer, reader, clock, entropy)
                finally:
                    writer.stop()
