"""A simulated practice for property tests: sites edit, delete and sync through a hub.

A *script* is plain data (tuples of ints and strings), drawn by `scripts()` and
run by `simulate()`, so any script hypothesis finds can be pinned as an
`@example` literal.  Sites keep their own replicas and build every change with
`plan_set` / `plan_delete` on what they have seen, so `replaces` are realistic
and causally consistent: a site pushes its changes to the hub log and pulls a
prefix of it (hub order), as the real edge does.

    script  = (site_ints, resource_indexes, actions)
    actions = ("edit", site, resource, tick, ((slot, option), ...), resolve)
            | ("delete", site, resource, tick)
            | ("sync", site, how_many_to_pull)

`site` and `resource` index `site_ints` and `resource_indexes`; `resource_indexes`
index `CATALOG`; `slot` and `option` are taken modulo what the kind has.  `tick`
advances the shared wall clock (0 lets two sites stamp the same HLC).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from conflict import ResourceState, materialize, merge, plan_delete, plan_set
from sync_protocol.models import Change, ChangeOp, Dot

#: The settings of every property test here: deterministic, and no deadline (the
#: first example pays for imports).
PROPERTY = settings(
    max_examples=200, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

Key = tuple[str, str]
Slot = tuple[frozenset[str], tuple[dict[str, Any], ...]]


def _cc(code: str, display: str = "") -> dict[str, Any]:
    coding: dict[str, Any] = {"system": "http://example.jp/cs", "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


_PHONE_1 = {"system": "phone", "value": "03-1111"}
_PHONE_2 = {"system": "phone", "value": "090-2222"}
_MRN_1 = {"system": "urn:oid:1.2.392.100495.20.3.51", "value": "1"}
_MRN_2 = {"system": "urn:oid:1.2.392.100495.20.3.51", "value": "2"}
_INSURED = {"system": "urn:oid:1.2.392.100495.20.3.61", "value": "9"}


def _slot(*options: dict[str, Any]) -> Slot:
    keys = frozenset(k for option in options for k in option)
    return keys, options


#: Per kind: the resource a site creates, and the slots an edit can change.  Each
#: slot governs some keys; an option replaces them ({} removes them all).
KINDS: dict[str, tuple[dict[str, Any], tuple[Slot, ...]]] = {
    "AllergyIntolerance": (
        {"patient": {"reference": "Patient/pat-1"}, "code": {"text": "ペニシリン"},
         "criticality": "low", "clinicalStatus": _cc("active"),
         "verificationStatus": _cc("confirmed")},
        (
            _slot({"criticality": "low"}, {"criticality": "high"}, {}),
            _slot({"code": {"text": "ペニシリン"}}, {"code": {"text": "セフェム系抗菌薬"}}),
            _slot({"onsetDateTime": "2020-01-01"}, {"onsetString": "幼少期"}, {}),
            _slot({"clinicalStatus": _cc("active"), "verificationStatus": _cc("confirmed")},
                  {"clinicalStatus": _cc("resolved"), "verificationStatus": _cc("confirmed")},
                  {"verificationStatus": _cc("entered-in-error")}),
            _slot({"recordedDate": "2024-01-01"}, {"recordedDate": "2024-02-02"}, {}),
            _slot({"note": [{"text": "皮疹"}]}, {"note": [{"text": "呼吸困難"}]}, {}),
        ),
    ),
    "Observation": (
        {"status": "final", "code": {"text": "血圧"}, "subject": {"reference": "Patient/pat-1"},
         "valueQuantity": {"value": 120, "unit": "mmHg"}},
        (
            _slot({"valueQuantity": {"value": 120, "unit": "mmHg"}},
                  {"valueQuantity": {"value": 135.5, "unit": "mmHg"}},
                  {"valueString": "測定不能"},
                  {"valueString": "測定不能", "_valueString": {"extension": [{"url": "x"}]}},
                  {"dataAbsentReason": _cc("unknown")}),
            _slot({"status": "final"}, {"status": "amended"}),
            _slot({"issued": "2024-05-01T09:00:00+09:00"}, {"issued": "2024-05-02T09:00:00+09:00"},
                  {}),
            _slot({"effectiveDateTime": "2024-05-01"},
                  {"effectivePeriod": {"start": "2024-05-01"}}, {}),
        ),
    ),
    "MedicationRequest": (
        {"status": "active", "intent": "order", "subject": {"reference": "Patient/pat-1"},
         "medicationCodeableConcept": {"text": "アムロジピン錠5mg"},
         "dosageInstruction": [{"text": "1日1回 朝食後 1錠"}]},
        (
            _slot({"status": "active"}, {"status": "stopped"}, {"status": "on-hold"}),
            _slot({"dosageInstruction": [{"text": "1日1回 朝食後 1錠"}]},
                  {"dosageInstruction": [{"text": "1日2回 朝夕食後 1錠"}]}),
            _slot({"medicationCodeableConcept": {"text": "アムロジピン錠5mg"}},
                  {"medicationReference": {"reference": "Medication/m1"}}),
            _slot({"authoredOn": "2024-05-01"}, {"authoredOn": "2024-05-03"}, {}),
            _slot({"doNotPerform": True}, {}),
        ),
    ),
    "Patient": (
        {"name": [{"family": "山田", "given": ["太郎"]}], "gender": "male",
         "birthDate": "1970-01-01"},
        (
            _slot({"birthDate": "1970-01-01"}, {"birthDate": "1970-01-10"},
                  {"birthDate": "1970-01-01", "_birthDate": {"extension": [{"url": "t"}]}}),
            _slot({"name": [{"family": "山田", "given": ["太郎"]}]},
                  {"name": [{"family": "ヤマダ", "given": ["タロウ"]}]}),
            _slot({"generalPractitioner": [{"reference": "Practitioner/1"}]},
                  {"generalPractitioner": [{"reference": "Practitioner/2"}]}, {}),
            _slot({"deceasedBoolean": False}, {"deceasedDateTime": "2024-01-01"}, {}),
            # Keyed lists (items listed in canonical order, as they read back).
            _slot({"telecom": [_PHONE_1]}, {"telecom": [_PHONE_1, _PHONE_2]},
                  {"telecom": [_PHONE_2]}, {}),
            _slot({"identifier": [_MRN_1]}, {"identifier": [_MRN_2]},
                  {"identifier": [_MRN_1, _INSURED]}, {}),
        ),
    ),
    "Condition": (
        {"code": {"text": "高血圧症"}, "subject": {"reference": "Patient/pat-1"},
         "clinicalStatus": _cc("active"), "verificationStatus": _cc("confirmed")},
        (
            _slot({"code": {"text": "高血圧症"}}, {"code": {"text": "本態性高血圧症"}}),
            _slot({"clinicalStatus": _cc("active")},
                  {"clinicalStatus": _cc("resolved"), "abatementDateTime": "2024-04-01"}),
            _slot({"recordedDate": "2024-01-01"}, {"recordedDate": "2024-03-01"}, {}),
        ),
    ),
    "Encounter": (
        {"status": "in-progress", "class": {"code": "AMB"},
         "subject": {"reference": "Patient/pat-1"}},
        (
            _slot({"status": "in-progress"}, {"status": "finished"}),
            _slot({"serviceType": {"text": "内科"}}, {"serviceType": {"text": "外科"}}, {}),
        ),
    ),
    "DocumentReference": (
        {"status": "current", "subject": {"reference": "Patient/pat-1"},
         "content": [{"attachment": {"contentType": "text/plain", "data": "5YaF56eR"}}]},
        (
            _slot({"content": [{"attachment": {"contentType": "text/plain", "data": "5YaF56eR"}}]},
                  {"content": [{"attachment": {"contentType": "text/plain", "data": "5aSW"}}]}),
            _slot({"description": "紹介状"}, {"description": "診療情報提供書"}, {}),
        ),
    ),
    # A kind without rules: merged all the same, nothing guarded or grouped.
    "Basic": (
        {"code": {"text": "メモ"}},
        (
            _slot({"code": {"text": "メモ"}}, {"code": {"text": "連絡"}}),
            _slot({"valueQuantity": {"value": 1}}, {"valueString": "一"}, {}),
        ),
    ),
}

#: (resourceType, id) of every resource a script can use.
CATALOG: tuple[Key, ...] = tuple((kind, f"{kind.lower()}-1") for kind in KINDS)


def make_change(site: UUID, seq: int, hlc: int, key: Key,
                plan: tuple[dict[str, bytes | None], dict[str, tuple[Dot, ...]]],
                op: ChangeOp = ChangeOp.SET) -> Change:
    """The `Change` an edge would build from a plan."""
    elements, replaces = plan
    return Change(resource_type=key[0], resource_id=key[1], op=op, elements=elements,
                  replaces=replaces, hlc=hlc, origin=site, seq=seq, user=f"user-{site.int % 97}")


@dataclass
class Site:
    """One edge: its replica, clock, sequence counter, log and hub cursor."""

    id: UUID
    seq: int = 0
    hlc: int = 0
    states: dict[Key, ResourceState] = field(default_factory=dict)
    log: list[Change] = field(default_factory=list)
    seen: set[Dot] = field(default_factory=set)
    pushed: int = 0
    cursor: int = 0

    def _stamp(self, now: int) -> int:
        self.hlc = max(self.hlc + 1, now)
        return self.hlc

    def _commit(self, key: Key, change: Change) -> Change:
        self.states[key] = merge(self.states.get(key), change)
        self.seen.add(change.dot)
        self.log.append(change)
        return change

    def view(self, key: Key) -> dict[str, Any] | None:
        state = self.states.get(key)
        return None if state is None else materialize(state)

    def save(self, resource: dict[str, Any], *, now: int, resolve: bool = True) -> Change:
        """PUT `resource` here: plan on the local state, stamp, merge locally."""
        key = (resource["resourceType"], resource["id"])
        plan = plan_set(self.states.get(key), resource, resolve=resolve)
        self.seq += 1
        return self._commit(key, make_change(self.id, self.seq, self._stamp(now), key, plan))

    def delete(self, key: Key, *, now: int, resolve: bool = True) -> Change:
        plan = plan_delete(self.states[key], resolve=resolve)
        self.seq += 1
        change = make_change(self.id, self.seq, self._stamp(now), key, plan, ChangeOp.DELETE)
        return self._commit(key, change)

    def receive(self, changes: list[Change]) -> None:
        """Apply changes from elsewhere (skipping ones already applied), observing HLCs."""
        for change in changes:
            if change.dot in self.seen:
                continue
            key = (change.resource_type, change.resource_id)
            self.states[key] = merge(self.states.get(key), change)
            self.seen.add(change.dot)
            self.hlc = max(self.hlc, change.hlc)


@dataclass
class Practice:
    sites: list[Site]
    hub: list[Change]
    #: Every change made, in the order they were made.
    changes: list[Change]
    #: (resource as saved, the site's state right after, resolve) for every save.
    saves: list[tuple[dict[str, Any], ResourceState, bool]]

    def sync_all(self) -> None:
        """Push everything, then let every site pull the whole hub log."""
        for site in self.sites:
            self.hub.extend(site.log[site.pushed:])
            site.pushed = len(site.log)
        for site in self.sites:
            site.receive(self.hub)
            site.cursor = len(self.hub)


def edited(key: Key, current: dict[str, Any] | None, edits: tuple[tuple[int, int], ...]
           ) -> dict[str, Any]:
    """`current` (or the kind's template if there is none) with `edits` applied."""
    template, slots = KINDS[key[0]]
    base = current if current is not None else template
    resource = copy.deepcopy(base)
    resource.update(resourceType=key[0], id=key[1])
    for slot_index, option_index in edits:
        keys, options = slots[slot_index % len(slots)]
        for k in keys:
            resource.pop(k, None)
        resource.update(copy.deepcopy(options[option_index % len(options)]))
    return resource


def simulate(script: Any) -> Practice:
    """Run `script` (see the module docstring) and return the practice it leaves."""
    site_ints, resource_indexes, actions = script
    sites = [Site(UUID(int=n)) for n in site_ints]
    keys = [CATALOG[i % len(CATALOG)] for i in resource_indexes]
    practice = Practice(sites, [], [], [])
    now = 1_000
    for action in actions:
        kind, site = action[0], sites[action[1] % len(sites)]
        if kind == "sync":
            practice.hub.extend(site.log[site.pushed:])
            site.pushed = len(site.log)
            upto = min(len(practice.hub), site.cursor + action[2])
            site.receive(practice.hub[site.cursor:upto])
            site.cursor = upto
            continue
        key = keys[action[2] % len(keys)]
        now += action[3]
        if kind == "delete":
            if key in site.states:
                practice.changes.append(site.delete(key, now=now))
            continue
        resolve = bool(action[5]) if len(action) > 5 else True
        resource = edited(key, site.view(key), action[4])
        practice.changes.append(site.save(resource, now=now, resolve=resolve))
        practice.saves.append((resource, site.states[key], resolve))
    return practice


@st.composite
def scripts(draw: st.DrawFn, max_actions: int = 24) -> Any:
    """Scripts of a practice with 2-4 sites and 1-3 resources (see the module docstring)."""
    n_sites = draw(st.integers(2, 4))
    site_ints = draw(st.lists(st.integers(1, (1 << 128) - 1), min_size=n_sites,
                              max_size=n_sites, unique=True))
    resources = draw(st.lists(st.integers(0, len(CATALOG) - 1), min_size=1, max_size=3,
                              unique=True))
    site = st.integers(0, n_sites - 1)
    res = st.integers(0, len(resources) - 1)
    tick = st.integers(0, 2)
    edits = st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7)), max_size=3).map(tuple)
    edit = st.tuples(st.just("edit"), site, res, tick, edits, st.sampled_from([1, 1, 1, 0]))
    delete = st.tuples(st.just("delete"), site, res, tick)
    sync = st.tuples(st.just("sync"), site, st.integers(0, 30))
    actions = draw(st.lists(st.one_of(edit, edit, sync, sync, delete), min_size=1,
                            max_size=max_actions))
    return (tuple(site_ints), tuple(resources), tuple(actions))
