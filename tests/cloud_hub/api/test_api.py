"""The hub API end to end over each store: enrollment, approval, push, pull, receipts, mail."""

from __future__ import annotations

import asyncio
import base64
from uuid import UUID, uuid4

from cloud_hub.api.context import HUB
from sync_protocol.batch import batch_hash, open_batch
from sync_protocol.keys import SiteDirectory, SitePublicKeys
from sync_protocol.models import Dot, push_ack_from_json
from sync_protocol.pull_wire import MEDIA_TYPE, decode_pull_response, decode_pulled
from sync_protocol.receipt import verify_receipt
from tests.cloud_hub.clinic import Clinic
from tests.cloud_hub.harness import Harness
from tests.cloud_hub.snapshots import attested, upload


async def test_enrollment_approval_push_pull_and_receipts(harness: Harness) -> None:
    pid, token = await harness.create_practice()
    clinic = Clinic(pid)
    a = await harness.enroll(clinic, token, "main")
    assert a.status == "approved"  # the practice's first site: approved by the token
    b = await harness.enroll(clinic, await harness.token(pid, a.headers), "branch")
    assert b.status == "pending"

    resp = await harness.push(b, clinic.seal(b.site, 2, advance=False))
    assert resp.status == 403 and (await resp.json())["code"] == "site_pending"
    b.site.seq = 0  # that batch was refused: the site's chain starts again at 1
    me = await harness.client.get("/v1/me", headers=b.headers)
    assert (await me.json())["status"] == "pending"
    resp = await harness.client.post(f"/v1/sites/{b.site.site_id}/approve", headers=a.headers)
    assert resp.status == 200 and (await resp.json())["approved_by"] == str(a.site.site_id)

    sealed = [clinic.seal(a.site, 3), clinic.seal(b.site, 2), clinic.seal(a.site, 1)]
    acks = []
    for member, raw in zip((a, b, a), sealed, strict=True):
        resp = await harness.push(member, raw)
        assert resp.status == 200, await resp.text()
        acks.append(push_ack_from_json(await resp.json()))
    assert [ack.hub_seq for ack in acks] == [1, 2, 3]
    key = await harness.client.get("/v1/hub-key")
    hub_key = base64.b64decode((await key.json())["verify_key"])
    assert hub_key == harness.hub_verify_key
    for ack, raw in zip(acks, sealed, strict=True):
        verify_receipt(ack.receipt, hub_key)
        assert ack.receipt.batch_hash == batch_hash(raw)
        assert ack.receipt.practice_id == pid

    again = push_ack_from_json(await (await harness.push(a, sealed[0])).json())
    assert (again.hub_seq, again.duplicate) == (1, True)
    assert again.receipt == acks[0].receipt  # the same signed receipt, byte for byte
    assert len(await harness.stored(pid)) == 3

    # The registry the edges build their SiteDirectory from, then pull and open.
    listing = await (await harness.client.get("/v1/sites", headers=b.headers)).json()
    directory = SiteDirectory(SitePublicKeys(
        site_id=UUID(s["site_id"]), verify_key=base64.b64decode(s["verify_key"]),
        box_key=base64.b64decode(s["box_key"])) for s in listing["sites"])
    resp = await harness.client.get("/v1/batches", params={"after": 1, "limit": 5},
                                    headers=b.headers)
    assert resp.status == 200 and resp.content_type == MEDIA_TYPE
    pulled = decode_pull_response(await resp.read())
    assert pulled.head == 3 and [p.hub_seq for p in pulled.batches] == [2, 3]
    assert [p.sealed for p in pulled.batches] == sealed[1:]
    header, changes = open_batch(pulled.batches[1].sealed, clinic.keyring, directory)
    assert header.site_id == a.site.site_id and len(changes) == 1


async def test_gap_answers_409_with_where_to_resume(harness: Harness) -> None:
    clinic, (a, _b) = await harness.practice_with_sites()
    first = clinic.seal(a.site, 2)
    assert (await harness.push(a, first)).status == 200
    clinic.changes(a.site, 3)  # never pushed
    resp = await harness.push(a, clinic.seal(a.site, 1))
    body = await resp.json()
    assert resp.status == 409 and resp.content_type == "application/problem+json"
    assert body["code"] == "chain_broken" and body["status"] == 409
    assert body["expected_seq"] == 3 and body["expected_prev_hash"] == batch_hash(first).hex()
    assert body["hint"] and body["detail"]
    assert len(await harness.stored(clinic.practice_id)) == 1


async def test_long_poll_wakes_when_a_batch_lands(harness: Harness) -> None:
    clinic, (a, b) = await harness.practice_with_sites()

    async def poll() -> bytes:
        resp = await harness.client.get("/v1/batches", params={"after": 0, "wait_s": 30},
                                        headers=b.headers)
        body: bytes = await resp.read()
        return body

    async with asyncio.timeout(10):
        waiting = asyncio.ensure_future(poll())
        # Yield (no timer) until the handler waits, so the push below must wake it.
        while not _has_waiter(harness, clinic.practice_id):  # noqa: ASYNC110
            await asyncio.sleep(0)
        assert (await harness.push(a, clinic.seal(a.site, 1))).status == 200
        pulled = decode_pull_response(await waiting)
    assert [p.hub_seq for p in pulled.batches] == [1]


def _has_waiter(harness: Harness, pid: UUID) -> bool:
    ctx = harness.client.app[HUB]
    return bool(ctx.notifier.has_waiters(pid))


async def test_websocket_stream_sends_each_new_batch(harness: Harness) -> None:
    clinic, (a, b) = await harness.practice_with_sites()
    first = clinic.seal(a.site, 1)
    await harness.push(a, first)
    async with harness.client.ws_connect("/v1/stream?after=0", headers=b.headers) as ws:
        async with asyncio.timeout(10):
            frame = decode_pulled(await ws.receive_bytes())
            assert (frame.hub_seq, frame.sealed) == (1, first)
            later = [clinic.seal(a.site, 2), clinic.seal(a.site, 1)]
            for raw in later:
                assert (await harness.push(a, raw)).status == 200
            frames = [decode_pulled(await ws.receive_bytes()) for _ in later]
    assert [(f.hub_seq, f.site_id, f.sealed) for f in frames] == [
        (2, a.site.site_id, later[0]), (3, a.site.site_id, later[1])]


async def test_a_cursor_past_the_head_is_answered_at_once(harness: Harness) -> None:
    """A site whose cursor is past the log's end (this hub was restored from an older
    backup): a long-poll answers at once with the head, a stream closes with 4409."""
    clinic, (a, b) = await harness.practice_with_sites()
    assert (await harness.push(a, clinic.seal(a.site, 1))).status == 200
    async with asyncio.timeout(10):  # would wait 30 s
        resp = await harness.client.get("/v1/batches", params={"after": 5, "wait_s": 30},
                                        headers=b.headers)
        pulled = decode_pull_response(await resp.read())
    assert resp.status == 200 and pulled.head == 1 and not pulled.batches
    async with harness.client.ws_connect("/v1/stream?after=5", headers=b.headers) as ws:
        async with asyncio.timeout(10):
            msg = await ws.receive()
    assert msg.type.name == "CLOSE" and ws.close_code == 4409
    # At the head (nothing new) the stream stays open and sends what comes.
    async with harness.client.ws_connect("/v1/stream?after=1", headers=b.headers) as ws:
        second = clinic.seal(a.site, 1)
        assert (await harness.push(a, second)).status == 200
        async with asyncio.timeout(10):
            frame = decode_pulled(await ws.receive_bytes())
    assert (frame.hub_seq, frame.sealed) == (2, second)


async def test_revoking_ends_access_at_once(harness: Harness) -> None:
    clinic, (a, b) = await harness.practice_with_sites()
    async with harness.client.ws_connect("/v1/stream", headers=b.headers) as ws:
        resp = await harness.client.post(f"/v1/sites/{b.site.site_id}/revoke",
                                         headers=a.headers)
        assert resp.status == 200 and (await resp.json())["status"] == "revoked"
        async with asyncio.timeout(10):
            await harness.push(a, clinic.seal(a.site, 1))  # wakes the stream, which re-checks
            msg = await ws.receive()
        assert ws.closed or msg.type.name in ("CLOSE", "CLOSED", "CLOSING")
    for method, path in (("GET", "/v1/sites"), ("GET", "/v1/batches"), ("GET", "/v1/mailbox")):
        resp = await harness.client.request(method, path, headers=b.headers)
        assert resp.status == 403 and (await resp.json())["code"] == "site_revoked"
    resp = await harness.push(b, clinic.seal(b.site, 1))
    assert resp.status == 403
    assert len(await harness.stored(clinic.practice_id)) == 1


async def test_mailbox_carries_sealed_keys(harness: Harness) -> None:
    _clinic, (a, b) = await harness.practice_with_sites()
    resp = await harness.client.post(f"/v1/mailbox/{b.site.site_id}", data=b"sealed-key",
                                     headers=a.headers)
    assert resp.status == 201
    items = (await (await harness.client.get("/v1/mailbox", headers=b.headers)).json())["items"]
    assert [(i["from_site"], base64.b64decode(i["sealed"])) for i in items] == [
        (str(a.site.site_id), b"sealed-key")]
    assert (await (await harness.client.get("/v1/mailbox", headers=a.headers)).json()) == {
        "items": []}
    mid = items[0]["mail_id"]
    assert (await harness.client.delete(f"/v1/mailbox/{mid}", headers=a.headers)).status == 404
    assert (await harness.client.delete(f"/v1/mailbox/{mid}", headers=b.headers)).status == 204
    assert (await harness.client.delete(f"/v1/mailbox/{mid}", headers=b.headers)).status == 404


async def test_snapshot_then_tail(harness: Harness) -> None:
    clinic, (a, b) = await harness.practice_with_sites()
    for _ in range(3):
        await harness.push(a, clinic.seal(a.site, 2))
    resp = await harness.client.get("/v1/snapshots/latest", headers=b.headers)
    assert resp.status == 404
    resp = await upload(harness, a, b"x", attested(clinic.practice_id, a.site, 9, b"x"))
    assert resp.status == 400  # beyond the practice's head
    body = b"encrypted snapshot"
    resp = await upload(harness, a, body, attested(clinic.practice_id, a.site, 2, body))
    assert resp.status == 201
    # A new site: enrolled, approved, then snapshot + tail.
    c = await harness.enroll(clinic, await harness.token(clinic.practice_id, a.headers))
    await harness.client.post(f"/v1/sites/{c.site.site_id}/approve", headers=a.headers)
    snap = await harness.client.get("/v1/snapshots/latest", headers=c.headers)
    assert snap.status == 200 and await snap.read() == b"encrypted snapshot"
    after = int(snap.headers["X-Hub-Seq"])
    assert snap.headers["X-Site-Id"] == str(a.site.site_id)
    tail = decode_pull_response(await (await harness.client.get(
        "/v1/batches", params={"after": after}, headers=c.headers)).read())
    assert [p.hub_seq for p in tail.batches] == [3]


async def test_stats_count_concurrent_edits_from_headers(harness: Harness) -> None:
    clinic, (a, b) = await harness.practice_with_sites()
    rid = "0193a8f0-0000-7000-8000-0000000000aa"
    await harness.push(a, clinic.seal(a.site, changes=clinic.changes(a.site, 1, rid=rid)))
    # b did not see a's edit: concurrent.
    await harness.push(b, clinic.seal(b.site, changes=clinic.changes(b.site, 1, rid=rid)))
    stats = await (await harness.client.get("/v1/stats", headers=a.headers)).json()
    assert stats["head"] == 2 and stats["tracked_records"] == 1
    assert {s["site_id"]: s["concurrent_edits"] for s in stats["sites"]} == {
        str(a.site.site_id): 0, str(b.site.site_id): 1}
    await harness.push(a, clinic.seal(a.site, changes=clinic.changes(
        a.site, 1, rid=rid, replaces=(Dot(a.site.site_id, 1), Dot(b.site.site_id, 1)))))
    op = await (await harness.client.get("/v1/stats", params={
        "practice_id": str(clinic.practice_id)}, headers=harness.op_headers)).json()
    assert {s["site_id"]: s["concurrent_edits"] for s in op["sites"]}[str(a.site.site_id)] == 0


async def test_operator_lists_practices_and_sites_and_can_revoke(harness: Harness) -> None:
    clinic, (_a, b) = await harness.practice_with_sites()
    practices = await (await harness.client.get("/v1/practices",
                                                headers=harness.op_headers)).json()
    assert str(clinic.practice_id) in [p["practice_id"] for p in practices["practices"]]
    sites = await (await harness.client.get(f"/v1/practices/{clinic.practice_id}/sites",
                                            headers=harness.op_headers)).json()
    assert {s["status"] for s in sites["sites"]} == {"approved"}
    resp = await harness.client.post(
        f"/v1/practices/{clinic.practice_id}/sites/{b.site.site_id}/revoke",
        headers=harness.op_headers)
    assert resp.status == 200
    assert (await harness.client.get("/v1/sites", headers=b.headers)).status == 403
    resp = await harness.client.post(f"/v1/practices/{uuid4()}/sites/{b.site.site_id}/revoke",
                                     headers=harness.op_headers)
    assert resp.status == 404


async def test_health_and_unknown_routes_answer_problems(harness: Harness) -> None:
    resp = await harness.client.get("/healthz")
    assert resp.status == 200 and (await resp.json())["status"] == "ok"
    resp = await harness.client.get("/v1/nothing-here")
    assert resp.status == 404 and resp.content_type == "application/problem+json"
    resp = await harness.client.get("/v1/sites")
    assert resp.status == 401 and (await resp.json())["code"] == "unauthorized"
    resp = await harness.client.get("/v1/sites", headers={"Authorization": "Bearer cso_nope"})
    assert resp.status == 401
