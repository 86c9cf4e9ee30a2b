"""Binary forms of pulled batches (msgpack), for `GET /v1/batches` and the WebSocket stream.

    PullResponse: {"batches": [PulledBatch...], "head": int}     (application/x-msgpack)
    PulledBatch:  {"hub_seq": int, "site_id": bytes16, "sealed": bytes}   (one per WS frame)

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


def _pulled(batch: StoredBatch) -> dict[str, Any]:
    return {"hub_seq": batch.hub_seq, "site_id": batch.site_id.bytes, "sealed": batch.sealed}


def encode_pulled(batch: StoredBatch) -> bytes:
    packed: bytes = msgpack.packb(_pulled(batch), use_bin_type=True)
    return packed


def encode_pull_response(batches: list[StoredBatch], head: int) -> bytes:
    packed: bytes = msgpack.packb({"batches": [_pulled(b) for b in batches], "head": head},
                                  use_bin_type=True)
    return packed


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
