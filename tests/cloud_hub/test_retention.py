"""Log id, retention (trim) and ranged snapshot downloads."""

from __future__ import annotations

import sqlite3
import uuid

import asyncpg
import pytest

from cloud_hub.api.context import HUB
from cloud_hub.config import HubConfig
from cloud_hub.store.base import HubStore, trim_point
from cloud_hub.store.locator import open_store
from sync_protocol.ids import PracticeId
from sync_protocol.pull_wire import decode_pull_response, decode_pulled, pulled_log_id
from tests.cloud_hub.harness import Harness
from tests.cloud_hub.snapshots import attested, new_snapshot, upload
from tests.cloud_hub.store.test_store_contract import NOW, enrolled, push


def with_config(harness: Harness, **changes: object) -> None:
    """Swap the running app's config (a frozen value) for one with `changes`."""
    ctx = harness.client.app[HUB]
    values = {k: getattr(ctx.config, k) for k in HubConfig.__dataclass_fields__}
    object.__setattr__(ctx, "config", HubConfig(**{**values, **changes}))


async def test_log_id_is_made_once_and_given_on_upgrade(store_url: str) -> None:
    async with open_store(store_url) as store:
        first = store.log_id
    async with open_store(store_url) as store:
        assert store.log_id == first != uuid.UUID(int=0)
    # A store from before the log id (schema 1) has no row: it gets one when opened.
    if store_url.startswith("sqlite:"):
        with sqlite3.connect(store_url[len("sqlite:"):]) as db:
            db.execute("DELETE FROM hub_meta")
    else:
        conn = await asyncpg.connect(store_url)
        await conn.execute("DELETE FROM hub_meta")
        await conn.close()
    async with open_store(store_url) as store:
        assert store.log_id not in (first, uuid.UUID(int=0))


async def test_log_id_in_hub_key_pull_and_every_frame(harness: Harness) -> None:
    clinic, (a, b) = await harness.practice_with_sites()
    log_id = harness.store.log_id
    key = await (await harness.client.get("/v1/hub-key")).json()
    assert key["log_id"] == str(log_id)
    sealed = clinic.seal(a.site, 1)
    assert (await harness.push(a, sealed)).status == 200
    body = await (await harness.client.get("/v1/batches", headers=b.headers)).read()
    assert pulled_log_id(body) == log_id
    assert [p.sealed for p in decode_pull_response(body).batches] == [sealed]
    empty = await (await harness.client.get("/v1/batches", params={"after": 1},
                                            headers=b.headers)).read()
    assert pulled_log_id(empty) == log_id
    async with harness.client.ws_connect("/v1/stream?after=0", headers=b.headers) as ws:
        frame = await ws.receive_bytes(timeout=10)
    assert pulled_log_id(frame) == log_id and decode_pulled(frame).sealed == sealed


@pytest.mark.parametrize(("head", "trimmed", "snap", "keep", "expected"), [
    (100, 0, 90, 0, 0),      # unlimited retention: nothing goes
    (100, 0, 90, 30, 70),    # the latest 30 stay
    (100, 0, 50, 30, 50),    # never past what the snapshot covers
    (100, 0, 0, 30, 0),      # no snapshot: nothing goes
    (100, 80, 90, 30, 80),   # never un-trims
    (10, 0, 10, 30, 0),      # fewer batches than kept
])
def test_trim_point(head: int, trimmed: int, snap: int, keep: int, expected: int) -> None:
    assert trim_point(head, trimmed, snap, keep) == expected


async def test_store_trims_only_what_a_snapshot_covers(hub_store: HubStore) -> None:
    from tests.cloud_hub.clinic import new_clinic
    clinic = new_clinic()
    site = clinic.new_site()
    await enrolled(hub_store, clinic, site, create=True)
    pid = PracticeId(clinic.practice_id)
    for _ in range(10):
        await push(hub_store, clinic.seal(site, 1))
    assert await hub_store.trim(pid, 3) == 0  # no snapshot yet
    await hub_store.put_snapshot(new_snapshot(attested(pid, site, 4, b"s4"), b"s4"), NOW,
                                 keep=3)
    assert await hub_store.trim(pid, 3) == 4
    assert [b.hub_seq for b in await hub_store.batches_after(pid, 0, 100)] == list(
        range(5, 11))
    await hub_store.put_snapshot(new_snapshot(attested(pid, site, 9, b"s9"), b"s9"), NOW,
                                 keep=3)
    assert await hub_store.trim(pid, 3) == 7  # the latest 3 stay
    assert await hub_store.trim(pid, 3) == 7  # idempotent
    bounds = await hub_store.log_bounds(pid)
    assert (bounds.head, bounds.trimmed_through, bounds.oldest_kept) == (10, 7, 8)
    # The chain continues after a trim.
    assert (await push(hub_store, clinic.seal(site, 1))).hub_seq == 11
    assert await hub_store.received_ms(pid, [1, 8, 11]) == {8: NOW, 11: NOW}


async def test_pull_below_the_trim_answers_410_with_where_to_start(harness: Harness) -> None:
    with_config(harness, retention_batches=2)
    clinic, (a, b) = await harness.practice_with_sites()
    for _ in range(6):
        assert (await harness.push(a, clinic.seal(a.site, 1))).status == 200
    unsigned = await upload(harness, a, b"snapshot-at-5", None)
    assert unsigned.status == 400
    resp = await harness.client.get("/v1/batches", params={"after": 0}, headers=b.headers)
    assert resp.status == 200  # an unsigned snapshot never justifies a trim
    resp = await upload(harness, a, b"snapshot-at-5",
                        attested(clinic.practice_id, a.site, 5, b"snapshot-at-5"))
    assert resp.status == 201
    resp = await harness.client.get("/v1/batches", params={"after": 2}, headers=b.headers)
    assert resp.status == 410 and resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["code"] == "log_trimmed"
    assert (body["oldest_kept"], body["snapshot_hub_seq"]) == (5, 5)
    assert "bootstrap from the latest snapshot" in body["hint"]
    resp = await harness.client.get("/v1/stream", params={"after": 0}, headers=b.headers)
    assert resp.status == 410 and (await resp.json())["code"] == "log_trimmed"
    # From the snapshot's position on, everything is there.
    ok = await harness.client.get("/v1/batches", params={"after": 4}, headers=b.headers)
    assert [p.hub_seq for p in decode_pull_response(await ok.read()).batches] == [5, 6]


async def test_snapshot_download_honours_range(harness: Harness) -> None:
    clinic, (a, b) = await harness.practice_with_sites()
    assert (await harness.push(a, clinic.seal(a.site, 1))).status == 200
    blob = bytes(range(256)) * 20_000  # 5 MB: several store chunks
    put = await upload(harness, a, blob, attested(clinic.practice_id, a.site, 1, blob))
    snapshot_id = (await put.json())["snapshot_id"]
    whole = await harness.client.get("/v1/snapshots/latest", headers=b.headers)
    assert whole.status == 200 and await whole.read() == blob
    assert whole.headers["X-Snapshot-Id"] == snapshot_id
    assert whole.headers["X-Snapshot-Hub-Seq"] == "1"
    assert int(whole.headers["Content-Length"]) == len(blob)
    part = await harness.client.get("/v1/snapshots/latest", headers={
        **b.headers, "Range": "bytes=1048570-2097160"})
    assert part.status == 206 and await part.read() == blob[1048570:2097161]
    assert part.headers["Content-Range"] == f"bytes 1048570-2097160/{len(blob)}"
    tail = await harness.client.get("/v1/snapshots/latest", headers={
        **b.headers, "Range": f"bytes={len(blob) - 10}-"})
    assert tail.status == 206 and await tail.read() == blob[-10:]
    suffix = await harness.client.get("/v1/snapshots/latest", headers={
        **b.headers, "Range": "bytes=-4"})
    assert await suffix.read() == blob[-4:]
    beyond = await harness.client.get("/v1/snapshots/latest", headers={
        **b.headers, "Range": f"bytes={len(blob)}-"})
    assert beyond.status == 416 and (await beyond.json())["size"] == len(blob)


async def test_trim_command(store_url: str) -> None:
    import asyncio
    import json
    import sys

    from tests.cloud_hub.clinic import new_clinic
    clinic = new_clinic()
    site = clinic.new_site()
    pid = PracticeId(clinic.practice_id)
    async with open_store(store_url) as store:
        await enrolled(store, clinic, site, create=True)
        for _ in range(6):
            await push(store, clinic.seal(site, 1))
        await store.put_snapshot(new_snapshot(attested(pid, site, 5, b"s"), b"s"), NOW,
                                 keep=3)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cloud_hub", "trim", "--store", store_url, "--keep", "2",
        "--json", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err
    assert json.loads(out) == [{"practice_id": str(pid), "trimmed_through": 4, "head": 6,
                                "verified_snapshot_hub_seq": 5}]
    async with open_store(store_url) as store:
        assert (await store.log_bounds(pid)).oldest_kept == 5
    usage = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cloud_hub", "trim", "--store", store_url, "--keep", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(usage.communicate(), 60)
    assert usage.returncode == 2 and b"--keep" in err
