"""The operator dashboard: `GET /v1/dashboard` (JSON) and `GET /dashboard` (the page).

The JSON is the operator's (hub-wide, like every operator call; `?practice_id=`
narrows it to one practice); sites are refused.  The page is static and holds
no data: it asks for the operator token, keeps it in sessionStorage and sends
it as a Bearer header to `/v1/dashboard` every few seconds.
"""

from __future__ import annotations

from uuid import UUID

from aiohttp import web

from cloud_hub.api import auth
from cloud_hub.api.context import HubContext, hub
from cloud_hub.api.dashboard_page import PAGE
from cloud_hub.dashboard import (
    DashboardOut,
    PracticeFacts,
    Thresholds,
    practice_view,
    report_of,
    wanted_receipts,
)
from cloud_hub.errors import not_found
from cloud_hub.store.base import PracticeRecord
from sync_protocol.ids import PracticeId

#: The page may run only its own inline script and style, and talk only to this hub.
_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'")


def thresholds(ctx: HubContext) -> Thresholds:
    c = ctx.config
    return Thresholds(c.offline_after_s, c.lag_alert_s, c.clock_offset_alert_ms)


async def practice_facts(ctx: HubContext, practice: PracticeRecord) -> PracticeFacts:
    """Everything the dashboard shows of one practice, read from the store."""
    store, pid = ctx.store, practice.practice_id
    bounds = await store.log_bounds(pid)
    sites = await store.list_sites(pid)
    activity = await store.site_activity(pid)
    stats = await store.practice_stats(pid)
    wanted = wanted_receipts(bounds.head, bounds.trimmed_through,
                             [report_of(a) for a in activity])
    received = await store.received_ms(pid, wanted)
    return PracticeFacts(practice, bounds.head, bounds.trimmed_through, sites, activity,
                         {s.site_id: s.concurrent_edits for s in stats.sites}, received)


async def dashboard_out(ctx: HubContext, only: PracticeId | None = None) -> DashboardOut:
    now = ctx.now_ms()
    practices = [p for p in await ctx.store.list_practices()
                 if only is None or p.practice_id == only]
    views = [practice_view(await practice_facts(ctx, p), now, thresholds(ctx))
             for p in practices]
    return DashboardOut(generated_ms=now, practices=views)


async def dashboard_json(request: web.Request) -> web.Response:
    await auth.operator(request)
    ctx = hub(request)
    only: PracticeId | None = None
    raw = request.query.get("practice_id")
    if raw is not None:
        try:
            only = PracticeId(UUID(raw))
        except ValueError:
            raise not_found("practice") from None
        if not await ctx.store.practice_exists(only):
            raise not_found("practice")
    out = await dashboard_out(ctx, only)
    return web.Response(body=out.model_dump_json(), content_type="application/json",
                        headers={"Cache-Control": "no-store"})


async def dashboard_page(request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html", charset="utf-8", headers={
        "Content-Security-Policy": _CSP, "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})
