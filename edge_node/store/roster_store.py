"""The practice roster as this site verified it (`roster` table, schema 6).

Only entries that `sync_protocol.roster.fold` accepted on top of the stored ones
are saved (`SaveRosterEntries`), so the table always holds a verified chain; a
hub that serves a shorter or different chain later cannot take a member back
out of it.  Public keys only; never a secret.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from edge_node.errors import StoreError
from edge_node.store.connection import open_sync
from edge_node.store.site import Site, load_site
from edge_node.store.sync_state import SyncState, require_sync_state
from edge_node.store.transaction import write_transaction
from sync_protocol.errors import ProtocolError
from sync_protocol.roster import Roster, fold


@dataclass(frozen=True, slots=True)
class SaveRosterEntries:
    """Append verified entries (positions `first`, `first + 1`, ...)."""

    first: int
    entries: tuple[bytes, ...]

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.executemany("INSERT OR IGNORE INTO roster (seq, entry) VALUES (?, ?)",
                         [(self.first + i, e) for i, e in enumerate(self.entries)])


def roster_entries(conn: sqlite3.Connection) -> list[bytes]:
    return [bytes(r[0]) for r in conn.execute("SELECT entry FROM roster ORDER BY seq")]


def load_roster(conn: sqlite3.Connection, practice_id: UUID) -> Roster | None:
    """The stored roster, verified again; None for a site that holds none yet.

    Raises `StoreError` if the stored chain no longer verifies (an edited file).
    """
    entries = roster_entries(conn)
    if not entries:
        return None
    try:
        return fold(practice_id, entries)
    except ProtocolError as exc:
        raise StoreError(f"the stored practice roster does not verify: {exc.message}",
                         hint="restore the data directory from a backup; `chartsync edge "
                         "check` shows what else changed") from exc


def save_roster_entries(data_dir: Path, first: int, entries: Sequence[bytes]) -> None:
    """`SaveRosterEntries` in a transaction of its own (commands outside `edge serve`)."""
    if not entries:
        return
    conn = open_sync(data_dir)
    try:
        with write_transaction(conn):
            SaveRosterEntries(first, tuple(entries)).apply(conn)
    finally:
        conn.close()


def membership_inputs(data_dir: Path) -> tuple[SyncState, Site, list[bytes]]:
    """What a membership command starts from: the sync state, the site (id and keys) and
    the stored roster entries.  Raises `StoreError` for a directory not enrolled."""
    conn = open_sync(data_dir)
    try:
        return require_sync_state(conn, data_dir), load_site(conn, data_dir), \
            roster_entries(conn)
    finally:
        conn.close()


def stored_roster(conn: sqlite3.Connection, data_dir: Path) -> Roster | None:
    """The enrolled site's stored roster (`load_roster` for its practice)."""
    return load_roster(conn, require_sync_state(conn, data_dir).practice_id)


__all__ = ["SaveRosterEntries", "load_roster", "membership_inputs", "roster_entries",
           "save_roster_entries", "stored_roster"]
