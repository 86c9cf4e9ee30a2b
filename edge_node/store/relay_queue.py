"""Other sites' batches queued to be given back to a hub that lost them (`relay_queue`).

`store.rewind.RewindTo` fills the queue in the same transaction as the received
copies leave, so a relay survives a dropped line or a crash mid-way; the sync loop
(`sync.recovery`) reads it oldest first and deletes what the hub took or refused
for good (`DeleteRelays`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

#: Relays read from the queue at a time.
RELAY_CHUNK: Final = 64


@dataclass(frozen=True, slots=True)
class DeleteRelays:
    """Take the relays with these queue ids off the queue."""

    ids: Sequence[int]

    def apply(self, conn: sqlite3.Connection) -> None:
        marks = ",".join("?" * len(self.ids))
        conn.execute(f"DELETE FROM relay_queue WHERE id IN ({marks})", tuple(self.ids))


def queued_relays(conn: sqlite3.Connection, after: int = 0) -> list[tuple[int, bytes]]:
    """The oldest `RELAY_CHUNK` batches queued for relay after queue id `after`:
    (queue id, sealed bytes)."""
    return [(int(r[0]), bytes(r[1])) for r in conn.execute(
        "SELECT id, sealed FROM relay_queue WHERE id > ? ORDER BY id LIMIT ?",
        (after, RELAY_CHUNK))]


def relay_depth(conn: sqlite3.Connection) -> int:
    """How many batches wait in the queue."""
    return int(conn.execute("SELECT count(*) FROM relay_queue").fetchone()[0])


__all__ = ["RELAY_CHUNK", "DeleteRelays", "queued_relays", "relay_depth"]
