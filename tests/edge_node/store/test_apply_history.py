"""History keeps what each author wrote, identically at every site (store.apply).

Sites here are the edge's pure write path (`local_write.plan_local_op`, `apply.apply_change`)
without a database: each keeps its stored resources and the history rows the writer
would insert, so every delivery order can be tried.  `tests/edge_node/sync/test_converge.py`
and the practice chaos test check the same through real edges and a hub.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from conflict import canonical_state
from edge_node.errors import EdgeError
from edge_node.fhir.write_op import Actor, WriteOp
from edge_node.store.apply import Applied, Rows, Stored, apply_change
from edge_node.store.group_rows import Overlay
from edge_node.store.local_write import plan_local_op
from sync_protocol.canonical import unpack
from sync_protocol.hlc import HybridClock
from sync_protocol.ids import SiteId
from sync_protocol.models import Change
from sync_protocol.wire import decode_changes

T0 = 1_765_000_000_000
KEY = ("Patient", "p1")


@dataclass
class Site:
    """One site's stored resources, history rows and own changes."""

    name: str
    site_id: SiteId
    clock: HybridClock = field(default_factory=HybridClock)
    stored: dict[tuple[str, str], Stored] = field(default_factory=dict)
    #: version id → (kind, user, origin, JSON), as the history table holds them
    history: dict[str, tuple[str, str, str, bytes | None]] = field(default_factory=dict)
    outbox: list[Change] = field(default_factory=list)
    applied: set[tuple[uuid.UUID, int]] = field(default_factory=set)
    now_ms: int = T0

    def keep(self, rows: Rows) -> None:
        for row in rows.history:
            vid, kind = row[11], row[12]
            assert vid not in self.history or kind == "view", f"{self.name}: {vid} twice"
            self.history.setdefault(vid, (kind, row[5], row[3], row[10]))

    def write(self, resource: dict[str, Any] | None) -> Applied:
        self.now_ms += 1000
        rows = Rows()
        view = Overlay(dict(self.stored))
        op = (WriteOp("delete", *KEY, None) if resource is None
              else WriteOp("update", *KEY, {"resourceType": "Patient", "id": KEY[1], **resource}))
        seq = len(self.outbox) + 1
        applied = plan_local_op(op, view, rows, self.now_ms,
                                Actor(f"user-{self.name}", "clinician", "", "test"),
                                site_id=self.site_id, seq=seq, hlc=self.clock,
                                require_if_match=False)
        self.stored.update(view.changes)
        self.keep(rows)
        if rows.outbox:
            [change] = decode_changes(unpack(rows.outbox[0][1], what="outbox",
                                             max_len=1 << 20),
                                      origin=self.site_id, seq_from=seq)
            self.outbox.append(change)
            self.applied.add((self.site_id, seq))
        return applied

    def receive(self, change: Change) -> None:
        if (change.origin, change.seq) in self.applied:
            return
        self.now_ms += 10
        self.clock.observe(change.hlc, self.now_ms)
        rows = Rows()
        key = (change.resource_type, change.resource_id)
        self.stored[key], _ = apply_change(self.stored.get(key), change, self.now_ms, rows)
        self.keep(rows)
        self.applied.add((change.origin, change.seq))

    def authors(self) -> dict[str, tuple[str, str, str, bytes | None]]:
        return {vid: row for vid, row in self.history.items() if row[0] == "author"}


def sites(*names: str) -> list[Site]:
    return [Site(n, SiteId(uuid.UUID(int=(i + 1) << 64 | 7))) for i, n in enumerate(names)]


def birth_date(site: Site, vid: str) -> Any:
    raw = site.history[vid][3]
    return None if raw is None else orjson.loads(raw).get("birthDate")


def orders(*chains: list[int]) -> list[list[int]]:
    """Every interleaving of `chains` that keeps each chain's own order."""
    flat = [c for chain in chains for c in chain]
    out = []
    for perm in itertools.permutations(flat):
        if all([c for c in perm if c in chain] == chain for chain in chains):
            out.append(list(perm))
    return out


def test_each_authors_birth_date_stays_readable_at_every_site_in_every_order() -> None:
    # Main and branch in sync; the link drops; branch saves a birth date and corrects
    # it, main saves another; the link returns.
    for order in orders([0, 1], [2]):  # indexes into the offline changes below
        main, branch, third = sites("main", "branch", "third")
        created = main.write({"birthDate": "1950-01-01", "gender": "female"})
        for s in (branch, third):
            s.receive(main.outbox[0])
        b1 = branch.write({"birthDate": "1960-02-12", "gender": "female"})
        b2 = branch.write({"birthDate": "1960-02-21", "gender": "female"})
        m1 = main.write({"birthDate": "1961-01-01", "gender": "female"})
        offline = [branch.outbox[0], branch.outbox[1], main.outbox[1]]
        for s in (main, branch):
            for change in offline:
                s.receive(change)
        for i in order:
            third.receive(offline[i])
        wanted = {created.version: ("1950-01-01", "main"), b1.version: ("1960-02-12", "branch"),
                  b2.version: ("1960-02-21", "branch"), m1.version: ("1961-01-01", "main")}
        for s in (main, branch, third):
            assert s.authors() == main.authors(), (s.name, order)
            for vid, (value, author) in wanted.items():
                assert birth_date(s, vid) == value, (s.name, vid, order)
                assert s.history[vid][1] == f"user-{author}"
            # What each site shows is its own view, credited to no user.
            current = s.stored[KEY]
            assert current.vid.startswith("v-") and s.history[current.vid][:2] == ("view", "")
        assert len({canonical_state(s.stored[KEY].state) for s in (main, branch, third)}) == 1
        assert len({s.stored[KEY].vid for s in (main, branch, third)}) == 1


def test_an_edit_without_concurrency_is_served_as_its_authors_version() -> None:
    a, b = sites("a", "b")
    first = a.write({"birthDate": "1950-01-01"})
    b.receive(a.outbox[0])
    second = b.write({"birthDate": "1950-01-02", "gender": "male"})
    a.receive(b.outbox[0])
    for s in (a, b):
        assert s.stored[KEY].vid == second.version
        assert [row[0] for row in s.history.values()] == ["author", "author"]
    assert a.history[first.version] == b.history[first.version]


_VALUES = st.sampled_from(["1950-01-01", "1960-02-12", "1961-01-01", None])
_STEP = st.one_of(
    st.tuples(st.just("write"), st.integers(0, 2), _VALUES, st.sampled_from(["male", "female"])),
    st.tuples(st.just("delete"), st.integers(0, 2), st.none(), st.none()),
    st.tuples(st.just("deliver"), st.integers(0, 2), st.integers(0, 2), st.integers(1, 3)),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_STEP, min_size=1, max_size=24), st.permutations(range(3)))
def test_every_acknowledged_version_reads_the_same_everywhere(steps: list[Any],
                                                              final: list[int]) -> None:
    group = sites("a", "b", "c")
    acked: list[tuple[str, Applied, dict[str, Any] | None]] = []
    for kind, i, x, y in steps:
        site = group[i]
        if kind == "deliver":  # site i receives the next `y` changes of origin x, in order
            origin = group[x]
            pending = [c for c in origin.outbox if (c.origin, c.seq) not in site.applied]
            for change in pending[:y]:
                site.receive(change)
            continue
        if kind == "delete" and KEY not in site.stored:
            continue
        body = None if kind == "delete" else {"gender": y, **({"birthDate": x} if x else {})}
        applied = site.write(body)
        assert not isinstance(applied, EdgeError)
        acked.append((site.name, applied, body))
    for i in final:  # the link returns: everything everywhere, in per-origin order
        for origin in group:
            for change in origin.outbox:
                group[i].receive(change)
    reference = group[0].authors()
    for site in group:
        assert site.authors() == reference  # vread of any version: same bytes everywhere
    for name, applied, body in acked:
        if body is None or applied.json is None:
            continue
        for site in group:
            kind, _, _, raw = site.history[applied.version]
            assert kind == "author" and raw == applied.json, (name, site.name)
            read = orjson.loads(raw)
            for key, value in body.items():
                assert read.get(key) == value
            assert (read["meta"]["versionId"], read["meta"].get("tag")) == (applied.version, None)
    assert len({canonical_state(s.stored[KEY].state) for s in group if KEY in s.stored}) <= 1
