"""Put a verified staging file in place: a fresh data directory, or a live one (re-bootstrap).

Practice data — `resources`, `history`, `search_tokens`, `conflicts`,
`origin_chains` and the cursor — comes from the snapshot; everything else is
the site's own and is kept: its identity and keys (`site`), accounts, audit
chain, outbox and pushed batches, hub enrollment (`sync_state`), held and
dead-lettered batches.  `received_batches` is merged: the snapshot's sealed
log joins the site's own copies (see `snapshot_records`).  Tables are listed
from the schema itself, so a table a later migration adds is kept as site
data unless it is named in `PRACTICE_TABLES`.

`install_file` (restore, nothing running): the site's tables are copied into
the staging file, which is then checkpointed, fsynced and renamed over
`edge.sqlite3` — one atomic rename; a crash before it leaves the old file,
after it the new one.

`swap_into` (re-bootstrap, the node running): one transaction on the live
database, run by the writer between groups; the site's own unacknowledged
changes are merged on top of the snapshot (as they would be merged on any
site), and stay in the outbox for the pusher.  `replace_practice_data` is the
whole step, the function the re-bootstrap hands to the writer's `exclusive`.

Called by `snapshots.bootstrap` (restore) and `snapshots.rebootstrap`, which
fetch and verify the snapshot; this module only moves rows and files.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Final, TypeVar
from uuid import UUID

from conflict.decode import state_from_canonical
from edge_node.errors import SnapshotError
from edge_node.store.apply import Rows, Stored, apply_change
from edge_node.store.durable_files import fsync_path
from edge_node.store.group_rows import write_rows
from edge_node.store.schema import db_path
from edge_node.store.snapshot_position import write_position
from edge_node.store.snapshot_records import SnapshotMeta
from edge_node.store.transaction import write_transaction
from sync_protocol.canonical import unpack
from sync_protocol.models import Change
from sync_protocol.wire import decode_changes

T = TypeVar("T")
#: The writer's `exclusive`: runs a store function on the write connection between groups.
RunExclusive = Callable[[Callable[[sqlite3.Connection], T]], Awaitable[T]]

PRACTICE_TABLES: Final = ("resources", "history", "search_tokens", "conflicts", "origin_chains")
#: Kept from both sides: the snapshot's sealed log and the site's own copies.
MERGED_TABLES: Final = ("received_batches",)
_BOOKKEEPING: Final = "restore_state"


def _site_tables(conn: sqlite3.Connection, schema: str) -> list[str]:
    names = [r[0] for r in conn.execute(
        f"SELECT name FROM {schema}.sqlite_master WHERE type = 'table' "
        "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    return [n for n in names
            if n not in PRACTICE_TABLES and n not in MERGED_TABLES and n != _BOOKKEEPING]


def install_file(data_dir: Path, staging: Path, meta: SnapshotMeta) -> None:
    """Make the verified `staging` file the data directory's database, keeping its site data.

    Idempotent until the rename; raises `SnapshotError` on a disk fault (the
    old database is untouched then).
    """
    live = db_path(data_dir)
    try:
        conn = sqlite3.connect(staging, isolation_level=None)
        try:
            conn.execute("ATTACH DATABASE ? AS live", (str(live),))
            with write_transaction(conn):
                for table in _site_tables(conn, "live"):
                    conn.execute(f"DELETE FROM main.{table}")
                    conn.execute(f"INSERT INTO main.{table} SELECT * FROM live.{table}")
                for table in MERGED_TABLES:
                    conn.execute(f"INSERT OR IGNORE INTO main.{table} "
                                 f"SELECT * FROM live.{table}")
                write_position(conn, meta.position)
            conn.execute("DETACH DATABASE live")
            conn.execute("PRAGMA journal_mode=DELETE")
        finally:
            conn.close()
        old = sqlite3.connect(live)
        try:
            old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            old.close()
        for suffix in ("-wal", "-shm"):
            Path(f"{live}{suffix}").unlink(missing_ok=True)
        fsync_path(staging)
        os.replace(staging, live)
        fsync_path(data_dir)
        done = sqlite3.connect(live, isolation_level=None)
        try:
            done.execute(f"DROP TABLE IF EXISTS {_BOOKKEEPING}")
        finally:
            done.close()
    except (OSError, sqlite3.Error) as exc:
        raise SnapshotError(f"installing the restored database in {data_dir} failed: {exc}",
                            hint="check free space and run the restore again; it resumes "
                            "from the staged snapshot") from exc


def restore_pending(data_dir: Path) -> bool:
    """True if `edge.sqlite3` was installed but the bookkeeping table not yet dropped."""
    conn = sqlite3.connect(db_path(data_dir), isolation_level=None)
    try:
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?",
                             (_BOOKKEEPING,)).fetchone()
        if found:
            conn.execute(f"DROP TABLE {_BOOKKEEPING}")
        return found is not None
    finally:
        conn.close()


def merge_own(conn: sqlite3.Connection, changes: Sequence[Change], now_ms: int) -> int:
    """Merge this site's own `changes` into the staged rows, in one transaction of its own.

    `conn` is in autocommit mode with no transaction open.  Changes whose dot
    the snapshot already holds (pushed and included) are skipped.  Returns how
    many were merged.
    """
    merged = 0
    rows = Rows()
    view: dict[tuple[str, str], Stored] = {}
    fresh: set[tuple[str, str]] = set()
    for change in changes:
        key = (change.resource_type, change.resource_id)
        if conn.execute("SELECT 1 FROM history WHERE origin = ? AND seq = ?",
                        (str(change.origin), change.seq)).fetchone():
            continue
        prior = view.get(key)
        if prior is None:
            row = conn.execute("SELECT state, version, deleted, last_updated_ms, vid "
                               "FROM resources "
                               "WHERE type = ? AND id = ?", key).fetchone()
            if row is not None:
                prior = Stored(state_from_canonical(bytes(row[0])), int(row[1]),
                               bool(row[2]), int(row[3]), row[4])
            else:
                fresh.add(key)
        view[key], _ = apply_change(prior, change, now_ms, rows)
        merged += 1
    if rows:
        write_rows(conn, rows, [], fresh)
    return merged


def swap_into(conn: sqlite3.Connection, staging: Path, meta: SnapshotMeta) -> None:
    """Replace the practice data of the live database on `conn` by the staged rows.

    One transaction (the writer's connection, between groups): nothing else
    writes meanwhile, readers see the old or the new data, never a mix.
    """
    conn.execute("ATTACH DATABASE ? AS st", (str(staging),))
    try:
        with write_transaction(conn):
            for table in PRACTICE_TABLES:
                conn.execute(f"DELETE FROM main.{table}")
                if table != "origin_chains":
                    conn.execute(f"INSERT INTO main.{table} SELECT * FROM st.{table}")
            for table in MERGED_TABLES:
                conn.execute(f"INSERT OR IGNORE INTO main.{table} SELECT * FROM st.{table}")
            write_position(conn, meta.position)
    finally:
        conn.execute("DETACH DATABASE st")


def own_changes(conn: sqlite3.Connection, site_id: UUID) -> list[Change]:
    """Every change in this site's outbox, in sequence order."""
    out: list[Change] = []
    for seq, raw in conn.execute("SELECT seq, change FROM outbox ORDER BY seq"):
        out.extend(decode_changes(unpack(bytes(raw), what="outbox change", max_len=1 << 26),
                                  origin=site_id, seq_from=int(seq)))
    return out


def replace_practice_data(conn: sqlite3.Connection, staging: Path, meta: SnapshotMeta,
                          site_id: UUID, now_ms: int) -> int:
    """Merge own changes into the staging file, then swap it into the live `conn`.

    Returns how many own changes were merged.  Run it on the writer's
    connection in one `Writer.exclusive` turn, so no local write slips in
    between reading the outbox and the swap.
    """
    mine = own_changes(conn, site_id)
    staged = sqlite3.connect(staging, isolation_level=None)
    try:
        merged = merge_own(staged, mine, now_ms)
    finally:
        staged.close()
    swap_into(conn, staging, meta)
    return merged


__all__ = ["MERGED_TABLES", "PRACTICE_TABLES", "RunExclusive", "install_file", "merge_own",
           "own_changes", "replace_practice_data", "restore_pending", "swap_into"]
