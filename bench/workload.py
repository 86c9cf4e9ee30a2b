"""Realistic chart changes for benchmarks: ~500 bytes of FHIR JSON per change."""

from __future__ import annotations

import random
from uuid import UUID

from sync_protocol.canonical import canonical_json
from sync_protocol.ids import uuid7
from sync_protocol.models import DELETED, LIVE_VALUE, Change, ChangeOp, Dot

BASE_MS = 1_790_000_000_000
_SUBSTANCES = [("J7F7111190", "さば"), ("J7F1010000", "卵"), ("1149019", "ペニシリン系抗生物質"),
               ("J7F4010000", "そば"), ("1141007", "アスピリン")]
_NOTES = ["問診で申告。蕁麻疹の既往あり。", "服用後に呼吸困難、救急搬送歴あり。",
          "家族歴: 母に同様のアレルギー。", "皮膚テスト陽性（2024年）。"]  # noqa: RUF001


def allergy(rnd: random.Random, patient: str) -> dict[str, object]:
    code, display = rnd.choice(_SUBSTANCES)
    return {
        "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
            "code": "active"}]},
        "verificationStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
            "code": "confirmed"}]},
        "category": [rnd.choice(["food", "medication"])],
        "criticality": rnd.choice(["low", "high"]),
        "code": {"coding": [{"system": "urn:oid:1.2.392.200119.4.403.1", "code": code,
                             "display": display}]},
        "patient": {"reference": f"Patient/{patient}"},
        "recordedDate": f"2026-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}",
        "note": [{"text": rnd.choice(_NOTES)}],
    }


def changes_for_site(site: UUID, n: int, *, seed: int = 7, resources: int | None = None,
                     first_seq: int = 1) -> list[Change]:
    """`n` consecutive changes of `site`: creates, then updates replacing the prior dot."""
    rnd = random.Random(seed)
    pool = resources or n
    ids = [str(uuid7(BASE_MS + i, rnd.randbytes(10))) for i in range(pool)]
    patients = [str(uuid7(BASE_MS, rnd.randbytes(10))) for _ in range(max(1, pool // 5))]
    last: dict[str, int] = {}
    out = []
    for i in range(n):
        seq = first_seq + i
        rid = ids[i % pool]
        elements: dict[str, bytes | None] = {
            k: canonical_json(v) for k, v in allergy(rnd, rnd.choice(patients)).items()}
        elements[DELETED] = LIVE_VALUE
        prior = (Dot(site, last[rid]),) if rid in last else ()
        out.append(Change(resource_type="AllergyIntolerance", resource_id=rid, op=ChangeOp.SET,
                          elements=elements, replaces={k: prior for k in elements} if prior
                          else {}, hlc=((BASE_MS + i) << 16), origin=site, seq=seq,
                          user="dr-sato"))
        last[rid] = seq
    return out
