"""POST /fhir: batch and transaction Bundles.

A transaction is one writer request: all entries apply in one group commit
or none does (any refused entry → the whole Bundle is refused with that
entry's status and a message naming it).  A batch is one non-atomic writer
request: each entry succeeds or fails on its own, and the response lists
every entry's outcome in the Bundle's order.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from edge_node.api.auth import require_chart_write, user_of
from edge_node.api.context import (
    actor_of,
    audit_read,
    edge_of,
    mint_id,
    read_json,
    set_action,
)
from edge_node.api.responses import fhir_bytes
from edge_node.errors import EdgeError
from edge_node.fhir.bundle import Entry, apply_order, parse_bundle
from edge_node.fhir.instant import iso_instant
from edge_node.fhir.outcome import error_outcome
from edge_node.store.apply import Applied
from edge_node.store.writer import Result

_STATUS_TEXT = {200: "200 OK", 201: "201 Created", 204: "204 No Content"}


def _ok_entry(entry: Entry, applied: Applied, representation: bool) -> bytes:
    status = 204 if entry.method == "DELETE" else (201 if applied.created else 200)
    url = f"{applied.resource_type}/{applied.resource_id}"
    response: dict[str, Any] = {"status": _STATUS_TEXT[status],
                                "etag": f'W/"{applied.version}"',
                                "lastModified": iso_instant(applied.last_updated_ms)}
    if entry.method != "DELETE":
        response["location"] = f"{url}/_history/{applied.version}"
    raw = orjson.dumps({"fullUrl": url, "response": response})
    if representation and applied.json is not None:
        raw = raw[:-1] + b',"resource":' + applied.json + b"}"
    return raw


def _error_entry(err: EdgeError) -> bytes:
    return orjson.dumps({"response": {"status": str(err.http_status),
                                      "outcome": error_outcome(err)}})


_ACTIONS = {"POST": "create", "PUT": "update", "DELETE": "delete"}


def _audit_entry_refusals(request: web.Request, entries: list[Entry]) -> None:
    """Audit rows of batch entries refused before the writer (the writer audits the rest)."""
    for e in entries:
        if e.error is not None:
            audit_read(request, _ACTIONS.get(e.method, "batch"), resource_type=None,
                       resource_id=None, patient=None, outcome=e.error.http_status,
                       detail={"bundle": "batch", "entry": e.index, "refused": e.error.code})


async def post_bundle(request: web.Request) -> web.Response:
    set_action(request, "bundle")
    edge = edge_of(request)
    user = user_of(request)
    body = await read_json(request)
    kind, entries = parse_bundle(body, max_entries=edge.config.max_bundle_entries,
                                 mint_id=lambda: mint_id(edge))
    set_action(request, kind)
    for e in entries:
        if e.op is not None:
            require_chart_write(user, e.op.resource_type)
    representation = "return=representation" in request.headers.get("Prefer", "")
    if kind == "transaction":
        for e in entries:
            if e.error is not None:
                raise e.error
        ordered = apply_order(entries)
        results = await edge.writer.submit([e.op for e in ordered if e.op is not None],
                                           actor=actor_of(request), atomic=True,
                                           label="transaction")
        if results and isinstance(results[0], EdgeError):
            results[0].audited = True
            raise results[0]
        by_index = {e.index: r for e, r in zip(ordered, results, strict=True)}
    else:
        _audit_entry_refusals(request, entries)
        runnable = [e for e in entries if e.op is not None]
        results = await edge.writer.submit([e.op for e in runnable if e.op is not None],
                                           actor=actor_of(request), atomic=False,
                                           label="batch")
        by_index = {e.index: r for e, r in zip(runnable, results, strict=True)}
    out: list[bytes] = []
    for e in entries:
        result: Result | None = by_index.get(e.index)
        if isinstance(result, Applied):
            out.append(_ok_entry(e, result, representation))
        else:
            err = result if isinstance(result, EdgeError) else e.error
            assert err is not None
            out.append(_error_entry(err))
    head = orjson.dumps({"resourceType": "Bundle", "type": f"{kind}-response"})
    return fhir_bytes(head[:-1] + b',"entry":[' + b",".join(out) + b"]}")
