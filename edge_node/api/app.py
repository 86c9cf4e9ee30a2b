"""The aiohttp application: routes, authentication, errors as OperationOutcome, access log.

Every route needs a bearer token (401 otherwise).  Any `EdgeError` becomes an
OperationOutcome with its status; a refusal of an authenticated request is
audited (once).  The access log carries method, route, status and time only:
never the query string (a `name=` search holds a patient's name) or bodies.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from edge_node.api import audit_view, bundles, conflicts, resources, status, status_page
from edge_node.api.auth import USER_KEY, Authenticator
from edge_node.api.context import ACTION_KEY, EDGE, audit_read, edge_of
from edge_node.api.responses import error_response
from edge_node.errors import BodyTooLarge, EdgeError, MethodNotAllowed, NotFound
from edge_node.node import Edge
from edge_node.sync.loop import SyncLoop

log = logging.getLogger("edge_node.access")
Handler = Callable[[web.Request], Awaitable[StreamResponse]]
AUTH: Final = web.AppKey("auth", Authenticator)


class AccessLogger(AbstractAccessLogger):
    """Method, matched route, status and duration; never query strings or bodies."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        route = getattr(getattr(request, "match_info", None), "route", None)
        resource = getattr(route, "resource", None)
        path = resource.canonical if resource is not None else "-"
        self.logger.info("%s %s %d %.1fms", request.method, path, response.status,
                         time * 1000)


def _audit_refusal(request: web.Request, err: EdgeError) -> None:
    if err.audited or USER_KEY not in request or ACTION_KEY not in request:
        return
    rtype = request.match_info.get("type")
    audit_read(request, str(request[ACTION_KEY]), resource_type=rtype,
               resource_id=request.match_info.get("id"), patient=None,
               outcome=err.http_status, detail={"refused": err.code})
    err.audited = True


@web.middleware
async def errors(request: web.Request, handler: Handler) -> StreamResponse:
    """Turn refusals into OperationOutcome responses, with their audit row."""
    try:
        return await handler(request)
    except EdgeError as err:
        _audit_refusal(request, err)
        return error_response(err)
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
    """Every request needs a valid bearer token (but the status page's empty shell)."""
    if request.path == "/status.html":  # holds no data; its script sends the token
        return await handler(request)
    auth = request.app[AUTH]
    request[USER_KEY] = await auth.user(request, edge_of(request).reader)
    return await handler(request)


def build_app(edge: Edge, sync: SyncLoop | None = None) -> web.Application:
    """The edge's web application for `edge` (which the caller keeps open).

    `sync`: the running `edge_node.sync.loop.SyncLoop`, for the status page.
    """
    app = web.Application(middlewares=[errors, authenticate],
                          client_max_size=edge.config.max_body_bytes)
    app[EDGE] = edge
    app[AUTH] = Authenticator()
    app[status.SYNC] = sync
    status.install_sync_header(app)
    r = app.router
    r.add_get("/fhir/metadata", resources.metadata)
    r.add_post("/fhir", bundles.post_bundle)
    r.add_get("/fhir/Provenance", resources.provenance_search)
    r.add_get("/fhir/{type}", resources.search)
    r.add_post("/fhir/{type}", resources.create)
    r.add_get("/fhir/{type}/{id}", resources.read)
    r.add_put("/fhir/{type}/{id}", resources.update)
    r.add_delete("/fhir/{type}/{id}", resources.delete)
    r.add_get("/fhir/{type}/{id}/$conflicts", conflicts.get_conflicts)
    r.add_post("/fhir/{type}/{id}/$resolve", conflicts.resolve)
    r.add_get("/fhir/{type}/{id}/_history", resources.history)
    r.add_get("/fhir/{type}/{id}/_history/{vid}", resources.vread)
    r.add_get("/audit", audit_view.get_audit)
    r.add_get("/status", status.get_status)
    r.add_get("/status.html", status_page.get_status_page)
    return app


__all__ = ["AccessLogger", "build_app"]
