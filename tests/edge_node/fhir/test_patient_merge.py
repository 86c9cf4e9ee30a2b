"""Merge planning: the survivor rule, and concurrent merges converging with no conflict.

Each simulated site plans with `plan_merge` / `plan_unmerge` on its own replica and
turns the planned writes into changes with `conflict.plan_set`, as the edge's writer
does; replicas then exchange changes in every order.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import orjson
from hypothesis import given
from hypothesis import strategies as st

from conflict import ResourceState, conflicts, materialize, merge, plan_set
from edge_node.fhir.patient_merge import (
    Found,
    Plan,
    plan_merge,
    plan_unmerge,
    record_fields,
    record_key,
    survivor,
)
from edge_node.fhir.write_op import WriteOp
from sync_protocol.models import Change, ChangeOp

Key = tuple[str, str]
States = dict[Key, ResourceState]
OLD, NEW = "0190a0a0-0000-7000-8000-000000000001", "0190a0a0-0000-7000-8000-000000000002"
SITES = [UUID(int=i) for i in (1, 2, 3)]


@given(st.text(min_size=1, max_size=10), st.text(min_size=1, max_size=10))
def test_the_smaller_id_survives_whichever_way_it_is_asked(a: str, b: str) -> None:
    source, target = survivor(a, b)
    assert survivor(b, a) == (source, target)
    assert {source, target} == {a, b} and (a == b or target < source)


class Site:
    """A replica that writes changes stamped with its own dots."""

    def __init__(self, site: UUID, states: States) -> None:
        self.site, self.states, self.seq = site, dict(states), 0

    def write(self, ops: Sequence[WriteOp], hlc: int) -> list[Change]:
        out = []
        for op in ops:
            assert op.resource is not None
            key = (op.resource_type, op.resource_id)
            elements, replaces = plan_set(self.states.get(key), op.resource, resolve=False)
            self.seq += 1
            change = Change(resource_type=key[0], resource_id=key[1], op=ChangeOp.SET,
                            elements=elements, replaces=replaces, hlc=hlc, origin=self.site,
                            seq=self.seq, user="dr")
            self.apply([change])
            out.append(change)
        return out

    def apply(self, changes: Sequence[Change]) -> None:
        for change in changes:
            key = (change.resource_type, change.resource_id)
            self.states[key] = merge(self.states.get(key), change)

    def found(self, key: Key) -> Found | None:
        state = self.states.get(key)
        return None if state is None else Found(key[0], key[1], "1", materialize(state))

    def naming(self, pid: str) -> list[Found]:
        out = []
        for key in sorted(self.states):
            f = self.found(key)
            if key[0] != "Patient" and f and f.resource and \
                    f.resource.get("subject", {}).get("reference") == f"Patient/{pid}":
                out.append(f)
        return out

    def record_values(self, source: str, target: str) -> list[Any]:
        state = self.states.get(record_key(source, target))
        reg = state.registers.get("extension") if state else None
        return [orjson.loads(h.value) for h in reg.heads if h.value] if reg else []

    def plan_merge(self, asked: tuple[str, str]) -> Plan:
        source, target = survivor(*asked)
        return plan_merge(source, target, {p: self.found(("Patient", p)) for p in asked},
                          self.naming(source), self.found(record_key(source, target)),
                          self.record_values(source, target))

    def plan_unmerge(self, source: str, target: str) -> Plan:
        _, _, refs = record_fields(self.record_values(source, target))
        moved = {ref: self.found((ref.split("/")[0], ref.split("/")[1])) for ref in refs}
        patients = {p: self.found(("Patient", p)) for p in (source, target)}
        return plan_unmerge(source, target, patients, moved, self.found(record_key(source, target)),
                            self.record_values(source, target))


def visit(vid: str, pid: str) -> dict[str, Any]:
    return {"resourceType": "Encounter", "id": vid, "status": "finished",
            "class": {"code": "AMB"}, "subject": {"reference": f"Patient/{pid}"}}


def registered() -> tuple[States, list[Change]]:
    """Both records and a visit each, written at site 1 and seen by every site."""
    origin = Site(SITES[0], {})
    changes = origin.write([
        WriteOp("update", "Patient", OLD, {"resourceType": "Patient", "id": OLD,
                                           "name": [{"text": "ヤマダ タロウ"}]}),
        WriteOp("update", "Patient", NEW, {"resourceType": "Patient", "id": NEW,
                                           "name": [{"text": "やまだ たろう"}]}),
        WriteOp("update", "Encounter", "v-old", visit("v-old", OLD)),
        WriteOp("update", "Encounter", "v-new", visit("v-new", NEW)),
    ], hlc=10)
    return origin.states, changes


def subjects(states: States) -> dict[str, str]:
    out = {}
    for (rtype, rid), state in states.items():
        body = materialize(state)
        if rtype == "Encounter" and body:
            out[rid] = body["subject"]["reference"]
    return out


def test_opposite_concurrent_merges_converge_in_every_order_with_no_conflict() -> None:
    base, _ = registered()
    a, b, c = (Site(s, base) for s in SITES)
    # Site b holds a visit the others have not seen yet.
    extra = b.write([WriteOp("update", "Encounter", "v-late", visit("v-late", NEW))], hlc=20)
    from_a = a.write(a.plan_merge((OLD, NEW)).ops, hlc=30)
    from_b = b.write(b.plan_merge((NEW, OLD)).ops, hlc=31)
    finals = []
    for order in itertools.permutations([extra, from_a, from_b]):
        site = Site(SITES[2], base)
        for batch in order:
            site.apply(batch)
        finals.append(site.states)
    assert all(f == finals[0] for f in finals)
    final = finals[0]
    assert [r for s in final.values() for r in conflicts(s)] == []
    assert subjects(final) == {v: f"Patient/{OLD}" for v in ("v-old", "v-new", "v-late")}
    kept = materialize(final[("Patient", NEW)])
    assert kept is not None and kept["active"] is False
    assert kept["link"] == [{"other": {"reference": f"Patient/{OLD}"}, "type": "replaced-by"}]

    # The undo at a third site takes both sites' lists: every visit goes back.
    c.apply(extra + from_a + from_b)
    undo = c.write(c.plan_unmerge(NEW, OLD).ops, hlc=40)
    a.apply(extra + from_b + undo)
    assert subjects(a.states) == {"v-old": f"Patient/{OLD}", "v-new": f"Patient/{NEW}",
                                  "v-late": f"Patient/{NEW}"}
    restored = materialize(a.states[("Patient", NEW)])
    assert restored is not None and "link" not in restored and "active" not in restored
    assert [r for s in a.states.values() for r in conflicts(s)] == []


def test_identical_merges_at_two_sites_are_one_value() -> None:
    base, _ = registered()
    a, b = Site(SITES[0], base), Site(SITES[1], base)
    plan_a, plan_b = a.plan_merge((NEW, OLD)), b.plan_merge((NEW, OLD))
    assert plan_a.ops == plan_b.ops
    from_a, from_b = a.write(plan_a.ops, hlc=30), b.write(plan_b.ops, hlc=30)
    a.apply(from_b)
    b.apply(from_a)
    assert a.states == b.states
    assert [r for s in a.states.values() for r in conflicts(s)] == []
