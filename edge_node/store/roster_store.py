"""The practice roster as this site verified it (`roster` table, schema 6).

Only entries that `sync_protocol.roster.fold` accepted on top of the stored ones
are saved (`SaveRosterEntries`), so the table always holds a verified chain; a
hub that serves a shorter or different chain later cannot take a member back
out of it.  Public keys only; never a secret.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from uuid import UUID

from edge_node.errors import StoreError
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


__all__ = ["SaveRosterEntries", "load_roster", "roster_entries"]
