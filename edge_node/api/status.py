"""GET /status: what clinic staff and the operator see at a glance (JSON).

With a running sync loop (issue #5) `sync` says: online/offline and since
when, outbox depth (not yet acknowledged by the hub), last push and pull, lag
behind the hub (hub head - cursor, and the age of the oldest unpushed
change), held batches (gaps, upgrades needed, missing key epochs), dead
letters, a blast-radius hold, other sites' changes queued to pass on to a hub
that lost them (`relays_queued`), and the last error in plain words.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from edge_node.api.context import edge_of
from edge_node.store.apply import iso_instant

SYNC: web.AppKey[object | None] = web.AppKey("sync", object)


async def _sync_section(sync: object, now_ms: int) -> dict[str, object]:
    from edge_node.sync.loop import SyncLoop, sync_counts

    assert isinstance(sync, SyncLoop)
    counts = await sync.ctx.read(sync_counts)
    s = sync.statistics()
    held = counts["held"]
    notes = []
    for h in held:
        if h["reason"] == "gap":
            notes.append(f"site {h['origin']}: {h['detail']}")
        elif h["reason"] == "upgrade":
            notes.append(f"upgrade needed: {h['detail']}")
        else:
            notes.append(f"batch of site {h['origin']} held ({h['reason']}): {h['detail']}")
    if sync.ctx.guard_holding:
        notes.append(f"{sync.ctx.guard_holding} destructive changes held — an admin must "
                     "approve or discard them (`chartsync edge held approve|discard`)")
    for d in counts["dead_letters"]:
        notes.append(f"hub refused seq {d['seq_from']}-{d['seq_to']}: {d['message']} "
                     "(`chartsync edge dead-letters`)")
    if counts["relays_queued"]:
        notes.append(f"{counts['relays_queued']} changes of other sites to pass on to the hub "
                     "(it lost them); those of a site not yet re-enrolled there wait for it")
    if s.enrolled_status != "approved" or not s.have_keys:
        notes.append("waiting for an approved site to run `chartsync edge approve` for this "
                     "site")
    oldest = counts["oldest_unpushed_ms"]
    return {
        "state": "online" if s.online else ("offline" if s.online is False else "starting"),
        "since": iso_instant(s.since_ms) if s.since_ms else None,
        "enrollment": s.enrolled_status,
        "outbox_depth": counts["outbox_depth"],
        "last_push": iso_instant(s.last_push_ms) if s.last_push_ms else None,
        "last_pull": iso_instant(s.last_pull_ms) if s.last_pull_ms else None,
        "cursor": counts["cursor"], "hub_head": s.hub_head,
        "lag_batches": max(0, s.hub_head - counts["cursor"]),
        "oldest_unpushed_s": (now_ms - oldest) / 1000 if oldest else 0,
        "held": held, "dead_letters": counts["dead_letters"],
        "guard_held": sync.ctx.guard_holding,
        "relays_queued": counts["relays_queued"],
        "state_digest": counts["state_digest"],
        "last_error": s.last_error, "notes": notes,
    }


async def get_status(request: web.Request) -> web.Response:
    edge = edge_of(request)
    outbox, resources, conflicts = await edge.reader.status_counts()
    stats = edge.writer.statistics()
    body: dict[str, object] = {
        "site_id": str(edge.site.site_id),
        "practice_id": str(edge.site.practice_id) if edge.site.practice_id else None,
        "outbox_depth": outbox,
        "last_push": None,
        "last_pull": None,
        "hub_reachable": None,
        "hub": None,
        "resources": resources,
        "open_conflicts": conflicts,
        "next_seq": stats.next_seq,
        "group_commits": stats.groups,
        "largest_group": stats.largest_group,
        "now": iso_instant(edge.clock()),
    }
    sync = request.app.get(SYNC)
    if sync is not None:
        section = await _sync_section(sync, edge.clock())
        body["sync"] = section
        body["hub_reachable"] = section["state"] == "online"
        body["last_push"], body["last_pull"] = section["last_push"], section["last_pull"]
        body["outbox_depth"] = section["outbox_depth"]
    return web.json_response(body, dumps=lambda v: orjson.dumps(v).decode())
