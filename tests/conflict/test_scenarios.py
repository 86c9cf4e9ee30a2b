"""Clinical scenarios at three sites, delivered in every order: one end state, one conflict set.

Each scenario starts from records every site has, lets sites edit offline (each
local edit passes `conflict.check_update`, as the edge's write path requires),
and then delivers the offline changes to every site in every order
(`itertools.permutations`).  Every order must give the same canonical state and
the same conflicts, register conflicts and cross-resource ones alike.

The property test at the end runs random offline histories (several sites,
random sync points and merge orders) and checks that a guarded value, confirmed
statuses included, never leaves the chart unless a conflict record lists it or a
change made by a site that had seen it replaced it.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from conflict import (
    ConflictRecord,
    ResourceState,
    all_conflicts,
    canonical_dump,
    check_update,
    cross_resource_conflicts,
    materialize,
    merge,
    merge_all,
    rules_for,
)
from conflict.confirmation import CORRECTION_REASON
from conflict.state import has_distinct_values
from sync_protocol.models import Change, Dot
from tests.conflict.practice import CATALOG, PROPERTY, Site, edited, scripts

PATIENT = {"reference": "Patient/p1"}


def three_sites(*records: dict[str, Any]) -> tuple[list[Site], list[Change]]:
    """Three sites that all hold `records` (created at the first)."""
    sites = [Site(UUID(int=0x51 + i)) for i in range(3)]
    base = [sites[0].save(r, now=10) for r in records]
    for site in sites[1:]:
        site.receive(base)
    return sites, base


def edit(site: Site, resource: dict[str, Any], now: int) -> Change:
    """A local write at `site`, refused like the edge refuses it."""
    state = site.states.get((resource["resourceType"], resource["id"]))
    prior = materialize(state) if state is not None else None
    assert check_update(prior, resource) is None, "the edge would refuse this edit"
    return site.save(resource, now=now)


Outcome = tuple[bytes, tuple[ConflictRecord, ...], tuple[ConflictRecord, ...]]


def every_order(base: Sequence[Change], offline: Sequence[Change]) -> dict[str, ResourceState]:
    """Merge `offline` after `base` in every order; assert one outcome; return its states."""
    outcomes: set[Outcome] = set()
    last: dict[str, ResourceState] = {}
    for order in itertools.permutations(offline):
        states: dict[tuple[str, str], ResourceState] = {}
        for change in (*base, *order):
            key = (change.resource_type, change.resource_id)
            states[key] = merge(states.get(key), change)
        outcomes.add((canonical_dump(states), all_conflicts(states.values()),
                      cross_resource_conflicts(states.values())))
        last = {f"{t}/{i}": s for (t, i), s in states.items()}
    assert len(outcomes) == 1
    return last


def rules_of(states: dict[str, ResourceState]) -> set[tuple[str, str, str]]:
    records = (*all_conflicts(states.values()), *cross_resource_conflicts(states.values()))
    return {(f"{r.resource_type}/{r.resource_id}", r.register, r.rule) for r in records}


def read(states: dict[str, ResourceState], ref: str) -> dict[str, Any]:
    view = materialize(states[ref])
    assert view is not None
    return view


def test_different_allergy_criticality_at_two_branches() -> None:
    allergy = {"resourceType": "AllergyIntolerance", "id": "a1", "patient": PATIENT,
               "code": {"text": "ペニシリン"}, "criticality": "low"}
    (_, b, c), base = three_sites(allergy)
    offline = [edit(b, {**allergy, "criticality": "high"}, 11),
               edit(c, {**allergy, "criticality": "unable-to-assess"}, 12)]
    states = every_order(base, offline)
    assert read(states, "AllergyIntolerance/a1")["criticality"] == "high"  # the safer value
    assert rules_of(states) == {("AllergyIntolerance/a1", "criticality", "guarded")}


def test_order_deleted_at_one_branch_while_its_dose_is_changed_at_another() -> None:
    order = {"resourceType": "MedicationRequest", "id": "m1", "status": "draft",
             "intent": "order", "subject": PATIENT,
             "medicationCodeableConcept": {"text": "アムロジピン錠5mg"},
             "dosageInstruction": [{"text": "1錠"}]}
    (a, b, _), base = three_sites(order)
    offline = [a.delete(("MedicationRequest", "m1"), now=11),
               edit(b, {**order, "dosageInstruction": [{"text": "2錠"}]}, 12)]
    states = every_order(base, offline)
    assert ("MedicationRequest/m1", "@deleted", "guarded") in rules_of(states)


def test_the_same_note_amended_at_two_branches_keeps_both_amendments() -> None:
    note = {"resourceType": "DocumentReference", "id": "d1", "status": "current",
            "docStatus": "final", "subject": PATIENT,
            "content": [{"attachment": {"contentType": "text/plain", "data": "5YaF"}}]}
    (_, b, c), base = three_sites(note)
    # An in-place edit is refused; an amendment is a new resource pointing at the note.
    assert check_update(note, {**note, "content": [{"attachment": {"data": "5aSW"}}]})
    links = [{"code": "appends", "target": {"reference": "DocumentReference/d1"}}]
    offline = [edit(b, {**note, "id": "d2", "relatesTo": links,
                        "content": [{"attachment": {"data": "6L+96KiY"}}]}, 11),
               edit(c, {**note, "id": "d3", "relatesTo": links,
                        "content": [{"attachment": {"data": "6KOc6Laz"}}]}, 11)]
    states = every_order(base, offline)
    assert {k for k in states} == {"DocumentReference/d1", "DocumentReference/d2",
                                   "DocumentReference/d3"}
    assert read(states, "DocumentReference/d1") == {**note}
    assert rules_of(states) == set()


def test_no_known_allergies_at_one_branch_and_penicillin_at_another() -> None:
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01"}
    (_, b, c), base = three_sites(patient)
    nka = {"resourceType": "AllergyIntolerance", "id": "n1", "patient": PATIENT,
           "code": {"coding": [{"system": "http://snomed.info/sct", "code": "716186003"}]}}
    penicillin = {"resourceType": "AllergyIntolerance", "id": "a1", "patient": PATIENT,
                  "code": {"text": "ペニシリン"}, "criticality": "high"}
    offline = [edit(b, nka, 11), edit(c, penicillin, 11)]
    states = every_order(base, offline)
    assert read(states, "AllergyIntolerance/n1")["code"] == nka["code"]  # both stay
    assert read(states, "AllergyIntolerance/a1")["criticality"] == "high"
    assert rules_of(states) == {("AllergyIntolerance/n1", "code", "no-known-allergies")}


def test_prescription_stopped_at_one_branch_while_its_dose_is_changed_at_another() -> None:
    order = {"resourceType": "MedicationRequest", "id": "m1", "status": "active",
             "intent": "order", "subject": PATIENT,
             "requester": {"reference": "Practitioner/dr-1"},
             "medicationCodeableConcept": {"text": "アムロジピン錠5mg"},
             "dosageInstruction": [{"text": "1錠"}]}
    (_, b, c), base = three_sites(order)
    reason = [{"url": CORRECTION_REASON, "valueString": "血圧高値のため増量"}]
    offline = [edit(b, {**order, "status": "stopped", "statusReason": {"text": "副作用"}}, 11),
               edit(c, {**order, "dosageInstruction": [{"text": "2錠"}], "extension": reason},
                    12)]
    states = every_order(base, offline)
    shown = read(states, "MedicationRequest/m1")
    assert shown["status"] == "stopped"
    assert shown["dosageInstruction"] == [{"text": "1錠"}]  # the stopped order as it was
    records = [r for r in all_conflicts(states.values()) if r.register == "status"]
    assert [(r.rule, r.addressed_to) for r in records] == [
        ("stop-vs-modify", "Practitioner/dr-1")]
    assert ("MedicationRequest/m1", "dosageInstruction", "stop-vs-modify") in rules_of(states)


def test_a_confirmed_record_corrected_at_two_branches() -> None:
    lab = {"resourceType": "Observation", "id": "o1", "status": "final", "subject": PATIENT,
           "code": {"text": "HbA1c"}, "valueQuantity": {"value": 6.1, "unit": "%"}}
    note = {"resourceType": "DocumentReference", "id": "d1", "status": "current",
            "docStatus": "final", "subject": PATIENT,
            "content": [{"attachment": {"data": "5YaF"}}]}
    (_, b, c), base = three_sites(lab, note)
    replaces = [{"code": "replaces", "target": {"reference": "DocumentReference/d1"}}]

    def correction(value: float, why: str) -> dict[str, Any]:
        return {**lab, "status": "corrected", "valueQuantity": {"value": value, "unit": "%"},
                "extension": [{"url": CORRECTION_REASON, "valueString": why}]}

    offline = [edit(b, correction(6.4, "検体取り違え"), 11),
               edit(c, correction(5.9, "単位換算誤り"), 11),
               edit(b, {**note, "id": "d2", "relatesTo": replaces}, 12),
               edit(c, {**note, "id": "d3", "relatesTo": replaces}, 12)]
    states = every_order(base, offline)
    found = rules_of(states)
    assert ("Observation/o1", "value[x]", "confirmed-correction") in found
    assert ("Observation/o1", "extension", "confirmed-correction") in found
    assert {k for k in states if k.startswith("DocumentReference/")} == {
        "DocumentReference/d1", "DocumentReference/d2", "DocumentReference/d3"}
    assert not any(ref.startswith("DocumentReference/") for ref, _, _ in found)


class Witness(Site):
    """A site that remembers, for each change it makes, which dots it had seen."""

    def __init__(self, site_id: UUID, seen_at: dict[Dot, frozenset[Dot]]) -> None:
        super().__init__(site_id)
        self.seen_at = seen_at

    def save(self, resource: dict[str, Any], *, now: int, resolve: bool = True) -> Change:
        before = frozenset(self.seen)
        change = super().save(resource, now=now, resolve=resolve)
        self.seen_at[change.dot] = before
        return change

    def delete(self, key: tuple[str, str], *, now: int, resolve: bool = True) -> Change:
        before = frozenset(self.seen)
        change = super().delete(key, now=now, resolve=resolve)
        self.seen_at[change.dot] = before
        return change


def run(script: Any) -> tuple[list[Change], dict[Dot, frozenset[Dot]]]:
    """`practice.simulate`, with sites that remember what each change had seen."""
    site_ints, resource_indexes, actions = script
    seen_at: dict[Dot, frozenset[Dot]] = {}
    sites = [Witness(UUID(int=n), seen_at) for n in site_ints]
    keys = [CATALOG[i % len(CATALOG)] for i in resource_indexes]
    hub: list[Change] = []
    pushed = dict.fromkeys(range(len(sites)), 0)
    cursor = dict.fromkeys(range(len(sites)), 0)
    changes: list[Change] = []
    now = 1_000
    for action in actions:
        index = action[1] % len(sites)
        site = sites[index]
        if action[0] == "sync":
            hub.extend(site.log[pushed[index]:])
            pushed[index] = len(site.log)
            upto = min(len(hub), cursor[index] + action[2])
            site.receive(hub[cursor[index]:upto])
            cursor[index] = upto
            continue
        key = keys[action[2] % len(keys)]
        now += action[3]
        if action[0] == "delete":
            if key in site.states:
                changes.append(site.delete(key, now=now))
            continue
        resolve = bool(action[5]) if len(action) > 5 else True
        changes.append(site.save(edited(key, site.view(key), action[4]), now=now,
                                 resolve=resolve))
    return changes, seen_at


@PROPERTY
@given(script=scripts(max_actions=30), seed=st.integers(0, 1000))
def test_no_guarded_value_disappears_without_a_record_or_a_change_that_saw_it(
        script: Any, seed: int) -> None:
    changes, seen_at = run(script)
    shuffled = list(changes)
    random.Random(seed).shuffle(shuffled)
    states = merge_all(shuffled)
    records = {(r.resource_type, r.resource_id, r.register): {h.dot for h in r.heads}
               for r in all_conflicts(states.values())}
    for change in changes:
        key = (change.resource_type, change.resource_id)
        rules = rules_for(change.resource_type)
        for name in change.elements:
            if not rules.is_guarded(name):
                continue
            reg = states[key].registers[name]
            if change.dot in {h.dot for h in reg.heads}:
                if has_distinct_values(reg.heads):  # kept, and listed for review
                    assert change.dot in records[(*key, name)]
                continue
            # Superseded: only by a change whose site had seen it (a resolution).
            assert any(change.dot in other.replaces.get(name, ())
                       and change.dot in seen_at[other.dot] for other in changes)
