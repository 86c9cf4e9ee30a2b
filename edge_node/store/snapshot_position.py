"""The sync loop's bookkeeping a snapshot carries or checks (tables of schema version 2).

Kept in one module so the snapshot code touches the sync tables in one place:

    read_position(conn)          cursor, log id and every origin's chain head
    write_position(conn, pos)    put a snapshot's position in place (and drop the digest,
                                 which the writer recomputes from the new rows)
    acked_through(conn)          (own seq, hub seq) the hub has acknowledged up to
    snapshot_ready(conn, site)   may this site upload a snapshot now?  Why not, if not.
    ready_position(site)         `read_position` for an export, refusing an unready copy
    changes_since(conn, hid)     history rows since the last upload (is one due?)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from uuid import UUID

from edge_node.errors import SnapshotDeferred
from edge_node.store.snapshot_records import SyncPosition

#: Reads the sync position of an export's consistent copy (`read_position`, or
#: `ready_position(site)` which also refuses a copy that is not snapshot-safe).
PositionOf = Callable[[sqlite3.Connection], SyncPosition]


def read_position(conn: sqlite3.Connection) -> SyncPosition:
    """The cursor and the chain head of every origin — this site's own included.

    The puller keeps `origin_chains` for other origins only; this site's own
    chain head is its last acknowledged push.  A site bootstrapping from the
    snapshot needs it to take this site's next batch after `hub_seq` (without
    it that batch would wait as a gap forever).
    """
    row = conn.execute("SELECT cursor, log_id FROM sync_state WHERE one = 1").fetchone()
    cursor, log_id = (0, None) if row is None else (int(row[0]), row[1])
    chains = {UUID(o): (int(n), bytes(h)) for o, n, h in conn.execute(
        "SELECT origin, next_seq, last_hash FROM origin_chains")}
    site = conn.execute("SELECT site_id FROM site").fetchone()
    own = conn.execute("SELECT seq_to, batch_hash FROM pushed_batches WHERE hub_seq IS NOT "
                       "NULL ORDER BY seq_to DESC LIMIT 1").fetchone()
    if site is not None and own is not None:
        chains[UUID(site[0])] = (int(own[0]) + 1, bytes(own[1]))
    return SyncPosition(cursor, UUID(log_id) if log_id else None, chains)


def write_position(conn: sqlite3.Connection, position: SyncPosition) -> None:
    """Set cursor, log id and chains to `position` (inside the caller's transaction)."""
    conn.execute("UPDATE sync_state SET cursor = ?, log_id = ?, digest = NULL, "
                 "digest_count = 0 WHERE one = 1",
                 (position.hub_seq, str(position.log_id) if position.log_id else None))
    conn.execute("DELETE FROM origin_chains")
    conn.executemany("INSERT INTO origin_chains (origin, next_seq, last_hash) VALUES (?, ?, ?)",
                     [(str(o), n, h) for o, (n, h) in position.chains.items()])


def acked_through(conn: sqlite3.Connection) -> tuple[int, int]:
    """(highest own seq acknowledged by the hub, highest hub seq of those acks)."""
    row = conn.execute("SELECT max(seq_to), max(hub_seq) FROM pushed_batches "
                       "WHERE hub_seq IS NOT NULL").fetchone()
    return int(row[0] or 0), int(row[1] or 0)


def last_local_seq(conn: sqlite3.Connection, site_id: UUID) -> int:
    row = conn.execute("SELECT max(seq) FROM history WHERE origin = ?", (str(site_id),)
                       ).fetchone()
    out = conn.execute("SELECT max(seq) FROM outbox").fetchone()
    return max(int(row[0] or 0), int(out[0] or 0))


def snapshot_ready(conn: sqlite3.Connection, site_id: UUID) -> str | None:
    """None if a snapshot now would cover exactly the log up to the cursor; else why not.

    Every own change must be acknowledged, the cursor must have passed the
    hub sequence of the last acknowledgement, and no batch may be held —
    otherwise the snapshot would hold changes the log before its `hub_seq` does
    not, and a site bootstrapping from it would meet them again in the tail.
    """
    row = conn.execute("SELECT cursor FROM sync_state WHERE one = 1").fetchone()
    if row is None:
        return "the site is not enrolled with a hub"
    cursor = int(row[0])
    acked_seq, acked_hub_seq = acked_through(conn)
    local = last_local_seq(conn, site_id)
    if local > acked_seq:
        return f"{local - acked_seq} own changes are not acknowledged by the hub yet"
    if acked_hub_seq > cursor:
        return f"the cursor ({cursor}) has not passed this site's last push ({acked_hub_seq})"
    if cursor == 0:
        return "nothing applied from the hub yet"
    # A held batch is behind the cursor but not in the charts: a snapshot at the cursor
    # would drop it for every site bootstrapping from it (they pull only after hub_seq).
    held = int(conn.execute("SELECT count(*) FROM held_batches").fetchone()[0])
    if held:
        return f"{held} batches are held (see `chartsync edge held`)"
    return None


def ready_position(site_id: UUID) -> PositionOf:
    """`position_of` for an export that refuses (`SnapshotDeferred`) an unready copy."""
    def position_of(conn: sqlite3.Connection) -> SyncPosition:
        why = snapshot_ready(conn, site_id)
        if why is not None:
            raise SnapshotDeferred(f"snapshot deferred: {why}", hint="the next round retries")
        return read_position(conn)
    return position_of


def changes_since(conn: sqlite3.Connection, history_id: int) -> tuple[int, int]:
    """(history rows after `history_id`, the highest history id now)."""
    row = conn.execute("SELECT count(*), max(hid) FROM history WHERE hid > ?",
                       (history_id,)).fetchone()
    return int(row[0]), int(row[1] or history_id)


__all__ = ["PositionOf", "acked_through", "changes_since", "last_local_seq", "read_position",
           "ready_position", "snapshot_ready", "write_position"]
