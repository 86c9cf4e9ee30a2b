"""Registers → resource JSON: round trips, and the bytes fast path equals the slow path."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from hypothesis import example, given

from conflict import materialize, materialize_json, merge_all, split_resource
from sync_protocol.canonical import canonical_json
from tests.conflict.practice import KINDS, PROPERTY, Site, edited, scripts, simulate

A = UUID(int=0xA)

PATIENT: dict[str, Any] = {
    "resourceType": "Patient", "id": "pat-1",
    "identifier": [{"system": "urn:oid:1.2.392.100495.20.3.51", "value": "12345678"}],
    "name": [{"family": "山田", "given": ["太郎"], "extension": [{"url": "kana",
                                                               "valueString": "ヤマダ"}]}],
    "gender": "male", "birthDate": "1970-01-01",
    "_birthDate": {"extension": [{
        "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
        "valueDateTime": "1970-01-01T04:00:00+09:00",
    }]},
    "deceasedBoolean": False, "multipleBirthInteger": 2, "active": True,
}


def test_round_trip_of_a_resource_with_choices_and_extensions() -> None:
    site = Site(A)
    site.save(PATIENT, now=1)
    view = site.view(("Patient", "pat-1"))
    assert view == PATIENT
    assert list(view) == sorted(view)
    state = site.states[("Patient", "pat-1")]
    assert materialize_json(state) == canonical_json(PATIENT)
    assert split_resource(view) == split_resource(PATIENT)


def test_meta_is_not_carried_and_removed_elements_are_absent() -> None:
    site = Site(A)
    site.save({**PATIENT, "meta": {"versionId": "7"}}, now=1)
    smaller = {k: v for k, v in PATIENT.items() if k not in ("_birthDate", "deceasedBoolean")}
    site.save(smaller, now=2)
    state = site.states[("Patient", "pat-1")]
    assert state.registers["_birthDate"].heads[0].value is None
    assert materialize(state) == smaller
    assert materialize_json(state) == canonical_json(smaller)


def test_choice_type_can_change() -> None:
    site = Site(A)
    site.save({**PATIENT, "deceasedBoolean": False}, now=1)
    without = {k: v for k, v in PATIENT.items() if k != "deceasedBoolean"}
    site.save({**without, "deceasedDateTime": "2024-01-01"}, now=2)
    view = site.view(("Patient", "pat-1"))
    assert view is not None
    assert view["deceasedDateTime"] == "2024-01-01" and "deceasedBoolean" not in view


def test_every_catalog_edit_round_trips() -> None:
    for kind, (_, slots) in KINDS.items():
        for slot in range(len(slots)):
            for option in range(len(slots[slot][1])):
                resource = edited((kind, "r1"), None, ((slot, option),))
                site = Site(A)
                site.save(resource, now=1)
                assert site.view((kind, "r1")) == resource, (kind, slot, option)


def test_deleted_resources_read_as_none() -> None:
    site = Site(A)
    site.save(PATIENT, now=1)
    site.delete(("Patient", "pat-1"), now=2)
    state = site.states[("Patient", "pat-1")]
    assert materialize(state) is None and materialize_json(state) is None


@PROPERTY
@given(script=scripts())
@example(script=((1, 2), (1,), (("edit", 0, 0, 0, ((0, 3),), 1), ("edit", 1, 0, 1, ((0, 2),), 1),
                               ("sync", 0, 9))))
def test_fast_path_equals_canonical_json_of_materialize(script: object) -> None:
    for state in merge_all(simulate(script).changes).values():
        slow = materialize(state)
        fast = materialize_json(state)
        assert fast == (None if slow is None else canonical_json(slow))
        if slow is not None:
            assert materialize(state) == slow  # pure: same answer twice
