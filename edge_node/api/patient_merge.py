"""Duplicate patients: list likely pairs, merge two records into one, undo a merge.

    GET  /fhir/Patient/$duplicates   Parameters: one `pair` per likely duplicate (two
                                     `patient` references, smaller id first, and each
                                     `reason`), then `total`; `_count` bounds the pairs
    POST /fhir/Patient/$merge        Parameters `source-patient`, `target-patient`
                                     (valueReference "Patient/<id>"); answers Parameters
                                     `outcome`, `result` (the surviving Patient),
                                     `moved` references and the undo `record`
    POST /fhir/Patient/$unmerge      the same two parameters (either order); answers
                                     `outcome`, `result`, `moved` (pointed back) and
                                     `kept` (left alone, with why)

Listing needs a chart-read role; merging and unmerging re-point clinical records,
so they need a clinician or an admin.  Each merge or unmerge is one atomic write
(all or nothing, `store.writer`), audited per written resource and once per
patient with both patients named.  The rules (the earlier-registered record
survives; what the undo record holds) are in `fhir.patient_merge` and
docs/design.md, "Duplicate patients".
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, Final, Literal

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge_node.api.auth import require_chart_read, user_of
from edge_node.api.context import actor_of, audit_read, edge_of, read_json, set_action
from edge_node.api.responses import fhir_json
from edge_node.errors import (
    BadRequest,
    EdgeError,
    Forbidden,
    InvalidResource,
    UnsupportedSearch,
    VersionConflict,
)
from edge_node.fhir.outcome import outcome
from edge_node.fhir.patient_match import duplicate_pairs
from edge_node.fhir.patient_merge import (
    MAX_REPOINT,
    Plan,
    plan_merge,
    plan_unmerge,
    replaced_by,
    survivor,
)
from edge_node.node import Edge
from edge_node.store.apply import Applied
from edge_node.store.connection import call_on_new_connection
from edge_node.store.patient_links import (
    PairInputs,
    duplicate_candidates,
    merge_inputs,
    unmerge_inputs,
)
from edge_node.store.schema import db_path
from edge_node.store.users import Role, User
from sync_protocol.models import RESOURCE_ID_PATTERN

#: The most patients `$duplicates` compares (those sharing a match token).
MAX_CANDIDATES: Final = 20_000
#: Attempts of a merge whose resources another write changed between read and write.
ATTEMPTS: Final = 3
_MERGERS: Final = frozenset({Role.CLINICIAN, Role.ADMIN})


class _Reference(BaseModel):
    model_config = ConfigDict(extra="allow")
    reference: str = Field(max_length=256)


class _Parameter(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(max_length=64)
    valueReference: _Reference | None = None


class _Parameters(BaseModel):
    model_config = ConfigDict(extra="allow")
    resourceType: Literal["Parameters"]
    parameter: list[_Parameter] = Field(max_length=8)


_ID_OK: Final = re.compile(RESOURCE_ID_PATTERN)


def _patient_id(params: _Parameters, name: str) -> str:
    found = [p for p in params.parameter if p.name == name]
    if len(found) != 1 or found[0].valueReference is None:
        raise BadRequest(f"the Parameters need exactly one {name!r} with a valueReference",
                         hint='e.g. {"name": "' + name + '", "valueReference": '
                         '{"reference": "Patient/<id>"}}')
    ref = found[0].valueReference.reference
    parts = ref.rstrip("/").split("/")
    if len(parts) < 2 or parts[-2] != "Patient":
        raise BadRequest(f"{name} must reference a Patient, not {ref[:80]!r}",
                         hint="only Patient records are merged; send Patient/<id>")
    if not _ID_OK.match(parts[-1]):
        raise BadRequest(f"{name}: {parts[-1][:70]!r} is not a FHIR id",
                         hint="ids are 1-64 letters, digits, '-' and '.'")
    return parts[-1]


async def _pair(request: web.Request) -> tuple[str, str]:
    body = await read_json(request)
    try:
        params = _Parameters.model_validate(body)
    except ValidationError as exc:
        where = "; ".join(".".join(str(p) for p in e["loc"]) + ": " + e["msg"]
                          for e in exc.errors(include_url=False, include_input=False)[:3])
        raise InvalidResource(f"the body is not a Parameters resource this operation takes "
                              f"({where})", hint="send resourceType Parameters with "
                              "source-patient and target-patient") from exc
    a, b = _patient_id(params, "source-patient"), _patient_id(params, "target-patient")
    if a == b:
        raise BadRequest("a patient cannot be merged with itself",
                         hint="name two different patients as source-patient and "
                         "target-patient")
    return a, b


def _require_merger(user: User) -> None:
    if user.role not in _MERGERS:
        raise Forbidden(f"role {user.role} may not merge or unmerge patients (it re-points "
                        "their clinical records)", hint="ask a clinician or an admin")


async def _read(edge: Edge, fn: Callable[..., PairInputs], *args: Any) -> PairInputs:
    return await call_on_new_connection(db_path(edge.config.data_dir), fn, *args)


async def _submit(request: web.Request, plan_once: Callable[[], Awaitable[Plan]], label: str
                  ) -> tuple[Plan, list[Applied]]:
    """Plan on fresh reads and submit atomically; replan if a resource moved meanwhile."""
    edge = edge_of(request)
    for attempt in range(ATTEMPTS):
        plan = await plan_once()
        results = await edge.writer.submit(plan.ops, actor=actor_of(request), atomic=True,
                                           label=label)
        if results and isinstance(results[0], VersionConflict) and attempt + 1 < ATTEMPTS:
            continue
        for result in results:
            if isinstance(result, EdgeError):
                result.audited = True
                raise result
        return plan, [r for r in results if isinstance(r, Applied)]
    raise AssertionError("unreachable")


def _json(applied: list[Applied], rtype: str, rid: str) -> Any:
    for a in applied:
        if a.resource_type == rtype and a.resource_id == rid and a.json is not None:
            return orjson.loads(a.json)
    return None


def _audit(request: web.Request, action: str, plan: Plan, extra: dict[str, Any]) -> None:
    detail = {"source": f"Patient/{plan.source}", "target": f"Patient/{plan.target}",
              "moved": len(plan.moved), **extra}
    for pid in (plan.source, plan.target):
        audit_read(request, action, resource_type="Patient", resource_id=pid,
                   patient=f"Patient/{pid}", outcome=200, detail=detail)


def _answer(text: str, plan: Plan, applied: list[Applied], current: Any) -> web.Response:
    params: list[dict[str, Any]] = [
        {"name": "outcome", "resource": outcome("information", "informational", text)},
        {"name": "source-patient", "valueReference": {"reference": f"Patient/{plan.source}"}},
        {"name": "target-patient", "valueReference": {"reference": f"Patient/{plan.target}"}},
    ]
    result = _json(applied, "Patient", plan.target) or current
    if result is not None:
        params.append({"name": "result", "resource": result})
    params += [{"name": "moved", "valueReference": {"reference": ref}} for ref in plan.moved]
    params += [{"name": "kept", "part": [{"name": "resource", "valueReference": {"reference": ref}},
                                         {"name": "why", "valueString": why}]}
               for ref, why in sorted(plan.kept.items())]
    record = next((orjson.loads(a.json) for a in applied
                   if a.resource_type == "Basic" and a.json is not None), None)
    if record is not None:
        params.append({"name": "record", "resource": record})
    return fhir_json({"resourceType": "Parameters", "parameter": params})


async def duplicates(request: web.Request) -> web.Response:
    set_action(request, "search")
    require_chart_read(user_of(request))
    edge = edge_of(request)
    count = edge.config.default_page_size
    for name, value in request.query.items():
        if name == "_count" and value.isdigit() and 1 <= int(value) <= edge.config.max_page_size:
            count = int(value)
        else:
            raise UnsupportedSearch(f"$duplicates parameter {name[:40]!r}={value[:20]!r} is "
                                    "not supported",
                                    hint=f"use _count (1-{edge.config.max_page_size})")
    patients = await call_on_new_connection(db_path(edge.config.data_dir),
                                            duplicate_candidates, MAX_CANDIDATES)
    pairs = duplicate_pairs(patients)
    params: list[dict[str, Any]] = [
        {"name": "pair", "part": [
            {"name": "patient", "valueReference": {"reference": f"Patient/{p.first}"}},
            {"name": "patient", "valueReference": {"reference": f"Patient/{p.second}"}},
            *({"name": "reason", "valueCode": r} for r in p.reasons)]}
        for p in pairs[:count]]
    params.append({"name": "total", "valueInteger": len(pairs)})
    if len(patients) >= MAX_CANDIDATES:
        params.append({"name": "outcome", "resource": outcome(
            "warning", "incomplete", f"only the first {MAX_CANDIDATES} candidate patients "
            "were compared; merge the pairs listed and ask again")})
    audit_read(request, "search", resource_type="Patient", resource_id=None, patient=None,
               outcome=200, detail={"operation": "$duplicates", "count": len(pairs)})
    return fhir_json({"resourceType": "Parameters", "parameter": params})


async def merge(request: web.Request) -> web.Response:
    set_action(request, "merge")
    _require_merger(user_of(request))
    asked_source, asked_target = await _pair(request)
    source, target = survivor(asked_source, asked_target)
    edge = edge_of(request)
    inputs: list[PairInputs] = []

    async def plan_once() -> Plan:
        got = await _read(edge, merge_inputs, source, target, MAX_REPOINT + 1)
        inputs.append(got)
        return plan_merge(source, target, got.patients, got.resources, got.record,
                          got.record_values)

    plan, applied = await _submit(request, plan_once, "Patient/$merge")
    text = f"Patient/{source} merged into Patient/{target}; {len(plan.moved)} resources " \
           "now name the surviving record"
    if source != asked_source:
        text += (f" (the record registered first survives, so Patient/{target} was kept "
                 "although it was named as the source)")
    _audit(request, "merge", plan, {"asked": f"Patient/{asked_source} into "
                                              f"Patient/{asked_target}"})
    current = inputs[-1].patients.get(target)
    return _answer(text, plan, applied, current.resource if current else None)


async def unmerge(request: web.Request) -> web.Response:
    set_action(request, "unmerge")
    _require_merger(user_of(request))
    a, b = await _pair(request)
    edge = edge_of(request)
    inputs: list[PairInputs] = []

    async def plan_once() -> Plan:
        source, target = a, b
        probe = await _read(edge, unmerge_inputs, a, b)
        pb = probe.patients.get(b)
        if pb is not None and pb.resource is not None and replaced_by(pb.resource) == a:
            source, target = b, a
            probe = await _read(edge, unmerge_inputs, b, a)
        inputs.append(probe)
        return plan_unmerge(source, target, probe.patients, probe.moved, probe.record,
                            probe.record_values)

    plan, applied = await _submit(request, plan_once, "Patient/$unmerge")
    text = (f"the merge of Patient/{plan.source} into Patient/{plan.target} is undone; "
            f"{len(plan.moved)} resources point back to Patient/{plan.source}")
    if plan.kept:
        text += f"; {len(plan.kept)} left as they are (see kept)"
    _audit(request, "unmerge", plan, {"kept": len(plan.kept)})
    current = inputs[-1].patients.get(plan.target)
    return _answer(text, plan, applied, current.resource if current else None)


__all__ = ["duplicates", "merge", "unmerge"]
