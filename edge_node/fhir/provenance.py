"""Provenance of each stored version: who wrote it, at which site, from which device, when.

Built from the history row on request (not stored as a resource of its own).  For an
author version: the user (author), the site the change came from (custodian; the
origin is the site whose key signed the batch, never a client header), the device
when known (enterer), the confirming user of a correction (verifier; a resolution's
author is the resolving clinician), the clinical time (`occurredDateTime`, the author's clock) and
when this site recorded it; its id is derived from the change's dot, the same at
every site.  For a view version (this site's merged view) the one agent is this site
assembling concurrent versions, named by no user; its id is `h<history row number>`,
stable for the life of the database.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from conflict.confirmation import CORRECTION_CONFIRMER
from edge_node.fhir.instant import iso_instant
from edge_node.fhir.version import VIEW, Version

_PARTICIPANT: Final = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
_OPERATION: Final = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"


def _agent(code: str, system: str, value: str) -> dict[str, Any]:
    return {"type": {"coding": [{"system": _PARTICIPANT, "code": code}]},
            "who": {"identifier": {"system": system, "value": value}}}


def _confirmer(body: bytes | None) -> str | None:
    """The user who confirmed a correction this version carries (`conflict.confirmation`)."""
    if body is None or CORRECTION_CONFIRMER.encode() not in body:
        return None
    for ext in orjson.loads(body).get("extension", ()):
        if isinstance(ext, dict) and ext.get("url") == CORRECTION_CONFIRMER:
            value = ext.get("valueString")
            return value if isinstance(value, str) else None
    return None


def provenance(v: Version) -> dict[str, Any]:
    """The Provenance resource of history version `v`."""
    target = [{"reference": f"{v.resource_type}/{v.resource_id}/_history/{v.vid}"}]
    if v.kind == VIEW:
        return {
            "resourceType": "Provenance", "id": f"h{v.hid}", "target": target,
            "recorded": iso_instant(v.recorded_ms),
            "activity": {"coding": [{"system": _OPERATION, "code": "UPDATE"}],
                         "text": "this site's merged view of concurrent versions"},
            "agent": [{"type": {"coding": [{"system": _PARTICIPANT, "code": "assembler"}]},
                       "who": {"display": "chartsync merge at this site"}}],
        }
    activity = "DELETE" if v.deleted else ("CREATE" if v.version == 1 else "UPDATE")
    agents = [_agent("author", "urn:chartsync:user", v.user),
              _agent("custodian", "urn:chartsync:site", v.origin)]
    if v.device:
        agents.append(_agent("enterer", "urn:chartsync:device", v.device))
    confirmer = _confirmer(v.json)
    if confirmer is not None:
        agents.append(_agent("verifier", "urn:chartsync:user", confirmer))
    return {
        "resourceType": "Provenance",
        "id": f"a-{v.vid}" if "-" in v.vid else f"h{v.hid}",
        "target": target,
        "occurredDateTime": iso_instant(v.hlc >> 16),
        "recorded": iso_instant(v.recorded_ms),
        "activity": {"coding": [{"system": _OPERATION, "code": activity}]},
        "agent": agents,
        "extension": [{"url": "urn:chartsync:change",
                       "valueString": f"{v.origin}:{v.seq} hlc={v.hlc}"}],
    }
