"""GET /audit: the audit log for admins and auditors, as JSON rows or AuditEvents.

Filters (all optional, ANDed): user (user id), patient (Patient/<id> or <id>),
resource (Type or Type/id), since / until (FHIR date or dateTime; until is
exclusive), after (seq, for paging), limit (1-5000, default 1000),
format=AuditEvent for a FHIR Bundle.  Answers "which charts did this account
open last week" with `?user=<id>&since=2024-04-01&until=2024-04-08`.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from edge_node.api.auth import require_audit_read, user_of
from edge_node.api.context import audit_read, edge_of, set_action
from edge_node.api.responses import fhir_json
from edge_node.errors import BadRequest
from edge_node.fhir.audit_event import audit_event
from edge_node.fhir.search import parse_instant_ms
from edge_node.store.reads import AuditFilter

_COLUMNS = ("seq", "at_ms", "user", "role", "action", "resource_type", "resource_id",
            "patient", "outcome", "client", "detail")
_KNOWN = frozenset({"user", "patient", "resource", "since", "until", "after", "limit",
                    "format"})


def parse_filter(query: Any) -> AuditFilter:
    """An `AuditFilter` from query parameters; raises `BadRequest` naming the bad one."""
    unknown = set(query) - _KNOWN
    if unknown:
        raise BadRequest(f"audit filter {sorted(unknown)[0]!r} is not supported",
                         hint="filters: " + ", ".join(sorted(_KNOWN)))
    rtype = rid = None
    if "resource" in query:
        rtype, _, rest = query["resource"].partition("/")
        rid = rest or None
    patient = query.get("patient")
    if patient and "/" not in patient:
        patient = f"Patient/{patient}"
    limit = query.get("limit", "1000")
    after = query.get("after", "0")
    if not limit.isdigit() or not 1 <= int(limit) <= 5000 or not after.isdigit():
        raise BadRequest("limit must be 1-5000 and after a row number",
                         hint="example: /audit?user=<id>&limit=500")
    return AuditFilter(
        user=query.get("user"), patient=patient, resource_type=rtype, resource_id=rid,
        since_ms=parse_instant_ms(query["since"], "since") if "since" in query else None,
        until_ms=parse_instant_ms(query["until"], "until") if "until" in query else None,
        after_seq=int(after), limit=int(limit))


async def get_audit(request: web.Request) -> web.Response:
    set_action(request, "audit-query")
    require_audit_read(user_of(request))
    edge = edge_of(request)
    f = parse_filter(request.query)
    await edge.writer.flush()  # account changes made from the command line, chained first
    rows = await edge.reader.audit(f)
    audit_read(request, "audit-query", resource_type=None, resource_id=None,
               patient=f.patient, outcome=200, detail={"count": len(rows)})
    if request.query.get("format") == "AuditEvent":
        site = str(edge.site.site_id)
        return fhir_json({"resourceType": "Bundle", "type": "searchset", "total": len(rows),
                          "entry": [{"resource": audit_event(r, site)} for r in rows]})
    out = []
    for r in rows:
        item = dict(zip(_COLUMNS, r, strict=True))
        item["detail"] = orjson.loads(item["detail"]) if item["detail"] else {}
        out.append(item)
    return web.json_response({"rows": out, "next_after": rows[-1][0] if rows else None},
                             dumps=lambda v: orjson.dumps(v).decode())
