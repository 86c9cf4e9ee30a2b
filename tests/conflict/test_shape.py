"""Resource JSON → registers: choice groups, primitive extensions, refused shapes."""

from __future__ import annotations

from typing import Any

import pytest

from conflict import ShapeError, check_elements, split_resource
from sync_protocol.canonical import canonical_json

OBS: dict[str, Any] = {
    "resourceType": "Observation", "id": "o1", "meta": {"versionId": "3"},
    "status": "final", "code": {"text": "体温", "coding": [{"code": "8310-5"}]},
    "valueQuantity": {"value": 36.8, "unit": "℃"},
    "effectiveDateTime": "2024-05-01T09:00:00+09:00",
    "_status": {"extension": [{"url": "http://example.jp/x", "valueString": "確認"}]},
}


def test_split_groups_choice_members_and_keeps_extension_siblings() -> None:
    registers = split_resource(OBS)
    assert list(registers) == sorted(registers)
    assert set(registers) == {"_status", "code", "effective[x]", "status", "value[x]"}
    assert registers["value[x]"] == canonical_json({"valueQuantity": {"value": 36.8, "unit": "℃"}})
    assert registers["effective[x]"] == b'{"effectiveDateTime":"2024-05-01T09:00:00+09:00"}'
    assert registers["code"] == canonical_json(OBS["code"])
    assert b'"coding"' in registers["code"] and registers["code"].index(b"coding") < \
        registers["code"].index(b"text")  # canonical: sorted keys


def test_choice_extension_sibling_is_grouped_too() -> None:
    obs = {"resourceType": "Observation", "id": "o1", "valueString": "陰性",
           "_valueString": {"extension": [{"url": "u"}]}}
    registers = split_resource(obs)
    assert registers["value[x]"] == canonical_json({"valueString": "陰性"})
    assert registers["_value[x]"] == canonical_json({"_valueString": {"extension": [{"url": "u"}]}})
    check_elements("Observation", {**registers, "@deleted": b"false"})


@pytest.mark.parametrize(("kind", "first", "second"), [
    ("Observation", "valueQuantity", "valueString"),
    ("Observation", "effectiveDateTime", "effectivePeriod"),
    ("Condition", "onsetDateTime", "onsetString"),
    ("Condition", "abatementDateTime", "abatementBoolean"),
    ("AllergyIntolerance", "onsetAge", "onsetString"),
    ("MedicationRequest", "medicationCodeableConcept", "medicationReference"),
    ("MedicationRequest", "reportedBoolean", "reportedReference"),
    ("Patient", "deceasedBoolean", "deceasedDateTime"),
    ("Patient", "multipleBirthBoolean", "multipleBirthInteger"),
    ("Observation", "_valueString", "_valueCode"),
])
def test_two_members_of_one_choice_group_are_refused(kind: str, first: str, second: str
                                                     ) -> None:
    with pytest.raises(ShapeError, match="choice element"):
        split_resource({"resourceType": kind, "id": "x", first: "a", second: "b"})


def test_kinds_without_choice_rules_keep_members_as_registers() -> None:
    registers = split_resource({"resourceType": "Basic", "valueQuantity": {"value": 1},
                                "valueString": "x"})
    assert set(registers) == {"valueQuantity", "valueString"}
    # Encounter and DocumentReference have no choice groups at all.
    assert "periodStart" in split_resource({"resourceType": "Encounter", "periodStart": "x"})


@pytest.mark.parametrize("resource", [
    {"id": "x"},
    {"resourceType": "patient"},
    {"resourceType": "Patient", "Gender": "male"},
    {"resourceType": "Patient", "gender": None},
    {"resourceType": "Patient", "@deleted": True},
    {"resourceType": "Patient", "birth-date": "1970"},
    {"resourceType": "Patient", "gender": {1, 2}},
    ["resourceType", "Patient"],
])
def test_malformed_resources_are_refused(resource: Any) -> None:
    with pytest.raises(ShapeError):
        split_resource(resource)


def test_refusal_messages_carry_no_values() -> None:
    with pytest.raises(ShapeError) as caught:
        split_resource({"resourceType": "Observation", "valueString": "山田太郎",
                        "valueCode": "秘密"})
    assert "山田" not in str(caught.value) and "秘密" not in str(caught.value)


@pytest.mark.parametrize(("elements", "fault"), [
    ({"@deleted": b"maybe"}, "@deleted"),
    ({"valueQuantity": b'{"value":1}'}, "register of its own"),
    ({"value[x]": b'{"valueQuantity":1,"valueString":"a"}'}, "one member"),
    ({"value[x]": b'{"effectiveDateTime":"2024"}'}, "one member"),
    ({"value[x]": b'"x"'}, "one member"),
    ({"onset[x]": b'{"onsetString":"x"}'}, "no choice element"),
    ({"status": b'{ "a": 1 }'}, "canonical"),
    ({"status": b"null"}, "canonical"),
    ({"status": b"{"}, "JSON"),
    ({"id": b'"o2"'}, "register name"),
    ({"Status": b'"final"'}, "register name"),
])
def test_check_elements_refuses_what_split_resource_never_makes(
        elements: dict[str, bytes | None], fault: str) -> None:
    with pytest.raises(ShapeError, match=fault):
        check_elements("Observation", elements)


def test_check_elements_accepts_removals_and_split_output() -> None:
    check_elements("Observation", {**split_resource(OBS), "note": None, "@deleted": b"true"})
