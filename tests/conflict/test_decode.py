"""`state_from_canonical` inverts `canonical_state` on every state a practice can reach."""

from __future__ import annotations

import pytest
from hypothesis import given

from conflict import canonical_state
from conflict.decode import state_from_canonical
from conflict.errors import ShapeError
from tests.conflict.practice import PROPERTY, scripts, simulate


@PROPERTY
@given(script=scripts())
def test_round_trip(script) -> None:
    practice = simulate(script)
    for site in practice.sites:
        for state in site.states.values():
            raw = canonical_state(state)
            back = state_from_canonical(raw)
            assert back == state
            assert canonical_state(back) == raw


@pytest.mark.parametrize("raw", [b"", b"\x91\x01", b"\x94\x02\xa1P\xa1x\x90",
                                 b"\x94\x01\xa1P\xa1x\x91\x93\xa1a\x91\x90\x90"])
def test_malformed_bytes_are_refused_with_a_shape_error(raw: bytes) -> None:
    with pytest.raises(ShapeError):
        state_from_canonical(raw)
