"""FHIR instance and type interactions: create, read, vread, update, delete, history, search."""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import urlencode

import orjson
from aiohttp import web

from edge_node.api import patient_conflicts
from edge_node.api.auth import require_chart_read, require_chart_write, user_of
from edge_node.api.context import (
    actor_of,
    audit_read,
    edge_of,
    mint_id,
    raise_refused,
    read_json,
    set_action,
)
from edge_node.api.responses import base_url, fhir_bytes, fhir_json, version_headers
from edge_node.errors import BadRequest, Gone, IdMismatch, NotFound, UnsupportedSearch
from edge_node.fhir.bundle import parse_if_match
from edge_node.fhir.capability import capability_statement
from edge_node.fhir.instant import iso_instant
from edge_node.fhir.provenance import provenance
from edge_node.fhir.search import parse_search
from edge_node.fhir.validation import check_type, validate
from edge_node.fhir.version import VERSION_ID, Version
from edge_node.fhir.write_op import WriteOp
from sync_protocol.models import RESOURCE_ID_PATTERN

_ID: Final = re.compile(RESOURCE_ID_PATTERN)


def _type(request: web.Request) -> str:
    rtype = request.match_info["type"]
    check_type(rtype)
    return rtype


def _id(request: web.Request) -> str:
    rid = request.match_info["id"]
    if not _ID.match(rid):
        raise BadRequest(f"{rid[:70]!r} is not a FHIR id",
                         hint="ids are 1-64 letters, digits, '-' and '.'")
    return rid


def _gone(rtype: str, rid: str, version: str) -> Gone:
    return Gone(f"{rtype}/{rid} was deleted (version {version})",
                hint=f"its earlier versions stay readable at /fhir/{rtype}/{rid}/_history")


async def create(request: web.Request) -> web.Response:
    set_action(request, "create")
    rtype = _type(request)
    require_chart_write(user_of(request), rtype)
    if "If-None-Exist" in request.headers:
        raise BadRequest("conditional create (If-None-Exist) is not supported",
                         hint="search first, then create")
    body = await read_json(request)
    edge = edge_of(request)
    rid = mint_id(edge)
    if isinstance(body, dict):
        body = {**body, "id": rid}  # FHIR: the server assigns the id of a create
    resource = validate(body, rtype)
    [result] = await edge.writer.submit([WriteOp("create", rtype, rid, resource)],
                                        actor=actor_of(request), atomic=False)
    applied = raise_refused(result)
    assert applied.json is not None
    return fhir_bytes(applied.json, 201, version_headers(
        request, rtype, rid, applied.version, applied.last_updated_ms, location=True))


async def update(request: web.Request) -> web.Response:
    set_action(request, "update")
    rtype, rid = _type(request), _id(request)
    require_chart_write(user_of(request), rtype)
    if_match = parse_if_match(request.headers.get("If-Match"))
    body = await read_json(request)
    if isinstance(body, dict) and body.get("id") != rid:
        raise IdMismatch(f"the body's id {str(body.get('id'))[:70]!r} differs from the URL's "
                         f"{rtype}/{rid}", hint="send the resource to its own URL, with its id")
    resource = validate(body, rtype)
    [result] = await edge_of(request).writer.submit(
        [WriteOp("update", rtype, rid, resource, if_match)], actor=actor_of(request),
        atomic=False)
    applied = raise_refused(result)
    assert applied.json is not None
    return fhir_bytes(applied.json, 201 if applied.created else 200, version_headers(
        request, rtype, rid, applied.version, applied.last_updated_ms,
        location=applied.created))


async def delete(request: web.Request) -> web.Response:
    set_action(request, "delete")
    rtype, rid = _type(request), _id(request)
    require_chart_write(user_of(request), rtype)
    if_match = parse_if_match(request.headers.get("If-Match"))
    [result] = await edge_of(request).writer.submit(
        [WriteOp("delete", rtype, rid, None, if_match)], actor=actor_of(request), atomic=False)
    applied = raise_refused(result)
    return web.Response(status=204, headers={"ETag": f'W/"{applied.version}"'})


async def read(request: web.Request) -> web.Response:
    set_action(request, "read")
    rtype, rid = _type(request), _id(request)
    require_chart_read(user_of(request))
    reader = edge_of(request).reader
    current = await reader.current(rtype, rid)
    if current is None:
        raise NotFound(f"{rtype}/{rid} does not exist", hint="check the type and id")
    status = 410 if current.deleted else 200
    audit_read(request, "read", resource_type=rtype, resource_id=rid,
               patient=current.patient_ref, outcome=status)
    if current.deleted or current.json is None:
        error = _gone(rtype, rid, current.version)
        error.audited = True
        raise error
    body = await patient_conflicts.flag_one(reader, rtype, rid, current.json)
    return fhir_bytes(body, 200, version_headers(
        request, rtype, rid, current.version, current.last_updated_ms))


async def vread(request: web.Request) -> web.Response:
    set_action(request, "vread")
    rtype, rid = _type(request), _id(request)
    require_chart_read(user_of(request))
    vid = request.match_info["vid"]
    edge = edge_of(request)
    version = (await edge.reader.version(rtype, rid, vid)
               if VERSION_ID.fullmatch(vid) else None)
    current = await edge.reader.current(rtype, rid)
    patient = current.patient_ref if current is not None else None
    if version is None:
        audit_read(request, "vread", resource_type=rtype, resource_id=rid, patient=patient,
                   outcome=404, detail={"version": vid[:64]})
        error = NotFound(f"{rtype}/{rid} has no version {vid[:70]!r} at this site",
                         hint=f"list its versions at /fhir/{rtype}/{rid}/_history")
        error.audited = True
        raise error
    audit_read(request, "vread", resource_type=rtype, resource_id=rid, patient=patient,
               outcome=410 if version.deleted else 200, detail={"version": version.vid})
    if version.deleted or version.json is None:
        gone = Gone(f"version {vid} of {rtype}/{rid} is its deletion",
                    hint=f"read an earlier version at /fhir/{rtype}/{rid}/_history")
        gone.audited = True
        raise gone
    return fhir_bytes(version.json, 200, version_headers(
        request, rtype, rid, version.vid, _shown_ms(version)))


def _shown_ms(v: Version) -> int:
    """`meta.lastUpdated` of a stored version: the clock it carries (see `store.apply`);
    a version written before version ids were shared shows when it was recorded."""
    return v.hlc >> 16 if "-" in v.vid else v.recorded_ms


def history_entry(base: str, v: Version) -> bytes:
    """One history Bundle entry as JSON bytes (the stored resource spliced in).

    An author version is entered as the request its author made; a view version
    (this site's merged view) as a PUT by this site.
    """
    first = v.version == 1
    method = "DELETE" if v.deleted else ("POST" if first else "PUT")
    status = "204 No Content" if v.deleted else ("201 Created" if first else "200 OK")
    url = f"{v.resource_type}/{v.resource_id}"
    head: dict[str, Any] = {
        "fullUrl": f"{base}/{url}",
        "request": {"method": method, "url": url if method != "POST" else v.resource_type},
        "response": {"status": status, "etag": f'W/"{v.vid}"',
                     "lastModified": iso_instant(v.recorded_ms)},
    }
    raw = orjson.dumps(head)
    if v.json is None:
        return raw
    return raw[:-1] + b',"resource":' + v.json + b"}"


def bundle_bytes(kind: str, entries: list[bytes], links: list[dict[str, str]],
                 total: int | None = None) -> bytes:
    head: dict[str, Any] = {"resourceType": "Bundle", "type": kind, "link": links}
    if total is not None:
        head["total"] = total
    return orjson.dumps(head)[:-1] + b',"entry":[' + b",".join(entries) + b"]}"


async def history(request: web.Request) -> web.Response:
    set_action(request, "history")
    rtype, rid = _type(request), _id(request)
    require_chart_read(user_of(request))
    edge = edge_of(request)
    count, before = edge.config.default_page_size, None
    for name, value in request.query.items():
        if name == "_count" and value.isdigit() and 1 <= int(value) <= edge.config.max_page_size:
            count = int(value)
        elif name == "_cursor" and value.isdigit():
            before = int(value)
        else:
            raise UnsupportedSearch(f"history parameter {name[:40]!r}={value[:20]!r} is not "
                                    "supported", hint=f"use _count (1-{edge.config.max_page_size})"
                                    " and follow the next link")
    versions = await edge.reader.history(rtype, rid, count=count + 1, before=before)
    if not versions and before is None:
        raise NotFound(f"{rtype}/{rid} does not exist", hint="check the type and id")
    current = await edge.reader.current(rtype, rid)
    base = base_url(request)
    links = [{"relation": "self", "url": str(request.url)}]
    if len(versions) > count:
        versions = versions[:count]
        links.append({"relation": "next", "url": f"{base}/{rtype}/{rid}/_history?_count={count}"
                                                 f"&_cursor={versions[-1].version}"})
    audit_read(request, "history", resource_type=rtype, resource_id=rid,
               patient=current.patient_ref if current is not None else None,
               outcome=200, detail={"count": len(versions)})
    return fhir_bytes(bundle_bytes("history", [history_entry(base, v) for v in versions], links))


async def search(request: web.Request) -> web.Response:
    set_action(request, "search")
    rtype = _type(request)
    require_chart_read(user_of(request))
    edge = edge_of(request)
    q = parse_search(rtype, request.query.items(), default_count=edge.config.default_page_size,
                     max_count=edge.config.max_page_size)
    rows = await patient_conflicts.flag_rows(edge.reader, rtype, await edge.reader.search(q))
    base = base_url(request)
    links = [{"relation": "self", "url": f"{base}/{rtype}?{urlencode(q.echo)}"}]
    if len(rows) > q.count:
        rows = rows[:q.count]
        params = [(k, v) for k, v in q.echo if k != "_count"]
        params += [("_count", str(q.count)), ("_cursor", rows[-1][0])]
        links.append({"relation": "next", "url": f"{base}/{rtype}?{urlencode(params)}"})
    entries = [orjson.dumps({"fullUrl": f"{base}/{rtype}/{rid}",
                             "search": {"mode": "match"}})[:-1] + b',"resource":' + js + b"}"
               for rid, js in rows]
    audit_read(request, "search", resource_type=rtype, resource_id=None, patient=q.patient,
               outcome=200, detail={"params": sorted({k for k, _ in q.echo}),
                                    "count": len(rows)})
    return fhir_bytes(bundle_bytes("searchset", entries, links))


def provenance_search_target(request: web.Request) -> tuple[str, str, str | None]:
    targets = request.query.getall("target", [])
    others = set(request.query) - {"target", "_format"}
    if len(targets) != 1 or others:
        raise UnsupportedSearch("Provenance search needs exactly one target=Type/id parameter",
                                hint="example: /fhir/Provenance?target=Patient/<id>")
    parts = targets[0].strip("/").split("/")
    version = None
    if len(parts) >= 4 and parts[-2] == "_history" and VERSION_ID.fullmatch(parts[-1]):
        version = parts[-1]
        parts = parts[:-2]
    if len(parts) < 2 or not _ID.match(parts[-1]):
        raise UnsupportedSearch("target must be Type/id or Type/id/_history/version",
                                hint="example: target=Patient/<id>")
    check_type(parts[-2])
    return parts[-2], parts[-1], version


async def provenance_search(request: web.Request) -> web.Response:
    set_action(request, "search")
    require_chart_read(user_of(request))
    rtype, rid, version = provenance_search_target(request)
    edge = edge_of(request)
    versions = await edge.reader.history(rtype, rid, count=edge.config.max_page_size,
                                         before=None)
    if version is not None:
        versions = [v for v in versions if v.vid == version]
    base = base_url(request)
    entries = [orjson.dumps({"fullUrl": f"{base}/Provenance/h{v.hid}",
                             "resource": provenance(v), "search": {"mode": "match"}})
               for v in versions]
    current = await edge.reader.current(rtype, rid)
    audit_read(request, "search", resource_type="Provenance", resource_id=None,
               patient=current.patient_ref if current is not None else None,
               outcome=200, detail={"target": f"{rtype}/{rid}", "count": len(entries)})
    return fhir_bytes(bundle_bytes("searchset", entries,
                                   [{"relation": "self", "url": str(request.url)}],
                                   total=len(entries)))


async def metadata(request: web.Request) -> web.Response:
    edge = edge_of(request)
    return fhir_json(capability_statement(now_iso=iso_instant(edge.clock()),
                                          require_if_match=edge.config.require_if_match))
