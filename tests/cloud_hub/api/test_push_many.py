"""Several batches in one push (pipelined pushes, #5): stored in order like single pushes,
stopping at the first refusal; bad bodies are refused whole with nothing stored."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_protocol.batch import batch_hash
from sync_protocol.canonical import pack_plain
from sync_protocol.models import PushAck, push_ack_from_json
from sync_protocol.push_wire import MAX_PUSH_BATCHES, MEDIA_TYPE_MANY, encode_push_many
from sync_protocol.receipt import verify_receipt
from tests.cloud_hub.harness import Harness, Member


async def _push_many(harness: Harness, member: Member, body: bytes) -> Any:
    return await harness.client.post("/v1/batches", data=io.BytesIO(body), headers={
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


async def test_a_refusal_of_another_kind_in_the_middle_is_reported_the_same_way(
        harness: Harness) -> None:
    clinic, (a, _b) = await harness.practice_with_sites()
    first = clinic.seal(a.site, 1)
    tampered = bytearray(clinic.seal(a.site, 1))
    tampered[-80] ^= 0x01  # in the ciphertext's last bytes: the signature no longer holds
    resp = await _push_many(harness, a, encode_push_many([first, bytes(tampered)]))
    body = await resp.json()
    assert resp.status == 200 and len(body["acks"]) == 1, body
    assert body["refused"]["code"] in {"bad_signature", "tampered"}
    assert body["refused"]["status"] in {400, 401} and body["refused"]["hint"]
    assert await harness.stored(clinic.practice_id) == [first]


async def test_single_pushes_of_an_older_edge_and_pushes_of_several_share_one_chain(
        harness: Harness) -> None:
    """Mixed versions: an edge of the previous release pushes one batch per request
    (application/octet-stream); a site may move between the forms at any batch."""
    clinic, (a, _b) = await harness.practice_with_sites()
    chain = [clinic.seal(a.site, 2) for _ in range(5)]
    one = await harness.push(a, chain[0])
    assert one.status == 200 and push_ack_from_json(await one.json()).hub_seq == 1
    many = await (await _push_many(harness, a, encode_push_many(chain[1:3]))).json()
    assert [x["hub_seq"] for x in many["acks"]] == [2, 3] and many["refused"] is None
    again = push_ack_from_json(await (await harness.push(a, chain[2])).json())
    assert (again.hub_seq, again.duplicate) == (3, True)
    for hub_seq, sealed in ((4, chain[3]), (5, chain[4])):
        ack = push_ack_from_json(await (await harness.push(a, sealed)).json())
        verify_receipt(ack.receipt, harness.hub_verify_key)
        assert (ack.hub_seq, ack.duplicate, ack.receipt.batch_hash) == (
            hub_seq, False, batch_hash(sealed))
    assert await harness.stored(clinic.practice_id) == chain


async def test_a_body_over_the_hubs_limit_is_refused_whole(harness: Harness) -> None:
    """The whole body is held to the single batch's limit (4 MiB in the harness)."""
    clinic, (a, _b) = await harness.practice_with_sites()
    first = clinic.seal(a.site, 1)
    body = encode_push_many([first, bytes(4 * 1024 * 1024)])
    resp = await _push_many(harness, a, body)
    problem = await resp.json()
    assert (resp.status, problem["code"]) == (413, "too_large"), problem
    assert "exceeds" in problem["detail"] and problem["hint"]
    assert await harness.stored(clinic.practice_id) == []


@dataclass(frozen=True)
class Step:
    """One push request of the property test: batches `start`..`start + count - 1` of
    the chain, the one at `bad` (an index into the request) tampered with, sent as a
    single push or as several."""

    start: int
    count: int
    bad: int | None
    single: bool


@st.composite
def plans(draw: st.DrawFn) -> tuple[int, list[Step]]:
    n = draw(st.integers(1, 20))
    steps = []
    for _ in range(draw(st.integers(1, 6))):
        start = draw(st.integers(0, n - 1))
        count = draw(st.integers(1, min(MAX_PUSH_BATCHES, n - start)))
        bad = draw(st.none() | st.integers(0, count - 1))
        steps.append(Step(start, count, bad, count == 1 and draw(st.booleans())))
    return n, steps


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=plans())
async def test_any_plan_of_pushes_stores_the_chain_once_in_order(
        harness: Harness, plan: tuple[int, list[Step]]) -> None:
    """Whatever windows a site sends, from wherever (resends after lost answers, gaps,
    a bad batch anywhere): the hub's log is a prefix of the chain in order, each batch
    once; every ack names its batch with a valid receipt and its chain position; a
    refusal stops the request at the batch refused, and says where to resume."""
    n, steps = plan
    clinic, (a,) = await harness.practice_with_sites(1)
    chain = [clinic.seal(a.site, 1) for _ in range(n)]
    stored = 0  # the hub has chain[:stored]
    for step in steps:
        sent = chain[step.start:step.start + step.count]
        if step.bad is not None:
            tampered = bytearray(sent[step.bad])
            tampered[-80] ^= 0x01
            sent[step.bad] = bytes(tampered)
        resp = (await harness.push(a, sent[0]) if step.single
                else await _push_many(harness, a, encode_push_many(sent)))
        body = await resp.json()
        # The hub takes batches up to the first that is bad or does not follow its chain.
        good = 0 if step.start > stored else len(sent) if step.bad is None else step.bad
        if good == 0:
            assert resp.status in {400, 401, 409}, body
            if step.start > stored and step.bad != 0:
                assert (body["code"], body["expected_seq"]) == ("chain_broken", stored + 1)
            continue
        assert resp.status == 200, body
        acks: list[PushAck] = ([push_ack_from_json(body)] if step.single else
                               [push_ack_from_json(x) for x in body["acks"]])
        assert len(acks) == good
        for i, ack in enumerate(acks):
            position = step.start + i
            verify_receipt(ack.receipt, harness.hub_verify_key)
            assert ack.receipt.batch_hash == batch_hash(chain[position])
            assert (ack.hub_seq, ack.duplicate) == (position + 1, position < stored)
        if not step.single:
            assert (body["refused"] is None) == (good == len(sent)), body
        stored = max(stored, step.start + good)
        assert await harness.stored(clinic.practice_id) == chain[:stored]
