"""Hybrid logical clock: monotonic, absorbs remote stamps, refuses far-future clocks."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync_protocol import hlc
from sync_protocol.errors import ClockTooFarAhead, MalformedInput

NOW = 1_790_000_000_000


def test_now_is_strictly_increasing_even_when_the_wall_clock_goes_back() -> None:
    clock = hlc.HybridClock()
    a = clock.now(NOW)
    b = clock.now(NOW)
    c = clock.now(NOW - 60_000)  # NTP stepped the clock back a minute
    assert a < b < c
    assert hlc.physical_ms(c) == NOW and hlc.logical(c) == 2


def test_observe_moves_past_the_remote_stamp() -> None:
    clock = hlc.HybridClock()
    remote = hlc.pack(NOW + 1000, 5)
    stamp = clock.observe(remote, NOW)
    assert stamp > remote and clock.now(NOW) > stamp


def test_a_clock_far_ahead_is_refused_and_leaves_ours_untouched() -> None:
    clock = hlc.HybridClock(max_drift_ms=60_000)
    before = clock.now(NOW)
    with pytest.raises(ClockTooFarAhead, match=r"ahead of ours") as caught:
        clock.observe(hlc.pack(NOW + 3_600_000), NOW, source="batch b1 from site s1")
    assert "batch b1 from site s1" in str(caught.value)
    assert "NTP" in caught.value.hint
    assert clock.last == before


def test_out_of_range_stamps_are_malformed() -> None:
    with pytest.raises(MalformedInput):
        hlc.HybridClock().observe(1 << 64, NOW)
    with pytest.raises(MalformedInput):
        hlc.decode(b"\x00" * 7)


@given(st.integers(0, (1 << 48) - 1), st.integers(0, hlc.LOGICAL_MASK))
def test_encoding_round_trips_and_sorts_like_the_stamp(ms: int, logical: int) -> None:
    stamp = hlc.pack(ms, logical)
    assert hlc.decode(hlc.encode(stamp)) == stamp
    assert (hlc.physical_ms(stamp), hlc.logical(stamp)) == (ms, logical)


@given(st.lists(st.tuples(st.integers(0, 1 << 40), st.binary(min_size=16, max_size=16)),
                min_size=2, max_size=20))
def test_order_key_is_a_total_order_settled_by_site(stamps: list[tuple[int, bytes]]) -> None:
    keys = [hlc.order_key(s, uuid.UUID(bytes=site)) for s, site in stamps]
    assert sorted(keys) == sorted(keys, key=lambda k: (k[0], k[1]))
    distinct = {(s, site) for s, site in stamps}
    assert len({hlc.order_key(s, uuid.UUID(bytes=b)) for s, b in distinct}) == len(distinct)


@given(st.lists(st.tuples(st.booleans(), st.integers(-5000, 5000)), max_size=50))
def test_every_stamp_exceeds_every_earlier_one(events: list[tuple[bool, int]]) -> None:
    clock = hlc.HybridClock()
    seen = 0
    for is_remote, offset_ms in events:
        if is_remote:
            stamp = clock.observe(hlc.pack(NOW + offset_ms), NOW)
        else:
            stamp = clock.now(NOW + offset_ms)
        assert stamp > seen
        seen = stamp
