"""Tenant isolation: a credential of practice A cannot read, write or learn of practice B.

Every route of the app is tried with A's credentials against B's objects; a
foreign object answers exactly like one that does not exist.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from cloud_hub.api.context import HUB
from sync_protocol.batch import seal_batch
from sync_protocol.ids import PracticeId
from sync_protocol.kit_keys import KitKeyPair, seal_epoch_for_kit
from sync_protocol.pull_wire import decode_pull_response, decode_pulled
from sync_protocol.roster import genesis_entry, sign_entry
from tests.cloud_hub.harness import Harness
from tests.cloud_hub.snapshots import attested, upload

PUBLIC = {("GET", "/healthz"), ("GET", "/openapi.json"), ("GET", "/v1/hub-key"),
          ("POST", "/v1/enroll"), ("GET", "/dashboard")}  # the page holds no data


async def test_every_route_refuses_or_hides_the_other_practice(harness: Harness) -> None:
    clinic_a, (a1, a2) = await harness.practice_with_sites()
    clinic_b, (b1, b2) = await harness.practice_with_sites()
    pid_b, sid_b = clinic_b.practice_id, b2.site.site_id
    b_batch = clinic_b.seal(b1.site, 2)
    assert (await harness.push(b1, b_batch)).status == 200
    await harness.client.post(f"/v1/mailbox/{sid_b}", data=b"b-mail", headers=b1.headers)
    b_mail = (await (await harness.client.get("/v1/mailbox", headers=b2.headers)).json())[
        "items"][0]["mail_id"]
    b_snapshot = attested(pid_b, b1.site, 1, b"b-snapshot")
    assert (await upload(harness, b1, b"b-snapshot", b_snapshot)).status == 201
    a_batch = clinic_a.seal(a1.site, 1)
    assert (await harness.push(a1, a_batch)).status == 200
    h = a1.headers
    nobody = uuid.uuid4()
    covered: set[tuple[str, str]] = set()

    async def same_as_absent(method: str, route: str, foreign: str, absent: str,
                             status: int, **kw: Any) -> None:
        """A's request for B's object answers exactly like one for a random id."""
        covered.add((method, route))
        r1 = await harness.client.request(method, foreign, headers=h, **kw)
        r2 = await harness.client.request(method, absent, headers=h, **kw)
        assert (r1.status, await r1.read()) == (r2.status, await r2.read()), foreign
        assert r1.status == status, foreign

    await same_as_absent("POST", "/v1/practices/{pid}/enrollment-tokens",
                         f"/v1/practices/{pid_b}/enrollment-tokens",
                         f"/v1/practices/{nobody}/enrollment-tokens", 404, json={})
    await same_as_absent("GET", "/v1/practices/{pid}/sites", f"/v1/practices/{pid_b}/sites",
                         f"/v1/practices/{nobody}/sites", 403)
    await same_as_absent("POST", "/v1/practices/{pid}/sites/{sid}/revoke",
                         f"/v1/practices/{pid_b}/sites/{sid_b}/revoke",
                         f"/v1/practices/{nobody}/sites/{nobody}/revoke", 403)
    await same_as_absent("POST", "/v1/practices/{pid}/sites", f"/v1/practices/{pid_b}/sites",
                         f"/v1/practices/{nobody}/sites", 403, json={})
    await same_as_absent("POST", "/v1/practices/{pid}/sites/{sid}/approve",
                         f"/v1/practices/{pid_b}/sites/{sid_b}/approve",
                         f"/v1/practices/{nobody}/sites/{nobody}/approve", 403)
    await same_as_absent("GET", "/v1/dashboard", f"/v1/dashboard?practice_id={pid_b}",
                         f"/v1/dashboard?practice_id={nobody}", 403)
    await same_as_absent("GET", "/metrics", "/metrics", "/metrics", 403)
    await same_as_absent("POST", "/v1/sites/{sid}/approve", f"/v1/sites/{sid_b}/approve",
                         f"/v1/sites/{nobody}/approve", 404)
    await same_as_absent("POST", "/v1/sites/{sid}/revoke", f"/v1/sites/{sid_b}/revoke",
                         f"/v1/sites/{nobody}/revoke", 404)
    await same_as_absent("POST", "/v1/mailbox/{id}", f"/v1/mailbox/{sid_b}",
                         f"/v1/mailbox/{nobody}", 404, data=b"x")
    await same_as_absent("DELETE", "/v1/mailbox/{id}", f"/v1/mailbox/{b_mail}",
                         f"/v1/mailbox/{nobody}", 404)
    await same_as_absent("GET", "/v1/practices", "/v1/practices", "/v1/practices", 403)
    await same_as_absent("POST", "/v1/practices", "/v1/practices", "/v1/practices", 403,
                         json={"name": "x"})

    # Listings and reads show A's practice only.
    covered.add(("GET", "/v1/sites"))
    sites = (await (await harness.client.get("/v1/sites", headers=h)).json())["sites"]
    assert {s["site_id"] for s in sites} == {str(a1.site.site_id), str(a2.site.site_id)}
    covered.add(("GET", "/v1/me"))
    assert (await (await harness.client.get("/v1/me", headers=h)).json())["site_id"] == str(
        a1.site.site_id)
    covered.add(("GET", "/v1/mailbox"))
    assert (await (await harness.client.get("/v1/mailbox", headers=h)).json()) == {"items": []}
    covered.add(("GET", "/v1/batches"))
    pulled = decode_pull_response(await (await harness.client.get(
        "/v1/batches", params={"after": 0}, headers=h)).read())
    assert [p.sealed for p in pulled.batches] == [a_batch] and pulled.head == 1
    covered.add(("GET", "/v1/stream"))
    async with harness.client.ws_connect("/v1/stream?after=0", headers=h) as ws:
        assert decode_pulled(await ws.receive_bytes(timeout=10)).sealed == a_batch
        assert (await harness.push(b1, clinic_b.seal(b1.site, 1))).status == 200
        a_next = clinic_a.seal(a1.site, 1)
        assert (await harness.push(a1, a_next)).status == 200
        assert decode_pulled(await ws.receive_bytes(timeout=10)).sealed == a_next
    covered.add(("GET", "/v1/snapshots/latest"))
    assert (await harness.client.get("/v1/snapshots/latest", headers=h)).status == 404
    covered.add(("PUT", "/v1/snapshots"))
    # A snapshot signed for B's practice, uploaded with A's credential: refused.
    into_b_snap = attested(pid_b, a1.site, 1, b"a-into-b")
    assert (await upload(harness, a1, b"a-into-b", into_b_snap)).status == 401
    a_snapshot = attested(clinic_a.practice_id, a1.site, 2, b"a-snap")
    assert (await upload(harness, a1, b"a-snap", a_snapshot)).status == 201
    snap = await harness.client.get("/v1/snapshots/latest", headers=b1.headers)
    assert await snap.read() == b"b-snapshot"
    covered.add(("GET", "/v1/snapshots"))
    listed = await (await harness.client.get("/v1/snapshots", headers=h)).json()
    assert [s["snapshot_id"] for s in listed["snapshots"]] == [
        str(a_snapshot.claim.snapshot_id)]
    await same_as_absent("GET", "/v1/snapshots/{snapshot_id}",
                         f"/v1/snapshots/{b_snapshot.claim.snapshot_id}",
                         f"/v1/snapshots/{nobody}", 404)
    covered.add(("GET", "/v1/stats"))
    stats = await (await harness.client.get("/v1/stats", params={"practice_id": str(pid_b)},
                                            headers=h)).json()
    assert stats["practice_id"] == str(clinic_a.practice_id)
    assert {s["site_id"] for s in stats["sites"]} == {str(a1.site.site_id),
                                                      str(a2.site.site_id)}

    # The roster and the kit-sealed keys are the caller's practice's only.
    kit = KitKeyPair.from_seed(bytes(32))
    b_genesis = sign_entry(genesis_entry(pid_b, b1.site.keys.public(b1.site.site_id),
                                         kit.public(), at_ms=1), b1.site.keys)
    b_entry = {"entry": base64.b64encode(b_genesis.raw).decode()}
    assert (await harness.client.post("/v1/roster", json=b_entry,
                                      headers=b1.headers)).status == 201
    covered.add(("POST", "/v1/roster"))
    resp = await harness.client.post("/v1/roster", json=b_entry, headers=h)
    assert resp.status == 400 and "practice" in (await resp.json())["detail"]
    covered.add(("GET", "/v1/roster"))
    assert (await (await harness.client.get("/v1/roster", headers=h)).json()) == {
        "entries": []}
    covered.add(("PUT", "/v1/kit-epochs/{epoch}"))
    sealed = seal_epoch_for_kit(clinic_b.keyring.current, practice_id=pid_b,
                                sender_id=b1.site.site_id, sender_keys=b1.site.keys,
                                kit=kit.public())
    kit_body = {"kit_fingerprint": sealed.kit_fingerprint,
                "sealed": base64.b64encode(sealed.sealed).decode()}
    assert (await harness.client.put(f"/v1/kit-epochs/{sealed.epoch}", json=kit_body,
                                     headers=b1.headers)).status == 204
    assert (await harness.client.put(f"/v1/kit-epochs/{sealed.epoch}", json=kit_body,
                                     headers=h)).status == 400
    covered.add(("GET", "/v1/kit-epochs"))
    assert (await (await harness.client.get("/v1/kit-epochs", headers=h)).json()) == {
        "items": []}

    # A heartbeat is always the caller's own: nothing of it lands in B.
    covered.add(("POST", "/v1/heartbeat"))
    resp = await harness.client.post("/v1/heartbeat", headers=h, json={
        "cursor": 1, "outbox_depth": 0, "software_version": "x", "protocol_version": "1.0",
        "state_digest": None})
    assert resp.status == 204
    b_activity = await harness.store.site_activity(PracticeId(pid_b))
    assert {a.site_id for a in b_activity} == {b1.site.site_id, sid_b}
    assert all(a.heartbeat is None for a in b_activity)

    # Writing into B: a batch naming B's practice, pushed with A's credential.
    covered.add(("POST", "/v1/batches"))
    into_b = seal_batch(practice_id=pid_b, site_id=a1.site.site_id, site_keys=a1.site.keys,
                        key=clinic_b.keyring.current, changes=clinic_a.changes(a1.site, 1),
                        prev_hash=a1.site.prev_hash, batch_id=uuid.uuid4())
    into_nowhere = seal_batch(practice_id=nobody, site_id=a1.site.site_id,
                              site_keys=a1.site.keys, key=clinic_b.keyring.current,
                              changes=clinic_a.changes(a1.site, 1), prev_hash=a1.site.prev_hash,
                              batch_id=uuid.uuid4())
    r1, r2 = await harness.push(a1, into_b), await harness.push(a1, into_nowhere)
    assert r1.status == r2.status == 403
    assert (await r1.json())["code"] == (await r2.json())["code"] == "wrong_origin"
    stored_b = await harness.stored(pid_b)
    assert len(stored_b) == 2 and stored_b[0] == b_batch and into_b not in stored_b

    # A's secret grafted onto B's ids is not a credential of B.
    secret = a1.credential.rsplit(".", 1)[1]
    grafted = {"Authorization": f"Bearer css_{pid_b.hex}.{sid_b.hex}.{secret}"}
    assert (await harness.client.get("/v1/sites", headers=grafted)).status == 401

    # B is untouched: its sites are approved, its mail is there.
    b_sites = (await (await harness.client.get("/v1/sites", headers=b1.headers)).json())["sites"]
    assert {s["status"] for s in b_sites} == {"approved"}
    b_items = (await (await harness.client.get("/v1/mailbox", headers=b2.headers)).json())[
        "items"]
    assert [base64.b64decode(i["sealed"]) for i in b_items] == [b"b-mail"]

    routes = {(r.method, r.resource.canonical) for r in harness.client.app.router.routes()
              if r.method != "HEAD" and r.resource is not None}
    assert routes - PUBLIC - covered == set(), "a route escaped the isolation test"
    assert harness.client.app[HUB] is not None
