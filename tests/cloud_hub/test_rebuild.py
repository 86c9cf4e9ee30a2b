"""Rebuilding a lost hub from the edges' copies (#5): relay pushes of other sites' batches.

A fresh, empty hub knows the practice's sites (ids and keys, as the edges and
the recovery kit hold them).  Each edge pushes what it stores — its own
batches and the ones it received — in its own order; the edges' pushes
interleave arbitrarily and overlap.  The hub must end with every batch once,
each origin's chain intact, and receipts naming the origin.
"""

from __future__ import annotations

import base64
import random
import uuid
from uuid import UUID

import nacl.utils
import pytest

from cloud_hub.credentials import credential_hash, new_site_credential
from cloud_hub.store.base import HubStore, NewSite, SiteStatus
from sync_protocol.batch import read_sealed
from sync_protocol.ids import PracticeId, SiteId
from sync_protocol.pull_wire import decode_pull_response
from tests.cloud_hub.clinic import Clinic, new_clinic
from tests.cloud_hub.harness import NOW_MS, Harness, Member, running_hub
from tests.sync_protocol.conftest import Site


async def register(store: HubStore, clinic: Clinic, site: Site, status: SiteStatus,
                   first: bool = False) -> Member:
    """Register `site` with its existing id and keys on the rebuilt hub."""
    pid = PracticeId(clinic.practice_id)
    if first:
        await store.create_practice(pid, "Sato Clinic", NOW_MS)
    token_hash = uuid.uuid4().bytes * 2
    await store.add_enrollment_token(pid, token_hash, NOW_MS + 60_000, NOW_MS)
    credential = new_site_credential(pid, SiteId(site.site_id), nacl.utils.random(32))
    pub = site.keys.public(site.site_id)
    await store.enroll_site(pid, token_hash, NewSite(SiteId(site.site_id), "site",
                                                     pub.verify_key, pub.box_key,
                                                     credential_hash(credential)), NOW_MS)
    if not first:
        await store.set_site_status(pid, SiteId(site.site_id), SiteStatus.APPROVED, None)
        if status is SiteStatus.REVOKED:
            await store.set_site_status(pid, SiteId(site.site_id), status, None)
    return Member(site, credential, status.value)


def old_log(clinic: Clinic, sites: list[Site], rnd: random.Random, n: int) -> list[bytes]:
    """The lost hub's log: `n` batches of the sites in a random order."""
    return [clinic.seal(rnd.choice(sites), rnd.randint(1, 3)) for _ in range(n)]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_an_empty_hub_is_rebuilt_from_two_edges_in_any_interleaving(
        hub_store: HubStore, seed: int) -> None:
    rnd = random.Random(seed)
    clinic = new_clinic()
    a, b, c = clinic.new_site(), clinic.new_site(), clinic.new_site()
    log = old_log(clinic, [a, b, c], rnd, 30)
    origin = {raw: UUID(str(read_sealed(raw).header.site_id)) for raw in log}
    # a applied the whole log; b is behind (it holds its own batches and what it pulled).
    pulled_by_b = rnd.randint(5, 25)
    held = {"a": log, "b": [raw for i, raw in enumerate(log)
                            if i < pulled_by_b or origin[raw] == b.site_id]}
    async with running_hub(hub_store) as harness:
        ma = await register(hub_store, clinic, a, SiteStatus.APPROVED, first=True)
        mb = await register(hub_store, clinic, b, SiteStatus.APPROVED)
        await register(hub_store, clinic, c, SiteStatus.REVOKED)  # lost and revoked
        queues = {"a": (ma, list(held["a"])), "b": (mb, list(held["b"]))}
        while any(q for _, q in queues.values()):
            name = rnd.choice([n for n, (_, q) in queues.items() if q])
            member, queue = queues[name]
            raw = queue.pop(0)
            resp = await harness.push(member, raw)
            assert resp.status == 200, await resp.text()
            receipt = (await resp.json())["receipt"]
            assert receipt["site_id"] == str(origin[raw])
        await assert_full_log(harness, ma, log, origin)


async def assert_full_log(harness: Harness, reader: Member, log: list[bytes],
                          origin: dict[bytes, UUID]) -> None:
    resp = await harness.client.get("/v1/batches", params={"after": 0, "limit": 1000},
                                    headers=reader.headers)
    pulled = decode_pull_response(await resp.read())
    restored = [p.sealed for p in pulled.batches]
    assert sorted(restored) == sorted(log), "every batch exactly once"
    assert [p.hub_seq for p in pulled.batches] == list(range(1, len(log) + 1))
    for site_id in set(origin.values()):
        assert [r for r in restored if origin[r] == site_id] == [
            r for r in log if origin[r] == site_id], f"chain of {site_id} out of order"
    for p in pulled.batches:
        assert p.site_id == origin[p.sealed]


async def test_a_relay_cannot_skip_ahead_in_an_origin_chain(harness: Harness) -> None:
    clinic, (a, b) = await harness.practice_with_sites()
    first, second = clinic.seal(b.site, 1), clinic.seal(b.site, 1)
    resp = await harness.push(a, second)
    assert resp.status == 409 and (await resp.json())["expected_seq"] == 1
    assert (await harness.push(a, first)).status == 200
    again = await harness.push(b, first)  # the origin itself, later: the same answer
    assert (await again.json())["duplicate"] is True
    assert (await again.json())["hub_seq"] == 1


async def enroll_as(harness: Harness, clinic: Clinic, site: Site, token: str) -> Member:
    """Re-enroll `site` on the rebuilt hub under its old id and keys."""
    pub = site.keys.public(site.site_id)
    resp = await harness.client.post("/v1/enroll", json={
        "token": token, "name": "survivor", "site_id": str(site.site_id),
        "verify_key": base64.b64encode(pub.verify_key).decode(),
        "box_key": base64.b64encode(pub.box_key).decode()})
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["site_id"] == str(site.site_id)
    return Member(site, body["credential"], body["status"])


async def test_the_whole_rebuild_through_the_api(harness: Harness) -> None:
    rnd = random.Random(9)
    clinic = new_clinic()
    a, b, c = clinic.new_site(), clinic.new_site(), clinic.new_site()
    log = old_log(clinic, [a, b, c], rnd, 12)
    op = harness.op_headers
    pid = clinic.practice_id
    resp = await harness.client.post("/v1/practices", headers=op, json={
        "name": "Sato Clinic", "practice_id": str(pid)})
    assert resp.status == 201 and (await resp.json())["practice_id"] == str(pid)
    again = await harness.client.post("/v1/practices", headers=op, json={
        "name": "Sato Clinic", "practice_id": str(pid)})
    assert again.status == 409 and (await again.json())["code"] == "already_exists"
    ma = await enroll_as(harness, clinic, a, await harness.token(pid, op))
    mb = await enroll_as(harness, clinic, b, await harness.token(pid, ma.headers))
    assert (ma.status, mb.status) == ("approved", "pending")
    dup = await harness.client.post("/v1/enroll", json={
        "token": await harness.token(pid, op), "name": "x", "site_id": str(a.site_id),
        "verify_key": base64.b64encode(bytes(32)).decode(),
        "box_key": base64.b64encode(bytes(32)).decode()})
    assert dup.status == 409
    assert (await harness.client.post(f"/v1/sites/{b.site_id}/approve",
                                      headers=ma.headers)).status == 200
    pub = c.keys.public(c.site_id)
    former = await harness.client.post(f"/v1/practices/{pid}/sites", headers=op, json={
        "site_id": str(c.site_id), "name": "old branch",
        "verify_key": base64.b64encode(pub.verify_key).decode(),
        "box_key": base64.b64encode(pub.box_key).decode()})
    assert former.status == 201 and (await former.json())["status"] == "revoked"
    origin = {raw: UUID(str(read_sealed(raw).header.site_id)) for raw in log}
    for raw in log:  # a holds the whole log
        assert (await harness.push(ma, raw)).status == 200
    for raw in log:  # b pushes its copies too: duplicates, the same answers
        resp = await harness.push(mb, raw)
        assert resp.status == 200 and (await resp.json())["duplicate"] is True
    await assert_full_log(harness, ma, log, origin)
    actions = await harness.store.operator_actions(PracticeId(pid))
    assert [x.action for x in actions] == ["registered_former_site"]
