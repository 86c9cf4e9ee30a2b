"""JSON bodies of the hub API that `sync_protocol.models` does not define (yet).

Bytes travel as standard base64 (`B64`) except hashes and signatures in
receipts, which travel as lowercase hex.  The push answer's JSON is
`sync_protocol.models.PushAck.to_json`; the pull and stream encodings are in
`sync_protocol.pull_wire`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
)


def _b64_in(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("not standard base64") from exc
    return value


B64 = Annotated[bytes, BeforeValidator(_b64_in),
                PlainSerializer(lambda b: base64.b64encode(b).decode("ascii"), return_type=str)]
Key32 = Annotated[B64, Field(min_length=32, max_length=32)]
Name = Annotated[str, Field(min_length=1, max_length=200)]

_IN = ConfigDict(frozen=True, extra="forbid")


class CreatePractice(BaseModel):
    """`practice_id` only when rebuilding a lost hub: the practice keeps its old id."""

    model_config = _IN
    name: Name
    practice_id: UUID | None = None


class PracticeOut(BaseModel):
    model_config = _IN
    practice_id: UUID
    name: str
    created_ms: int


class CreateEnrollmentToken(BaseModel):
    model_config = _IN
    ttl_s: Annotated[int, Field(ge=60, le=30 * 86400)] | None = None


class EnrollmentTokenOut(BaseModel):
    model_config = _IN
    practice_id: UUID
    token: str
    expires_ms: int


class EnrollRequest(BaseModel):
    """`site_id` only when a site re-enrolls on a rebuilt hub under its old id and keys."""

    model_config = _IN
    token: Annotated[str, Field(min_length=1, max_length=200)]
    name: Name
    verify_key: Key32
    box_key: Key32
    site_id: UUID | None = None


class FormerSite(BaseModel):
    """A site of the practice that is gone, registered on a rebuilt hub (revoked) so that
    the batches it signed, relayed by the surviving sites, verify against its key."""

    model_config = _IN
    site_id: UUID
    name: Name
    verify_key: Key32
    box_key: Key32


class EnrollResponse(BaseModel):
    model_config = _IN
    practice_id: UUID
    site_id: UUID
    credential: str
    status: str
    fingerprint: str
    hub_verify_key: B64


class SiteOut(BaseModel):
    """One entry of the practice's site registry (what edges build a `SiteDirectory` from)."""

    model_config = _IN
    site_id: UUID
    name: str
    verify_key: B64
    box_key: B64
    fingerprint: str
    status: str
    approved_by: UUID | None
    created_ms: int


class MailOut(BaseModel):
    model_config = _IN
    mail_id: UUID
    from_site: UUID
    sealed: B64
    created_ms: int


class RosterEntryIn(BaseModel):
    """One signed roster entry (`sync_protocol.roster`), as its raw bytes."""

    model_config = _IN
    entry: Annotated[B64, Field(min_length=1, max_length=4096)]


class KitEpochIn(BaseModel):
    """A practice key epoch sealed to the recovery kit (`sync_protocol.kit_keys`)."""

    model_config = _IN
    kit_fingerprint: Annotated[str, Field(min_length=1, max_length=64)]
    sealed: Annotated[B64, Field(min_length=1, max_length=4096)]


class KitEpochOut(BaseModel):
    model_config = _IN
    epoch: int
    kit_fingerprint: str
    sealed: B64
    created_ms: int


class HubKeyOut(BaseModel):
    model_config = _IN
    verify_key: B64
    fingerprint: str
    log_id: UUID = Field(description="fixed when the hub's store was created; another value "
                         "than the one an edge remembers means a rebuilt hub")


#: Bounds of a heartbeat (a site reports counts, ids and codes — never chart data).
MAX_GAPS = 100
MAX_ERROR_CHARS = 500
_COUNT = Annotated[int, Field(ge=0, le=1 << 40)]
_SHORT = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]


class GapIn(BaseModel):
    """Batches of `origin` the site is missing: sequence numbers missing_from..missing_to."""

    model_config = _IN
    origin: UUID
    missing_from: Annotated[int, Field(ge=1, le=1 << 62)]
    missing_to: Annotated[int, Field(ge=1, le=1 << 62)]


class HeartbeatIn(BaseModel):
    """What a site reports every few seconds (`POST /v1/heartbeat`); the hub keeps the latest.

    `cursor` is the hub sequence the site has applied; `state_digest` the keyed digest
    of its charts at that cursor (hex; null before it holds the practice key), so
    sites at one cursor with nothing waiting can be compared without decrypting.
    """

    model_config = _IN
    cursor: _COUNT
    outbox_depth: _COUNT
    oldest_unpushed_age_s: Annotated[float, Field(ge=0, le=1e10)] | None = None
    software_version: _SHORT
    protocol_version: Annotated[str, StringConstraints(pattern=r"^\d{1,4}\.\d{1,4}$")]
    state_digest: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None
    held_batches: _COUNT = 0
    dead_letters: _COUNT = 0
    gaps: Annotated[list[GapIn], Field(max_length=MAX_GAPS)] = []
    upgrade_needed: Annotated[str, StringConstraints(max_length=200)] | None = None
    last_error: Annotated[str, StringConstraints(max_length=MAX_ERROR_CHARS)] | None = None
    clock_offset_ms: Annotated[int, Field(ge=-(1 << 40), le=1 << 40)] | None = None
    guard_held: bool = False
