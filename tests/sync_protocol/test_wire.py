"""The compact wire forms: round trip, and the hand-written checks match pydantic's."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sync_protocol.change_meta import decode_metas, encode_metas
from sync_protocol.errors import MalformedInput
from sync_protocol.models import DELETED, Change, ChangeOp, Dot
from sync_protocol.wire import decode_changes, encode_changes

SITES = [uuid.UUID(int=i * 7919 + 1) for i in range(3)]
ORIGIN = SITES[0]

registers = st.sampled_from(["code", "criticality", "note", "value[x]", "_birthDate", "status"])
dots = st.lists(st.builds(Dot, st.sampled_from(SITES), st.integers(1, 50)), max_size=3,
                unique=True).map(tuple)


@st.composite
def changes(draw: st.DrawFn, seq: int) -> Change:
    delete = draw(st.booleans())
    names = [DELETED] if delete else [DELETED, *draw(st.lists(registers, unique=True))]
    elements = {n: draw(st.none() | st.binary(min_size=1, max_size=30)) for n in names}
    elements[DELETED] = b"true" if delete else b"false"
    replaced = draw(st.lists(st.sampled_from(names), unique=True))
    return Change(
        resource_type=draw(st.sampled_from(["Observation", "Patient", "AllergyIntolerance"])),
        resource_id=draw(st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True)),
        op=ChangeOp.DELETE if delete else ChangeOp.SET, elements=elements,
        replaces={n: tuple(d for d in draw(dots) if d != (ORIGIN, seq)) for n in replaced},
        hlc=draw(st.integers(0, (1 << 64) - 1)),
        origin=ORIGIN, seq=seq, user=draw(st.text(min_size=1, max_size=20)),
        device=draw(st.text(max_size=5)))


@st.composite
def change_lists(draw: st.DrawFn) -> list[Change]:
    start = draw(st.integers(1, 1000))
    n = draw(st.integers(1, 5))
    return [draw(changes(start + i)) for i in range(n)]


@settings(max_examples=300, deadline=None)
@given(listed=change_lists())
def test_round_trip(listed: list[Change]) -> None:
    decoded = decode_changes(encode_changes(listed), origin=ORIGIN, seq_from=listed[0].seq)
    assert decoded == listed
    assert [c.all_replaced for c in decoded] == [c.all_replaced for c in listed]


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, list):
        for i, item in enumerate(value):
            out += _paths(item, (*path, i))
    elif isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*path, key))
    return out


junk: st.SearchStrategy[Any] = (
    st.none() | st.booleans() | st.integers(-5, 1 << 64) | st.binary(max_size=20)
    | st.text(max_size=70) | st.lists(st.integers(-1, 3), max_size=4)
    | st.just({}) | st.just([]))


@settings(max_examples=500, deadline=None)
@given(listed=change_lists(), data=st.data())
def test_what_the_fast_decoder_accepts_pydantic_accepts_too(listed: list[Change],
                                                            data: st.DataObject) -> None:
    wire = encode_changes(listed)
    mutated = copy.deepcopy(wire)
    path = data.draw(st.sampled_from(_paths(mutated)[1:]))
    parent = mutated
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = data.draw(junk)
    try:
        decoded = decode_changes(mutated, origin=ORIGIN, seq_from=listed[0].seq)
    except MalformedInput:
        return
    for change in decoded:
        assert Change.model_validate(change.model_dump()) == change


def test_a_register_named_twice_in_replaces_is_refused() -> None:
    change = Change(resource_type="Patient", resource_id="p1", op=ChangeOp.SET,
                    elements={DELETED: b"false", "name": b"[]"},
                    replaces={DELETED: (Dot(ORIGIN, 1),), "name": (Dot(ORIGIN, 2),)},
                    hlc=1, origin=ORIGIN, seq=3, user="u")
    wire = encode_changes([change])
    groups = wire["changes"][0][4]
    groups[0][1].append("name")
    try:
        decode_changes(wire, origin=ORIGIN, seq_from=3)
    except MalformedInput as exc:
        assert "twice" in str(exc)
    else:
        raise AssertionError("accepted a register named in two groups")


@given(metas=st.lists(st.tuples(st.binary(min_size=16, max_size=16), dots), max_size=5))
def test_header_metadata_round_trip(metas: list[tuple[bytes, tuple[Dot, ...]]]) -> None:
    from sync_protocol.models import ChangeMeta, sorted_dots

    listed = [ChangeMeta(token, sorted_dots(d)) for token, d in metas]
    sites, raw = encode_metas(listed)
    assert list(decode_metas(sites, raw)) == listed


def test_a_change_cannot_replace_its_own_dot() -> None:
    import pydantic
    import pytest

    fields = dict(resource_type="Patient", resource_id="p1", op=ChangeOp.SET,
                  elements={DELETED: b"false"}, replaces={DELETED: (Dot(ORIGIN, 4),)},
                  hlc=1, origin=ORIGIN, seq=4, user="u")
    with pytest.raises(pydantic.ValidationError, match="own dot"):
        Change(**fields)
    wire = encode_changes([Change(**{**fields, "seq": 5})])
    with pytest.raises(MalformedInput, match="own dot"):
        decode_changes(wire, origin=ORIGIN, seq_from=4)
