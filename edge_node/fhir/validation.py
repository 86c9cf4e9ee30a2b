"""Validation of incoming resources: our own pydantic models of the served subset.

Checks what the edge relies on and what a chart must hold to be safe to store: the
resourceType, the id grammar, the elements each type requires (Observation
status+code, AllergyIntolerance patient, Condition subject, MedicationRequest
status+intent+subject+medication[x], Encounter status+class,
DocumentReference status+content), the required status codes, and the value
types of every element the edge indexes for search.  Everything else is kept
as sent (`extra="allow"`) and checked for register form by `conflict.plan_set` when
the writer plans the change (same 422, nothing written).

Why not `fhir.resources`: measured on this machine,
its R4B models parse a Patient or an Observation 4-5x slower than these (130 vs 33 µs and
210 vs 41 µs, ours then including the register split) and do not
check required value sets either, so they would cost most of
the write budget for little more safety.

`validate` raises `InvalidResource` naming the element path and the rule,
never the value (chart data stays out of messages and logs).
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge_node.errors import InvalidResource, UnknownType
from edge_node.fhir.types import SERVED
from sync_protocol.models import RESOURCE_ID_PATTERN

_OPEN = ConfigDict(extra="allow", populate_by_name=True)
Id = Annotated[str, Field(pattern=RESOURCE_ID_PATTERN)]
Date = Annotated[str, Field(pattern=r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$")]


class Reference(BaseModel):
    model_config = _OPEN
    reference: str | None = None


class Coding(BaseModel):
    model_config = _OPEN
    system: str | None = None
    code: str | None = None
    display: str | None = None


class CodeableConcept(BaseModel):
    model_config = _OPEN
    coding: list[Coding] | None = None
    text: str | None = None


class Identifier(BaseModel):
    model_config = _OPEN
    system: str | None = None
    value: str | None = None


class HumanName(BaseModel):
    model_config = _OPEN
    family: str | None = None
    given: list[str] | None = None
    text: str | None = None


class Attachment(BaseModel):
    model_config = _OPEN
    contentType: str | None = None
    url: str | None = None
    data: str | None = None


class Content(BaseModel):
    model_config = _OPEN
    attachment: Attachment


class _Resource(BaseModel):
    model_config = _OPEN
    resourceType: str
    id: Id | None = None
    meta: dict[str, Any] | None = None


class Patient(_Resource):
    identifier: list[Identifier] | None = None
    name: list[HumanName] | None = None
    birthDate: Date | None = None
    gender: Literal["male", "female", "other", "unknown"] | None = None


class Encounter(_Resource):
    status: Literal["planned", "arrived", "triaged", "in-progress", "onleave", "finished",
                    "cancelled", "entered-in-error", "unknown"]
    class_: Coding = Field(alias="class")
    subject: Reference | None = None


class Observation(_Resource):
    status: Literal["registered", "preliminary", "final", "amended", "corrected",
                    "cancelled", "entered-in-error", "unknown"]
    code: CodeableConcept
    subject: Reference | None = None


class Condition(_Resource):
    subject: Reference
    code: CodeableConcept | None = None


class AllergyIntolerance(_Resource):
    patient: Reference
    code: CodeableConcept | None = None
    criticality: Literal["low", "high", "unable-to-assess"] | None = None


class MedicationRequest(_Resource):
    status: Literal["active", "on-hold", "cancelled", "completed", "entered-in-error",
                    "stopped", "draft", "unknown"]
    intent: Literal["proposal", "plan", "order", "original-order", "reflex-order",
                    "filler-order", "instance-order", "option"]
    subject: Reference
    medicationCodeableConcept: CodeableConcept | None = None
    medicationReference: Reference | None = None

    @model_validator(mode="after")
    def _one_medication(self) -> MedicationRequest:
        if (self.medicationCodeableConcept is None) == (self.medicationReference is None):
            raise ValueError("exactly one of medicationCodeableConcept or medicationReference "
                             "is required (medication[x])")
        return self


class DocumentReference(_Resource):
    status: Literal["current", "superseded", "entered-in-error"]
    content: Annotated[list[Content], Field(min_length=1)]
    subject: Reference | None = None


MODELS: Final[dict[str, type[_Resource]]] = {
    m.__name__: m for m in (Patient, Encounter, Observation, Condition, AllergyIntolerance,
                            MedicationRequest, DocumentReference)
}
assert set(MODELS) == SERVED

#: Elements that must reference a Patient, per type.
_PATIENT_ONLY: Final = {"AllergyIntolerance": "patient"}


def _describe(exc: ValidationError, rtype: str) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:5]:
        where = ".".join(str(p) for p in err["loc"] if p != "class_") or "resource"
        if err["loc"] and err["loc"][0] == "class_":
            where = "class" + where[len("class"):] if where.startswith("class") else "class"
        parts.append(f"{rtype}.{where}: {err['msg']}")
    return "; ".join(parts)


def check_type(resource_type: str) -> None:
    """Raise `UnknownType` unless this edge serves `resource_type`."""
    if resource_type not in SERVED:
        raise UnknownType(
            f"resource type {resource_type[:64]!r} is not served by this edge",
            hint="served types: " + ", ".join(sorted(SERVED)) + "; see GET /fhir/metadata",
        )


def validate(resource: Any, expected_type: str) -> dict[str, Any]:
    """Check `resource` (parsed JSON) as a `expected_type`; return it unchanged.

    Raises `InvalidResource` (422) for a body that is not a resource of that
    type, fails a model rule, or has no register form (nulls, bad keys).
    """
    if not isinstance(resource, dict):
        raise InvalidResource("the body is not a JSON object",
                              hint="send one FHIR resource as a JSON object")
    rtype = resource.get("resourceType")
    if rtype != expected_type:
        raise InvalidResource(
            f"resourceType is {str(rtype)[:64]!r}, the URL names {expected_type}",
            hint=f"send a {expected_type} to this URL",
        )
    model = MODELS[expected_type]
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        raise InvalidResource(_describe(exc, expected_type),
                              hint="fix the listed elements and send it again") from exc
    element = _PATIENT_ONLY.get(expected_type)
    if element is not None:
        ref = resource[element].get("reference")
        if not isinstance(ref, str) or "Patient/" not in ref:
            raise InvalidResource(f"{expected_type}.{element} must reference a Patient",
                                  hint='use {"reference": "Patient/<id>"}')
    # The register form (no nulls, element names, one member per choice group) is
    # checked by `conflict.plan_set` in the writer, which refuses that one request
    # with the same 422: checking it here too cost ~20% of a create.
    return resource
