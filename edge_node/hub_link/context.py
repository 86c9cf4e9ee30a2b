"""What the sync tasks share: the edge, the hub client, keys, registry, status, events.

The sync tasks reach the database only through the store: `read(store_fn, *args)`
runs a store read on a read connection, `write(*ops)` hands `LedgerOp`s to the writer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar
from uuid import UUID

from edge_node.hub_link.client import HubClient
from edge_node.hub_link.settings import SyncSettings
from edge_node.hub_link.status import SyncStatus
from edge_node.node import Edge
from edge_node.store.connection import ReadConnections, call_on_new_connection
from edge_node.store.ledger import Connection, LedgerOp
from edge_node.store.schema import db_path
from edge_node.store.sync_state import SyncState
from sync_protocol.keys import Keyring, SiteDirectory
from sync_protocol.roster import Roster

T = TypeVar("T")
P = ParamSpec("P")


@dataclass
class SyncContext:
    edge: Edge
    hub: HubClient
    settings: SyncSettings
    state: SyncState
    status: SyncStatus
    keyring: Keyring | None
    directory: SiteDirectory = field(default_factory=SiteDirectory)
    #: The verified practice roster (None: the practice has none yet).
    roster: Roster | None = None
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

    async def read(self, fn: Callable[Concatenate[Connection, P], T], *args: P.args,
                   **kwargs: P.kwargs) -> T:
        """`fn(connection, *args, **kwargs)` — a store read — on a read connection in a
        thread (small bookkeeping reads); its exceptions propagate."""
        if self.reads is not None:
            return await self.reads.call(fn, *args, **kwargs)
        return await call_on_new_connection(db_path(self.data_dir), fn, *args, **kwargs)

    async def write(self, *ops: LedgerOp, label: str) -> None:
        """Apply bookkeeping `ops` (`store.ledger.LedgerOp`) through the writer, in one
        transaction serialised with every other write; raises `StoreUnavailable` if the
        commit failed (nothing of them was written)."""
        await self.edge.writer.apply_remote([], ops, label=label)
