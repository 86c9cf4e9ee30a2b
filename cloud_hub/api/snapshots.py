"""Encrypted snapshots: a site uploads one covering hub sequences 1..N; a new site starts there.

`PUT /v1/snapshots?hub_seq=N&key_epoch=E` with the sealed snapshot as the body;
`GET /v1/snapshots/latest` answers the bytes with `X-Hub-Seq`, `X-Key-Epoch`
and `X-Site-Id` headers; the new site then pulls after `X-Hub-Seq`.
"""

from __future__ import annotations

from aiohttp import web

from cloud_hub.api import auth
from cloud_hub.api.body import query_int, read_body
from cloud_hub.api.context import hub
from cloud_hub.errors import BadRequest, NotFound
from sync_protocol.ids import HubSeq, KeyEpoch


async def put_snapshot(request: web.Request) -> web.Response:
    site = await auth.site(request)
    ctx = hub(request)
    hub_seq = query_int(request, "hub_seq", 0, 1, 1 << 62)
    key_epoch = query_int(request, "key_epoch", 0, 1, (1 << 31) - 1)
    head = await ctx.store.head(site.practice_id)
    if hub_seq > head:
        raise BadRequest(f"snapshot claims hub sequence {hub_seq}, the practice is at {head}",
                         hint="tag a snapshot with the last hub sequence the site applied")
    blob = await read_body(request, ctx.config.max_snapshot_bytes, what="snapshot")
    await ctx.store.put_snapshot(site.practice_id, site.site_id, HubSeq(hub_seq),
                                 KeyEpoch(key_epoch), blob, ctx.now_ms())
    return web.json_response({"hub_seq": hub_seq, "bytes": len(blob)}, status=201)


async def latest_snapshot(request: web.Request) -> web.Response:
    site = await auth.site(request)
    snap = await hub(request).store.latest_snapshot(site.practice_id)
    if snap is None:
        raise NotFound("this practice has no snapshot yet",
                       hint="pull from hub sequence 0 instead")
    return web.Response(body=snap.blob, content_type="application/octet-stream", headers={
        "X-Hub-Seq": str(snap.hub_seq), "X-Key-Epoch": str(snap.key_epoch),
        "X-Site-Id": str(snap.site_id)})
