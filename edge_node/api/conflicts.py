"""Conflict review for clinicians: `$conflicts` shows every kept value, `$resolve` settles them.

    GET  /fhir/{type}/{id}/$conflicts   Parameters: one `conflict` per open element,
                                        with the rule that raised it, who must review it
                                        (`addressedTo`, e.g. the prescriber), and every
                                        competing value, its site, user and time; plus
                                        conflicts that span resources of the patient
                                        ("no known allergies" vs an allergy)
    POST /fhir/{type}/{id}/$resolve     body: the resource as the clinician decides it
                                        should read; replaces every value each written
                                        element holds, so the conflict closes at every site

A plain PUT never closes a conflict it did not see (only the values the client
read are replaced), so a form that saves on top of a conflict cannot hide it;
`$resolve` is the deliberate act, audited as an update like any other write.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from conflict import conflicts
from edge_node.api import patient_conflicts
from edge_node.api.auth import require_chart_read, require_chart_write, user_of
from edge_node.api.context import (
    actor_of,
    audit_read,
    edge_of,
    raise_refused,
    read_json,
    set_action,
)
from edge_node.api.responses import fhir_bytes, fhir_json, version_headers
from edge_node.errors import IdMismatch, NotFound
from edge_node.fhir.bundle import parse_if_match
from edge_node.fhir.instant import iso_instant
from edge_node.fhir.validation import check_type, validate
from edge_node.fhir.write_op import WriteOp
from sync_protocol.hlc import physical_ms


def _ref(request: web.Request) -> tuple[str, str]:
    rtype = request.match_info["type"]
    check_type(rtype)
    return rtype, request.match_info["id"]


async def get_conflicts(request: web.Request) -> web.Response:
    set_action(request, "read")
    rtype, rid = _ref(request)
    require_chart_read(user_of(request))
    edge = edge_of(request)
    state = await edge.reader.state(rtype, rid)
    if state is None:
        raise NotFound(f"{rtype}/{rid} does not exist", hint="check the type and id")
    current = await edge.reader.current(rtype, rid)
    audit_read(request, "read", resource_type=rtype, resource_id=rid,
               patient=current.patient_ref if current else None, outcome=200)
    parameters: list[dict[str, Any]] = []
    for record in conflicts(state):
        parts: list[dict[str, Any]] = [{"name": "element", "valueString": record.register},
                                       {"name": "rule", "valueString": record.rule}]
        if record.addressed_to is not None:
            parts.append({"name": "addressedTo",
                          "valueReference": {"reference": record.addressed_to}})
        for head in record.heads:
            parts.append({"name": "value", "part": [
                {"name": "content", "valueString":
                    "null" if head.value is None else head.value.decode()},
                {"name": "site", "valueString": str(head.dot.site)},
                {"name": "seq", "valueInteger": head.dot.seq},
                {"name": "recorded", "valueInstant": iso_instant(physical_ms(head.hlc))}]})
        parameters.append({"name": "conflict", "part": parts})
    if current is not None:
        cross = await patient_conflicts.records_for(edge.reader, rtype, rid, current.json)
        parameters += [patient_conflicts.parameter(record) for record in cross]
    return fhir_json({"resourceType": "Parameters", "parameter": parameters}, 200)


async def resolve(request: web.Request) -> web.Response:
    set_action(request, "update")
    rtype, rid = _ref(request)
    require_chart_write(user_of(request), rtype)
    if_match = parse_if_match(request.headers.get("If-Match"))
    body = await read_json(request)
    if not isinstance(body, dict) or body.get("id") != rid:
        raise IdMismatch(f"$resolve of {rtype}/{rid} needs the resource with that id as its "
                         "body", hint="send the resource as it should read, with its id")
    resource = validate(body, rtype)
    [result] = await edge_of(request).writer.submit(
        [WriteOp("update", rtype, rid, resource, if_match, resolve=True)],
        actor=actor_of(request), atomic=False)
    applied = raise_refused(result)
    assert applied.json is not None
    return fhir_bytes(applied.json, 200, version_headers(
        request, rtype, rid, applied.version, applied.last_updated_ms, location=False))
