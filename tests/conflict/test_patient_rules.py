""""No known allergies" never hides an allergy recorded elsewhere."""

from __future__ import annotations

import random
from typing import Any
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from conflict import ResourceState, cross_resource_conflicts, merge_all
from conflict.patient_rules import NKA_CODES, SNOMED, absence_scope
from tests.conflict.practice import PROPERTY, Site


def cc(code: str, system: str = "http://terminology.hl7.org/CodeSystem/x") -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def allergy(rid: str, code: dict[str, Any], patient: str = "Patient/p1",
            **extra: Any) -> dict[str, Any]:
    return {"resourceType": "AllergyIntolerance", "id": rid, "patient": {"reference": patient},
            "code": code, **extra}


NKA = cc("716186003", SNOMED)
NKDA = cc("409137002", SNOMED)
PENICILLIN = {"text": "ペニシリン"}


def states_of(*resources: dict[str, Any]) -> list[ResourceState]:
    site = Site(UUID(int=7))
    for i, resource in enumerate(resources):
        site.save(resource, now=10 + i)
    return list(site.states.values())


def test_nka_and_an_allergy_of_the_same_patient_conflict() -> None:
    [record] = cross_resource_conflicts(states_of(allergy("n1", NKA),
                                                  allergy("a1", PENICILLIN)))
    assert (record.resource_type, record.resource_id, record.register) == (
        "AllergyIntolerance", "n1", "code")
    assert record.rule == "no-known-allergies"
    assert record.related == ("AllergyIntolerance/a1",)
    assert record.shown in record.heads


def test_nothing_to_flag_without_a_current_contradiction() -> None:
    assert cross_resource_conflicts(states_of(allergy("n1", NKA))) == ()
    assert cross_resource_conflicts(states_of(
        allergy("n1", NKA), allergy("a1", PENICILLIN, patient="Patient/p2"))) == ()
    assert cross_resource_conflicts(states_of(
        allergy("n1", NKA), allergy("a1", PENICILLIN, clinicalStatus=cc("resolved")))) == ()
    assert cross_resource_conflicts(states_of(
        allergy("n1", NKA, verificationStatus=cc("entered-in-error")),
        allergy("a1", PENICILLIN))) == ()
    # A drug-only absence and a food allergy do not contradict each other.
    assert cross_resource_conflicts(states_of(
        allergy("n1", NKDA), allergy("a1", {"text": "そば"}, category=["food"]))) == ()


def test_a_deleted_allergy_no_longer_contradicts() -> None:
    site = Site(UUID(int=7))
    site.save(allergy("n1", NKA), now=10)
    site.save(allergy("a1", PENICILLIN), now=11)
    site.delete(("AllergyIntolerance", "a1"), now=12)
    assert cross_resource_conflicts(site.states.values()) == ()


def test_absence_codes_and_texts() -> None:
    for (system, code), scope in NKA_CODES.items():
        assert absence_scope({"code": cc(code, system)}) == scope
    assert absence_scope({"code": {"text": " アレルギーなし "}})
    assert absence_scope({"code": {"text": "NKDA"}}) == frozenset({"medication"})
    assert absence_scope({"code": PENICILLIN}) is None
    assert absence_scope({}) is None


def test_an_nka_made_offline_while_an_allergy_is_recorded_elsewhere() -> None:
    a, b = Site(UUID(int=1)), Site(UUID(int=2))
    changes = [a.save(allergy("n1", NKA), now=10), b.save(allergy("a1", PENICILLIN), now=10)]
    assert cross_resource_conflicts(a.states.values()) == ()  # each site alone: nothing
    merged = merge_all(changes)
    [record] = cross_resource_conflicts(merged.values())
    assert record.related == ("AllergyIntolerance/a1",)


@PROPERTY
@given(kinds=st.lists(st.sampled_from(["nka", "nkda", "drug", "food", "resolved"]),
                      min_size=1, max_size=6), seed=st.integers(0, 1000))
def test_records_depend_only_on_the_set_of_states(kinds: list[str], seed: int) -> None:
    codes: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        "nka": (NKA, {}), "nkda": (NKDA, {}), "drug": (PENICILLIN, {}),
             "food": ({"text": "卵"}, {"category": ["food"]}),
             "resolved": (PENICILLIN, {"clinicalStatus": cc("resolved")})}
    states = states_of(*(allergy(f"r{i}", codes[k][0], **codes[k][1])
                         for i, k in enumerate(kinds)))
    expected = cross_resource_conflicts(states)
    shuffled = list(states)
    random.Random(seed).shuffle(shuffled)
    assert cross_resource_conflicts(shuffled + shuffled[:1]) == expected
    current_drug = any(k == "drug" for k in kinds)
    current_any = current_drug or "food" in kinds
    flagged = {r.resource_id for r in expected}
    for i, k in enumerate(kinds):
        if k == "nka":
            assert (f"r{i}" in flagged) == current_any
        elif k == "nkda":
            assert (f"r{i}" in flagged) == current_drug
        else:
            assert f"r{i}" not in flagged
