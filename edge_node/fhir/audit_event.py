"""Audit rows exported as FHIR AuditEvent resources: who read or changed which chart, when."""

from __future__ import annotations

from typing import Any, Final

import orjson

from edge_node.fhir.instant import iso_instant

_ACTIONS: Final = {"create": "C", "read": "R", "vread": "R", "search": "E", "history": "R",
                   "update": "U", "delete": "D"}
_INTERACTION: Final = "http://hl7.org/fhir/restful-interaction"
_REST: Final = {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
                "code": "rest", "display": "RESTful Operation"}
#: Account changes (`store.account_events`): DICOM's security-administration event.
_ACCOUNT: Final = {"system": "http://dicom.nema.org/resources/ontology/DCM",
                   "code": "110137", "display": "User Security Attributes Changed"}
_ACCOUNT_ACTIONS: Final = {"account-add": "C"}


def _outcome(status: int) -> str:
    return "0" if status < 400 else ("4" if status < 500 else "8")


def audit_event(row: tuple[Any, ...], site_id: str) -> dict[str, Any]:
    """AuditEvent of an audit row (seq, at_ms, user, role, action, type, id, patient,
    outcome, client, detail)."""
    seq, at_ms, user, role, action, rtype, rid, patient, status, client, detail = row
    details = orjson.loads(detail) if detail else {}
    account = action.startswith("account-")
    entities: list[dict[str, Any]] = []
    if account:
        entities.append({"what": {"identifier": {"system": "urn:chartsync:user",
                                                 "value": details.get("account", "")}},
                         "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role",
                                  "code": "11", "display": "Security User Entity"}})
    if rtype and rid:
        entities.append({"what": {"reference": f"{rtype}/{rid}"}})
    elif rtype:
        entities.append({"what": {"type": rtype}})
    if patient:
        entities.append({"what": {"reference": patient},
                         "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role",
                                  "code": "1", "display": "Patient"}})
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": f"a{seq}",
        "type": _ACCOUNT if account else _REST,
        "subtype": [{"system": "urn:chartsync:account-change" if account else _INTERACTION,
                     "code": action}],
        "action": _ACCOUNT_ACTIONS.get(action, "U") if account else _ACTIONS.get(action, "E"),
        "recorded": iso_instant(int(at_ms)),
        "outcome": _outcome(int(status)),
        "outcomeDesc": f"HTTP {status}",
        "agent": [{"who": {"identifier": {"system": "urn:chartsync:user", "value": user}},
                   "role": [{"text": role}], "requestor": True,
                   "network": {"address": client, "type": "2"}}],
        "source": {"observer": {"identifier": {"system": "urn:chartsync:site",
                                               "value": site_id}}},
    }
    if entities:
        event["entity"] = entities
    if details:
        event["extension"] = [{"url": "urn:chartsync:audit-detail",
                               "valueString": orjson.dumps(details).decode()}]
    return event
