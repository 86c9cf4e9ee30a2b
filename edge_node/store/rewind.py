"""Going back to an earlier position of the hub's log, in one transaction (`RewindTo`).

A hub restored from an older backup lost the batches after some position `to`
and hands their sequence numbers out again; a hub rebuilt empty (or a site
re-enrolled on one) starts again at 0.  Either way this site:

* moves its cursor back to `to`;
* marks its own batches acknowledged after `to` as unsent (the pusher sends
  them again; what the hub still holds is acknowledged as a duplicate);
* queues the other sites' batches it received after `to` for relay
  (`store.relay_queue`, pushed by `sync.recovery.HubRecovery`) and drops its
  copies and held batches keyed by those hub sequence numbers, which now name
  other batches.  Re-delivered batches are recognised by their origin's chain.

Queued in the same transaction as the copies leave, relays survive a dropped
line or a crash mid-way.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RewindTo:
    """Take this site back to hub position `to` (0: a new log); relays queued at `now_ms`."""

    to: int
    now_ms: int

    def apply(self, conn: sqlite3.Connection) -> None:
        to = self.to
        conn.execute("UPDATE sync_state SET cursor = min(cursor, ?)", (to,))
        conn.execute("UPDATE pushed_batches SET hub_seq = NULL, receipt = NULL "
                     "WHERE hub_seq > ?", (to,))
        conn.execute("INSERT INTO relay_queue (sealed, queued_ms) SELECT sealed, ? "
                     "FROM received_batches WHERE hub_seq > ? ORDER BY hub_seq",
                     (self.now_ms, to))
        conn.execute("DELETE FROM held_batches WHERE hub_seq > ?", (to,))
        conn.execute("DELETE FROM received_batches WHERE hub_seq > ?", (to,))


__all__ = ["RewindTo"]
