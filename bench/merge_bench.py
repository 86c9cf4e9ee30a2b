"""Merge throughput: how many changes per second one core merges into resource states.

The changes are built first, outside the timed region, the way a practice makes
them: three sites create ~500-byte allergies, observations and medication
orders with Japanese display text, then edit them (one to three elements at a
time) on their own replicas, pulling each other's changes now and then, so
some edits are concurrent and registers hold several heads.  The timed region
is `conflict.merge` of every change, in hub order, into an empty in-memory
dict of states: what a site does when it restores from the hub.

    python -c "import sys; sys.path.insert(0, '.'); \\
        from bench.merge_bench import run_merge_bench; print(run_merge_bench())"

Target (docs/performance.md, the merge step's budget): at least 30,000 changes/s.
"""

from __future__ import annotations

import gc
import random
import time
from typing import Any, Final
from uuid import UUID

from conflict import ResourceState, materialize, merge, plan_set
from sync_protocol.hlc import pack
from sync_protocol.models import Change, ChangeOp

TARGET_CHANGES_PER_S: Final = 30_000
SITES: Final = (UUID(int=0x0192_0000_0000_7000_8000_0000_0000_0001),
                UUID(int=0x0192_0000_0000_7000_8000_0000_0000_0002),
                UUID(int=0x0192_0000_0000_7000_8000_0000_0000_0003))
#: A site pulls the others' changes after this many of its own edits (on average).
EDITS_BETWEEN_PULLS: Final = 40
START_MS: Final = 1_714_000_000_000

Key = tuple[str, str]

_ALLERGENS: Final = ("ペニシリン系抗菌薬", "セフェム系抗菌薬", "卵", "小麦", "そば", "ヨード造影剤")
_REACTIONS: Final = ("全身に蕁麻疹", "呼吸困難と喘鳴", "血圧低下", "口唇の腫脹")
_TESTS: Final = (("8480-6", "収縮期血圧", "mm[Hg]"), ("2339-0", "血糖値", "mg/dL"),
                 ("718-7", "ヘモグロビン", "g/dL"), ("8310-5", "体温", "Cel"))
_DRUGS: Final = ("アムロジピン錠5mg", "ロキソプロフェンナトリウム錠60mg",
                 "メトホルミン塩酸塩錠250mg", "ランソプラゾールOD錠15mg")
_DOSES: Final = ("1日1回 朝食後 1錠 14日分", "1日2回 朝夕食後 1錠 7日分", "1日3回 毎食後 1錠 5日分",
                 "疼痛時 1回1錠 頓用 10回分")


def _coding(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _new_resource(rng: random.Random, kind: str, rid: str, patient: str) -> dict[str, Any]:
    subject = {"reference": f"Patient/{patient}", "display": "山田 太郎 ヤマダ タロウ"}
    if kind == "AllergyIntolerance":
        allergen = rng.choice(_ALLERGENS)
        return {
            "resourceType": kind, "id": rid, "patient": subject,
            "clinicalStatus": _coding("http://terminology.hl7.org/CodeSystem/"
                                      "allergyintolerance-clinical", "active", "有効"),
            "verificationStatus": _coding("http://terminology.hl7.org/CodeSystem/"
                                          "allergyintolerance-verification", "confirmed", "確定"),
            "type": "allergy", "category": ["medication"], "criticality": "high",
            "code": {"text": allergen},
            "reaction": [{"manifestation": [{"text": rng.choice(_REACTIONS)}],
                          "severity": "severe"}],
            "recordedDate": "2024-04-25",
        }
    if kind == "Observation":
        code, name, unit = rng.choice(_TESTS)
        return {
            "resourceType": kind, "id": rid, "status": "final", "subject": subject,
            "category": [_coding("http://terminology.hl7.org/CodeSystem/observation-category",
                                 "vital-signs", "バイタルサイン")],
            "code": _coding("http://loinc.org", code, name),
            "effectiveDateTime": "2024-04-25T09:30:00+09:00",
            "valueQuantity": {"value": round(rng.uniform(50, 180), 1), "unit": unit,
                              "system": "http://unitsofmeasure.org", "code": unit},
            "note": [{"text": "安静座位にて測定"}],
        }
    return {
        "resourceType": kind, "id": rid, "status": "active", "intent": "order", "subject": subject,
        "medicationCodeableConcept": {"text": rng.choice(_DRUGS)},
        "authoredOn": "2024-04-25",
        "dosageInstruction": [{"text": rng.choice(_DOSES), "timing": {"code": {"text": "毎日"}}}],
        "dispenseRequest": {"quantity": {"value": 14, "unit": "錠"}},
        "note": [{"text": "腎機能に注意"}],
    }


def _edit(rng: random.Random, resource: dict[str, Any]) -> dict[str, Any]:
    """`resource` with one to three elements changed, as a clinician's save would.

    Top-level values are replaced, never changed in place, so a shallow copy will do.
    """
    out = dict(resource)
    kind = out["resourceType"]
    for _ in range(rng.randint(1, 3)):
        roll = rng.random()
        if kind == "AllergyIntolerance":
            if roll < 0.4:
                out["criticality"] = rng.choice(("low", "high", "unable-to-assess"))
            elif roll < 0.7:
                out["reaction"] = [{"manifestation": [{"text": rng.choice(_REACTIONS)}],
                                    "severity": rng.choice(("mild", "moderate", "severe"))}]
            else:
                count = rng.randint(1, 9)
                out["note"] = [{"text": f"{rng.choice(_REACTIONS)}の既往あり 計{count}回"}]
        elif kind == "Observation":
            if roll < 0.5:
                out["valueQuantity"] = {**out.get("valueQuantity", {}),
                                        "value": round(rng.uniform(50, 180), 1)}
            elif roll < 0.7:
                out["status"] = rng.choice(("final", "amended", "corrected"))
            else:
                out["note"] = [{"text": f"再検査 {rng.randint(1, 9)}回目"}]
        else:
            if roll < 0.4:
                out["dosageInstruction"] = [{"text": rng.choice(_DOSES),
                                             "timing": {"code": {"text": "毎日"}}}]
            elif roll < 0.6:
                out["status"] = rng.choice(("active", "on-hold", "stopped"))
            else:
                out["note"] = [{"text": f"次回 {rng.randint(1, 28)}日後に再評価"}]
    return out


class _Site:
    """One edge making changes on its own replica (generation only, not timed)."""

    def __init__(self, site_id: UUID) -> None:
        self.id = site_id
        self.seq = 0
        self.hlc = pack(START_MS)
        self.states: dict[Key, ResourceState] = {}
        self.applied: dict[UUID, int] = {}
        self.cursor = 0

    def save(self, resource: dict[str, Any], now_ms: int) -> Change:
        key = (resource["resourceType"], resource["id"])
        elements, replaces = plan_set(self.states.get(key), resource)
        self.seq += 1
        self.hlc = max(self.hlc + 1, pack(now_ms))
        change = Change(resource_type=key[0], resource_id=key[1], op=ChangeOp.SET,
                        elements=elements, replaces=replaces, hlc=self.hlc, origin=self.id,
                        seq=self.seq, user="dr-sato", device="ward-pc-2")
        self.states[key] = merge(self.states.get(key), change)
        self.applied[self.id] = self.seq
        return change

    def pull(self, hub: list[Change]) -> None:
        """Apply the hub log after this site's cursor (its own changes are skipped)."""
        start, self.cursor = self.cursor, len(hub)
        for change in hub[start:]:
            if change.seq <= self.applied.get(change.origin, 0):
                continue
            key = (change.resource_type, change.resource_id)
            self.states[key] = merge(self.states.get(key), change)
            self.applied[change.origin] = change.seq
            self.hlc = max(self.hlc, change.hlc)


def build_changes(n_changes: int = 20_000, n_resources: int = 2_000, seed: int = 7
                  ) -> list[Change]:
    """Changes of a three-site practice, in hub order (see the module docstring)."""
    rng = random.Random(seed)
    sites = [_Site(s) for s in SITES]
    hub: list[Change] = []
    keys: list[Key] = []
    now_ms = START_MS
    kinds = ("AllergyIntolerance", "Observation", "MedicationRequest")
    for i in range(min(n_resources, n_changes)):
        site = sites[i % len(sites)]
        kind = kinds[i % len(kinds)]
        rid = f"0192f3a0-{i:04x}-7000-8000-{rng.getrandbits(48):012x}"
        now_ms += rng.randint(0, 3)
        hub.append(site.save(_new_resource(rng, kind, rid, f"pat-{i // 5}"), now_ms))
        keys.append((kind, rid))
    for site in sites:
        site.pull(hub)
    while len(hub) < n_changes:
        site = rng.choice(sites)
        key = rng.choice(keys)
        now_ms += rng.randint(0, 3)
        current = materialize(site.states[key])
        assert current is not None  # the bench never deletes
        hub.append(site.save(_edit(rng, current), now_ms))
        if rng.random() < 1 / EDITS_BETWEEN_PULLS:
            site.pull(hub)
    return hub


def run_merge_bench(n_changes: int = 20_000, repeats: int = 3) -> dict[str, float]:
    """Time merging `n_changes` realistic changes on one core; best of `repeats` runs.

    Returns merge_changes_per_s (the figure to watch), and for context the
    number of changes and resources, the mean element bytes a change carries,
    the mean canonical size of a resource, and the share of registers left
    with several heads (concurrent edits).
    """
    changes = build_changes(n_changes)
    best_s = float("inf")
    states: dict[Key, ResourceState] = {}
    # The prebuilt input (20,000 pydantic changes) is not part of what an edge holds
    # while applying one pulled batch; freeze it so the cyclic collector does not
    # walk it again and again inside the timed region.  Collections caused by the
    # merge's own allocations still count.
    gc.collect()
    gc.freeze()
    try:
        for _ in range(repeats):
            states = {}
            start = time.perf_counter()
            for change in changes:
                key = (change.resource_type, change.resource_id)
                states[key] = merge(states.get(key), change)
            best_s = min(best_s, time.perf_counter() - start)
    finally:
        gc.unfreeze()
    element_bytes = sum(len(v or b"") for c in changes for v in c.elements.values())
    registers = [r for s in states.values() for r in s.registers.values()]
    creates = [c for c in changes if not c.replaces]
    return {
        "merge_changes_per_s": round(len(changes) / best_s),
        "target_changes_per_s": TARGET_CHANGES_PER_S,
        "changes": len(changes),
        "resources": len(states),
        "mean_change_element_bytes": round(element_bytes / len(changes)),
        "mean_create_element_bytes": round(
            sum(len(v or b"") for c in creates for v in c.elements.values()) / len(creates)),
        "multi_head_register_share": round(
            sum(len(r.heads) > 1 for r in registers) / len(registers), 4),
    }
