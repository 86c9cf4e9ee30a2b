"""Binary forms of pulled batches (msgpack), for `GET /v1/batches` and the WebSocket stream.

    PullResponse: {"batches": [PulledBatch...], "head": int, "log_id": bytes16}
                                                                  (application/x-msgpack)
    PulledBatch:  {"hub_seq": int, "site_id": bytes16, "sealed": bytes, "log_id": bytes16}
                                                                  (one per WS frame)

`log_id` is fixed when the hub's store is created: an edge that sees another
one is talking to a rebuilt hub (#5).  It is in the pull answer and in every
frame (so a stream needs no extra first message).

Sealed batches are carried as they were pushed, byte for byte.  Decoders
raise `MalformedInput` only.  (Belongs in `sync_protocol` once edges read it.)
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgpack
from pydantic import ValidationError

from cloud_hub.store.base import StoredBatch
from sync_protocol.canonical import unpack
from sync_protocol.errors import MalformedInput
from sync_protocol.models import PulledBatch, PullResponse

MEDIA_TYPE = "application/x-msgpack"


def _pulled(batch: StoredBatch, log_id: UUID | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"hub_seq": batch.hub_seq, "site_id": batch.site_id.bytes,
                           "sealed": batch.sealed}
    if log_id is not None:
        out["log_id"] = log_id.bytes
    return out


def encode_pulled(batch: StoredBatch, log_id: UUID) -> bytes:
    packed: bytes = msgpack.packb(_pulled(batch, log_id), use_bin_type=True)
    return packed


def encode_pull_response(batches: list[StoredBatch], head: int, log_id: UUID) -> bytes:
    packed: bytes = msgpack.packb({"batches": [_pulled(b) for b in batches], "head": head,
                                   "log_id": log_id.bytes}, use_bin_type=True)
    return packed


def pulled_log_id(data: bytes, *, max_len: int = 1 << 30) -> UUID | None:
    """The `log_id` of a pull answer or a stream frame (None if absent)."""
    raw = unpack(data, what="pull answer", max_len=max_len)
    value = raw.get("log_id") if isinstance(raw, dict) else None
    return UUID(bytes=bytes(value)) if value is not None else None


def _model_pulled(raw: Any) -> PulledBatch:
    return PulledBatch(hub_seq=raw["hub_seq"], site_id=UUID(bytes=raw["site_id"]),
                       sealed=raw["sealed"])


def decode_pulled(data: bytes, *, max_len: int = 1 << 30) -> PulledBatch:
    try:
        return _model_pulled(unpack(data, what="pulled batch", max_len=max_len))
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise MalformedInput(f"invalid pulled batch: {type(exc).__name__}") from exc


def decode_pull_response(data: bytes, *, max_len: int = 1 << 30) -> PullResponse:
    raw = unpack(data, what="pull response", max_len=max_len)
    try:
        return PullResponse(batches=tuple(_model_pulled(b) for b in raw["batches"]),
                            head=raw["head"])
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        raise MalformedInput(f"invalid pull response: {type(exc).__name__}") from exc
