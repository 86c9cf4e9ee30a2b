"""Last-Modified: the cached per-second formatting says what email.utils would."""

from __future__ import annotations

from email.utils import formatdate

from hypothesis import given
from hypothesis import strategies as st

from edge_node.api.responses import http_date


@given(ms=st.integers(min_value=0, max_value=253_402_300_799_999))
def test_http_date_is_the_imf_fixdate_of_the_second(ms: int) -> None:
    assert http_date(ms) == formatdate(ms / 1000, usegmt=True)
    assert http_date(ms) == http_date(ms - ms % 1000)
