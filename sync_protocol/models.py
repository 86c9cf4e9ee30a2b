"""Wire models shared by edge and hub (frozen pydantic).

See `PROTOCOL.md` for every field.  Binary forms (`to_wire` / `from_wire`) are
compact msgpack arrays; the JSON forms are for HTTP bodies and humans.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Final
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SkipValidation,
    ValidationError,
    field_validator,
    model_validator,
)

# Dots and change metadata have modules of their own (the wire codecs need them
# without the models); they stay importable from here.
from sync_protocol.change_meta import TOKEN_BYTES as TOKEN_BYTES
from sync_protocol.change_meta import ChangeMeta as ChangeMeta
from sync_protocol.change_meta import decode_metas, encode_metas
from sync_protocol.dots import Dot as Dot
from sync_protocol.dots import sorted_dots as sorted_dots
from sync_protocol.errors import MalformedInput

#: FHIR resource type and id grammar (FHIR R4 `id`: 1-64 of [A-Za-z0-9.-]).
RESOURCE_TYPE_PATTERN: Final = r"^[A-Z][A-Za-z]{1,63}$"
RESOURCE_ID_PATTERN: Final = r"^[A-Za-z0-9\-.]{1,64}$"
#: Register names: a FHIR top-level element, a choice group `value[x]`, an item of a
#: keyed list `telecom[<16 hex digits>]` (PROTOCOL.md, "Registers"), or `@deleted`.
REGISTER_PATTERN: Final = (
    r"^(@deleted|_?[a-z][A-Za-z0-9]{0,63}(\[x\])?|[a-z][A-Za-z0-9]{0,63}\[[0-9a-f]{16}\])$")

#: The register that says whether a resource is deleted (b"true") or live (b"false").
DELETED: Final = "@deleted"
LIVE_VALUE: Final = b"false"
DELETED_VALUE: Final = b"true"

HASH_BYTES: Final = 32
KEY_ID_BYTES: Final = 8
GENESIS_HASH: Final = bytes(HASH_BYTES)

U64 = Annotated[int, Field(ge=0, lt=1 << 64)]
Seq = Annotated[int, Field(ge=1, lt=1 << 63)]
ResourceType = Annotated[str, Field(pattern=RESOURCE_TYPE_PATTERN)]
ResourceIdStr = Annotated[str, Field(pattern=RESOURCE_ID_PATTERN)]
RegisterName = Annotated[str, Field(pattern=REGISTER_PATTERN)]


class ChangeOp(StrEnum):
    SET = "set"
    DELETE = "delete"


_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Change(BaseModel):
    """One edit of one resource.

    `elements` maps register names to canonical JSON bytes (None: element
    removed).  `replaces` maps each written register to the dots this change
    saw there and supersedes.  A delete writes only `@deleted`.  The change's
    own dot is (`origin`, `seq`).
    """

    model_config = _FROZEN

    resource_type: ResourceType
    resource_id: ResourceIdStr
    op: ChangeOp
    elements: dict[RegisterName, bytes | None]
    replaces: dict[RegisterName, tuple[Dot, ...]]
    hlc: U64
    origin: UUID
    seq: Seq
    user: Annotated[str, Field(min_length=1, max_length=128)]
    device: Annotated[str, Field(max_length=128)] = ""
    #: The values the author saw shown in the registers this change does not write
    #: (canonical JSON; registers shown as absent are left out): with `elements`, what
    #: the author's version of the resource read.  None in a change from protocol 1.0.
    base: dict[RegisterName, bytes] | None = None

    @field_validator("elements")
    @classmethod
    def _canonical_elements(cls, value: dict[str, bytes | None]) -> dict[str, bytes | None]:
        return {name: value[name] for name in sorted(value)}

    @field_validator("base")
    @classmethod
    def _canonical_base(cls, value: dict[str, bytes] | None) -> dict[str, bytes] | None:
        return None if value is None else {name: value[name] for name in sorted(value)}

    @field_validator("replaces")
    @classmethod
    def _canonical_dots(cls, value: dict[str, tuple[Dot, ...]]) -> dict[str, tuple[Dot, ...]]:
        # Equal dot lists become one shared tuple, so grouping them when sealing
        # compares by identity instead of element by element.
        shared: dict[tuple[tuple[int, int], ...], tuple[Dot, ...]] = {}
        out = {}
        for name in sorted(value):
            dots = sorted_dots(value[name])
            out[name] = shared.setdefault(tuple((d.site.int, d.seq) for d in dots), dots)
        return out

    @model_validator(mode="after")
    def _consistent(self) -> Change:
        if DELETED not in self.elements:
            raise ValueError("a change must write the @deleted register")
        if self.op is ChangeOp.DELETE and set(self.elements) != {DELETED}:
            raise ValueError("a delete writes only the @deleted register")
        if not set(self.replaces) <= set(self.elements):
            raise ValueError("replaces names a register the change does not write")
        if self.dot in self.all_replaced:
            raise ValueError("a change cannot replace its own dot")
        if self.base is not None:
            if DELETED in self.base or not self.elements.keys().isdisjoint(self.base):
                raise ValueError("base names @deleted or a register the change writes")
            if self.op is ChangeOp.DELETE and self.base:
                raise ValueError("a delete carries no base")
        return self

    @property
    def dot(self) -> Dot:
        return Dot(self.origin, self.seq)

    @cached_property
    def all_replaced(self) -> tuple[Dot, ...]:
        """Every dot this change supersedes, in canonical order."""
        return sorted_dots(d for dots in self.replaces.values() for d in dots)


class BatchHeader(BaseModel):
    """Plaintext header of a sealed batch: everything the hub can see.

    Covered by the signature and bound to the ciphertext as associated data.
    `changes[i]` describes the change with sequence number `seq_from + i`.
    """

    model_config = _FROZEN

    protocol: tuple[int, int]
    practice_id: UUID
    site_id: UUID
    batch_id: UUID
    seq_from: Seq
    seq_to: Seq
    prev_hash: Annotated[bytes, Field(min_length=HASH_BYTES, max_length=HASH_BYTES)]
    key_epoch: Annotated[int, Field(ge=1, lt=1 << 31)]
    key_id: Annotated[bytes, Field(min_length=KEY_ID_BYTES, max_length=KEY_ID_BYTES)]
    max_hlc: U64
    body_bytes: Annotated[int, Field(ge=0)]
    #: Checked by `change_meta.decode_metas` on the way in (skipping pydantic's per-item pass).
    changes: SkipValidation[tuple[ChangeMeta, ...]]
    capabilities: tuple[str, ...] = ()
    schema_version: Annotated[int, Field(ge=1)] = 1

    @model_validator(mode="after")
    def _consistent(self) -> BatchHeader:
        if self.seq_to < self.seq_from:
            raise ValueError("seq_to is before seq_from")
        if len(self.changes) != self.seq_to - self.seq_from + 1:
            raise ValueError("changes does not cover seq_from..seq_to exactly")
        for meta in self.changes:
            if len(meta.token) != TOKEN_BYTES:
                raise ValueError(f"a record token is {TOKEN_BYTES} bytes")
        return self

    @property
    def change_count(self) -> int:
        return self.seq_to - self.seq_from + 1

    def to_wire(self) -> dict[str, Any]:
        sites, metas = encode_metas(self.changes)
        # Keys in sorted order, so `pack_plain` gives the canonical bytes without a
        # recursive re-sort of the (large) change list.
        return {
            "batch": self.batch_id.bytes,
            "body": self.body_bytes,
            "caps": sorted(self.capabilities),
            "changes": metas,
            "epoch": self.key_epoch,
            "kid": self.key_id,
            "max_hlc": self.max_hlc,
            "practice": self.practice_id.bytes,
            "prev": self.prev_hash,
            "schema": self.schema_version,
            "seq": [self.seq_from, self.seq_to],
            "site": self.site_id.bytes,
            "sites": sites,
            "v": list(self.protocol),
        }


def header_from_wire(raw: Any) -> BatchHeader:
    """Rebuild a `BatchHeader` from its wire map; raises `MalformedInput` only."""
    try:
        seq_from, seq_to = raw["seq"]
        changes = decode_metas(raw["sites"], raw["changes"])
        return BatchHeader.model_validate({
            "protocol": tuple(raw["v"]),
            "practice_id": raw["practice"],
            "site_id": raw["site"],
            "batch_id": raw["batch"],
            "seq_from": seq_from,
            "seq_to": seq_to,
            "prev_hash": raw["prev"],
            "key_epoch": raw["epoch"],
            "key_id": raw["kid"],
            "max_hlc": raw["max_hlc"],
            "body_bytes": raw["body"],
            "changes": changes,
            "capabilities": tuple(raw["caps"]),
            "schema_version": raw["schema"],
        })
    except ValidationError as exc:
        raise MalformedInput(f"invalid batch header: {_first_error(exc)}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedInput(f"invalid batch header: {type(exc).__name__} {exc}") from exc


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "value"
    return f"{where}: {err['msg']}"


# --- HTTP messages between edge and hub -------------------------------------------------


class HubReceipt(BaseModel):
    """The hub's signed statement that it stored `batch_hash` at `hub_seq`."""

    model_config = _FROZEN

    practice_id: UUID
    site_id: UUID
    batch_hash: Annotated[bytes, Field(min_length=HASH_BYTES, max_length=HASH_BYTES)]
    hub_seq: Seq
    signature: Annotated[bytes, Field(min_length=64, max_length=64)]


class PushAck(BaseModel):
    """Answer to a push: where the batch is, and the receipt that proves it."""

    model_config = _FROZEN

    hub_seq: Seq
    receipt: HubReceipt
    duplicate: bool = False

    def to_json(self) -> dict[str, Any]:
        """The JSON body of a push answer: ids as UUID strings, hashes and signatures hex."""
        r = self.receipt
        return {"hub_seq": self.hub_seq, "duplicate": self.duplicate,
                "receipt": {"practice_id": str(r.practice_id), "site_id": str(r.site_id),
                            "batch_hash": r.batch_hash.hex(), "hub_seq": r.hub_seq,
                            "signature": r.signature.hex()}}


def push_ack_from_json(raw: Any) -> PushAck:
    """Inverse of `PushAck.to_json` (`duplicate` defaults to false); raises `MalformedInput`."""
    try:
        r = raw["receipt"]
        return PushAck(hub_seq=raw["hub_seq"], duplicate=raw.get("duplicate", False),
                       receipt=HubReceipt(practice_id=UUID(r["practice_id"]),
                                          site_id=UUID(r["site_id"]),
                                          batch_hash=bytes.fromhex(r["batch_hash"]),
                                          hub_seq=r["hub_seq"],
                                          signature=bytes.fromhex(r["signature"])))
    except ValidationError as exc:
        raise MalformedInput(f"invalid push answer: {_first_error(exc)}") from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MalformedInput(f"invalid push answer: {type(exc).__name__}") from exc


class PullRequest(BaseModel):
    """Ask for batches after `after` (a hub sequence), waiting up to `wait_s`."""

    model_config = _FROZEN

    after: Annotated[int, Field(ge=0)] = 0
    limit: Annotated[int, Field(ge=1, le=1000)] = 100
    wait_s: Annotated[float, Field(ge=0, le=60)] = 0


class PulledBatch(BaseModel):
    model_config = _FROZEN

    hub_seq: Seq
    site_id: UUID
    sealed: bytes


class PullResponse(BaseModel):
    """Batches in hub order; `head` is the hub's latest sequence for the practice.

    `log_id` names the hub's log (fixed when its store was created; another one
    means a rebuilt hub); None only from a hub that does not send it.
    """

    model_config = _FROZEN

    batches: tuple[PulledBatch, ...]
    head: Annotated[int, Field(ge=0)]
    log_id: UUID | None = None


class ErrorBody(BaseModel):
    """Error answer: clients branch on `code`; `message` and `hint` are for people."""

    model_config = _FROZEN

    code: str
    message: str
    hint: str = ""
    retryable: bool = False
    #: On `chain_broken`: where the hub expects the site to resume.
    expected_seq: int | None = None
    expected_prev_hash: str | None = None
