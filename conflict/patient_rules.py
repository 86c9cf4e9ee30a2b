"""Rules that span resources of one patient: "no known allergies" never hides an allergy.

An AllergyIntolerance may assert an absence ("no known allergy", NKA) instead of
an allergy.  Two sites can record, offline, an NKA at one and a penicillin allergy
at the other; both are kept (they are different resources, so they union by id),
and `cross_resource_conflicts` raises a conflict on the NKA for as long as both
are current, so the chart never reads "no allergies" without a warning.

Which codes assert an absence, and what they cover:

    SNOMED CT 716186003   No known allergy                    every category
    SNOMED CT 409137002   No known drug allergy               medication
    SNOMED CT 429625007   No known food allergy               food
    SNOMED CT 428607008   No known environmental allergy      environment
    IPS absent-unknown    no-known-allergies, no-known-medication-allergies,
                          no-known-food-allergies, no-known-environmental-allergies
    code.text             "NKA", "NKDA", "アレルギーなし", "既知のアレルギーなし",
                          "薬剤アレルギーなし" (JP clinics often record it as text)

An allergy counts against an NKA when it is not deleted, its clinical status is
absent or active, its verification status is not refuted or entered-in-error,
it is not itself an absence, and its category (absent: any) overlaps the NKA's.
The NKA's own status matters the same way: an inactive or refuted NKA asserts
nothing.  Resolving is a clinical act: mark the NKA entered-in-error (or
inactive), or refute the allergy.

Pure and deterministic: the records depend only on the set of states given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from conflict.conflicts import ConflictRecord
from conflict.materialize import materialize
from conflict.state import ResourceState, shown

SNOMED: Final = "http://snomed.info/sct"
IPS_ABSENT: Final = "http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips"
_ALL: Final = frozenset({"food", "medication", "environment", "biologic"})

#: (system, code) → the categories the absence covers.
NKA_CODES: Final[Mapping[tuple[str, str], frozenset[str]]] = {
    (SNOMED, "716186003"): _ALL,
    (SNOMED, "409137002"): frozenset({"medication"}),
    (SNOMED, "429625007"): frozenset({"food"}),
    (SNOMED, "428607008"): frozenset({"environment"}),
    (IPS_ABSENT, "no-known-allergies"): _ALL,
    (IPS_ABSENT, "no-known-medication-allergies"): frozenset({"medication"}),
    (IPS_ABSENT, "no-known-food-allergies"): frozenset({"food"}),
    (IPS_ABSENT, "no-known-environmental-allergies"): frozenset({"environment"}),
}
#: code.text (stripped, case-folded) → the categories the absence covers.
NKA_TEXTS: Final[Mapping[str, frozenset[str]]] = {
    "nka": _ALL,
    "no known allergies": _ALL,
    "no known allergy": _ALL,
    "アレルギーなし": _ALL,
    "既知のアレルギーなし": _ALL,
    "nkda": frozenset({"medication"}),
    "薬剤アレルギーなし": frozenset({"medication"}),
}
_NOT_CURRENT: Final = frozenset({"inactive", "resolved", "refuted", "entered-in-error"})
RULE: Final = "no-known-allergies"


def absence_scope(resource: Mapping[str, Any]) -> frozenset[str] | None:
    """The categories an NKA resource says are free of allergies; None if not an NKA."""
    code = resource.get("code")
    if not isinstance(code, dict):
        return None
    scopes: set[str] = set()
    found = False
    for coding in code.get("coding") or ():
        if isinstance(coding, dict):
            scope = NKA_CODES.get((str(coding.get("system")), str(coding.get("code"))))
            if scope is not None:
                found = True
                scopes |= scope
    text = code.get("text")
    if isinstance(text, str) and text.strip().casefold() in NKA_TEXTS:
        found = True
        scopes |= NKA_TEXTS[text.strip().casefold()]
    return frozenset(scopes) if found else None


def _codes(resource: Mapping[str, Any], element: str) -> set[str]:
    value = resource.get(element)
    if not isinstance(value, dict):
        return set()
    return {str(c.get("code")) for c in value.get("coding") or () if isinstance(c, dict)}


def is_current(resource: Mapping[str, Any]) -> bool:
    """Not inactive, resolved, refuted or entered-in-error (absent statuses: current)."""
    statuses = _codes(resource, "clinicalStatus") | _codes(resource, "verificationStatus")
    return not (statuses & _NOT_CURRENT)


def _categories(resource: Mapping[str, Any]) -> frozenset[str]:
    category = resource.get("category")
    if not isinstance(category, list) or not category:
        return _ALL
    return frozenset(str(c) for c in category) & _ALL or _ALL


def _patient(resource: Mapping[str, Any]) -> str | None:
    patient = resource.get("patient")
    ref = patient.get("reference") if isinstance(patient, dict) else None
    return ref if isinstance(ref, str) else None


def cross_resource_conflicts(states: Iterable[ResourceState]) -> tuple[ConflictRecord, ...]:
    """The "no known allergies" conflicts among `states` (any kinds; others ignored).

    One record per current NKA that a current allergy of the same patient
    contradicts, on the NKA's `code` register, with rule "no-known-allergies" and
    `related` naming the allergies ("AllergyIntolerance/<id>", sorted).  Ordered by
    NKA id; the same for any order of `states`.
    """
    absences: dict[str, tuple[str, str, frozenset[str], ResourceState]] = {}
    allergies: list[tuple[str, str, frozenset[str]]] = []
    for state in states:
        if state.resource_type != "AllergyIntolerance":
            continue
        resource = materialize(state)
        if resource is None or not is_current(resource):
            continue
        patient = _patient(resource)
        if patient is None:
            continue
        scope = absence_scope(resource)
        if scope is not None:
            absences[state.resource_id] = (state.resource_id, patient, scope, state)
        else:
            allergies.append((state.resource_id, patient, _categories(resource)))
    found: list[ConflictRecord] = []
    for rid, patient, scope, state in sorted(absences.values(), key=lambda a: a[0]):
        related = tuple(sorted({f"AllergyIntolerance/{aid}" for aid, p, cats in allergies
                                if p == patient and cats & scope}))
        head = shown(state, "code")
        reg = state.registers.get("code")
        if not related or head is None or reg is None:
            continue
        found.append(ConflictRecord("AllergyIntolerance", rid, "code", reg.heads, head,
                                    RULE, None, related))
    return tuple(found)
