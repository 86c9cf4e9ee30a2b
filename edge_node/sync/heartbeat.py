"""The heartbeat: what this site tells the hub's dashboard about itself.

    await Heartbeat(ctx).run()           # one task of the sync loop, forever
    body = await heartbeat_report(ctx)   # the body of POST /v1/heartbeat

A report goes out when something worth one happened (`ctx.heartbeat_due`: a push,
a pulled group) and at least every `heartbeat_s`, but at most once per
`HEARTBEAT_MIN_GAP_S`; only an approved site reports.  A hub without the dashboard
(404) is not an error.  Never chart data: counts, sequence numbers, versions,
the state digest, and the last error's text.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from edge_node.hub_link.context import SyncContext
from edge_node.hub_link.errors import HubRefused
from edge_node.store.sync_counts import sync_counts
from edge_node.sync.puller import missing_seqs
from sync_protocol.version import PROTOCOL_VERSION, SOFTWARE_VERSION

#: Least time between two heartbeats (events set `heartbeat_due` much more often).
HEARTBEAT_MIN_GAP_S: Final = 1.0


async def heartbeat_report(ctx: SyncContext) -> dict[str, object]:
    """The body of `POST /v1/heartbeat` (the hub refuses unknown keys; see its OpenAPI)."""
    counts = await ctx.read(sync_counts)
    stats = ctx.status.snapshot()
    held = counts.held
    upgrades = [h.detail for h in held if h.reason == "upgrade"]
    gaps: list[dict[str, object]] = []
    for origin in sorted({h.origin for h in held if h.reason == "gap"}):
        # What the hub has not delivered: neither applied nor held (a held batch is not
        # missing), up to this origin's last batch held for a gap.
        ranges = [(h.seq_from, h.seq_to) for h in held if h.origin == origin]
        last = max(h.seq_from for h in held if h.origin == origin and h.reason == "gap")
        gaps.extend({"origin": origin, "missing_from": a, "missing_to": b}
                    for a, b in missing_seqs(counts.chains.get(origin, 1), ranges, last))
    oldest = counts.oldest_unpushed_ms
    return {"cursor": counts.cursor, "outbox_depth": counts.outbox_depth,
            "oldest_unpushed_age_s": None if oldest is None
            else max(0.0, (ctx.now_ms() - oldest) / 1000),
            "software_version": SOFTWARE_VERSION,
            "protocol_version": f"{PROTOCOL_VERSION[0]}.{PROTOCOL_VERSION[1]}",
            "state_digest": counts.state_digest,
            "held_batches": len(held), "dead_letters": len(counts.dead_letters),
            "gaps": gaps[:100],
            "upgrade_needed": upgrades[0][:200] if upgrades else None,
            "guard_held": bool(ctx.guard_holding),
            "last_error": stats.last_error[:500] if stats.last_error else None}


class Heartbeat:
    def __init__(self, ctx: SyncContext) -> None:
        self.ctx = ctx

    async def run(self) -> None:
        """Report whenever due (rate-limited, module docstring); never returns."""
        ctx = self.ctx
        loop = asyncio.get_running_loop()
        gap_s = min(ctx.settings.heartbeat_s, HEARTBEAT_MIN_GAP_S)
        last = -gap_s
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ctx.settings.heartbeat_s):
                    await ctx.heartbeat_due.wait()
            # Events (every push, every pulled group) come far faster than a dashboard
            # needs: report at most once per HEARTBEAT_MIN_GAP_S; what happens meanwhile
            # goes in the next report. Each heartbeat costs a read here and a request and
            # a commit at the hub, on the cores the live path (push -> hub -> stream) uses.
            wait_s = last + gap_s - loop.time()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            last = loop.time()
            ctx.heartbeat_due.clear()
            if ctx.state.enrolled_status != "approved":
                continue
            report = await heartbeat_report(ctx)
            try:
                await ctx.hub.heartbeat(report)
            except HubRefused as exc:
                if exc.status != 404 and exc.transient:
                    raise
                # 404: a hub without the dashboard yet; nothing to do.


__all__ = ["HEARTBEAT_MIN_GAP_S", "Heartbeat", "heartbeat_report"]
