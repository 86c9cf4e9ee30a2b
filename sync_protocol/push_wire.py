"""Pushing several sealed batches in one request (`POST /v1/batches`, pipelined pushes).

    body:   msgpack array of 1..MAX_PUSH_BATCHES sealed batches, each as bin, in chain
            order                                          (MEDIA_TYPE_MANY)
    answer: {"acks": [PushAck JSON...], "refused": problem JSON or null}

The hub stores them one after the other exactly as single pushes (same checks,
idempotency, receipts) and stops at the first refusal: `acks` holds one ack per
batch stored before it, `refused` the refusal of batch number `len(acks)`, and
the batches after it are not looked at.  A single sealed batch (application/
octet-stream) is still accepted, so edges of the previous release keep pushing.

A site with a backlog thereby pays one round trip per window of batches instead
of one per batch: on a clinic line with 200 ms of round trip and 500-change
batches, that is the difference between 2,500 and 40,000 changes/s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from sync_protocol.canonical import pack_plain, unpack
from sync_protocol.errors import MalformedInput, TooLarge

MEDIA_TYPE_MANY: Final = "application/vnd.chartsync.batches+msgpack"
#: Most batches in one push request.
MAX_PUSH_BATCHES: Final = 16


def encode_push_many(sealed: Sequence[bytes]) -> bytes:
    """The request body for `sealed` batches (1..MAX_PUSH_BATCHES, chain order)."""
    if not 1 <= len(sealed) <= MAX_PUSH_BATCHES:
        raise ValueError(f"a push carries 1 to {MAX_PUSH_BATCHES} batches, not {len(sealed)}")
    return pack_plain(list(sealed))


def decode_push_many(raw: bytes, *, max_batch_bytes: int) -> list[bytes]:
    """The sealed batches of a push body; raises `MalformedInput` / `TooLarge` only."""
    value = unpack(raw, what="batches pushed", max_len=max(max_batch_bytes, MAX_PUSH_BATCHES))
    if type(value) is not list or not value:
        raise MalformedInput("a push of several batches is a non-empty msgpack array of "
                             "sealed batches", hint="send each sealed batch as bin, in order")
    if len(value) > MAX_PUSH_BATCHES:
        raise TooLarge(f"{len(value)} batches in one push; at most {MAX_PUSH_BATCHES}",
                       hint="push the rest in the next request")
    for i, item in enumerate(value):
        if type(item) is not bytes:
            raise MalformedInput(f"batch {i} of the push is not binary",
                                 hint="send each sealed batch as msgpack bin")
        if len(item) > max_batch_bytes:
            raise TooLarge(f"batch {i} of the push is {len(item)} bytes; at most "
                           f"{max_batch_bytes}", hint="seal fewer changes per batch")
    return value


__all__ = ["MAX_PUSH_BATCHES", "MEDIA_TYPE_MANY", "decode_push_many", "encode_push_many"]
