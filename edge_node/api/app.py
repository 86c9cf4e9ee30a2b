"""The aiohttp application: routes, authentication, errors as OperationOutcome, access log.

Every route needs a bearer token (401 otherwise; rate limits and lockout in
`api.auth`).  Any `EdgeError` becomes an OperationOutcome with its status; a
refusal of an authenticated request is audited (once).  A request body is read
whole after authentication, within `body_timeout_s` (408 and the connection closed
otherwise); a body that does not decode as its `Content-Encoding` says is a 400.
The access log carries method, route, status and time only: never the query
string (a `name=` search holds a patient's name) or bodies.  `runner_options` are
the caps on request line, headers and body that `edge serve` gives aiohttp.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from edge_node.api import (
    audit_view,
    bundles,
    conflict_review,
    conflicts,
    patient_merge,
    resources,
    review_page,
    status,
    status_page,
)
from edge_node.api.auth import USER_KEY, Authenticator
from edge_node.api.context import ACTION_KEY, EDGE, TARGET_KEY, audit_read, edge_of
from edge_node.api.responses import error_response
from edge_node.config import EdgeConfig
from edge_node.errors import (
    BadRequest,
    BodyTimeout,
    BodyTooLarge,
    EdgeError,
    MethodNotAllowed,
    NotFound,
    TooManyRequests,
)
from edge_node.node import Edge
from edge_node.sync.loop import SyncLoop

log = logging.getLogger("edge_node.access")
Handler = Callable[[web.Request], Awaitable[StreamResponse]]
AUTH: Final = web.AppKey("auth", Authenticator)
#: The matched route's pattern (e.g. `/fhir/{type}/{id}`), for the access log.
ROUTE_KEY: Final = web.RequestKey("chartsync.route", str)
#: Pages that hold no data (their scripts send the token for what they fetch).
PUBLIC_PAGES: Final = frozenset({"/status.html", "/review"})
#: Seconds aiohttp keeps reading (and dropping) the rest of a body it did not need before
#: closing the connection, so a client that sent too much still reads our answer.
LINGER_S: Final = 2.0


class AccessLogger(AbstractAccessLogger):
    """Method, matched route, status and duration; never query strings or bodies."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        # `errors` notes the route; a request aiohttp could not parse never reached it (and
        # its `match_info` raises): its line says "-" and nothing of the request.
        route = request.get(ROUTE_KEY)
        method = request.method if route is not None else "-"
        self.logger.info("%s %s %d %.1fms", method, route or "-", response.status,
                         time * 1000)


def _audit_refusal(request: web.Request, err: EdgeError) -> None:
    if err.audited or USER_KEY not in request or ACTION_KEY not in request:
        return
    rtype, rid = request.get(TARGET_KEY) or (request.match_info.get("type"),
                                             request.match_info.get("id"))
    audit_read(request, str(request[ACTION_KEY]), resource_type=rtype,
               resource_id=rid, patient=None,
               outcome=err.http_status, detail={"refused": err.code})
    err.audited = True


@web.middleware
async def errors(request: web.Request, handler: Handler) -> StreamResponse:
    """Turn refusals into OperationOutcome responses, with their audit row."""
    resource = request.match_info.route.resource
    request[ROUTE_KEY] = resource.canonical if resource is not None else "-"
    try:
        return await handler(request)
    except EdgeError as err:
        _audit_refusal(request, err)
        response = error_response(err)
        if isinstance(err, TooManyRequests):
            response.headers["Retry-After"] = str(err.retry_after_s)
        if isinstance(err, BodyTimeout):
            response.force_close()
        return response
    except web.HTTPMethodNotAllowed as exc:
        return error_response(MethodNotAllowed(
            f"{request.method} is not served at {request.path}",
            hint="allowed: " + ", ".join(sorted(exc.allowed_methods))))
    except web.HTTPNotFound:
        return error_response(NotFound(f"nothing is served at {request.path}",
                                       hint="the FHIR base is /fhir; see /fhir/metadata"))
    except web.HTTPRequestEntityTooLarge:
        return error_response(BodyTooLarge("the request body is too large",
                                           hint="send less per request"))


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> StreamResponse:
    """Every request needs a valid bearer token (but the staff pages' empty shells)."""
    if request.path in PUBLIC_PAGES:  # hold no data; their scripts send the token
        return await handler(request)
    auth = request.app[AUTH]
    request[USER_KEY] = await auth.user(request, edge_of(request).reader)
    return await handler(request)


@web.middleware
async def read_body(request: web.Request, handler: Handler) -> StreamResponse:
    """Read an authenticated request's body within `body_timeout_s` (module doc)."""
    if request.body_exists:
        config = edge_of(request).config
        try:
            async with asyncio.timeout(config.body_timeout_s):
                await request.read()  # kept by aiohttp: the handler's read() gets it
        except TimeoutError as exc:
            raise BodyTimeout(f"the request body did not arrive within "
                              f"{config.body_timeout_s:g} s",
                              hint="send the body at once; a slow link may need a larger "
                              "body_timeout_s") from exc
        except web.HTTPRequestEntityTooLarge as exc:
            raise BodyTooLarge(f"the body is larger than {config.max_body_bytes} bytes",
                               hint="send less per request, or raise max_body_bytes") from exc
        except (HttpProcessingError, RequestPayloadError) as exc:  # not its Content-Encoding
            raise BadRequest(f"the request body could not be decoded ({type(exc).__name__})",
                             hint="send the body as Content-Encoding says (gzip, deflate, "
                             "br) or uncompressed without that header") from exc
    return await handler(request)


def runner_options(config: EdgeConfig) -> dict[str, Any]:
    """aiohttp's caps on request line and headers for `config` (`web.AppRunner` options)."""
    return {"max_line_size": config.max_line_bytes, "max_field_size": config.max_field_bytes,
            "max_headers": config.max_headers, "lingering_time": LINGER_S,
            # aiohttp closes a connection whose request head is not complete by then (a
            # client trickling its headers), and one idle that long between requests.
            "keepalive_timeout": float(config.body_timeout_s)}


def build_app(edge: Edge, sync: SyncLoop | None = None, *,
              monotonic: Callable[[], float] = time.monotonic,
              warnings: tuple[str, ...] = ()) -> web.Application:
    """The edge's web application for `edge` (which the caller keeps open).

    `sync`: the running `edge_node.sync.loop.SyncLoop`, for the status page.
    `monotonic`: the clock of rate limits and lockouts (tests pass a fake one).
    `warnings`: what the status page shows staff about this server (e.g. plain HTTP).
    """
    app = web.Application(middlewares=[errors, authenticate, read_body],
                          client_max_size=edge.config.max_body_bytes)
    app[EDGE] = edge
    app[AUTH] = Authenticator(edge.config, monotonic=monotonic)
    app[status.WARNINGS] = warnings
    app[status.SYNC] = sync
    status.install_sync_header(app)
    r = app.router
    r.add_get("/fhir/metadata", resources.metadata)
    r.add_post("/fhir", bundles.post_bundle)
    r.add_get("/fhir/Provenance", resources.provenance_search)
    # Before /fhir/{type}/{id}, which would take "$duplicates" for an id.
    r.add_get("/fhir/Patient/$duplicates", patient_merge.duplicates)
    r.add_post("/fhir/Patient/$merge", patient_merge.merge)
    r.add_post("/fhir/Patient/$unmerge", patient_merge.unmerge)
    r.add_get("/fhir/{type}", resources.search)
    r.add_post("/fhir/{type}", resources.create)
    r.add_get("/fhir/{type}/{id}", resources.read)
    r.add_put("/fhir/{type}/{id}", resources.update)
    r.add_delete("/fhir/{type}/{id}", resources.delete)
    r.add_get("/fhir/{type}/{id}/$conflicts", conflicts.get_conflicts)
    r.add_post("/fhir/{type}/{id}/$resolve", conflicts.resolve)
    r.add_get("/fhir/{type}/{id}/_history", resources.history)
    r.add_get("/fhir/{type}/{id}/_history/{vid}", resources.vread)
    r.add_get("/conflicts", conflict_review.get_conflict_list)
    r.add_get("/conflicts/{id}", conflict_review.get_conflict)
    r.add_post("/conflicts/{id}/resolve", conflict_review.resolve_conflict)
    r.add_get("/review", review_page.get_review_page)
    r.add_get("/review/queue", review_page.get_review_queue)
    r.add_get("/review/conflicts/{id}", review_page.get_review_conflict)
    r.add_get("/audit", audit_view.get_audit)
    r.add_get("/status", status.get_status)
    r.add_get("/status.html", status_page.get_status_page)
    return app


__all__ = ["AccessLogger", "build_app", "runner_options"]
