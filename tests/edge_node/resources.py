"""Sample resources for the edge tests (fictional patients)."""

from __future__ import annotations

from typing import Any

OID = "urn:oid:1.2.392.100495.20.3.51"


def patient(family: str = "Yamada", given: str = "Taro", birth: str = "1980-04-01",
            mrn: str = "12345", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": family, "given": [given]}],
            "birthDate": birth, "identifier": [{"system": OID, "value": mrn}], **extra}


def observation(patient_id: str, value: float = 72.0) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": f"Patient/{patient_id}"},
            "valueQuantity": {"value": value, "unit": "/min"}}


CORRECTION_REASON = "http://chartsync.example/fhir/StructureDefinition/correction-reason"


def corrected(resource: dict[str, Any], reason: str = "re-measured") -> dict[str, Any]:
    """`resource` as a correction of a confirmed record: status amended, with a reason."""
    return {**resource, "status": "amended",
            "extension": [{"url": CORRECTION_REASON, "valueString": reason}]}


def allergy(patient_id: str) -> dict[str, Any]:
    return {"resourceType": "AllergyIntolerance", "patient": {"reference": f"Patient/{patient_id}"},
            "code": {"text": "penicillin"}, "criticality": "high"}


def condition(patient_id: str) -> dict[str, Any]:
    return {"resourceType": "Condition", "subject": {"reference": f"Patient/{patient_id}"},
            "code": {"text": "hypertension"}}


def encounter(patient_id: str) -> dict[str, Any]:
    return {"resourceType": "Encounter", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                      "code": "AMB"}, "subject": {"reference": f"Patient/{patient_id}"}}


def medication_request(patient_id: str) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "subject": {"reference": f"Patient/{patient_id}"},
            "medicationCodeableConcept": {"text": "amlodipine 5 mg"}}


def document_reference(patient_id: str) -> dict[str, Any]:
    return {"resourceType": "DocumentReference", "status": "current",
            "subject": {"reference": f"Patient/{patient_id}"},
            "content": [{"attachment": {"contentType": "text/plain", "data": "aGVsbG8="}}]}


CLINICAL = (observation, allergy, condition, encounter, medication_request, document_reference)
