"""Snapshot attestations: the making site's signature over what a stored snapshot is.

A sealed snapshot (`sync_protocol.snapshot`) carries its writer's signature
inside, but only a reader holding the practice key gets that far.  The
attestation is a second, detached signature the hub (which holds no practice
key) and a restoring site check *before* they keep or write anything:

    message = "chartsync/snapshot-attestation/v1\\0" | practice (16) | site (16)
              | snapshot (16) | u64 hub_seq | u32 key_epoch | digest (32)
    digest  = BLAKE2b-256 of the sealed snapshot's bytes, all of them
    signature = Ed25519 by the making site's signing key (64)

Every field has a fixed length, so the message has one reading.  Sans-I/O:
`SnapshotDigest` is fed the bytes as they stream by (snapshots can be hundreds
of MB; nothing here holds them), the rest are functions over values.  On HTTP
the attestation travels as headers (`attestation_headers`), the same both ways:
with the upload (`PUT /v1/snapshots`) and with every download.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Annotated, Final
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sync_protocol.errors import BadSignature, MalformedInput, TamperedBatch
from sync_protocol.keys import SiteKeyPair, SitePublicKeys

DOMAIN: Final = b"chartsync/snapshot-attestation/v1\0"
DIGEST_BYTES: Final = 32
SIGNATURE_BYTES: Final = 64

#: The HTTP headers of an attestation (upload and download); the practice is the caller's.
SNAPSHOT_ID: Final = "X-Snapshot-Id"
SITE_ID: Final = "X-Site-Id"
HUB_SEQ: Final = "X-Snapshot-Hub-Seq"
KEY_EPOCH: Final = "X-Key-Epoch"
DIGEST: Final = "X-Snapshot-Digest"
SIGNATURE: Final = "X-Snapshot-Signature"
HEADERS: Final = (SNAPSHOT_ID, SITE_ID, HUB_SEQ, KEY_EPOCH, DIGEST, SIGNATURE)


class SnapshotDigest:
    """BLAKE2b-256 of a sealed snapshot, fed piece by piece as it is written or read."""

    __slots__ = ("_hash", "size")

    def __init__(self) -> None:
        self._hash = hashlib.blake2b(digest_size=DIGEST_BYTES)
        #: Bytes fed so far.
        self.size = 0

    def update(self, data: bytes) -> None:
        self._hash.update(data)
        self.size += len(data)

    def digest(self) -> bytes:
        return self._hash.digest()


class SnapshotClaim(BaseModel):
    """What a site asserts about one snapshot it made: whose, which, how far, which bytes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    practice_id: UUID
    site_id: UUID
    snapshot_id: UUID
    hub_seq: Annotated[int, Field(ge=0, lt=1 << 63)]
    key_epoch: Annotated[int, Field(ge=1, lt=1 << 31)]
    digest: Annotated[bytes, Field(min_length=DIGEST_BYTES, max_length=DIGEST_BYTES)]

    def message(self) -> bytes:
        """The bytes the making site signs (fixed layout, see the module docstring)."""
        return b"".join((DOMAIN, self.practice_id.bytes, self.site_id.bytes,
                         self.snapshot_id.bytes, self.hub_seq.to_bytes(8, "big"),
                         self.key_epoch.to_bytes(4, "big"), self.digest))


class SnapshotAttestation(BaseModel):
    """A claim and the making site's Ed25519 signature over `claim.message()`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    claim: SnapshotClaim
    signature: Annotated[bytes, Field(min_length=SIGNATURE_BYTES, max_length=SIGNATURE_BYTES)]

    def label(self) -> str:
        c = self.claim
        return f"snapshot {c.snapshot_id} (site {c.site_id}, hub seq {c.hub_seq})"


def attest_snapshot(claim: SnapshotClaim, site_keys: SiteKeyPair) -> SnapshotAttestation:
    """Sign `claim` with the making site's key."""
    return SnapshotAttestation(claim=claim, signature=site_keys.sign(claim.message()))


def verify_attestation(attestation: SnapshotAttestation, signer: SitePublicKeys) -> None:
    """Raise `BadSignature` unless `signer` is the claimed site and signed this claim."""
    claim = attestation.claim
    if signer.site_id != claim.site_id:
        raise BadSignature(f"{attestation.label()} claims site {claim.site_id}, checked "
                           f"against site {signer.site_id}",
                           hint="a snapshot is accepted only from the site that made it")
    signer.verify(claim.message(), attestation.signature, what=attestation.label())


def check_digest(attestation: SnapshotAttestation, digest: bytes, size: int) -> None:
    """Raise `TamperedBatch` unless `digest` (of `size` bytes) is the signed one."""
    if digest != attestation.claim.digest:
        raise TamperedBatch(f"{attestation.label()}: the {size} bytes do not match the "
                            "signed digest (altered or truncated)",
                            hint="download or upload the snapshot again; a copy altered at "
                            "rest is refused every time")


def attestation_headers(attestation: SnapshotAttestation) -> dict[str, str]:
    """The attestation as HTTP headers (digest and signature as lowercase hex)."""
    c = attestation.claim
    return {SNAPSHOT_ID: str(c.snapshot_id), SITE_ID: str(c.site_id), HUB_SEQ: str(c.hub_seq),
            KEY_EPOCH: str(c.key_epoch), DIGEST: c.digest.hex(),
            SIGNATURE: attestation.signature.hex()}


def attestation_from_headers(headers: Mapping[str, str],
                             practice_id: UUID) -> SnapshotAttestation:
    """Read an attestation of a snapshot of `practice_id` from HTTP headers.

    Raises `MalformedInput` naming the missing or invalid header (an unsigned
    upload lacks `X-Snapshot-Signature`).
    """
    missing = [h for h in HEADERS if not headers.get(h)]
    if missing:
        raise MalformedInput(f"unsigned or incomplete snapshot: missing {', '.join(missing)}",
                             hint="upgrade the edge; snapshots must carry the making site's "
                             "signature (PROTOCOL.md, Snapshot attestation)")
    try:
        claim = SnapshotClaim(practice_id=practice_id, site_id=UUID(headers[SITE_ID]),
                              snapshot_id=UUID(headers[SNAPSHOT_ID]),
                              hub_seq=int(headers[HUB_SEQ]), key_epoch=int(headers[KEY_EPOCH]),
                              digest=bytes.fromhex(headers[DIGEST]))
        return SnapshotAttestation(claim=claim, signature=bytes.fromhex(headers[SIGNATURE]))
    except (ValidationError, ValueError) as exc:
        raise MalformedInput(f"snapshot attestation headers are invalid "
                             f"({type(exc).__name__})",
                             hint="send ids as UUIDs, numbers in decimal, digest (32 bytes) and "
                             "signature (64 bytes) as hex") from exc


__all__ = ["DIGEST", "DIGEST_BYTES", "DOMAIN", "HEADERS", "HUB_SEQ", "KEY_EPOCH", "SIGNATURE",
           "SIGNATURE_BYTES", "SITE_ID", "SNAPSHOT_ID", "SnapshotAttestation", "SnapshotClaim",
           "SnapshotDigest", "attest_snapshot", "attestation_from_headers",
           "attestation_headers", "check_digest", "verify_attestation"]
