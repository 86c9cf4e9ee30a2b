"""Time-ordered ids: uuid7 is RFC 9562 version 7, orders by time, and the edge's text
shortcut spells exactly what `str(uuid7(...))` spells."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync_protocol.ids import uuid7, uuid7_text

times = st.integers(min_value=0, max_value=(1 << 48) - 1)
randoms = st.binary(min_size=10, max_size=10)


@given(now_ms=times, random_bytes=randoms)
def test_text_form_is_the_uuid_as_text(now_ms: int, random_bytes: bytes) -> None:
    made = uuid7(now_ms, random_bytes)
    assert uuid7_text(now_ms, random_bytes) == str(made)
    assert made.version == 7 and made.variant == "specified in RFC 4122"
    assert int.from_bytes(made.bytes[:6], "big") == now_ms


@given(a=times, b=times, ra=randoms, rb=randoms)
def test_later_times_sort_later(a: int, b: int, ra: bytes, rb: bytes) -> None:
    if a < b:
        assert uuid7_text(a, ra) < uuid7_text(b, rb) and uuid7(a, ra) < uuid7(b, rb)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="10 random bytes"):
        uuid7_text(1, b"short")
    with pytest.raises(ValueError, match="48 bits"):
        uuid7(1 << 48, bytes(10))
