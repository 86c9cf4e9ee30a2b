"""Several batches in one push (pipelined pushes, #5): stored in order like single pushes,
stopping at the first refusal; bad bodies are refused whole with nothing stored."""

from __future__ import annotations

from typing import Any

from sync_protocol.batch import batch_hash
from sync_protocol.canonical import pack_plain
from sync_protocol.models import push_ack_from_json
from sync_protocol.push_wire import MAX_PUSH_BATCHES, MEDIA_TYPE_MANY, encode_push_many
from sync_protocol.receipt import verify_receipt
from tests.cloud_hub.harness import Harness, Member


async def _push_many(harness: Harness, member: Member, body: bytes) -> Any:
    return await harness.client.post("/v1/batches", data=body, headers={
        **member.headers, "Content-Type": MEDIA_TYPE_MANY})


async def test_batches_pushed_together_are_stored_in_order_with_receipts(
        harness: Harness) -> None:
    clinic, (a, _b) = await harness.practice_with_sites()
    sealed = [clinic.seal(a.site, 2) for _ in range(5)]
    resp = await _push_many(harness, a, encode_push_many(sealed))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["refused"] is None
    acks = [push_ack_from_json(x) for x in body["acks"]]
    assert [ack.hub_seq for ack in acks] == [1, 2, 3, 4, 5]
    for ack, raw in zip(acks, sealed, strict=True):
        verify_receipt(ack.receipt, harness.hub_verify_key)
        assert ack.receipt.batch_hash == batch_hash(raw)
    assert await harness.stored(clinic.practice_id) == sealed

    # Sent again (an answer lost on the way): the same acks, nothing stored twice.
    again = await (await _push_many(harness, a, encode_push_many(sealed))).json()
    assert [push_ack_from_json(x) for x in again["acks"]] == [
        ack.model_copy(update={"duplicate": True}) for ack in acks]
    assert len(await harness.stored(clinic.practice_id)) == 5


async def test_a_refusal_keeps_the_batches_before_it_and_says_where_to_resume(
        harness: Harness) -> None:
    clinic, (a, _b) = await harness.practice_with_sites()
    first, second = clinic.seal(a.site, 1), clinic.seal(a.site, 1)
    clinic.changes(a.site, 2)  # seqs 3-4 never sealed: the next batch leaves a gap
    gap = clinic.seal(a.site, 1)
    resp = await _push_many(harness, a, encode_push_many([first, second, gap, first]))
    assert resp.status == 200
    body = await resp.json()
    assert len(body["acks"]) == 2
    refused = body["refused"]
    assert refused["code"] == "chain_broken" and refused["status"] == 409
    assert refused["expected_seq"] == 3 and refused["hint"]
    assert await harness.stored(clinic.practice_id) == [first, second]


async def test_a_refused_first_batch_is_answered_like_a_single_push(harness: Harness) -> None:
    clinic, (a, _b) = await harness.practice_with_sites()
    clinic.changes(a.site, 2)  # a gap before the first batch
    resp = await _push_many(harness, a, encode_push_many([clinic.seal(a.site, 1)]))
    assert resp.status == 409 and (await resp.json())["code"] == "chain_broken"
    assert await harness.stored(clinic.practice_id) == []


async def test_bad_bodies_are_refused_whole_and_store_nothing(harness: Harness) -> None:
    clinic, (a, _b) = await harness.practice_with_sites()
    one = clinic.seal(a.site, 1)
    cases = {
        b"\xc1not msgpack": (400, "malformed"),
        pack_plain([]): (400, "malformed"),
        pack_plain([one, "text"]): (400, "malformed"),
        pack_plain({"a": one}): (400, "malformed"),
        pack_plain([one] * (MAX_PUSH_BATCHES + 1)): (413, "too_large"),
    }
    for raw, (status, code) in cases.items():
        resp = await _push_many(harness, a, raw)
        body = await resp.json()
        assert (resp.status, body["code"]) == (status, code), body
        assert body["detail"] and body["hint"], body
    assert await harness.stored(clinic.practice_id) == []
