"""Conflicts that span resources of one patient, evaluated when an allergy is read.

A "no known allergies" AllergyIntolerance contradicted by a current allergy of the
same patient (`conflict.cross_resource_conflicts`) is not a conflict of either
resource's registers, so it is not in the `conflicts` table.  It is evaluated
here, at read time, from the patient's allergy states:

* reading or searching AllergyIntolerance shows the NKA with the conflict tag
  (`meta.tag` {urn:chartsync:tag, conflict}), like any record in conflict;
* `GET /fhir/AllergyIntolerance/{id}/$conflicts` lists it, naming the allergies.

Only a current NKA costs a query (one indexed lookup of the patient's allergies,
at most `MAX_ALLERGIES` of them); every other resource is served unchanged.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from conflict import ConflictRecord, cross_resource_conflicts
from conflict.patient_rules import absence_scope, is_current
from edge_node.store.apply import CONFLICT_TAG_SYSTEM
from edge_node.store.reads import Reader

#: Allergies of one patient read to evaluate an NKA (a chart has a handful).
MAX_ALLERGIES: Final = 1000
_KIND: Final = "AllergyIntolerance"
_TAG: Final = {"system": CONFLICT_TAG_SYSTEM, "code": "conflict",
               "display": "open conflict: \"no known allergies\" while an allergy is "
                          "recorded; a clinician must review this record"}


def _nka_patient(resource: Any) -> str | None:
    """The patient of a current NKA resource; None for anything else."""
    if not isinstance(resource, dict) or resource.get("resourceType") != _KIND:
        return None
    if absence_scope(resource) is None or not is_current(resource):
        return None
    patient = resource.get("patient")
    ref = patient.get("reference") if isinstance(patient, dict) else None
    return ref if isinstance(ref, str) and ref.startswith("Patient/") else None


async def records_for(reader: Reader, rtype: str, rid: str, json: bytes | None
                      ) -> tuple[ConflictRecord, ...]:
    """Cross-resource conflict records of the resource `rtype/rid` stored as `json`."""
    if rtype != _KIND or json is None:
        return ()
    patient = _nka_patient(orjson.loads(json))
    if patient is None:
        return ()
    states = await reader.patient_states(_KIND, patient, MAX_ALLERGIES)
    return tuple(r for r in cross_resource_conflicts(states) if r.resource_id == rid)


def _tagged(json: bytes) -> bytes:
    resource = orjson.loads(json)
    meta = resource.setdefault("meta", {})
    tags = meta.setdefault("tag", [])
    if not any(t.get("system") == CONFLICT_TAG_SYSTEM and t.get("code") == "conflict"
               for t in tags if isinstance(t, dict)):
        tags.append(_TAG)
    return orjson.dumps(resource)


async def flag_one(reader: Reader, rtype: str, rid: str, json: bytes) -> bytes:
    """`json` with the conflict tag if an NKA of it is contradicted (see module docstring)."""
    if await records_for(reader, rtype, rid, json):
        return _tagged(json)
    return json


async def flag_rows(reader: Reader, rtype: str, rows: list[tuple[str, bytes]]
                    ) -> list[tuple[str, bytes]]:
    """Search rows (id, json), each flagged like `flag_one`."""
    if rtype != _KIND:
        return rows
    return [(rid, await flag_one(reader, rtype, rid, js)) for rid, js in rows]


def parameter(record: ConflictRecord) -> dict[str, Any]:
    """One `conflict` parameter of `$conflicts` for a cross-resource record."""
    parts: list[dict[str, Any]] = [
        {"name": "element", "valueString": record.register},
        {"name": "rule", "valueString": record.rule},
    ]
    parts += [{"name": "related", "valueReference": {"reference": ref}}
              for ref in record.related]
    return {"name": "conflict", "part": parts}
