"""The clinician's conflict review queue, as JSON: list, detail, resolve.

    GET  /conflicts                 open conflicts, filtered and paged (conflict_query)
    GET  /conflicts/{id}            every competing value: who, at which site, when, which
                                    is shown, and the value they replaced (the ancestor)
    POST /conflicts/{id}/resolve    keep one value or write a merged one; 409 if the
                                    conflict changed since it was read

Authenticated like the FHIR API (chart read / write roles).  Every answer that shows
patient data is audited with the patient (a listing: one row per patient on the
page).  Resolving writes one change through the writer (`WriteOp` with
`RegisterResolve`: that register's heads all replaced, nothing else touched), and
its audit row holds the clinician, the chosen value and the reason.  Keeping a value
of a coupled register keeps the whole edit it came from (a medication order's status,
drug and dose were written together and are resolved together).

A conflict's `opened` time is the earliest time this site recorded one of its
values; the `ancestor` is the value the register held before the competing writes:
of the writes they replaced, the one with the latest clock (`unknown` when this site
has no history row of it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from aiohttp import web

from conflict import ResourceState, conflicts, materialize, rules_for
from conflict.state import Head
from edge_node.api.auth import require_chart_read, require_chart_write, user_of
from edge_node.api.catalog import Catalog, negotiate
from edge_node.api.context import (
    actor_of,
    audit_read,
    edge_of,
    raise_refused,
    read_json,
    set_action,
    set_target,
)
from edge_node.errors import BadRequest, ConflictChanged, InvalidResource, NotFound
from edge_node.fhir.conflict_query import (
    ConflictRef,
    ListQuery,
    conflict_id,
    encode_cursor,
    head_id,
    parse_conflict_id,
    parse_head_id,
    parse_list_query,
    parse_resolve_body,
    sort_key,
)
from edge_node.fhir.conflict_reasons import reason_key, rule_for
from edge_node.fhir.instant import iso_instant
from edge_node.fhir.validation import validate
from edge_node.fhir.write_op import RegisterResolve, WriteOp
from edge_node.node import Edge
from edge_node.store.conflict_review import DotRecord, dot_records, open_conflicts
from edge_node.store.practice_sites import practice_sites
from edge_node.store.users import list_accounts
from sync_protocol.hlc import physical_ms
from sync_protocol.models import DELETED, Dot


@dataclass(frozen=True, slots=True)
class Item:
    """One open conflict as the queue lists it."""

    id: str
    resource_type: str
    resource_id: str
    register: str
    patient: str | None
    rule: str
    values: int
    opened_ms: int

    def as_json(self, cat: Catalog) -> dict[str, Any]:
        return {"id": self.id, "resourceType": self.resource_type,
                "resourceId": self.resource_id, "patient": self.patient,
                "register": self.register, "rule": self.rule,
                "reason": cat.text(reason_key(self.rule)), "values": self.values,
                "opened": iso_instant(self.opened_ms)}


def catalog_of(request: web.Request) -> Catalog:
    return negotiate(request.query.get("lang"), request.headers.get("Accept-Language"))


def _heads(state: ResourceState, register: str) -> tuple[Head, ...]:
    reg = state.registers.get(register)
    return reg.heads if reg is not None else ()


def _opened_ms(heads: Sequence[Head], records: dict[Dot, DotRecord]) -> int:
    """The earliest time this site recorded one of `heads` (their clock if it has no row)."""
    return min(records[h.dot].recorded_ms if h.dot in records else physical_ms(h.hlc)
               for h in heads)


async def list_items(edge: Edge, q: ListQuery, now_ms: int) -> tuple[list[Item], bool]:
    """The page of items `q` asks for, and whether more follow."""
    rows = await edge.reader.call(open_conflicts, resource_type=q.resource_type,
                                  patient=q.patient)
    items: list[tuple[tuple[Any, ...], Item]] = []
    for row in rows:
        rule = rule_for(row.resource_type, row.register)
        if q.rule is not None and rule != q.rule:
            continue
        heads = _heads(row.state, row.register)
        if not heads:
            continue
        records = await edge.reader.call(dot_records, row.resource_type, row.resource_id,
                                         [h.dot for h in heads])
        opened = _opened_ms(heads, records)
        if q.older_than_ms is not None and opened > now_ms - q.older_than_ms:
            continue
        if q.newer_than_ms is not None and opened < now_ms - q.newer_than_ms:
            continue
        cid = conflict_id(row.resource_type, row.resource_id, row.register)
        key = sort_key(q.sort, row.patient_ref, opened, cid)
        if q.after is not None and key <= q.after:
            continue
        items.append((key, Item(cid, row.resource_type, row.resource_id, row.register,
                                row.patient_ref, rule, len(heads), opened)))
    items.sort(key=lambda pair: pair[0])
    return [item for _, item in items[:q.count]], len(items) > q.count


def audit_patients(request: web.Request, action: str, patients: Sequence[str | None],
                    detail: dict[str, Any]) -> None:
    """One audit row per patient shown (one row without a patient if none)."""
    shown: list[str | None] = [*sorted({p for p in patients if p is not None})] or [None]
    for patient in shown:
        audit_read(request, action, resource_type=None, resource_id=None, patient=patient,
                   outcome=200, detail=detail)


async def get_conflict_list(request: web.Request) -> web.Response:
    set_action(request, "search")
    require_chart_read(user_of(request))
    edge = edge_of(request)
    q = parse_list_query(request.query.items(), default_count=edge.config.default_page_size,
                         max_count=edge.config.max_page_size)
    items, more = await list_items(edge, q, edge.clock())
    cat = catalog_of(request)
    body: dict[str, Any] = {"items": [i.as_json(cat) for i in items], "next": None,
                            "cursor": None}
    if more and items:
        last = items[-1]
        cursor = encode_cursor(q.sort, sort_key(q.sort, last.patient, last.opened_ms, last.id))
        body["cursor"] = cursor
        body["next"] = f"/conflicts?{urlencode([*q.echo, ('cursor', cursor)])}"
    audit_patients(request, "search", [i.patient for i in items],
                    {"conflicts": len(items), "params": sorted({k for k, _ in q.echo})})
    return web.json_response(body, dumps=lambda v: orjson.dumps(v).decode())


def _register_value(rtype: str, register: str, record: DotRecord) -> Any:
    """The value `register` had in the resource as this site stored it at `record`."""
    if register == DELETED:
        return record.deleted
    if record.json is None:
        raise KeyError(register)  # the resource read as deleted: the value is not shown
    resource = orjson.loads(record.json)
    if register.endswith("[x]"):
        rules = rules_for(rtype)
        return next(({k: v} for k, v in resource.items() if rules.register_of(k) == register),
                    None)
    return resource.get(register)


async def conflict_detail(edge: Edge, ref: ConflictRef, cat: Catalog) -> dict[str, Any]:
    """Everything a clinician needs to decide one conflict (module doc); raises `NotFound`
    when it is not open (any more)."""
    state = await edge.reader.state(ref.resource_type, ref.resource_id)
    if state is None or ref.register not in {r.register for r in conflicts(state)}:
        raise NotFound(f"no open conflict {ref.id} ({ref.resource_type}/{ref.resource_id} "
                       f"{ref.register})", hint="it may have been resolved; list open "
                       "conflicts with GET /conflicts")
    record = next(r for r in conflicts(state) if r.register == ref.register)
    reg = state.registers[ref.register]
    # The value before the competing writes: the last write of each site they replaced,
    # then the one with the latest clock among those this site has history of.
    last_per_site: dict[Any, Dot] = {}
    for dot in reg.replaced:
        if dot.site not in last_per_site or dot.seq > last_per_site[dot.site].seq:
            last_per_site[dot.site] = dot
    wanted = [h.dot for h in record.heads] + list(last_per_site.values())
    records = await edge.reader.call(dot_records, ref.resource_type, ref.resource_id, wanted)
    sites = {s.site_id: s.name for s in await edge.reader.call(practice_sites)}
    users = {str(a.user_id): a.name for a in await edge.reader.call(list_accounts)}

    def who(dot: Dot, rec: DotRecord | None) -> dict[str, Any]:
        site = str(dot.site)
        return {"user": rec.user if rec else None,
                "userName": users.get(rec.user) if rec else None,
                "site": {"id": site, "name": sites.get(site)},
                "recorded": iso_instant(rec.recorded_ms) if rec else None}

    values = []
    for i, head in enumerate(record.heads):
        rec = records.get(head.dot)
        values.append({"index": i, "head": head_id(head.dot),
                       "value": None if head.value is None else orjson.loads(head.value),
                       "removed": head.value is None, "shown": head.dot == record.shown.dot,
                       "clinicalTime": iso_instant(physical_ms(head.hlc)), **who(head.dot, rec)})
    ancestor: dict[str, Any] = {"status": "unknown", "values": []}
    known = [d for d in last_per_site.values() if d in records]
    if known:
        dot = max(known, key=lambda d: (records[d].hlc, d.site))
        try:
            value = _register_value(ref.resource_type, ref.register, records[dot])
        except KeyError:
            pass
        else:
            ancestor = {"status": "known", "values": [
                {"head": head_id(dot), "value": value,
                 "clinicalTime": iso_instant(physical_ms(records[dot].hlc)),
                 **who(dot, records[dot])}]}
    current = await edge.reader.current(ref.resource_type, ref.resource_id)
    rule = rule_for(ref.resource_type, ref.register)
    return {"id": ref.id, "resourceType": ref.resource_type, "resourceId": ref.resource_id,
            "patient": current.patient_ref if current else None, "register": ref.register,
            "rule": rule, "reason": cat.text(reason_key(rule)),
            "opened": iso_instant(_opened_ms(record.heads, records)),
            "values": values, "ancestor": ancestor}


async def get_conflict(request: web.Request) -> web.Response:
    set_action(request, "read")
    ref = parse_conflict_id(request.match_info["id"])
    set_target(request, ref.resource_type, ref.resource_id)
    require_chart_read(user_of(request))
    body = await conflict_detail(edge_of(request), ref, catalog_of(request))
    audit_read(request, "read", resource_type=ref.resource_type, resource_id=ref.resource_id,
               patient=body["patient"], outcome=200, detail={"conflict": ref.register})
    return web.json_response(body, dumps=lambda v: orjson.dumps(v).decode())


def _live(state: ResourceState) -> dict[str, Any]:
    """The resource as it reads with its `@deleted` register left aside."""
    registers = {k: v for k, v in state.registers.items() if k != DELETED}
    resource = materialize(ResourceState(state.resource_type, state.resource_id, registers))
    assert resource is not None
    return resource


def _with_values(state: ResourceState, values: dict[str, Any]) -> dict[str, Any]:
    """The resource as it reads, with each register of `values` holding its value
    (None: absent)."""
    resource = _live(state)
    rules = rules_for(state.resource_type)
    for register, value in values.items():
        if register.endswith("[x]"):
            for key in [k for k in resource if rules.register_of(k) == register]:
                del resource[key]
            if value is not None:
                if not isinstance(value, dict) or len(value) != 1:
                    raise InvalidResource(f"{register} holds one member of the choice, as an "
                                          "object with one key",
                                          hint=f'e.g. {{"valueString": "..."}} for {register}')
                resource.update(value)
        elif value is None:
            resource.pop(register, None)
        else:
            resource[register] = value
    return resource


def _chosen(heads: Sequence[Head], choose: int | str) -> Head:
    """The head `choose` names (its index or head id); raises `BadRequest`."""
    if isinstance(choose, int):
        if not 0 <= choose < len(heads):
            raise BadRequest(f"choose={choose} is not the index of a value (0 to "
                             f"{len(heads) - 1})", hint="use a value's index or head id")
        return heads[choose]
    dot = parse_head_id(choose)
    for head in heads:
        if head.dot == dot:
            return head
    raise BadRequest(f"choose={choose[:80]!r} is not one of the values",
                     hint="use the head id of one of the values shown")


def _coupled_values(state: ResourceState, register: str, dot: Dot) -> dict[str, Any]:
    """What the write of `dot` holds in the registers coupled to `register` (one edit
    writes them together, so keeping its value keeps its whole group)."""
    out: dict[str, Any] = {}
    for group in rules_for(state.resource_type).coupled:
        if register not in group:
            continue
        for name in group - {register}:
            for head in _heads(state, name):
                if head.dot == dot:
                    out[name] = None if head.value is None else orjson.loads(head.value)
    return out


async def resolve_conflict(request: web.Request) -> web.Response:
    set_action(request, "update")
    ref = parse_conflict_id(request.match_info["id"])
    set_target(request, ref.resource_type, ref.resource_id)
    require_chart_write(user_of(request), ref.resource_type)
    body = parse_resolve_body(await read_json(request))
    seen = frozenset(parse_head_id(h) for h in body.heads)
    edge = edge_of(request)
    state = await edge.reader.state(ref.resource_type, ref.resource_id)
    if state is None:
        raise NotFound(f"{ref.resource_type}/{ref.resource_id} does not exist",
                       hint="list open conflicts with GET /conflicts")
    heads = _heads(state, ref.register)
    if len(heads) < 2 or ref.register not in {r.register for r in conflicts(state)} \
            or frozenset(h.dot for h in heads) != seen:
        raise ConflictChanged(
            f"the conflict {ref.id} changed since it was read (it holds {len(heads)} "
            f"value{'s' if len(heads) != 1 else ''} now); nothing was written",
            hint="read GET /conflicts/{id} again and decide on the values it shows now")
    others: dict[str, Any] = {}
    if body.choose is not None:
        chosen = _chosen(heads, body.choose)
        value: Any = None if chosen.value is None else orjson.loads(chosen.value)
        chose = head_id(chosen.dot)
        others = _coupled_values(state, ref.register, chosen.dot)
    else:
        value, chose = body.value, "merged"
    resolves = RegisterResolve(ref.register, seen, chose, body.reason)
    if ref.register == DELETED:
        if not isinstance(value, bool):
            raise BadRequest("the value of @deleted is true (deleted) or false (kept)",
                             hint='send {"value": false} to keep the record')
        op = (WriteOp("delete", ref.resource_type, ref.resource_id, None, resolves=resolves)
              if value else WriteOp("update", ref.resource_type, ref.resource_id,
                                    validate(_live(state), ref.resource_type),
                                    resolves=resolves))
    else:
        resource = validate(_with_values(state, {**others, ref.register: value}),
                            ref.resource_type)
        op = WriteOp("update", ref.resource_type, ref.resource_id, resource, resolves=resolves)
    [result] = await edge.writer.submit([op], actor=actor_of(request), atomic=False)
    applied = raise_refused(result)
    answer = {"id": ref.id, "resolved": True, "chose": chose, "value": value,
              "version": applied.version, "deleted": applied.deleted}
    return web.json_response(answer, dumps=lambda v: orjson.dumps(v).decode())


__all__ = ["Item", "audit_patients", "catalog_of", "conflict_detail", "get_conflict",
           "get_conflict_list", "list_items", "resolve_conflict"]
