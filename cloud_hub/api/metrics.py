"""`GET /metrics`: Prometheus text format (see `cloud_hub.metrics` for the series).

Scraping needs the operator credential or the hub's `metrics_token` (config;
a separate secret for the Prometheus server, which cannot administer
anything).  Per-practice heads and per-site lags are read from the store at
scrape time — the same figures as the dashboard — and labelled by ids only.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from cloud_hub.api import auth
from cloud_hub.api.context import HubContext, hub
from cloud_hub.api.dashboard import dashboard_out
from cloud_hub.metrics import CONTENT_TYPE


def _metrics_token_ok(request: web.Request, ctx: HubContext) -> bool:
    expected = ctx.config.metrics_token
    if expected is None:
        return False
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(),
                                                              expected.encode())


async def refresh_gauges(ctx: HubContext) -> None:
    """Set the practice and site gauges from the store (old label sets removed)."""
    view = await dashboard_out(ctx)
    m = ctx.metrics
    m.head.clear()
    m.lag_batches.clear()
    m.lag_seconds.clear()
    for practice in view.practices:
        pid = str(practice.practice_id)
        m.head.labels(pid).set(practice.head)
        for site in practice.sites:
            if site.status != "approved":
                continue
            if site.lag_batches is not None:
                m.lag_batches.labels(pid, str(site.site_id)).set(site.lag_batches)
            if site.lag_s is not None:
                m.lag_seconds.labels(pid, str(site.site_id)).set(site.lag_s)


async def metrics(request: web.Request) -> web.Response:
    ctx = hub(request)
    if not _metrics_token_ok(request, ctx):
        await auth.operator(request)
    await refresh_gauges(ctx)
    return web.Response(body=ctx.metrics.exposition(),
                        headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})
