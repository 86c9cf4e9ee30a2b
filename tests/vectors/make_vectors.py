"""Regenerate the golden vectors: `python -m tests.vectors.make_vectors` from the repo root.

Run only with a protocol version bump (STYLE.md rule 6): the vectors pin what
version 1 bytes look like, so an accidental wire change fails the tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

from sync_protocol.batch import seal_batch
from sync_protocol.canonical import canonical_json
from sync_protocol.keys import PracticeKey, SiteKeyPair
from sync_protocol.models import DELETED, Change, ChangeOp, Dot
from sync_protocol.version import PROTOCOL_VERSION

HERE = Path(__file__).parent
PRACTICE = UUID("01936d2e-0000-7000-8000-0000000000aa")
SITE = UUID("01936d2e-0000-7000-8000-0000000000b1")
OTHER = UUID("01936d2e-0000-7000-8000-0000000000b2")
BATCH = UUID("01936d2e-0000-7000-8000-0000000000c1")
KEY_SECRET = bytes(range(32))
SITE_SEED = bytes(range(64, 128))
NONCE = bytes(range(200, 224))


def vector_changes() -> list[Change]:
    patient = {"name": [{"family": "山田", "given": ["太郎"]}], "birthDate": "1980-04-01",
               "gender": "male"}
    elements: dict[str, bytes | None] = {k: canonical_json(v) for k, v in patient.items()}
    return [
        Change(resource_type="Patient", resource_id="01936d2e-0000-7000-8000-000000000001",
               op=ChangeOp.SET, elements={**elements, DELETED: b"false"}, replaces={},
               hlc=(1_732_406_400_000 << 16), origin=SITE, seq=7, user="clerk-1"),
        Change(resource_type="Patient", resource_id="01936d2e-0000-7000-8000-000000000001",
               op=ChangeOp.SET, elements={"birthDate": canonical_json("1980-04-02"),
                                          DELETED: b"false"},
               replaces={"birthDate": (Dot(SITE, 7), Dot(OTHER, 3)), DELETED: (Dot(SITE, 7),)},
               hlc=(1_732_406_400_500 << 16) | 1, origin=SITE, seq=8, user="dr-sato",
               device="tablet-2"),
        Change(resource_type="Observation", resource_id="01936d2e-0000-7000-8000-000000000002",
               op=ChangeOp.DELETE, elements={DELETED: b"true"},
               replaces={DELETED: (Dot(OTHER, 2),)}, hlc=(1_732_406_401_000 << 16),
               origin=SITE, seq=9, user="dr-sato"),
    ]


def change_json(change: Change) -> dict[str, Any]:
    return {
        "resource_type": change.resource_type, "resource_id": change.resource_id,
        "op": change.op.value,
        "elements": {k: None if v is None else v.decode() for k, v in change.elements.items()},
        "replaces": {k: [[str(d.site), d.seq] for d in v] for k, v in change.replaces.items()},
        "hlc": change.hlc, "origin": str(change.origin), "seq": change.seq,
        "user": change.user, "device": change.device,
    }


def main() -> None:
    sealed = seal_batch(
        practice_id=PRACTICE, site_id=SITE, site_keys=SiteKeyPair.generate(SITE_SEED),
        key=PracticeKey(1, KEY_SECRET), changes=vector_changes(), prev_hash=bytes([9]) * 32,
        batch_id=BATCH, nonce=NONCE)
    vector = {
        "about": "A v1 sealed batch of 3 changes (create, concurrent-aware update, delete) "
                 "from site b1 of practice aa, epoch 1; keys and nonce are fixed test values.",
        "protocol": list(PROTOCOL_VERSION),
        "practice_id": str(PRACTICE), "site_id": str(SITE), "batch_id": str(BATCH),
        "key_epoch": 1, "key_secret": KEY_SECRET.hex(), "site_seed": SITE_SEED.hex(),
        "nonce": NONCE.hex(), "prev_hash": (bytes([9]) * 32).hex(),
        "sealed": sealed.hex(),
        "changes": [change_json(c) for c in vector_changes()],
    }
    (HERE / "batch_v1.json").write_text(json.dumps(vector, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
