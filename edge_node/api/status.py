"""GET /status: what clinic staff and the operator see at a glance (JSON).

`warnings` lists what is wrong with the server itself in plain words (today: the API
is plain HTTP on a LAN address; `edge serve` makes it).

With a running sync loop `sync` says: online/offline and since
when, outbox depth (not yet acknowledged by the hub), last push and pull, lag
behind the hub (hub head - cursor, and the age of the oldest unpushed
change), held batches (gaps, upgrades needed, missing key epochs), dead
letters, a blast-radius hold, other sites' changes queued to pass on to a hub
that lost them (`relays_queued`), and the last error in plain words.

Every response also carries the short form in a `Chartsync-Sync` header
(`install_sync_header`), so a clinic app can show on any screen whether the edge
is offline and how old its copy of the other sites' changes may be:

    Chartsync-Sync: online              (the hub streams every change as it lands)
    Chartsync-Sync: offline; since=2026-11-25T08:02:11.004Z
    Chartsync-Sync: starting            (sync loop started, hub not tried yet)
    Chartsync-Sync: local               (no hub configured: this edge works alone)

`since` is when the hub stopped answering, or when this edge started if it has
not reached the hub since: other sites' changes made after it are not here yet.
"""

from __future__ import annotations

from typing import Final

import orjson
from aiohttp import web

from edge_node.api.context import edge_of
from edge_node.fhir.instant import iso_instant
from edge_node.store.sync_counts import sync_counts
from edge_node.sync.loop import SyncLoop

SYNC: web.AppKey[SyncLoop | None] = web.AppKey("sync", SyncLoop)
#: Warnings about the server itself for staff (plain HTTP off loopback), in plain words.
WARNINGS: web.AppKey[tuple[str, ...]] = web.AppKey("warnings", tuple)
SYNC_HEADER: Final = "Chartsync-Sync"
_LOCAL: Final = "local"


class _SyncHeader:
    """The header's value for one app's sync loop, formatted again only when the loop's
    state changed."""

    __slots__ = ("_key", "_statistics", "_value")

    def __init__(self, sync: SyncLoop | None) -> None:
        self._statistics = sync.statistics if sync is not None else None
        self._key: tuple[object, ...] | None = None
        self._value = _LOCAL

    def value(self) -> str:
        if self._statistics is None:
            return _LOCAL
        s = self._statistics()
        key = (s.online, s.since_ms)
        if key != self._key:
            if s.online is None:
                value = "starting"
            elif s.online:
                value = "online"
            else:
                value = f"offline; since={iso_instant(s.since_ms or 0)}"
            self._key, self._value = key, value
        return self._value


def install_sync_header(app: web.Application) -> None:
    """Put `Chartsync-Sync` on every response of `app`, errors included (module doc).

    Call after `app[SYNC]` is set; the app's sync loop does not change afterwards.
    """
    header = _SyncHeader(app[SYNC])

    async def add_sync_header(request: web.Request, response: web.StreamResponse) -> None:
        response.headers[SYNC_HEADER] = header.value()

    app.on_response_prepare.append(add_sync_header)


async def sync_section(sync: SyncLoop, now_ms: int) -> dict[str, object]:
    """The `sync` part of `/status`: link state, positions, queues, held batches in words."""
    counts = await sync.ctx.read(sync_counts)
    s = sync.statistics()
    notes = []
    for h in counts.held:
        if h.reason == "gap":
            notes.append(f"site {h.origin}: {h.detail}")
        elif h.reason == "upgrade":
            notes.append(f"upgrade needed: {h.detail}")
        else:
            notes.append(f"batch of site {h.origin} held ({h.reason}): {h.detail}")
    if sync.ctx.guard_holding:
        notes.append(f"{sync.ctx.guard_holding} destructive changes held — an admin must "
                     "approve or discard them (`chartsync edge held approve|discard`)")
    for d in counts.dead_letters:
        notes.append(f"hub refused seq {d.seq_from}-{d.seq_to}: {d.message} "
                     "(`chartsync edge dead-letters`)")
    if counts.relays_queued:
        notes.append(f"{counts.relays_queued} changes of other sites to pass on to the hub "
                     "(it lost them); those of a site not yet re-enrolled there wait for it")
    if s.enrolled_status != "approved" or not s.have_keys:
        notes.append("waiting for an approved site to run `chartsync edge approve` for this "
                     "site")
    oldest = counts.oldest_unpushed_ms
    return {
        "state": "online" if s.online else ("offline" if s.online is False else "starting"),
        "since": iso_instant(s.since_ms) if s.since_ms else None,
        "enrollment": s.enrolled_status,
        "outbox_depth": counts.outbox_depth,
        "last_push": iso_instant(s.last_push_ms) if s.last_push_ms else None,
        "last_pull": iso_instant(s.last_pull_ms) if s.last_pull_ms else None,
        "cursor": counts.cursor, "hub_head": s.hub_head,
        "lag_batches": max(0, s.hub_head - counts.cursor),
        "oldest_unpushed_s": (now_ms - oldest) / 1000 if oldest else 0,
        "held": [h.as_json() for h in counts.held],
        "dead_letters": [d.as_json() for d in counts.dead_letters],
        "guard_held": sync.ctx.guard_holding,
        "relays_queued": counts.relays_queued,
        "state_digest": counts.state_digest,
        "last_error": s.last_error, "notes": notes,
    }


async def get_status(request: web.Request) -> web.Response:
    edge = edge_of(request)
    outbox, resources, conflicts = await edge.reader.status_counts()
    stats = edge.writer.statistics()
    warnings: tuple[str, ...] = request.app[WARNINGS]
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
        "warnings": list(warnings),
    }
    sync = request.app.get(SYNC)
    if sync is not None:
        section = await sync_section(sync, edge.clock())
        body["sync"] = section
        body["hub_reachable"] = section["state"] == "online"
        body["last_push"], body["last_pull"] = section["last_push"], section["last_pull"]
        body["outbox_depth"] = section["outbox_depth"]
    return web.json_response(body, dumps=lambda v: orjson.dumps(v).decode())
