"""What the sync tasks share: the edge, the hub client, keys, registry, status, events."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

from edge_node.hub_link.client import HubClient
from edge_node.hub_link.settings import SyncSettings
from edge_node.hub_link.status import SyncStatus
from edge_node.node import Edge, connect
from edge_node.store.connection import ReadConnections
from edge_node.store.schema import db_path
from edge_node.store.sync_state import SyncState
from sync_protocol.keys import Keyring, SiteDirectory

T = TypeVar("T")


@dataclass
class SyncContext:
    edge: Edge
    hub: HubClient
    settings: SyncSettings
    state: SyncState
    status: SyncStatus
    keyring: Keyring | None
    directory: SiteDirectory = field(default_factory=SiteDirectory)
    cursor: int = 0
    #: Set when the keyring gained an epoch (held batches may now open).
    keys_changed: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set when something worth a heartbeat happened.
    heartbeat_due: asyncio.Event = field(default_factory=asyncio.Event)
    #: The writer's outbox-commit event; also set to make the pusher look again.
    push_due: asyncio.Event = field(default_factory=asyncio.Event)
    #: The blast-radius guard holds changes (the pusher polls for the admin's decision).
    guard_holding: int = 0
    #: Long-lived connections for `read` (`SyncLoop.open` sets them).
    reads: ReadConnections | None = None

    @property
    def site_id(self) -> UUID:
        return self.edge.site.site_id

    @property
    def data_dir(self) -> Path:
        return self.edge.config.data_dir

    def now_ms(self) -> int:
        return self.edge.clock()

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` on a read connection in a thread (small bookkeeping reads)."""
        if self.reads is not None:
            return await self.reads.call(fn)
        path = db_path(self.data_dir)

        def run() -> T:
            conn = connect(path)
            try:
                return fn(conn)
            finally:
                conn.close()

        return await asyncio.to_thread(run)

    async def execute(self, *statements: tuple[str, tuple[Any, ...]], label: str) -> None:
        """Write bookkeeping rows through the writer (serialised with every other write)."""
        await self.edge.writer.apply_remote([], list(statements), label=label)
