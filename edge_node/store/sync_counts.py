"""The sync bookkeeping the status page and the heartbeat show, read at once (`sync_counts`)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from edge_node.store.ledger import DeadLetter, dead_letters
from edge_node.store.received import HeldBatch, chain_positions, held_batches
from edge_node.store.relay_queue import relay_depth


@dataclass(frozen=True, slots=True)
class SyncCounts:
    #: Outbox changes after the last acknowledged batch, and the oldest one's time.
    outbox_depth: int
    oldest_unpushed_ms: int | None
    #: The last own sequence number the hub acknowledged.
    acked_seq: int
    relays_queued: int
    held: list[HeldBatch]
    dead_letters: list[DeadLetter]
    cursor: int
    state_digest: str | None
    #: Records the state digest covers.
    records: int | None
    #: Each origin's next expected sequence number.
    chains: dict[str, int]


def sync_counts(conn: sqlite3.Connection) -> SyncCounts:
    """Bookkeeping the status page and the heartbeat show (one read)."""
    acked = conn.execute("SELECT coalesce(max(seq_to), 0) FROM pushed_batches "
                         "WHERE hub_seq IS NOT NULL").fetchone()[0]
    depth, oldest = conn.execute("SELECT count(*), min(created_ms) FROM outbox WHERE seq > ?",
                                 (acked,)).fetchone()
    held = held_batches(conn)
    dead = dead_letters(conn)
    row = conn.execute("SELECT cursor, digest, digest_count FROM sync_state").fetchone()
    return SyncCounts(int(depth), oldest, int(acked), relay_depth(conn), held, dead,
                      int(row[0]) if row else 0, row[1] if row else None,
                      row[2] if row else 0, chain_positions(conn))


__all__ = ["SyncCounts", "sync_counts"]
