"""Binary forms of pulled batches (msgpack), for `GET /v1/batches` and the WebSocket stream.

    PullResponse: {"batches": [PulledBatch...], "head": int, "log_id": bytes16}
                                                                  (application/x-msgpack)
    PulledBatch:  {"hub_seq": int, "site_id": bytes16, "sealed": bytes, "log_id": bytes16}
                                                                  (one per WS frame)

Inside a pull answer the batches carry no `log_id` (the answer has one).
`log_id` is fixed when the hub's store is created: an edge that sees another
one is talking to a rebuilt hub (docs/design.md).  It is in the pull answer and in every
frame, so a stream needs no extra first message.  Readers treat it as optional.

Sealed batches are carried as they were pushed, byte for byte.  Encoders take
plain values (anything with `hub_seq`, `site_id`, `sealed`); decoders raise
`MalformedInput` (or its `TooLarge`) only.  Unknown map keys are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, Protocol
from uuid import UUID

from sync_protocol.canonical import pack_plain, unpack
from sync_protocol.errors import MalformedInput
from sync_protocol.models import PulledBatch, PullResponse

MEDIA_TYPE: Final = "application/x-msgpack"
MAX_PULL_BYTES: Final = 1 << 30


class PulledEntry(Protocol):
    """What the encoders read of one batch (a hub's stored batch, or a `PulledBatch`)."""

    @property
    def hub_seq(self) -> int: ...
    @property
    def site_id(self) -> UUID: ...
    @property
    def sealed(self) -> bytes: ...


def _entry(hub_seq: int, site_id: UUID, sealed: bytes) -> dict[str, Any]:
    # Key order is part of the bytes (not canonical msgpack): hub_seq, site_id, sealed.
    return {"hub_seq": hub_seq, "site_id": site_id.bytes, "sealed": sealed}


def encode_pulled(*, hub_seq: int, site_id: UUID, sealed: bytes, log_id: UUID) -> bytes:
    """One stream frame: a batch and the hub's `log_id`."""
    frame = _entry(hub_seq, site_id, sealed)
    frame["log_id"] = log_id.bytes
    return pack_plain(frame)


def encode_pull_response(batches: Iterable[PulledEntry], *, head: int, log_id: UUID) -> bytes:
    """The pull answer: batches in hub order, the practice's `head`, the hub's `log_id`."""
    return pack_plain({"batches": [_entry(b.hub_seq, b.site_id, b.sealed) for b in batches],
                       "head": head, "log_id": log_id.bytes})


def _map(raw: Any, what: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise MalformedInput(f"{what} is not a map", hint="the hub answers a msgpack map")
    return raw


def _uuid(value: Any, what: str) -> UUID:
    if not isinstance(value, bytes) or len(value) != 16:
        raise MalformedInput(f"{what} is not 16 bytes")
    return UUID(bytes=value)


def _optional_log_id(raw: dict[str, Any]) -> UUID | None:
    value = raw.get("log_id")
    return None if value is None else _uuid(value, "log_id")


def _batch(raw: Any) -> PulledBatch:
    entry = _map(raw, "pulled batch")
    try:
        sealed = entry["sealed"]
        if not isinstance(sealed, bytes):
            raise MalformedInput("pulled batch: sealed is not bytes")
        return PulledBatch(hub_seq=entry["hub_seq"],
                           site_id=_uuid(entry["site_id"], "pulled batch: site_id"),
                           sealed=sealed)
    except (KeyError, TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        raise MalformedInput(f"invalid pulled batch: {type(exc).__name__}") from exc


def decode_pulled(data: bytes, *, max_len: int = MAX_PULL_BYTES) -> PulledBatch:
    """One stream frame's batch (its `log_id`: `pulled_log_id`); raises `MalformedInput`."""
    return _batch(unpack(data, what="pulled batch", max_len=max_len))


def decode_pull_response(data: bytes, *, max_len: int = MAX_PULL_BYTES) -> PullResponse:
    """The pull answer, with `log_id` (None from a hub that sends none); raises `MalformedInput`."""
    raw = _map(unpack(data, what="pull response", max_len=max_len), "pull response")
    try:
        batches = raw["batches"]
        if not isinstance(batches, list):
            raise MalformedInput("pull response: batches is not a list")
        return PullResponse(batches=tuple(_batch(b) for b in batches), head=raw["head"],
                            log_id=_optional_log_id(raw))
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedInput(f"invalid pull response: {type(exc).__name__}") from exc


def pulled_log_id(data: bytes, *, max_len: int = MAX_PULL_BYTES) -> UUID | None:
    """The `log_id` of a pull answer or a stream frame (None if absent); raises `MalformedInput`."""
    return _optional_log_id(_map(unpack(data, what="pull answer", max_len=max_len),
                                 "pull answer"))


__all__ = ["MAX_PULL_BYTES", "MEDIA_TYPE", "PulledEntry", "decode_pull_response",
           "decode_pulled", "encode_pull_response", "encode_pulled", "pulled_log_id"]
