"""`POST /v1/heartbeat`: an approved site reports its sync state; the hub keeps the latest.

The body is a bounded `HeartbeatIn` (counts, versions, ids, a digest — no chart
data); it is stored as validated JSON with the time the hub received it, and
read back by the dashboard and the metrics.
"""

from __future__ import annotations

from aiohttp import web

from cloud_hub.api import auth
from cloud_hub.api.body import read_json
from cloud_hub.api.context import hub
from cloud_hub.api.messages import HeartbeatIn


async def heartbeat(request: web.Request) -> web.Response:
    site = await auth.site(request)
    ctx = hub(request)
    report = await read_json(request, HeartbeatIn, ctx.config.max_json_bytes)
    now = ctx.now_ms()
    await ctx.store.put_heartbeat(site.practice_id, site.site_id,
                                  report.model_dump_json().encode(), now)
    return web.Response(status=204)
