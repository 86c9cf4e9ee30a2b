"""The resource types this edge serves, and which reference names a resource's patient.

One table, read by validation, search indexing, the API router and the
CapabilityStatement, so the list of what is supported lives in one place.
"""

from __future__ import annotations

from typing import Final

#: Chart types served at /fhir/{type}, in CapabilityStatement order.
SERVED_TYPES: Final[tuple[str, ...]] = (
    "Patient", "Encounter", "Observation", "Condition", "AllergyIntolerance",
    "MedicationRequest", "DocumentReference",
)
SERVED: Final = frozenset(SERVED_TYPES)

#: Element holding the reference to the resource's patient, per clinical type.
PATIENT_ELEMENT: Final[dict[str, str]] = {
    "Encounter": "subject",
    "Observation": "subject",
    "Condition": "subject",
    "AllergyIntolerance": "patient",
    "MedicationRequest": "subject",
    "DocumentReference": "subject",
}
