"""GET /review: the clinician's conflict review page, for a tablet on the clinic's LAN.

Like `/status.html`, the page itself holds no data and is served without a token
(`GET /review`); its own small script asks for a staff token once (sessionStorage,
gone when the tab closes) and fetches two HTML fragments with it:

    GET /review/queue                open conflicts grouped by patient, each with the
                                     clinical reason of its rule
    GET /review/conflicts/{id}       one conflict: its values side by side, the parts
                                     that differ highlighted, a "keep this value" button
                                     per value (which posts to /conflicts/{id}/resolve),
                                     and an editor for a merged value

All three are Jinja2 templates (`templates/`, autoescaped) filled from the message
catalog of the request's language (`catalog.negotiate`: `?lang=` from the page's
switch, else `Accept-Language`).  Sites are named, never shown as ids.  No external
script, style or font: nothing leaves the LAN.  The fragments are audited like the
JSON API they draw from.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import orjson
from aiohttp import web
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from edge_node.api.auth import require_chart_read, user_of
from edge_node.api.catalog import Catalog
from edge_node.api.conflict_review import (
    Item,
    audit_patients,
    catalog_of,
    conflict_detail,
    list_items,
)
from edge_node.api.context import audit_read, edge_of, set_action, set_target
from edge_node.fhir.conflict_query import ListQuery, parse_conflict_id
from edge_node.fhir.instant import iso_instant
from edge_node.fhir.json_diff import diff_lines
from edge_node.node import Edge

#: The most conflicts the queue fragment lists (the oldest past it wait for a refresh).
QUEUE_LIMIT = 200
#: Messages the page's script shows by itself.
_JS_MESSAGES = {"refused": "token.refused", "unreachable": "net.unreachable",
                "failed": "detail.failed", "resolved": "detail.resolved",
                "changed": "detail.changed", "gone": "detail.gone",
                "invalid": "detail.merge_invalid"}


@cache
def environment() -> Environment:
    """The templates' environment (autoescaped, undefined names are errors)."""
    return Environment(loader=PackageLoader("edge_node.api", "templates"),
                       autoescape=select_autoescape(default=True, default_for_string=True),
                       undefined=StrictUndefined)


def _html(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/html",
                        headers={"Cache-Control": "no-store"})


def _render(name: str, cat: Catalog, **values: Any) -> str:
    return environment().get_template(name).render(t=cat.text, lang=cat.lang, iso=iso_instant,
                                                    **values)


async def get_review_page(request: web.Request) -> web.Response:
    cat = catalog_of(request)
    messages = {k: cat.text(v) for k, v in _JS_MESSAGES.items()}
    return _html(_render("review.html", cat, js_messages=messages))


def _name_of(patient_json: bytes | None) -> str | None:
    """A display name of a Patient resource: the first name's text, or family + given."""
    if patient_json is None:
        return None
    names = orjson.loads(patient_json).get("name") or []
    for name in names:
        if not isinstance(name, dict):
            continue
        if isinstance(name.get("text"), str):
            return str(name["text"])
        parts = [name.get("family"), *(name.get("given") or [])]
        text = " ".join(p for p in parts if isinstance(p, str))
        if text:
            return text
    return None


async def patient_label(edge: Edge, patient: str | None, cat: Catalog) -> str:
    """How the page names a patient: their name, never only an id."""
    if patient is None:
        return cat.text("queue.no_patient")
    current = await edge.reader.current("Patient", patient.removeprefix("Patient/"))
    name = _name_of(current.json) if current is not None else None
    return name or cat.text("queue.unnamed_patient")


async def get_review_queue(request: web.Request) -> web.Response:
    set_action(request, "search")
    require_chart_read(user_of(request))
    edge = edge_of(request)
    cat = catalog_of(request)
    q = ListQuery(None, None, None, None, None, QUEUE_LIMIT, "patient", None, ())
    items, _ = await list_items(edge, q, edge.clock())
    groups: list[dict[str, Any]] = []
    for item in items:
        if not groups or groups[-1]["patient"] != item.patient:
            groups.append({"patient": item.patient, "conflicts": [],
                           "label": await patient_label(edge, item.patient, cat)})
        group_items: list[Item] = groups[-1]["conflicts"]
        group_items.append(item)
    audit_patients(request, "search", [i.patient for i in items],
                   {"conflicts": len(items), "page": "review"})
    return _html(_render("review_queue.html", cat, groups=groups, total=len(items)))


def _site_label(cat: Catalog) -> Callable[[dict[str, Any]], str]:
    def label(site: dict[str, Any]) -> str:
        return str(site.get("name") or cat.text("site.unnamed"))
    return label


async def get_review_conflict(request: web.Request) -> web.Response:
    set_action(request, "read")
    ref = parse_conflict_id(request.match_info["id"])
    set_target(request, ref.resource_type, ref.resource_id)
    require_chart_read(user_of(request))
    edge = edge_of(request)
    cat = catalog_of(request)
    detail = await conflict_detail(edge, ref, cat)
    lines = diff_lines([v["value"] for v in detail["values"]])
    audit_read(request, "read", resource_type=ref.resource_type, resource_id=ref.resource_id,
               patient=detail["patient"], outcome=200,
               detail={"conflict": ref.register, "page": "review"})
    return _html(_render("review_conflict.html", cat, c=detail, lines=lines,
                         heads=[v["head"] for v in detail["values"]],
                         shown_value=next(v["value"] for v in detail["values"] if v["shown"]),
                         site_label=_site_label(cat),
                         patient_label=await patient_label(edge, detail["patient"], cat)))


__all__ = ["environment", "get_review_conflict", "get_review_page", "get_review_queue"]
