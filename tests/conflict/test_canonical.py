"""Canonical state bytes: equal states give equal bytes, and the layout is stable."""

from __future__ import annotations

from uuid import UUID

from conflict import (
    STATE_FORMAT,
    Head,
    Register,
    ResourceState,
    canonical_dump,
    canonical_state,
    merge_all,
)
from sync_protocol.canonical import unpack
from sync_protocol.models import Dot
from tests.conflict.practice import Site

A = UUID(int=0xA)
B = UUID(int=0xB)


def test_equal_states_built_differently_give_equal_bytes() -> None:
    h1, h2 = Head(Dot(A, 1), 5, b'"x"'), Head(Dot(B, 1), 5, None)
    one = ResourceState("Basic", "b1", {
        "code": Register((h1, h2), frozenset({Dot(A, 3), Dot(B, 2)})),
        "@deleted": Register((h1,), frozenset()),
    })
    other = ResourceState("Basic", "b1", {
        "@deleted": Register((h1,), frozenset()),
        "code": Register((h2, h1), frozenset({Dot(B, 2), Dot(A, 3)})),
    })
    assert canonical_state(one) == canonical_state(other)
    assert canonical_dump({("Basic", "b1"): one}) == canonical_dump([other])


def test_layout() -> None:
    state = ResourceState("Basic", "b1", {
        "code": Register((Head(Dot(B, 2), 7, b'"x"'),), frozenset({Dot(A, 1)})),
    })
    assert unpack(canonical_state(state), what="state", max_len=1 << 20) == [
        STATE_FORMAT, "Basic", "b1",
        [["code", [[B.bytes, 2, 7, b'"x"']], [[A.bytes, 1]]]],
    ]


def test_dump_is_sorted_by_type_and_id_and_differs_when_states_differ() -> None:
    a = Site(A)
    a.save({"resourceType": "Patient", "id": "p2", "gender": "male"}, now=1)
    a.save({"resourceType": "Basic", "id": "z9", "code": "x"}, now=2)
    a.save({"resourceType": "Patient", "id": "p1", "gender": "male"}, now=3)
    states = merge_all(a.log)
    dumped = unpack(canonical_dump(states), what="dump", max_len=1 << 20)
    assert dumped[0] == STATE_FORMAT
    assert [(s[1], s[2]) for s in dumped[1]] == [("Basic", "z9"), ("Patient", "p1"),
                                                  ("Patient", "p2")]
    more = merge_all([*a.log, a.save({"resourceType": "Patient", "id": "p1",
                                      "gender": "female"}, now=4)])
    assert canonical_dump(more) != canonical_dump(states)
