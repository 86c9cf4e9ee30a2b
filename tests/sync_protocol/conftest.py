"""A practice with two sites, real keys, and realistic FHIR changes to seal."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from uuid import UUID

import nacl.utils
import pytest

from sync_protocol.canonical import canonical_json
from sync_protocol.ids import uuid7
from sync_protocol.keys import Keyring, PracticeKey, SiteDirectory, SiteKeyPair
from sync_protocol.models import DELETED, LIVE_VALUE, Change, ChangeOp, Dot

BASE_MS = 1_790_000_000_000


def allergy(patient: str, rnd: random.Random) -> dict[str, object]:
    substance = rnd.choice([("J7F7111190", "さば"), ("J7F1010000", "卵"),
                            ("1149019", "ペニシリン")])
    return {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
            "code": "active"}]},
        "code": {"coding": [{"system": "urn:oid:1.2.392.200119.4.403.1",
                             "code": substance[0], "display": substance[1]}]},
        "criticality": rnd.choice(["low", "high"]),
        "patient": {"reference": f"Patient/{patient}"},
        "recordedDate": "2026-11-24",
        "note": [{"text": "問診で申告。蕁麻疹の既往あり" * rnd.randint(1, 3)}],
    }


@dataclass
class Site:
    site_id: UUID
    keys: SiteKeyPair
    seq: int = 0
    prev_hash: bytes = bytes(32)

    def change(self, resource: dict[str, object], *, replaces: tuple[Dot, ...] = (),
               rid: str | None = None, op: ChangeOp = ChangeOp.SET, hlc_ms: int = BASE_MS,
               user: str = "dr-sato") -> Change:
        self.seq += 1
        if op is ChangeOp.DELETE:
            elements: dict[str, bytes | None] = {DELETED: b"true"}
        else:
            elements = {k: canonical_json(v) for k, v in resource.items() if k != "resourceType"}
            elements[DELETED] = LIVE_VALUE
        return Change(
            resource_type=str(resource["resourceType"]),
            resource_id=rid or str(uuid7(hlc_ms, nacl.utils.random(10))), op=op,
            elements=elements, replaces={k: replaces for k in elements},
            hlc=(hlc_ms << 16) + self.seq, origin=self.site_id, seq=self.seq, user=user)


@dataclass
class Practice:
    practice_id: UUID
    keyring: Keyring
    a: Site
    b: Site
    directory: SiteDirectory = field(default_factory=SiteDirectory)

    def changes(self, site: Site, n: int, seed: int = 1) -> list[Change]:
        rnd = random.Random(seed)
        patient = str(uuid7(BASE_MS, rnd.randbytes(10)))
        out = []
        for i in range(n):
            prior = (Dot(site.site_id, site.seq),) if site.seq and i % 3 else ()
            out.append(site.change(allergy(patient, rnd), replaces=prior,
                                   hlc_ms=BASE_MS + i))
        return out


def new_site() -> Site:
    return Site(uuid7(BASE_MS, nacl.utils.random(10)), SiteKeyPair.generate(nacl.utils.random(64)))


@pytest.fixture
def practice() -> Practice:
    practice_id = uuid7(BASE_MS, nacl.utils.random(10))
    keyring = Keyring(practice_id, {1: PracticeKey.generate(1, nacl.utils.random(32))})
    a, b = new_site(), new_site()
    p = Practice(practice_id, keyring, a, b)
    p.directory.add(a.keys.public(a.site_id))
    p.directory.add(b.keys.public(b.site_id))
    return p
