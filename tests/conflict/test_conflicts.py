"""Conflict records: concurrent different values of guarded registers, and only those."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from hypothesis import example, given
from hypothesis import strategies as st

from conflict import (
    RULES,
    ConflictRecord,
    all_conflicts,
    conflicts,
    is_deleted,
    materialize,
    merge_all,
    rules_for,
)
from sync_protocol.canonical import canonical_json
from sync_protocol.hlc import order_key
from sync_protocol.models import DELETED, DELETED_VALUE, LIVE_VALUE
from tests.conflict.practice import PROPERTY, Site, scripts, simulate

A = UUID(int=0xA)
B = UUID(int=0xB)
C = UUID(int=0xC)

ALLERGY: dict[str, Any] = {
    "resourceType": "AllergyIntolerance", "id": "allergy-1",
    "patient": {"reference": "Patient/pat-1"}, "code": {"text": "ペニシリン"},
    "criticality": "low", "recordedDate": "2024-01-01",
}
ORDER: dict[str, Any] = {
    "resourceType": "MedicationRequest", "id": "med-1", "status": "active", "intent": "order",
    "subject": {"reference": "Patient/pat-1"},
    "medicationCodeableConcept": {"text": "アムロジピン錠5mg"},
    "dosageInstruction": [{"text": "1日1回 朝食後 1錠"}],
}


def two_sites_from(base: dict[str, Any]) -> tuple[Site, Site]:
    a, b = Site(A), Site(B)
    b.receive([a.save(base, now=1)])
    return a, b


def values_of(record: ConflictRecord) -> set[bytes | None]:
    return {h.value for h in record.heads}


def test_concurrent_guarded_edits_conflict_with_every_value_kept() -> None:
    a, b = two_sites_from(ALLERGY)
    to_high = a.save({**ALLERGY, "criticality": "high"}, now=2)
    to_unsure = b.save({**ALLERGY, "criticality": "unable-to-assess"}, now=3)
    state = merge_all([*a.log, to_unsure])[("AllergyIntolerance", "allergy-1")]
    (record,) = conflicts(state)
    assert record.register == "criticality"
    assert values_of(record) == {b'"high"', b'"unable-to-assess"'}
    assert {h.dot for h in record.heads} == {to_high.dot, to_unsure.dot}
    # Precedence: the higher criticality is shown although the other is newer.
    assert record.shown.dot == to_high.dot
    view = materialize(state)
    assert view is not None and view["criticality"] == "high"

    # A third site that saw both heads saves the resource: that resolves the conflict.
    c = Site(C)
    c.receive([*a.log, *b.log])
    resolving = c.save({**ALLERGY, "criticality": "high"}, now=4)
    after = merge_all([*a.log, *b.log, resolving])[("AllergyIntolerance", "allergy-1")]
    assert conflicts(after) == ()
    assert len(after.registers["criticality"].heads) == 1


def test_concurrent_unguarded_edits_keep_both_heads_and_show_the_newest() -> None:
    a, b = two_sites_from(ALLERGY)
    newer = a.save({**ALLERGY, "recordedDate": "2024-02-02"}, now=5)
    older = b.save({**ALLERGY, "recordedDate": "2024-03-03"}, now=3)
    state = merge_all([*a.log, older])[("AllergyIntolerance", "allergy-1")]
    assert not rules_for("AllergyIntolerance").is_guarded("recordedDate")
    assert conflicts(state) == ()
    assert {h.dot for h in state.registers["recordedDate"].heads} == {newer.dot, older.dot}
    view = materialize(state)
    assert view is not None and view["recordedDate"] == "2024-02-02"


def test_unguarded_hlc_tie_is_settled_by_the_site() -> None:
    a, b = two_sites_from(ALLERGY)
    a.save({**ALLERGY, "recordedDate": "2024-02-02"}, now=5)
    by_b = b.save({**ALLERGY, "recordedDate": "2024-03-03"}, now=5)
    state = merge_all([*a.log, by_b])[("AllergyIntolerance", "allergy-1")]
    assert len({h.hlc for h in state.registers["recordedDate"].heads}) == 1
    view = materialize(state)
    assert view is not None and view["recordedDate"] == "2024-03-03"  # B > A


def test_equal_concurrent_values_are_not_a_conflict() -> None:
    a, b = two_sites_from(ALLERGY)
    a.save({**ALLERGY, "criticality": "high"}, now=2)
    same = b.save({**ALLERGY, "criticality": "high"}, now=3)
    state = merge_all([*a.log, same])[("AllergyIntolerance", "allergy-1")]
    assert len(state.registers["criticality"].heads) == 2
    assert conflicts(state) == ()


def test_edit_concurrent_with_delete_conflicts_on_deleted() -> None:
    a, b = two_sites_from(ALLERGY)
    a.save({**ALLERGY, "criticality": "high"}, now=2)
    deletion = b.delete(("AllergyIntolerance", "allergy-1"), now=9)
    state = merge_all([*a.log, deletion])[("AllergyIntolerance", "allergy-1")]
    (record,) = conflicts(state)
    assert record.register == DELETED
    assert values_of(record) == {LIVE_VALUE, DELETED_VALUE}
    # An allergy is never hidden while one site still has it, even by a newer delete.
    assert not is_deleted(state)

    c = Site(C)
    c.receive([*a.log, deletion])
    confirmed = c.delete(("AllergyIntolerance", "allergy-1"), now=10)
    settled = merge_all([*a.log, deletion, confirmed])[("AllergyIntolerance", "allergy-1")]
    assert conflicts(settled) == ()
    assert is_deleted(settled) and materialize(settled) is None


def test_edit_concurrent_with_delete_conflicts_for_every_supported_kind() -> None:
    for kind in ("Patient", "Encounter", "Observation", "Condition", "AllergyIntolerance",
                 "MedicationRequest", "DocumentReference"):
        base = {"resourceType": kind, "id": "r1", "language": "ja"}
        a, b = two_sites_from(base)
        a.save({**base, "language": "en"}, now=2)
        deletion = b.delete((kind, "r1"), now=2)
        state = merge_all([*a.log, deletion])[(kind, "r1")]
        assert [r.register for r in conflicts(state)] == [DELETED], kind


def test_stop_concurrent_with_modify_shows_the_stop_and_flags_the_order() -> None:
    a, b = two_sites_from(ORDER)
    stop = a.save({**ORDER, "status": "stopped"}, now=2)
    modify = b.save({**ORDER, "dosageInstruction": [{"text": "1日2回 朝夕食後 1錠"}]}, now=9)
    state = merge_all([*a.log, modify])[("MedicationRequest", "med-1")]
    flagged = {r.register: r for r in conflicts(state)}
    assert {"status", "dosageInstruction"} <= set(flagged)
    assert {h.dot for h in flagged["status"].heads} == {stop.dot, modify.dot}
    view = materialize(state)
    assert view is not None and view["status"] == "stopped"
    # The whole order unit reads from the stop, although the modify is newer.
    assert view["dosageInstruction"] == ORDER["dosageInstruction"]
    assert flagged["dosageInstruction"].shown.dot == stop.dot
    assert {r.rule for r in flagged.values()} == {"stop-vs-modify"}


def test_stop_versus_modify_is_addressed_to_the_prescriber() -> None:
    order = {**ORDER, "requester": {"reference": "Practitioner/dr-1"}}
    a, b = two_sites_from(order)
    a.save({**order, "status": "stopped"}, now=2)
    b.save({**order, "dosageInstruction": [{"text": "1日2回"}]}, now=3)
    for changes in ([*a.log, *b.log], [*b.log, *a.log]):
        records = conflicts(merge_all(changes)[("MedicationRequest", "med-1")])
        assert records and all(r.rule == "stop-vs-modify" for r in records)
        assert {r.addressed_to for r in records} == {"Practitioner/dr-1"}


def test_two_modifies_of_an_order_are_not_a_stop() -> None:
    a, b = two_sites_from(ORDER)
    a.save({**ORDER, "dosageInstruction": [{"text": "1日2回"}]}, now=2)
    b.save({**ORDER, "dosageInstruction": [{"text": "1日3回"}]}, now=3)
    records = conflicts(merge_all([*a.log, *b.log])[("MedicationRequest", "med-1")])
    assert records and {r.rule for r in records} == {"guarded"}
    assert {r.addressed_to for r in records} == {None}


def test_concurrent_corrections_of_a_confirmed_record_name_their_rule() -> None:
    obs = {"resourceType": "Observation", "id": "o1", "status": "final",
           "code": {"text": "血圧"}, "valueQuantity": {"value": 120}}
    a, b = two_sites_from(obs)
    why = "http://chartsync.example/fhir/StructureDefinition/correction-reason"
    a.save({**obs, "status": "amended", "valueQuantity": {"value": 130},
            "extension": [{"url": why, "valueString": "再測定"}]}, now=2)
    b.save({**obs, "status": "corrected", "valueQuantity": {"value": 125},
            "extension": [{"url": why, "valueString": "転記ミス"}]}, now=3)
    records = conflicts(merge_all([*a.log, *b.log])[("Observation", "o1")])
    assert {r.register for r in records} >= {"value[x]", "status"}
    assert {r.rule for r in records} == {"confirmed-correction"}


def test_note_text_conflicts_name_their_rule() -> None:
    base = {"resourceType": "Condition", "id": "c1", "code": {"text": "高血圧症"},
            "subject": {"reference": "Patient/p1"}, "note": [{"text": "初診"}]}
    a, b = two_sites_from(base)
    a.save({**base, "note": [{"text": "家族歴あり"}]}, now=2)
    b.save({**base, "note": [{"text": "喫煙歴あり"}], "code": {"text": "本態性高血圧症"}}, now=3)
    records = conflicts(merge_all([*a.log, *b.log])[("Condition", "c1")])
    assert {r.register: r.rule for r in records} == {"note": "note-text"}


def test_coupled_invariant_elements_are_shown_from_one_edit() -> None:
    # obs-6: a value and a data-absent-reason never show together.
    obs = {"resourceType": "Observation", "id": "o1", "status": "final",
           "code": {"text": "血圧"}, "valueQuantity": {"value": 120, "unit": "mmHg"}}
    a, b = two_sites_from(obs)
    absent = {k: v for k, v in obs.items() if k != "valueQuantity"}
    a.save({**absent, "dataAbsentReason": {"text": "測定不能"}}, now=2)
    b.save({**obs, "valueQuantity": {"value": 135, "unit": "mmHg"}}, now=3)
    for order in ([*a.log, *b.log], [*b.log, *a.log]):
        state = merge_all(order)[("Observation", "o1")]
        view = materialize(state)
        assert view is not None
        assert ("valueQuantity" in view) != ("dataAbsentReason" in view)
        assert {r.register for r in conflicts(state)} == {"value[x]", "dataAbsentReason"}


def test_kinds_without_rules_merge_but_never_conflict() -> None:
    base = {"resourceType": "Basic", "id": "b1", "code": {"text": "メモ"}}
    a, b = two_sites_from(base)
    a.save({**base, "code": {"text": "連絡"}}, now=2)
    deletion = b.delete(("Basic", "b1"), now=3)
    state = merge_all([*a.log, deletion])[("Basic", "b1")]
    assert len(state.registers[DELETED].heads) == 2
    assert conflicts(state) == ()
    assert is_deleted(state)  # no precedence: the newer delete shows


@PROPERTY
@given(script=scripts())
@example(script=((1, 2), (1,), (("edit", 0, 0, 0, ((0, 2),), 1), ("edit", 1, 0, 0, ((0, 4),), 1))))
def test_a_record_exists_exactly_for_guarded_registers_with_different_values(
        script: object) -> None:
    states = merge_all(simulate(script).changes)
    for state in states.values():
        rules = rules_for(state.resource_type)
        expected = [
            name for name in sorted(state.registers)
            if rules.is_guarded(name)
            and len({h.value for h in state.registers[name].heads}) > 1
        ]
        records = conflicts(state)
        assert [r.register for r in records] == expected
        for record in records:
            assert record.heads == state.registers[record.register].heads
            assert record.shown in record.heads
    assert all_conflicts(states.values()) == tuple(
        r for key in sorted(states) for r in conflicts(states[key]))


#: (kind, guarded element) pairs whose element is a plain key (not a choice group, not
#: a keyed list: tests/conflict/test_keyed_lists.py covers those).
GUARDED_ELEMENTS = sorted(
    (kind, name) for kind, rules in RULES.items() for name in rules.guarded
    if name != DELETED and not name.endswith("[x]") and name not in rules.keyed
)
TEXT = st.text(st.sampled_from("あいうアイウ漢字abc"), min_size=1, max_size=4)


@PROPERTY
@given(target=st.sampled_from(GUARDED_ELEMENTS), values=st.lists(TEXT, min_size=3, max_size=3,
                                                                  unique=True),
       sites=st.lists(st.integers(1, (1 << 128) - 1), min_size=3, max_size=3, unique=True),
       ticks=st.tuples(st.integers(0, 2), st.integers(0, 2)))
def test_concurrent_different_guarded_values_always_conflict_until_resolved(
        target: tuple[str, str], values: list[str], sites: list[int],
        ticks: tuple[int, int]) -> None:
    kind, name = target
    base = {"resourceType": kind, "id": "r1", name: values[0]}
    a, b, c = (Site(UUID(int=n)) for n in sites)
    b.receive([a.save(base, now=10)])
    one = a.save({**base, name: values[1]}, now=10 + ticks[0])
    two = b.save({**base, name: values[2]}, now=10 + ticks[1])
    state = merge_all([*a.log, two])[(kind, "r1")]
    records = {r.register: r for r in conflicts(state)}
    assert values_of(records[name]) == {canonical_json(values[1]), canonical_json(values[2])}
    assert {h.dot for h in records[name].heads} == {one.dot, two.dot}

    c.receive([*a.log, two])
    view = c.view((kind, "r1"))
    assert view is not None
    resolving = c.save({**view, name: values[0]}, now=20)
    after = merge_all([*a.log, two, resolving])[(kind, "r1")]
    assert conflicts(after) == ()


@PROPERTY
@given(kind=st.sampled_from([*sorted(RULES), "Basic"]),
       values=st.lists(TEXT, min_size=3, max_size=3, unique=True),
       sites=st.lists(st.integers(1, (1 << 128) - 1), min_size=2, max_size=2, unique=True),
       ticks=st.tuples(st.integers(0, 2), st.integers(0, 2)))
def test_concurrent_unguarded_values_keep_both_and_show_the_greatest_hlc_and_site(
        kind: str, values: list[str], sites: list[int], ticks: tuple[int, int]) -> None:
    assert not rules_for(kind).is_guarded("language")
    base = {"resourceType": kind, "id": "r1", "language": values[0]}
    a, b = Site(UUID(int=sites[0])), Site(UUID(int=sites[1]))
    b.receive([a.save(base, now=10)])
    one = a.save({**base, "language": values[1]}, now=10 + ticks[0])
    two = b.save({**base, "language": values[2]}, now=10 + ticks[1])
    state = merge_all([*a.log, two])[(kind, "r1")]
    assert conflicts(state) == ()
    assert {h.dot for h in state.registers["language"].heads} == {one.dot, two.dot}
    winner = max((one, two), key=lambda ch: order_key(ch.hlc, ch.origin))
    view = materialize(state)
    assert view is not None and view["language"] == values[2 if winner is two else 1]
