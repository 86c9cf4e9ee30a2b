"""Signed snapshots for hub tests: attestations made with a site's real key."""

from __future__ import annotations

import hashlib
import io
import uuid
from typing import Any
from uuid import UUID

from cloud_hub.store.base import NewSnapshot
from sync_protocol.ids import HubSeq, KeyEpoch, PracticeId, SiteId
from sync_protocol.keys import SiteKeyPair
from sync_protocol.snapshot_signature import (
    SnapshotAttestation,
    SnapshotClaim,
    attest_snapshot,
    attestation_headers,
)
from tests.cloud_hub.harness import Harness, Member
from tests.sync_protocol.conftest import Site


def attested(practice_id: UUID, site: Site, hub_seq: int, body: bytes, *,
             snapshot_id: UUID | None = None, signer: SiteKeyPair | None = None,
             claimed_site: UUID | None = None) -> SnapshotAttestation:
    """`site`'s attestation of `body` (or one signed by `signer`, naming `claimed_site`)."""
    claim = SnapshotClaim(practice_id=practice_id, site_id=claimed_site or site.site_id,
                          snapshot_id=snapshot_id or uuid.uuid4(), hub_seq=hub_seq, key_epoch=1,
                          digest=hashlib.blake2b(body, digest_size=32).digest())
    return attest_snapshot(claim, signer or site.keys)


def new_snapshot(att: SnapshotAttestation, body: bytes) -> NewSnapshot:
    c = att.claim
    return NewSnapshot(PracticeId(c.practice_id), SiteId(c.site_id), c.snapshot_id,
                       HubSeq(c.hub_seq), KeyEpoch(c.key_epoch), c.digest, att.signature,
                       len(body), lambda: io.BytesIO(body))


async def upload(harness: Harness, member: Member, body: bytes,
                 att: SnapshotAttestation | None) -> Any:
    """PUT /v1/snapshots with `att` as headers (None: unsigned), streamed."""
    headers = {**member.headers, "Content-Type": "application/octet-stream",
               **(attestation_headers(att) if att is not None else {})}
    return await harness.client.put("/v1/snapshots", data=io.BytesIO(body), headers=headers)
