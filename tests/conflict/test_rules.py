"""The rules table: well-formed, covering the chart kinds, and readable as data."""

from __future__ import annotations

import re

import pytest

from conflict import NO_RULES, RULES, SUPPORTED_TYPES, rules_for
from sync_protocol.models import DELETED, REGISTER_PATTERN

CHART_KINDS = {"Patient", "Encounter", "Observation", "Condition", "AllergyIntolerance",
               "MedicationRequest", "DocumentReference"}


def test_the_chart_kinds_are_supported() -> None:
    assert CHART_KINDS <= SUPPORTED_TYPES
    assert rules_for("Basic") is NO_RULES
    assert not NO_RULES.is_guarded(DELETED) and NO_RULES.register_of("valueString") == "valueString"


@pytest.mark.parametrize("kind", sorted(RULES))
def test_table_entries_are_well_formed(kind: str) -> None:
    rules = RULES[kind]
    assert rules.is_guarded(DELETED), "an edit concurrent with a delete must be flagged"
    groups = {f"{base}[x]" for base in rules.choices}
    coupled = {n for group in rules.coupled for n in group}
    for name in rules.guarded | coupled | set(rules.precedence):
        assert re.fullmatch(REGISTER_PATTERN, name), name
        if name.endswith("[x]"):
            assert name in groups, f"{kind}.{name} is not a declared choice group"
        else:
            assert rules.register_of(name) == name, f"{kind}.{name} is a choice member"
    for i, group in enumerate(rules.coupled):
        for other in rules.coupled[i + 1:]:
            assert group.isdisjoint(other), "a register belongs to one coupled group"
    for values in rules.precedence.values():
        assert len(set(values)) == len(values)


@pytest.mark.parametrize(("kind", "key", "register"), [
    ("Observation", "valueQuantity", "value[x]"),
    ("Observation", "_valueString", "_value[x]"),
    ("Observation", "value", "value"),
    ("Observation", "valueset", "valueset"),
    ("Observation", "effectiveInstant", "effective[x]"),
    ("Observation", "status", "status"),
    ("Patient", "multipleBirthInteger", "multipleBirth[x]"),
    ("Patient", "deceasedDateTime", "deceased[x]"),
    ("MedicationRequest", "medicationReference", "medication[x]"),
    ("MedicationRequest", "reportedBoolean", "reported[x]"),
    ("Condition", "abatementAge", "abatement[x]"),
    ("AllergyIntolerance", "onsetPeriod", "onset[x]"),
    ("Encounter", "periodStart", "periodStart"),
])
def test_register_of(kind: str, key: str, register: str) -> None:
    assert rules_for(kind).register_of(key) == register


def test_extension_siblings_follow_their_element() -> None:
    patient = rules_for("Patient")
    assert patient.is_guarded("_birthDate") and patient.is_guarded("birthDate")
    assert not patient.is_guarded("_photo")
    assert rules_for("Observation").is_guarded("_value[x]")
