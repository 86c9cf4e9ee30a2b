"""What the hub answers, as typed values (`hub_link.client.HubClient` returns them).

Plain frozen records of the hub's JSON answers, and the decoders the client uses
for the fields that repeat (base64 keys, a site entry, an optional UUID).  A
credential or token never appears in a `repr`.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import aiohttp

from edge_node.hub_link.errors import HubUnreachable
from sync_protocol.keys import SitePublicKeys


@dataclass(frozen=True, slots=True)
class HubKey:
    verify_key: bytes
    fingerprint: str
    #: Fixed when the hub's store was created; a different one means a rebuilt hub.
    log_id: UUID | None


@dataclass(frozen=True, slots=True)
class Enrollment:
    practice_id: UUID
    site_id: UUID
    credential: str
    status: str
    fingerprint: str
    hub_verify_key: bytes

    def __repr__(self) -> str:  # never the credential
        return f"Enrollment(site={self.site_id}, status={self.status})"


@dataclass(frozen=True, slots=True)
class SiteInfo:
    site_id: UUID
    name: str
    verify_key: bytes
    box_key: bytes
    fingerprint: str
    status: str
    approved_by: UUID | None
    created_ms: int

    @property
    def public_keys(self) -> SitePublicKeys:
        return SitePublicKeys(site_id=self.site_id, verify_key=self.verify_key,
                              box_key=self.box_key)


@dataclass(frozen=True, slots=True)
class Mail:
    mail_id: UUID
    from_site: UUID
    sealed: bytes
    created_ms: int


@dataclass(frozen=True, slots=True)
class PracticeCreated:
    practice_id: UUID
    name: str


@dataclass(frozen=True, slots=True)
class EnrollmentToken:
    practice_id: UUID
    token: str
    expires_ms: int

    def __repr__(self) -> str:
        return f"EnrollmentToken(practice={self.practice_id}, expires_ms={self.expires_ms})"


@dataclass(frozen=True, slots=True)
class HubSnapshot:
    """One verified snapshot the hub holds for the practice (`GET /v1/snapshots`)."""

    snapshot_id: UUID
    site_id: UUID
    hub_seq: int
    key_epoch: int
    size: int
    created_ms: int
    digest: bytes
    signature: bytes
    #: The hub still holds every batch after it (false: retention trimmed some).
    log_after_kept: bool


@dataclass(frozen=True, slots=True)
class SnapshotDownload:
    """A snapshot's metadata and its body as a stream of chunks."""

    hub_seq: int
    key_epoch: int
    site_id: UUID
    size: int | None
    _response: aiohttp.ClientResponse
    #: Snapshot downloads that resume: the hub's id of this snapshot
    #: (`X-Snapshot-Id`), where this body starts in it (206 answer to a Range) and
    #: the whole snapshot's size.
    snapshot_id: UUID | None = None
    offset: int = 0
    total: int | None = None
    #: The response headers, where the making site's attestation is: the reader reads
    #: it for its practice (`snapshot_signature.attestation_from_headers`) and checks it.
    headers: Mapping[str, str] = field(default_factory=dict)

    async def chunks(self, chunk_bytes: int = 1 << 16) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(chunk_bytes):
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise HubUnreachable(f"snapshot download broke off: {type(exc).__name__}",
                                 hint="retry; the download starts again") from exc


def b64(value: str) -> bytes:
    return base64.b64decode(value)


def site_info(raw: Mapping[str, Any]) -> SiteInfo:
    return SiteInfo(UUID(raw["site_id"]), raw["name"], b64(raw["verify_key"]),
                    b64(raw["box_key"]), raw["fingerprint"], raw["status"],
                    UUID(raw["approved_by"]) if raw.get("approved_by") else None,
                    int(raw["created_ms"]))


def optional_uuid(value: Any) -> UUID | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return UUID(bytes=bytes(value))
    return UUID(str(value))


__all__ = ["Enrollment", "EnrollmentToken", "HubKey", "Mail", "PracticeCreated", "SiteInfo",
           "SnapshotDownload", "b64", "optional_uuid", "site_info"]
