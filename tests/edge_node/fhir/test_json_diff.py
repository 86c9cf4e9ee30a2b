"""Side-by-side values with the differing lines marked."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from edge_node.fhir.json_diff import diff_lines

#: JSON as orjson parses it (integers within 64 bits).
JSON = st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
                    | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=3), inner, max_size=3), max_leaves=10)


def _marked(lines: list[Any]) -> list[str]:
    return [line.text for line in lines if line.differs]


def test_scalars_and_members_that_differ_are_marked() -> None:
    high, low = diff_lines(["high", "low"])
    assert _marked(high) == ['"high"'] and _marked(low) == ['"low"']
    a, b = diff_lines([{"text": "卵", "coding": [{"code": "1"}], "same": {"x": 1}},
                       {"text": "卵", "coding": [{"code": "2"}, {"code": "3"}],
                        "same": {"x": 1}}])
    assert _marked(a) == ['"code": "1"']
    assert _marked(b) == ['"code": "2"', "{", '"code": "3"']
    assert [line.text for line in a][:2] == ["{", '"coding": [']
    assert all(not line.differs for line in a if "same" in line.text or '"x"' in line.text)


@given(JSON)
def test_a_value_against_itself_marks_nothing_and_prints_as_json(value: Any) -> None:
    left, right = diff_lines([value, value])
    assert left == right and not _marked(left)
    assert json.loads("".join(line.text for line in left)) == value


@given(JSON, JSON)
def test_different_values_mark_something(a: Any, b: Any) -> None:
    left, right = diff_lines([a, b])
    assert bool(_marked(left) or _marked(right)) == (a != b)
