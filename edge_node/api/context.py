"""Per-request context shared by the handlers: the edge, the actor, body parsing, audit."""

from __future__ import annotations

from typing import Any, Final

import orjson
from aiohttp import web

from edge_node.api.auth import user_of
from edge_node.errors import BodyTooLarge, EdgeError, InvalidJson
from edge_node.fhir.write_op import Actor
from edge_node.node import Edge
from edge_node.store.apply import Applied
from edge_node.store.audit import AuditRecord
from edge_node.store.writer import Result
from sync_protocol.ids import uuid7_text

EDGE: Final = web.AppKey("edge", Edge)
ACTION_KEY: Final = web.RequestKey("chartsync.action", str)
#: The resource a request is about, when its route does not name it as {type}/{id}.
TARGET_KEY: Final = web.RequestKey("chartsync.target", tuple)
DEVICE_HEADER: Final = "X-Device-Id"


def edge_of(request: web.Request) -> Edge:
    return request.app[EDGE]


def client_of(request: web.Request) -> str:
    return request.remote or ""


def actor_of(request: web.Request) -> Actor:
    user = user_of(request)
    device = request.headers.get(DEVICE_HEADER, "")[:128]
    return Actor(user.user_id, user.role.value, device, client_of(request))


def set_action(request: web.Request, action: str) -> None:
    """Name what this request does, for its audit row (also when it is refused)."""
    request[ACTION_KEY] = action


def set_target(request: web.Request, resource_type: str, resource_id: str) -> None:
    """Name the resource this request is about, for its audit row if it is refused."""
    request[TARGET_KEY] = (resource_type, resource_id)


def mint_id(edge: Edge) -> str:
    """A fresh time-ordered resource id."""
    return uuid7_text(edge.clock(), edge.entropy(10))


async def read_json(request: web.Request) -> Any:
    """The parsed JSON body; raises `BodyTooLarge` (413) or `InvalidJson` (400)."""
    limit = edge_of(request).config.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"the body is {request.content_length} bytes; this edge takes up "
                           f"to {limit}", hint="send less per request, or raise "
                           "max_body_bytes in the edge configuration")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise BodyTooLarge(f"the body is larger than {limit} bytes",
                           hint="send less per request, or raise max_body_bytes") from exc
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidJson(f"the body is not valid JSON ({exc.msg} at position {exc.pos})",
                          hint="send the resource as UTF-8 JSON") from exc


def audit_read(request: web.Request, action: str, *, resource_type: str | None,
               resource_id: str | None, patient: str | None, outcome: int,
               detail: dict[str, Any] | None = None) -> None:
    """Queue the audit row of a read (committed with the next group commit)."""
    edge = edge_of(request)
    user = user_of(request)
    edge.writer.audit([AuditRecord(edge.clock(), user.user_id, user.role.value, action,
                                   resource_type, resource_id, patient, outcome,
                                   client_of(request), detail or {})])


def raise_refused(result: Result) -> Applied:
    """The applied result, or raise the refusal (already audited by the writer)."""
    if isinstance(result, EdgeError):
        result.audited = True
        raise result
    return result
