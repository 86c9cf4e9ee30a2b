"""Going back to an earlier position of the hub's log, in one transaction.

A hub restored from an older backup lost the batches after some position `to`
and hands their sequence numbers out again; a hub rebuilt empty (or a site
re-enrolled on one) starts again at 0.  Either way this site:

* moves its cursor back to `to`;
* marks its own batches acknowledged after `to` as unsent (the pusher sends
  them again; what the hub still holds is acknowledged as a duplicate);
* queues the other sites' batches it received after `to` for relay
  (`relay_queue`, pushed by `SyncLoop._drain_relays`) and drops its copies and
  held batches keyed by those hub sequence numbers, which now name other
  batches.  Re-delivered batches are recognised by their origin's chain.

Queued in the same transaction as the copies leave, relays survive a dropped
line or a crash mid-way.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from edge_node.store.writer import Statement

#: Relays read from the queue at a time.
RELAY_CHUNK: Final = 64
#: A relay the hub refuses with one of these stays queued and is tried again later: its
#: origin is not registered and approved there yet (a rebuilt hub, before that site
#: re-enrolls), or the batches before it in its origin's chain are still to come.
RELAY_LATER: Final = frozenset({"wrong_origin", "chain_broken"})


def rewind_statements(to: int, now_ms: int) -> list[Statement]:
    """The statements that take this site back to hub position `to` (0: a new log)."""
    return [
        ("UPDATE sync_state SET cursor = min(cursor, ?)", (to,)),
        ("UPDATE pushed_batches SET hub_seq = NULL, receipt = NULL WHERE hub_seq > ?",
         (to,)),
        ("INSERT INTO relay_queue (sealed, queued_ms) SELECT sealed, ? FROM received_batches "
         "WHERE hub_seq > ? ORDER BY hub_seq", (now_ms, to)),
        ("DELETE FROM held_batches WHERE hub_seq > ?", (to,)),
        ("DELETE FROM received_batches WHERE hub_seq > ?", (to,)),
    ]


def queued_relays(conn: sqlite3.Connection, after: int = 0) -> list[tuple[int, bytes]]:
    """The oldest `RELAY_CHUNK` batches queued for relay after queue id `after`:
    (queue id, sealed bytes)."""
    return [(int(r[0]), bytes(r[1])) for r in conn.execute(
        "SELECT id, sealed FROM relay_queue WHERE id > ? ORDER BY id LIMIT ?",
        (after, RELAY_CHUNK))]


def relay_depth(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM relay_queue").fetchone()[0])


__all__ = ["RELAY_CHUNK", "RELAY_LATER", "queued_relays", "relay_depth", "rewind_statements"]
