"""Conflict and head ids, ages, and paging cursors of the review queue."""

from __future__ import annotations

from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_node.errors import BadRequest, NotFound
from edge_node.fhir.conflict_query import (
    conflict_id,
    encode_cursor,
    head_id,
    parse_age_ms,
    parse_conflict_id,
    parse_head_id,
    parse_list_query,
    sort_key,
)
from sync_protocol.models import Dot

TYPES = st.from_regex(r"[A-Z][A-Za-z]{1,20}", fullmatch=True)
IDS = st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True)
REGISTERS = st.from_regex(r"@deleted|_?[a-z][A-Za-z0-9]{0,20}(\[x\])?", fullmatch=True)


@given(TYPES, IDS, REGISTERS)
def test_conflict_ids_are_url_safe_and_round_trip(rtype: str, rid: str, register: str) -> None:
    cid = conflict_id(rtype, rid, register)
    assert cid.replace("-", "").replace("_", "").isalnum()
    ref = parse_conflict_id(cid)
    assert (ref.resource_type, ref.resource_id, ref.register, ref.id) == (rtype, rid,
                                                                          register, cid)


@pytest.mark.parametrize("text", ["", "!!", "QQ", conflict_id("x", "1", "a"), "A" * 301])
def test_other_text_is_no_conflict_id(text: str) -> None:
    with pytest.raises(NotFound):
        parse_conflict_id(text)


def test_head_ids_and_ages() -> None:
    dot = Dot(UUID("0190c1a2-7b3e-7000-8000-0000000000b2"), 7)
    assert parse_head_id(head_id(dot)) == dot
    for bad in ("x", f"{dot.site}", f"{dot.site},0", f"{dot.site},x"):
        with pytest.raises(BadRequest):
            parse_head_id(bad)
    assert parse_age_ms("older-than", "2h") == 7_200_000
    assert parse_age_ms("newer-than", "3d") == 3 * 86_400_000
    with pytest.raises(BadRequest, match="older-than"):
        parse_age_ms("older-than", "2")


@given(st.integers(0, 2**48), st.text(max_size=30), st.sampled_from(["-opened", "patient"]))
def test_cursors_round_trip_and_keep_their_sort(opened: int, patient: str, sort: str) -> None:
    key = sort_key(sort, patient, opened, "QUJD")  # type: ignore[arg-type]
    cursor = encode_cursor(sort, key)  # type: ignore[arg-type]
    q = parse_list_query([("_sort", sort), ("cursor", cursor)], default_count=10,
                         max_count=100)
    assert q.after == key
    other = "patient" if sort == "-opened" else "-opened"
    with pytest.raises(BadRequest, match="paging token"):
        parse_list_query([("_sort", other), ("cursor", cursor)], default_count=10,
                         max_count=100)
