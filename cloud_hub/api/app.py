"""Assemble the hub's aiohttp application: routes, problem middleware, LISTEN task.

`runner_options` are the caps on request line and headers that the server gives
aiohttp (answered by `api.http_guard`); the rate limits and lockout live in
`api.throttle`, kept per application.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from cloud_hub.api import (
    batches,
    dashboard,
    heartbeat,
    mailbox,
    metrics,
    practices,
    roster,
    sites,
    snapshots,
    status,
    stream,
)
from cloud_hub.api.context import HUB, HubContext
from cloud_hub.api.openapi import openapi_document
from cloud_hub.api.problem import from_error, problem_middleware
from cloud_hub.api.throttle import THROTTLE, Throttle
from cloud_hub.config import HubConfig
from cloud_hub.errors import BodyTimeout, TooManyRequests

log = logging.getLogger(__name__)

#: Headroom over the largest body for headers of multipart-free requests.
_BODY_SLACK = 1024
#: Seconds aiohttp keeps reading (and dropping) the rest of a body it did not need before
#: closing the connection, so a client that sent too much still reads our answer.
LINGER_S: Final = 2.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def runner_options(config: HubConfig) -> dict[str, Any]:
    """aiohttp's caps on request line and headers for `config` (`web.AppRunner` options)."""
    return {"max_line_size": config.max_line_bytes, "max_field_size": config.max_field_bytes,
            "max_headers": config.max_headers, "lingering_time": LINGER_S,
            # aiohttp closes a connection whose request head is not complete by then (a
            # client trickling its headers), and one idle that long between requests.
            "keepalive_timeout": float(config.body_timeout_s)}


@web.middleware
async def limit_answers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """429 with `Retry-After`; 408 closes the connection (the rest of the body is junk)."""
    try:
        return await handler(request)
    except TooManyRequests as exc:
        log.info("refused %s %s: %s", request.method, request.path, exc.code)
        response = from_error(exc)
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    except BodyTimeout as exc:
        log.info("refused %s %s: %s", request.method, request.path, exc.code)
        response = from_error(exc)
        response.force_close()
        return response


async def _openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


async def _watch_commits(app: web.Application) -> AsyncIterator[None]:
    """Own the store's commit watcher (LISTEN on PostgreSQL) for the app's lifetime."""
    ctx = app[HUB]
    watcher = asyncio.create_task(
        ctx.store.watch_commits(ctx.notifier.publish, ctx.notifier.wake_all),
        name="hub-commit-watcher")
    yield
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher


def build_app(ctx: HubContext) -> web.Application:
    """The hub application for `ctx`; the caller runs it (server.py, or a test client)."""
    app = web.Application(client_max_size=ctx.config.max_body_bytes + _BODY_SLACK,
                          middlewares=[problem_middleware, limit_answers])
    app[HUB] = ctx
    app[THROTTLE] = Throttle(ctx.config)
    app.cleanup_ctx.append(_watch_commits)
    app.router.add_get("/healthz", status.healthz)
    app.router.add_get("/openapi.json", _openapi)
    app.router.add_get("/v1/hub-key", status.hub_key)
    app.router.add_post("/v1/practices", practices.create_practice)
    app.router.add_get("/v1/practices", practices.list_practices)
    app.router.add_get("/v1/practices/{pid}/sites", practices.practice_sites)
    app.router.add_post("/v1/practices/{pid}/sites", practices.register_former_site)
    app.router.add_post("/v1/practices/{pid}/enrollment-tokens",
                        practices.create_enrollment_token)
    app.router.add_post("/v1/practices/{pid}/sites/{sid}/revoke", sites.operator_revoke)
    app.router.add_post("/v1/practices/{pid}/sites/{sid}/approve", sites.operator_approve)
    app.router.add_post("/v1/enroll", practices.enroll)
    app.router.add_get("/v1/me", sites.me)
    app.router.add_get("/v1/sites", sites.list_sites)
    app.router.add_post("/v1/sites/{sid}/approve", sites.approve)
    app.router.add_post("/v1/sites/{sid}/revoke", sites.revoke)
    app.router.add_get("/v1/roster", roster.get_roster)
    app.router.add_post("/v1/roster", roster.post_roster)
    app.router.add_get("/v1/kit-epochs", roster.list_kit_epochs)
    app.router.add_put("/v1/kit-epochs/{epoch}", roster.put_kit_epoch)
    app.router.add_get("/v1/mailbox", mailbox.list_mail)
    app.router.add_post("/v1/mailbox/{id}", mailbox.post_mail)
    app.router.add_delete("/v1/mailbox/{id}", mailbox.delete_mail)
    app.router.add_post("/v1/batches", batches.push)
    app.router.add_get("/v1/batches", batches.pull)
    app.router.add_get("/v1/stream", stream.stream)
    app.router.add_put("/v1/snapshots", snapshots.put_snapshot)
    app.router.add_get("/v1/snapshots", snapshots.list_snapshots)
    app.router.add_get("/v1/snapshots/latest", snapshots.latest_snapshot)
    app.router.add_get("/v1/snapshots/{snapshot_id}", snapshots.snapshot_by_id)
    app.router.add_get("/v1/stats", status.stats)
    app.router.add_post("/v1/heartbeat", heartbeat.heartbeat)
    app.router.add_get("/v1/dashboard", dashboard.dashboard_json)
    app.router.add_get("/dashboard", dashboard.dashboard_page)
    app.router.add_get("/metrics", metrics.metrics)
    return app
