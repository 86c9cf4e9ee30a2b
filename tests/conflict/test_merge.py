"""Merge: order, duplicates and arrival path do not matter, and no write is lost."""

from __future__ import annotations

import random
from uuid import UUID

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from conflict import (
    DotReused,
    Head,
    ResourceState,
    WrongResource,
    canonical_dump,
    conflicts,
    displayed,
    merge,
    merge_all,
)
from sync_protocol.hlc import order_key
from sync_protocol.models import DELETED, Change, ChangeOp, Dot, sorted_dots
from tests.conflict.practice import PROPERTY, Site, scripts, simulate

A = UUID(int=0xA)
B = UUID(int=0xB)

# Two sites both create the allergy, then each edits after seeing the other's create
# only in part: replaces that cross between sites, with an HLC tie.
CROSSING = ((10, 11), (0,), (
    ("edit", 0, 0, 0, ((0, 1),), 1), ("edit", 1, 0, 0, ((0, 2),), 1),
    ("sync", 0, 5), ("sync", 1, 5), ("edit", 1, 0, 0, ((3, 2),), 1), ("delete", 0, 0, 0),
))


def all_conflicts(changes: list[Change]) -> list[object]:
    states = merge_all(changes)
    return [c for key in sorted(states) for c in conflicts(states[key])]


@PROPERTY
@given(script=scripts(), rnd=st.randoms(use_true_random=False))
@example(script=CROSSING, rnd=random.Random(0))
def test_order_and_duplicates_do_not_matter(script: object, rnd: random.Random) -> None:
    changes = simulate(script).changes
    mixed = changes + changes[: len(changes) // 2] + changes[-1:]
    rnd.shuffle(mixed)
    assert canonical_dump(merge_all(mixed)) == canonical_dump(merge_all(changes))
    assert all_conflicts(mixed) == all_conflicts(changes)


@PROPERTY
@given(script=scripts())
@example(script=CROSSING)
def test_sites_that_applied_everything_agree(script: object) -> None:
    practice = simulate(script)
    practice.sync_all()
    expected = canonical_dump(merge_all(practice.changes))
    for site in practice.sites:
        assert canonical_dump(site.states) == expected, site.id


@PROPERTY
@given(script=scripts())
@example(script=CROSSING)
def test_merging_twice_is_merging_once(script: object) -> None:
    changes = simulate(script).changes
    states = merge_all(changes)
    for change in changes:
        key = (change.resource_type, change.resource_id)
        assert merge(states[key], change) == states[key]
    doubled = [c for change in changes for c in (change, change)]
    assert canonical_dump(merge_all(doubled)) == canonical_dump(states)


@PROPERTY
@given(script=scripts())
@example(script=CROSSING)
def test_no_dot_is_lost(script: object) -> None:
    changes = simulate(script).changes
    states = merge_all(changes)
    applied = {c.dot for c in changes}
    for change in changes:
        state = states[(change.resource_type, change.resource_id)]
        for name in change.elements:
            reg = state.registers[name]
            assert change.dot in {h.dot for h in reg.heads} | reg.replaced, (name, change.dot)
    for state in states.values():
        for reg in state.registers.values():
            dots = [h.dot for h in reg.heads]
            assert set(dots) <= applied
            assert not set(dots) & reg.replaced
            assert tuple(dots) == sorted_dots(dots)  # canonical order, no repeats


@given(st.uuids(), st.uuids(), st.integers(0, 3), st.integers(0, 3))
def test_dot_and_display_orders_match_the_byte_orders(u1: UUID, u2: UUID, h1: int, h2: int
                                                      ) -> None:
    # merge sorts Dot tuples and compares UUIDs directly; that must be (site.bytes, seq).
    d1, d2 = Dot(u1, 1), Dot(u2, 2)
    assert list(sorted_dots([d1, d2])) == sorted([d1, d2])
    heads = [Head(d1, h1, b"1"), Head(d2, h2, b"2")]
    winner = max(heads, key=lambda h: order_key(h.hlc, h.dot.site))
    assert displayed(heads) == winner
    assert displayed(heads[::-1]) == winner


def test_hlc_tie_goes_to_the_greater_site() -> None:
    heads = [Head(Dot(B, 1), 5, b'"b"'), Head(Dot(A, 9), 5, b'"a"')]
    assert displayed(heads).dot.site == B


def test_a_change_for_another_resource_is_refused() -> None:
    site = Site(A)
    change = site.save({"resourceType": "Observation", "id": "o1", "status": "final"}, now=1)
    other = ResourceState("Observation", "o2", {})
    with pytest.raises(WrongResource, match="Observation/o1"):
        merge(other, change)


def test_a_reused_dot_with_other_content_is_refused() -> None:
    first = Change(resource_type="Basic", resource_id="b1", op=ChangeOp.SET,
                   elements={DELETED: b"false", "code": b'"x"'}, replaces={}, hlc=5,
                   origin=A, seq=1, user="u")
    forged = first.model_copy(update={"elements": {DELETED: b"false", "code": b'"QZX-value"'}})
    state = merge(None, first)
    with pytest.raises(DotReused) as caught:
        merge(state, forged)
    assert "QZX" not in str(caught.value)  # messages carry no values


def test_a_late_change_that_was_already_replaced_never_becomes_a_head() -> None:
    a, b = Site(A), Site(B)
    first = a.save({"resourceType": "Basic", "id": "b1", "code": "x"}, now=1)
    b.receive([first])
    second = b.save({"resourceType": "Basic", "id": "b1", "code": "y"}, now=2)
    late_first = merge(None, second)  # second arrives first, then first
    state = merge(late_first, first)
    assert [h.dot for h in state.registers["code"].heads] == [second.dot]
    assert first.dot in state.registers["code"].replaced
    assert state == merge(merge(None, first), second)


def test_registers_a_change_does_not_write_are_untouched() -> None:
    a, b = Site(A), Site(B)
    base = a.save({"resourceType": "Patient", "id": "p1", "gender": "male",
                   "birthDate": "1970-01-01"}, now=1)
    b.receive([base])
    gender = a.save({"resourceType": "Patient", "id": "p1", "gender": "female",
                     "birthDate": "1970-01-01"}, now=2)
    birth = b.save({"resourceType": "Patient", "id": "p1", "gender": "male",
                    "birthDate": "1971-02-03"}, now=2)
    state = merge_all([base, gender, birth])[("Patient", "p1")]
    assert [h.value for h in state.registers["gender"].heads] == [b'"female"']
    assert [h.value for h in state.registers["birthDate"].heads] == [b'"1971-02-03"']
    assert conflicts(state) == ()
