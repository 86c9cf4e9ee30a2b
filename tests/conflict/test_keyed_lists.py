"""Keyed lists: Patient identifier, telecom and address merge item by item."""

from __future__ import annotations

import hashlib
import itertools
import random
import re
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conflict import (
    ShapeError,
    canonical_dump,
    check_elements,
    conflicts,
    element_json,
    materialize,
    materialize_json,
    merge,
    merge_all,
    plan_set,
    rules_for,
    split_resource,
)
from conflict.rules import KEYED_REGISTER, element_of
from sync_protocol.canonical import canonical_json
from sync_protocol.models import DELETED, REGISTER_PATTERN, Change, ChangeOp
from tests.conflict.practice import PROPERTY, Site

OID = "urn:oid:1.2.392.100495.20.3.51"
INSURANCE = "urn:oid:1.2.392.100495.20.3.61"


def phone(number: str, use: str = "home") -> dict[str, Any]:
    return {"system": "phone", "value": number, "use": use}


def patient(**elements: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": "p1", "birthDate": "1970-01-01", **elements}


def sites(n: int) -> list[Site]:
    return [Site(UUID(int=0xA0 + i)) for i in range(n)]


def test_a_list_splits_into_one_register_per_item_key() -> None:
    regs = split_resource(patient(telecom=[phone("03-1111"), phone("03-2222")],
                                  identifier=[{"system": OID, "value": "1"}]))
    keyed = sorted(name for name in regs if name.endswith("]"))
    assert len(keyed) == 3
    for name in keyed:
        assert KEYED_REGISTER.fullmatch(name)
        assert element_of(name) in {"telecom", "identifier"}
        assert regs[name].startswith(b"[")
    assert "telecom" not in regs
    check_elements("Patient", {**regs, DELETED: b"false"})


def test_items_read_back_sorted_and_both_paths_agree() -> None:
    resource = patient(telecom=[phone("090-9"), phone("03-1")],
                       address=[{"city": "札幌"}, {"city": "那覇"}])
    site = sites(1)[0]
    site.save(resource, now=10)
    state = site.states[("Patient", "p1")]
    view = materialize(state)
    assert view is not None
    assert view["telecom"] == sorted(resource["telecom"], key=canonical_json)
    assert materialize_json(state) == canonical_json(view)
    assert element_json(state, "telecom") == canonical_json(view["telecom"])


def test_the_order_of_a_list_is_not_an_edit() -> None:
    site = sites(1)[0]
    site.save(patient(telecom=[phone("1"), phone("2")]), now=10)
    elements, _ = plan_set(site.states[("Patient", "p1")],
                           patient(telecom=[phone("2"), phone("1")]), resolve=False)
    assert set(elements) == {DELETED}


def test_two_sites_adding_different_numbers_both_keep_theirs() -> None:
    a, b, c = sites(3)
    base = a.save(patient(telecom=[phone("03-1111")]), now=10)
    b.receive([base])
    one = a.save(patient(telecom=[phone("03-1111"), phone("090-2222")]), now=11)
    two = b.save(patient(telecom=[phone("03-1111"), phone("080-3333")]), now=11)
    for order in itertools.permutations([base, one, two]):
        state = merge_all(order)[("Patient", "p1")]
        view = materialize(state)
        assert view is not None
        assert {t["value"] for t in view["telecom"]} == {"03-1111", "090-2222", "080-3333"}
        assert conflicts(state) == ()
    c.receive([two, one, base])
    assert c.view(("Patient", "p1")) == materialize(merge_all([base, one, two])[("Patient",
                                                                                  "p1")])


def test_a_removal_and_an_addition_both_take_effect() -> None:
    a, b = sites(2)
    base = a.save(patient(telecom=[phone("1"), phone("2")]), now=10)
    b.receive([base])
    removed = a.save(patient(telecom=[phone("1")]), now=11)
    added = b.save(patient(telecom=[phone("1"), phone("2"), phone("3")]), now=11)
    state = merge_all([base, added, removed])[("Patient", "p1")]
    view = materialize(state)
    assert view is not None
    assert [t["value"] for t in view["telecom"]] == ["1", "3"]
    assert conflicts(state) == ()


def test_editing_a_number_removed_elsewhere_is_flagged() -> None:
    a, b = sites(2)
    base = a.save(patient(telecom=[phone("1")]), now=10)
    b.receive([base])
    removed = a.save(patient(), now=11)
    edited = b.save(patient(telecom=[phone("1", use="work")]), now=11)
    state = merge_all([base, removed, edited])[("Patient", "p1")]
    [record] = conflicts(state)
    assert element_of(record.register) == "telecom" and record.rule == "guarded"


def test_one_system_changed_at_two_sites_keeps_both_identifiers_and_is_flagged() -> None:
    a, b, c = sites(3)
    base = a.save(patient(identifier=[{"system": OID, "value": "100"}]), now=10)
    b.receive([base])
    one = a.save(patient(identifier=[{"system": OID, "value": "101"}]), now=11)
    two = b.save(patient(identifier=[{"system": OID, "value": "102"}]), now=12)
    state = merge_all([base, two, one])[("Patient", "p1")]
    view = materialize(state)
    assert view is not None
    assert [i["value"] for i in view["identifier"]] == ["101", "102"]  # both stay
    [record] = conflicts(state)
    assert record.rule == "identifier"
    assert {h.dot for h in record.heads} == {one.dot, two.dot}
    # A plain save of what was read does not close it ...
    c.receive([base, one, two])
    c.save({**view, "birthDate": "1970-01-02"}, now=13, resolve=False)
    assert [r.rule for r in conflicts(c.states[("Patient", "p1")])] == ["identifier"]
    # ... a resolving save does, keeping what the clinician chose.
    c.save({**view, "identifier": [{"system": OID, "value": "102"}]}, now=14)
    after = c.states[("Patient", "p1")]
    assert conflicts(after) == ()
    resolved = materialize(after)
    assert resolved is not None and resolved["identifier"] == [{"system": OID, "value": "102"}]


def test_identifiers_of_different_systems_merge() -> None:
    a, b = sites(2)
    base = a.save(patient(), now=10)
    b.receive([base])
    one = a.save(patient(identifier=[{"system": OID, "value": "1"}]), now=11)
    two = b.save(patient(identifier=[{"system": INSURANCE, "value": "2"}]), now=11)
    state = merge_all([two, base, one])[("Patient", "p1")]
    view = materialize(state)
    assert view is not None and len(view["identifier"]) == 2
    assert conflicts(state) == ()


def test_a_whole_list_register_of_an_older_build_still_reads_and_is_replaced() -> None:
    old = Change(resource_type="Patient", resource_id="p1", op=ChangeOp.SET,
                 elements={DELETED: b"false", "telecom": canonical_json([phone("1")]),
                           "birthDate": b'"1970-01-01"'},
                 replaces={}, hlc=5, origin=UUID(int=1), seq=1, user="u")
    state = merge(None, old)
    view = materialize(state)
    assert view is not None and view["telecom"] == [phone("1")]
    assert materialize_json(state) == canonical_json(view)
    elements, _ = plan_set(state, patient(telecom=[phone("1"), phone("2")]))
    assert elements["telecom"] is None
    assert sum(1 for n in elements if n.startswith("telecom[")) == 2


@pytest.mark.parametrize("name, value", [
    ("telecom[0000000000000000]", canonical_json([phone("1")])),  # wrong key
    ("gender[0123456789abcdef]", b'["x"]'),                      # not a keyed element
    ("telecom[ABCDEF0123456789]", b"[]"),                        # not a register name
])
def test_malformed_item_registers_are_refused(name: str, value: bytes) -> None:
    with pytest.raises(ShapeError):
        check_elements("Patient", {DELETED: b"false", name: value})


def test_items_must_be_sorted_and_unique() -> None:
    regs = split_resource(patient(telecom=[phone("1", "home"), phone("1", "work")]))
    [name] = [n for n in regs if n.startswith("telecom[")]
    items = [phone("1", "work"), phone("1", "home")]
    unsorted = b"[" + b",".join(canonical_json(i) for i in items) + b"]"
    with pytest.raises(ShapeError):
        check_elements("Patient", {DELETED: b"false", name: unsorted})
    check_elements("Patient", {DELETED: b"false", name: regs[name]})


def test_a_list_that_is_not_objects_is_refused() -> None:
    with pytest.raises(ShapeError):
        split_resource(patient(telecom=["03-1111"]))
    with pytest.raises(ShapeError):
        split_resource(patient(telecom=[]))


NUMBERS = st.lists(st.sampled_from(["03-1", "03-2", "090-3", "080-4", "06-5"]), unique=True,
                   max_size=4)


@PROPERTY
@given(start=NUMBERS, per_site=st.lists(NUMBERS, min_size=2, max_size=4),
       seed=st.integers(0, 1000))
def test_concurrent_list_edits_merge_item_by_item_in_any_order(
        start: list[str], per_site: list[list[str]], seed: int) -> None:
    """Each site's additions and removals (against the common start) all take effect."""
    group = sites(len(per_site))
    base = group[0].save(patient(telecom=[phone(n) for n in start]) if start else patient(),
                         now=10)
    changes = [base]
    for site, numbers in zip(group, per_site, strict=True):
        site.receive([base])
        changes.append(site.save(patient(telecom=[phone(n) for n in numbers])
                                 if numbers else patient(), now=11))
    removed = {n for numbers in per_site for n in set(start) - set(numbers)}
    added = {n for numbers in per_site for n in set(numbers) - set(start)}
    expected = (set(start) - removed) | added
    dumps = set()
    rnd = random.Random(seed)
    for _ in range(4):
        rnd.shuffle(changes)
        state = merge_all(changes)[("Patient", "p1")]
        view = materialize(state)
        assert view is not None
        assert {t["value"] for t in view.get("telecom", ())} == expected
        assert conflicts(state) == ()
        dumps.add(canonical_dump([state]))
    assert len(dumps) == 1


def test_every_keyed_register_name_matches_the_protocol_pattern() -> None:
    for kind in ("Patient", "Practitioner"):
        rules = rules_for(kind)
        assert set(rules.keyed) == {"identifier", "telecom", "address"}
        for element, keyed in rules.keyed.items():
            name = f"{element}[{keyed.key_of({'system': 's', 'value': 'v'})}]"
            assert re.fullmatch(REGISTER_PATTERN, name)
            assert rules.is_guarded(name) == (element in rules.guarded)


def test_item_keys_follow_the_protocol_formula() -> None:
    """PROTOCOL.md: first 8 bytes of SHA-256 over the canonical JSON of the identity."""
    rules = rules_for("Patient")
    item = {"system": "phone", "value": "03-1111", "use": "home"}
    assert rules.keyed["telecom"].key_of(item) == hashlib.sha256(
        b'["phone","03-1111"]').hexdigest()[:16]
    assert rules.keyed["identifier"].key_of({"system": OID, "value": "1"}) == hashlib.sha256(
        canonical_json([OID])).hexdigest()[:16]
    assert rules.keyed["address"].key_of({"city": "札幌"}) == hashlib.sha256(
        canonical_json({"city": "札幌"})).hexdigest()[:16]
    assert rules.keyed["telecom"].key_of({"value": "1"}) == hashlib.sha256(
        b'[null,"1"]').hexdigest()[:16]
