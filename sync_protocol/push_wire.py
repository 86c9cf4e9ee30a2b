"""Pushing several sealed batches in one request (`POST /v1/batches`, pipelined pushes).

    body:   msgpack array of 1..MAX_PUSH_BATCHES sealed batches, each as bin, in chain
            order                                          (MEDIA_TYPE_MANY)
    answer: {"acks": [PushAck JSON...], "refused": problem JSON or null}

The hub stores them one after the other exactly as single pushes (same checks,
idempotency, receipts) and stops at the first refusal: `acks` holds one ack per
batch stored before it, `refused` the refusal of batch number `len(acks)`, and
the batches after it are not looked at.  A single sealed batch (application/
octet-stream) is still accepted, so edges of the previous release keep pushing.
The body as a whole is held to the hub's limit for one sealed batch.

A site with a backlog thereby pays one round trip per window of batches instead
of one per batch: on a clinic line with 200 ms of round trip and 500-change
batches, that is the difference between 2,500 and 40,000 changes/s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sync_protocol.canonical import pack_plain, unpack
from sync_protocol.errors import MalformedInput, TooLarge
from sync_protocol.models import PushAck, push_ack_from_json

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


@dataclass(frozen=True, slots=True)
class PushManyAnswer:
    """The hub's answer to several batches: acks of the first `len(acks)`, in order,
    and the problem body refusing the next one (None when every batch was stored)."""

    acks: tuple[PushAck, ...]
    refused: Mapping[str, Any] | None


def decode_push_answer(raw: Any, *, sent: int) -> PushManyAnswer:
    """The parsed JSON answer to a push of `sent` batches; raises `MalformedInput` only.

    Checks what the pusher relies on to resume: at most one ack per batch sent, a
    refusal only of a batch that was sent, and an ack for every batch otherwise.
    Receipts are not verified here (the pusher does, with the pinned hub key).
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("acks"), list):
        raise MalformedInput("push answer is not {acks: [...], refused: ...}",
                             hint="check that the hub URL points at a chartsync hub")
    refused = raw.get("refused")
    if refused is not None and not isinstance(refused, dict):
        raise MalformedInput("push answer: refused is neither a problem body nor null")
    acks = tuple(push_ack_from_json(a) for a in raw["acks"])
    expected = f"{sent} acks" if refused is None else f"fewer than {sent} acks and a refusal"
    if len(acks) > sent or (refused is None) != (len(acks) == sent):
        raise MalformedInput(f"push answer has {len(acks)} acks"
                             f"{' and a refusal' if refused is not None else ''} for "
                             f"{sent} batches sent; expected {expected}")
    return PushManyAnswer(acks, refused)


__all__ = ["MAX_PUSH_BATCHES", "MEDIA_TYPE_MANY", "PushManyAnswer", "decode_push_answer",
           "decode_push_many", "encode_push_many"]
