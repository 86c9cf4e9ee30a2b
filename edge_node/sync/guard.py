"""The blast-radius guard: hold a sudden wave of deletes/rewrites until an admin decides.

Before sealing, the pusher counts the distinct records this site deleted, or
rewrote (updated a resource that existed before the window), within the last
hour, after the last admin release.  Above `max(guard_min_records,
guard_share * records of the practice)` the outbox is held from the first
such change: nothing of it is sealed, so nothing spreads.  The status page
says "N destructive changes held — an admin must approve or discard".

    chartsync edge held approve   release everything held
    chartsync edge held discard   write compensating changes restoring each
                                  affected record's content from before the
                                  window (new versions; history kept), then
                                  release held + compensation together

Both commands record the decision in `sync_state.guard_decision`; the
running sync loop carries it out (the compensations go through the writer
like any local write).
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from typing import Any, Final

import orjson

from edge_node.fhir.write_op import Actor, WriteOp

log = logging.getLogger(__name__)

WINDOW_MS: Final = 3600 * 1000
_GUARD_ACTOR: Final = Actor(user_id="chartsync-guard", role="admin", device="guard",
                            client="sync")


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


def guard_scan(conn: sqlite3.Connection, site: str, now_ms: int, floor: int) -> GuardScan:
    """Read what `hold_from` needs (one thread hop for the pusher, with its other reads)."""
    decision, released_to = _decision(conn)
    found = _destructive(conn, site, now_ms - WINDOW_MS, released_to)
    if len({(t, i) for _, t, i in found}) <= floor:
        return GuardScan(decision, released_to, found, 0)  # no total can lower the limit
    total = int(conn.execute("SELECT count(*) FROM resources").fetchone()[0])
    return GuardScan(decision, released_to, found, total)


def hold_from(scan: GuardScan, share: float, floor: int) -> int | None:
    """The first outbox seq to hold back, or None (pure)."""
    records = {(t, i) for _, t, i in scan.changes}
    if len(records) <= max(floor, share * scan.total):
        return None
    first: int = scan.changes[0][0]
    return first


def guard_verdict(ctx: Any, scan: GuardScan) -> int | None:
    """`hold_from` of `scan`, logged and shown on the status page when it changes."""
    first = hold_from(scan, ctx.settings.guard_share, ctx.settings.guard_min_records)
    if first is None:
        if ctx.guard_holding:
            log.info("blast-radius guard released")
            ctx.guard_holding = 0
            ctx.status.notify()
        return None
    if not ctx.guard_holding:
        log.warning("blast-radius guard: %d records deleted or rewritten within an hour; "
                    "pushes held — an admin must run `chartsync edge held approve` or "
                    "`discard`", len({(t, i) for _, t, i in scan.changes}))
    if ctx.guard_holding != len(scan.changes):
        ctx.guard_holding = len(scan.changes)
        ctx.status.notify()
    return first


async def guard_check(ctx: Any, scan: GuardScan | None = None) -> int | None:
    """Return the first outbox seq to hold back, or None; carries out an admin decision.

    `scan`: a `guard_scan` the caller already read (else it is read here).
    """
    site = str(ctx.site_id)
    floor = ctx.settings.guard_min_records
    if scan is None:
        scan = await ctx.read(lambda c: guard_scan(c, site, ctx.now_ms(), floor))
    if scan.decision == "discard":
        await _compensate(ctx, scan.released_to)
        scan = await ctx.read(lambda c: guard_scan(c, site, ctx.now_ms(), floor))
    return guard_verdict(ctx, scan)


def held_summary(conn: sqlite3.Connection, site: str, now_ms: int,
                 share: float, min_records: int) -> int:
    """Number of destructive changes currently counted by the guard (for commands)."""
    _, released_to = _decision(conn)
    return len(_destructive(conn, site, now_ms - WINDOW_MS, released_to))


async def _compensate(ctx: Any, released_to: int) -> None:
    """Restore each record the held changes destroyed to its last version before them."""
    since = ctx.now_ms() - WINDOW_MS
    site = str(ctx.site_id)

    def before(conn: sqlite3.Connection) -> list[tuple[str, str, bytes | None]]:
        out = []
        held: dict[tuple[str, str], set[int]] = {}
        for seq, rtype, rid in _destructive(conn, site, since, released_to):
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

    ops = []
    for rtype, rid, body in sorted(await ctx.read(before)):
        if body is None:
            continue
        resource = orjson.loads(body)
        resource.pop("meta", None)
        ops.append(WriteOp("update", rtype, rid, resource))
    if ops:
        await ctx.edge.writer.submit(ops, actor=_GUARD_ACTOR, atomic=False,
                                     label="guard discard")
    max_seq = ctx.edge.writer.statistics().next_seq - 1
    await ctx.execute(("UPDATE sync_state SET guard_decision = 'approved', "
                       "guard_from_seq = ?", (max_seq,)), label="guard released")
    log.info("blast-radius guard: %d records restored; held changes released", len(ops))
