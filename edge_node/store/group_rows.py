"""One group's rows, written in one transaction; a request's view of the stored resources.

`write_rows` writes what the writer (`store.writer`) computed for a group — resources,
history, outbox, search tokens, conflicts, audit rows, the chained account changes and
the group's ledger operations (`store.ledger.LedgerOp`) — as one `executemany` per
table inside one transaction; a snapshot install (`snapshots.install`) writes its rows
the same way.  `Overlay` is one request's changes on top of the group's view, dropped
when the request is refused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from edge_node.store.account_events import chain_account_events
from edge_node.store.apply import Key, Rows, Stored
from edge_node.store.audit import INSERT_AUDIT, AuditChain
from edge_node.store.ledger import LedgerOp
from edge_node.store.transaction import write_transaction

_UPSERT_RESOURCE: Final = (
    "INSERT INTO resources (type, id, version, last_updated_ms, deleted, state, json, "
    "patient_ref, vid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (type, id) DO UPDATE "
    "SET version = excluded.version, last_updated_ms = excluded.last_updated_ms, "
    "deleted = excluded.deleted, state = excluded.state, json = excluded.json, "
    "patient_ref = excluded.patient_ref, vid = excluded.vid"
)
# A view version whose content (hence id) this resource already showed once is kept
# once; any other clash (a row counter reused) still fails the group.
_INSERT_HISTORY: Final = (
    "INSERT INTO history (type, id, version, origin, seq, user, device, hlc, recorded_ms, "
    "deleted, json, vid, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (type, id, vid) DO NOTHING"
)


def write_rows(conn: sqlite3.Connection, rows: Rows, audit_rows: list[tuple[Any, ...]],
               fresh: set[Key], ops: Sequence[LedgerOp] = (),
               chain: AuditChain | None = None) -> None:
    """Write one group's rows in one transaction (on the connection's thread).

    `fresh`: resources that had no row before this group (no old search tokens
    or conflicts to delete).  With the audit `chain` (already past `audit_rows`),
    pending account changes are chained after them (`store.account_events`).
    Rolls back and re-raises on any failure (the caller puts the chain back).
    """
    with write_transaction(conn):
        if rows:
            stale = [k for k in rows.tokens if k not in fresh]
            conn.executemany(_UPSERT_RESOURCE, rows.resources.values())
            conn.executemany(_INSERT_HISTORY, rows.history)
            conn.executemany("INSERT INTO outbox (seq, change, created_ms) VALUES (?, ?, ?)",
                             rows.outbox)
            if stale:
                conn.executemany("DELETE FROM search_tokens WHERE type = ? AND id = ?", stale)
                conn.executemany("DELETE FROM conflicts WHERE type = ? AND id = ?", stale)
            conn.executemany(
                "INSERT INTO search_tokens (type, param, value, id) VALUES (?, ?, ?, ?)",
                [t for ts in rows.tokens.values() for t in ts])
            found = [c for cs in rows.conflicts.values() for c in cs]
            if found:
                conn.executemany(
                    "INSERT INTO conflicts (type, id, register, heads, shown_origin, shown_seq) "
                    "VALUES (?, ?, ?, ?, ?, ?)", found)
        if audit_rows:
            conn.executemany(INSERT_AUDIT, audit_rows)
        if chain is not None:
            chain_account_events(conn, chain)
        for op in ops:
            op.apply(conn)


class Overlay:
    """A view of stored resources with one request's changes on top (dropped on refusal)."""

    __slots__ = ("base", "changes")

    def __init__(self, base: dict[Key, Stored | None]) -> None:
        self.base = base
        self.changes: dict[Key, Stored] = {}

    def get(self, key: Key) -> Stored | None:
        found = self.changes.get(key)
        return found if found is not None else self.base.get(key)


__all__ = ["Overlay", "write_rows"]
