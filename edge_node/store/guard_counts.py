"""The blast-radius guard's counters: this site's destructive changes of the last hour.

A destructive change deletes a record, or rewrites one that existed before the
window.  `guard_scan` reads what the guard decides on (the admin's recorded decision,
the changes after the last release, the practice's record count when it matters);
`hold_from` is the decision itself (pure).  The admin's decision lives in `sync_state`
(`guard_decision`, `guard_from_seq`): `approve_guard` and `discard_guard` record it for
the commands, `ReleaseGuard` for the running sync loop (`sync.guard` carries it out).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Final

import orjson

#: The guard's window: destructive changes older than this no longer count.
WINDOW_MS: Final = 3600 * 1000


def _destructive(conn: sqlite3.Connection, site: str, since_ms: int, after_seq: int
                 ) -> list[tuple[int, str, str]]:
    """(seq, type, id) of this site's destructive changes in the window, in seq order."""
    return [(int(r[0]), r[1], r[2]) for r in conn.execute(
        # INDEXED BY: the window's rows only; the planner would rather walk every row
        # of this site by seq to skip the sort (schema v3).
        "SELECT h.seq, h.type, h.id FROM history AS h INDEXED BY history_recent "
        "WHERE h.origin = ? AND h.seq > ? "
        "AND h.recorded_ms >= ? AND (h.deleted = 1 OR EXISTS (SELECT 1 FROM history AS p "
        "WHERE p.type = h.type AND p.id = h.id AND p.recorded_ms < ?)) ORDER BY h.seq",
        (site, after_seq, since_ms, since_ms))]


def _decision(conn: sqlite3.Connection) -> tuple[str | None, int]:
    row = conn.execute("SELECT guard_decision, guard_from_seq FROM sync_state").fetchone()
    return (row[0], int(row[1] or 0)) if row else (None, 0)


@dataclass(frozen=True, slots=True)
class GuardScan:
    """What the guard reads: the admin's decision and the destructive changes it counts."""

    decision: str | None
    released_to: int
    changes: list[tuple[int, str, str]]
    #: Records of the practice; 0 when the changes are under the floor (not needed).
    total: int
    #: The patient of each changed record (read with `total`; for the audit of a hold).
    patients: dict[tuple[str, str], str | None] = field(default_factory=dict)


def guard_scan(conn: sqlite3.Connection, site: str, now_ms: int, floor: int) -> GuardScan:
    """Read what `hold_from` needs (one thread hop for the pusher, with its other reads)."""
    decision, released_to = _decision(conn)
    found = _destructive(conn, site, now_ms - WINDOW_MS, released_to)
    if len({(t, i) for _, t, i in found}) <= floor:
        return GuardScan(decision, released_to, found, 0)  # no total can lower the limit
    total = int(conn.execute("SELECT count(*) FROM resources").fetchone()[0])
    keys = orjson.dumps(sorted({(t, i) for _, t, i in found})).decode()
    patients = {(r[0], r[1]): r[2] for r in conn.execute(
        "SELECT r.type, r.id, r.patient_ref FROM json_each(?) AS j JOIN resources AS r "
        "ON r.type = json_extract(j.value, '$[0]') AND r.id = json_extract(j.value, '$[1]')",
        (keys,))}
    return GuardScan(decision, released_to, found, total, patients)


def hold_from(scan: GuardScan, share: float, floor: int) -> int | None:
    """The first outbox seq to hold back, or None (pure)."""
    records = {(t, i) for _, t, i in scan.changes}
    if len(records) <= max(floor, share * scan.total):
        return None
    first: int = scan.changes[0][0]
    return first


def versions_before(conn: sqlite3.Connection, site: str, since_ms: int, released_to: int
                    ) -> list[tuple[str, str, bytes | None]]:
    """(type, id, JSON) of each record the counted changes destroyed, at its newest version
    that is not one of them (None: no such version)."""
    out = []
    held: dict[tuple[str, str], set[int]] = {}
    for seq, rtype, rid in _destructive(conn, site, since_ms, released_to):
        held.setdefault((rtype, rid), set()).add(seq)
    for (rtype, rid), seqs in held.items():
        # The newest version that is not one of the held changes (a record created
        # within the hour has no version before the window, yet must come back).
        row = next((r for r in conn.execute(
            "SELECT json, origin, seq FROM history WHERE type = ? AND id = ? "
            "ORDER BY version DESC", (rtype, rid))
            if not (r[1] == site and int(r[2]) in seqs)), None)
        out.append((rtype, rid, bytes(row[0]) if row and row[0] else None))
    return out


@dataclass(frozen=True, slots=True)
class ReleaseGuard:
    """Record the guard's release: changes up to `up_to_seq` no longer count."""

    up_to_seq: int

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE sync_state SET guard_decision = 'approved', "
                     "guard_from_seq = ?", (self.up_to_seq,))


def approve_guard(conn: sqlite3.Connection) -> None:
    """Record an admin's approval of everything in the outbox (`edge held approve`)."""
    top = conn.execute("SELECT coalesce(max(seq), 0) FROM outbox").fetchone()[0]
    ReleaseGuard(int(top)).apply(conn)


def discard_guard(conn: sqlite3.Connection) -> None:
    """Record an admin's discard (`edge held discard`); the sync loop compensates."""
    conn.execute("UPDATE sync_state SET guard_decision = 'discard'")


__all__ = ["WINDOW_MS", "GuardScan", "ReleaseGuard", "approve_guard", "discard_guard",
           "guard_scan", "hold_from", "versions_before"]
