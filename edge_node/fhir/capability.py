"""The CapabilityStatement: exactly what this edge serves, built from the same tables
the router, validation and search use (so it cannot drift from them)."""

from __future__ import annotations

from typing import Any

from edge_node.fhir.search import SEARCH_PARAMS
from edge_node.fhir.types import SERVED_TYPES
from sync_protocol.version import SOFTWARE_VERSION

_INTERACTIONS = ("read", "vread", "update", "delete", "history-instance", "create",
                 "search-type")
_TYPES = {"token": "token", "string": "string", "date": "date", "reference": "reference"}
#: Type-level operations on Patient (`api.patient_merge`).
_PATIENT_OPERATIONS = (
    {"name": "duplicates", "definition": "urn:chartsync:operation:duplicates",
     "documentation": "GET: likely duplicate pairs (same identifier, or same kana/kanji name "
                      "and birth date), identical at every site"},
    {"name": "merge", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-merge",
     "documentation": "POST Parameters source-patient, target-patient: the record "
                      "registered first survives; undo with $unmerge"},
    {"name": "unmerge", "definition": "urn:chartsync:operation:unmerge",
     "documentation": "POST Parameters source-patient, target-patient: undoes a merge"},
)


def capability_statement(*, now_iso: str, require_if_match: bool) -> dict[str, Any]:
    """The CapabilityStatement at GET /fhir/metadata."""
    resources: list[dict[str, Any]] = []
    for rtype in SERVED_TYPES:
        params = [{"name": n, "type": _TYPES[k]} for n, k in SEARCH_PARAMS[rtype].items()]
        params += [{"name": "_lastUpdated", "type": "date"}, {"name": "_count", "type": "number"},
                   {"name": "_tag", "type": "token"}]
        resources.append({
            "type": rtype,
            "interaction": [{"code": c} for c in _INTERACTIONS],
            "versioning": "versioned-update" if require_if_match else "versioned",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": False,
            "conditionalUpdate": False,
            "conditionalDelete": "not-supported",
            "searchParam": params,
            "operation": [
                {"name": "conflicts", "definition": "urn:chartsync:operation:conflicts",
                 "documentation": "GET: every value kept for each element in conflict"},
                {"name": "resolve", "definition": "urn:chartsync:operation:resolve",
                 "documentation": "POST the resource as it should read: closes its "
                                  "conflicts at every site"},
                *(_PATIENT_OPERATIONS if rtype == "Patient" else ())],
        })
    resources.append({
        "type": "Provenance",
        "interaction": [{"code": "search-type"}],
        "searchParam": [{"name": "target", "type": "reference"}],
    })
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": now_iso,
        "kind": "instance",
        "software": {"name": "chartsync edge", "version": SOFTWARE_VERSION},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [{
            "mode": "server",
            "security": {"service": [{"text": "Bearer token per staff account"}]},
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"}],
        }],
    }
