"""Realistic practices for hub tests: real keys, real FHIR changes, real sealed batches."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from uuid import UUID

import nacl.utils

from sync_protocol.batch import batch_hash, seal_batch
from sync_protocol.ids import uuid7
from sync_protocol.keys import Keyring, PracticeKey, SiteKeyPair
from sync_protocol.models import Change, Dot
from tests.sync_protocol.conftest import BASE_MS, Site, allergy


@dataclass
class Clinic:
    """One practice as its sites know it (the hub never sees `keyring`)."""

    practice_id: UUID
    keyring: Keyring = field(init=False)
    rnd: random.Random = field(default_factory=lambda: random.Random(7))

    def __post_init__(self) -> None:
        key = PracticeKey.generate(1, nacl.utils.random(32))
        self.keyring = Keyring(self.practice_id, {1: key})

    def new_site(self, site_id: UUID | None = None) -> Site:
        return Site(site_id or uuid7(BASE_MS, nacl.utils.random(10)),
                    SiteKeyPair.generate(nacl.utils.random(64)))

    def changes(self, site: Site, n: int, *, rid: str | None = None,
                replaces: tuple[Dot, ...] = (), hlc_ms: int = BASE_MS) -> list[Change]:
        patient = str(uuid7(BASE_MS, self.rnd.randbytes(10)))
        return [site.change(allergy(patient, self.rnd), rid=rid, replaces=replaces,
                            hlc_ms=hlc_ms + i) for i in range(n)]

    def seal(self, site: Site, n: int = 3, *, changes: list[Change] | None = None,
             hlc_ms: int = BASE_MS, advance: bool = True) -> bytes:
        """Seal the next `n` changes of `site`, linking them to its chain."""
        changes = changes if changes is not None else self.changes(site, n, hlc_ms=hlc_ms)
        sealed = seal_batch(practice_id=self.practice_id, site_id=site.site_id,
                            site_keys=site.keys, key=self.keyring.current, changes=changes,
                            prev_hash=site.prev_hash, batch_id=uuid.uuid4())
        if advance:
            site.prev_hash = batch_hash(sealed)
        return sealed


def new_clinic() -> Clinic:
    return Clinic(uuid7(BASE_MS, nacl.utils.random(10)))
