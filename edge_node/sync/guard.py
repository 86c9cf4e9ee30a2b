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
running sync loop carries it out, and audits the hold (one record per held record,
with its patient) and its release (the compensations go through the writer
like any local write).  The counting and the decision's row are the store's
(`store.guard_counts`); this module decides, logs and compensates.
"""

from __future__ import annotations

import logging
from typing import Final

import orjson

from edge_node.fhir.write_op import Actor, WriteOp
from edge_node.hub_link.context import SyncContext
from edge_node.store.audit import AuditRecord
from edge_node.store.guard_counts import (
    WINDOW_MS,
    GuardScan,
    ReleaseGuard,
    guard_scan,
    hold_from,
    versions_before,
)

log = logging.getLogger(__name__)

_GUARD_ACTOR: Final = Actor(user_id="chartsync-guard", role="admin", device="guard",
                            client="sync")


def guard_verdict(ctx: SyncContext, scan: GuardScan) -> int | None:
    """`hold_from` of `scan`, logged and shown on the status page when it changes."""
    first = hold_from(scan, ctx.settings.guard_share, ctx.settings.guard_min_records)
    if first is None:
        if ctx.guard_holding:
            log.info("blast-radius guard released")
            ctx.edge.writer.audit([AuditRecord(
                ctx.now_ms(), _GUARD_ACTOR.user_id, _GUARD_ACTOR.role, "guard-release", None,
                None, None, 200, _GUARD_ACTOR.client, {"decision": scan.decision or "approve"})])
            ctx.guard_holding = 0
            ctx.status.notify()
        return None
    if not ctx.guard_holding:
        log.warning("blast-radius guard: %d records deleted or rewritten within an hour; "
                    "pushes held — an admin must run `chartsync edge held approve` or "
                    "`discard`", len({(t, i) for _, t, i in scan.changes}))
        _audit_hold(ctx, scan, first)
    if ctx.guard_holding != len(scan.changes):
        ctx.guard_holding = len(scan.changes)
        ctx.status.notify()
    return first


def _audit_hold(ctx: SyncContext, scan: GuardScan, first: int) -> None:
    """One audit record per held record, with its patient: who the hold protects."""
    now = ctx.now_ms()
    seen: set[tuple[str, str]] = set()
    records = []
    for seq, rtype, rid in scan.changes:
        if (rtype, rid) in seen:
            continue
        seen.add((rtype, rid))
        records.append(AuditRecord(now, _GUARD_ACTOR.user_id, _GUARD_ACTOR.role, "guard-hold",
                                   rtype, rid, scan.patients.get((rtype, rid)), 202,
                                   _GUARD_ACTOR.client, {"held_from_seq": first, "seq": seq}))
    ctx.edge.writer.audit(records)


async def guard_check(ctx: SyncContext, scan: GuardScan | None = None) -> int | None:
    """Return the first outbox seq to hold back, or None; carries out an admin decision.

    `scan`: a `guard_scan` the caller already read (else it is read here).
    """
    site = str(ctx.site_id)
    floor = ctx.settings.guard_min_records
    if scan is None:
        scan = await ctx.read(guard_scan, site, ctx.now_ms(), floor)
    if scan.decision == "discard":
        await _compensate(ctx, scan.released_to)
        scan = await ctx.read(guard_scan, site, ctx.now_ms(), floor)
    return guard_verdict(ctx, scan)


async def _compensate(ctx: SyncContext, released_to: int) -> None:
    """Restore each record the held changes destroyed to its last version before them."""
    since = ctx.now_ms() - WINDOW_MS
    site = str(ctx.site_id)


    ops = []
    for rtype, rid, body in sorted(await ctx.read(versions_before, site, since, released_to)):
        if body is None:
            continue
        resource = orjson.loads(body)
        resource.pop("meta", None)
        ops.append(WriteOp("update", rtype, rid, resource))
    if ops:
        await ctx.edge.writer.submit(ops, actor=_GUARD_ACTOR, atomic=False,
                                     label="guard discard")
    max_seq = ctx.edge.writer.statistics().next_seq - 1
    await ctx.write(ReleaseGuard(max_seq), label="guard released")
    log.info("blast-radius guard: %d records restored; held changes released", len(ops))


__all__ = ["WINDOW_MS", "GuardScan", "guard_check", "guard_scan", "guard_verdict",
           "hold_from"]
