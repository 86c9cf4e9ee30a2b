"""Snapshot storage, on SQLite and PostgreSQL: only verified snapshots are listed, served
and trusted to trim the log; a refused one changes nothing."""

from __future__ import annotations

import sqlite3
import uuid

import asyncpg
import pytest

from cloud_hub.errors import BadRequest, SnapshotBehind
from cloud_hub.store import postgres, sqlite
from cloud_hub.store.base import SCHEMA_VERSION, HubStore, SnapshotInfo
from cloud_hub.store.locator import open_store
from sync_protocol.ids import PracticeId
from tests.cloud_hub.clinic import Clinic, new_clinic
from tests.cloud_hub.snapshots import attested, new_snapshot
from tests.cloud_hub.store.test_store_contract import NOW, enrolled, push
from tests.sync_protocol.conftest import Site


async def _practice(store: HubStore, batches: int) -> tuple[Clinic, Site, Site]:
    clinic = new_clinic()
    a, b = clinic.new_site(), clinic.new_site()
    await enrolled(store, clinic, a, create=True)
    await enrolled(store, clinic, b)
    for _ in range(batches):
        await push(store, clinic.seal(a, 1))
    return clinic, a, b


def _view(found: list[SnapshotInfo]) -> list[tuple[int, uuid.UUID, int]]:
    return [(i.hub_seq, i.site_id, i.size) for i in found]


async def test_verified_snapshots_listed_newest_first_and_bounded(hub_store: HubStore) -> None:
    clinic, a, _ = await _practice(hub_store, 6)
    pid = PracticeId(clinic.practice_id)
    assert await hub_store.latest_snapshot_info(pid) is None
    atts = [attested(pid, a, seq, b"x" * seq) for seq in range(1, 6)]
    for i, att in enumerate(atts):
        await hub_store.put_snapshot(new_snapshot(att, b"x" * (i + 1)), NOW + i, keep=3)
    found = await hub_store.list_snapshots(pid)
    assert _view(found) == [(5, a.site_id, 5), (4, a.site_id, 4), (3, a.site_id, 3)]
    assert (found[0].digest, found[0].signature) == (atts[4].claim.digest, atts[4].signature)
    latest = await hub_store.latest_snapshot_info(pid)
    assert latest == found[0]
    assert await hub_store.snapshot_info(pid, atts[2].claim.snapshot_id) == found[2]
    assert await hub_store.snapshot_info(pid, atts[0].claim.snapshot_id) is None  # pruned
    assert await hub_store.snapshot_info(PracticeId(uuid.uuid4()),
                                         atts[4].claim.snapshot_id) is None  # foreign
    assert await hub_store.snapshot_chunk(pid, latest.snapshot_id, 1, 3) == b"xxx"
    assert await hub_store.count_snapshots(pid) == 3


async def test_refused_positions_store_nothing(hub_store: HubStore) -> None:
    clinic, a, b = await _practice(hub_store, 8)
    pid = PracticeId(clinic.practice_id)
    await hub_store.put_snapshot(new_snapshot(attested(pid, a, 6, b"six"), b"six"), NOW,
                                 keep=3)
    before = await hub_store.list_snapshots(pid)
    with pytest.raises(SnapshotBehind, match="behind the site's verified snapshot at 6"):
        await hub_store.put_snapshot(new_snapshot(attested(pid, a, 4, b"old"), b"old"),
                                     NOW + 1, keep=3)
    with pytest.raises(BadRequest, match="the practice is at 8"):
        await hub_store.put_snapshot(new_snapshot(attested(pid, a, 9, b"ahead"), b"ahead"),
                                     NOW + 1, keep=3)
    assert await hub_store.list_snapshots(pid) == before
    # Another site's older position is its own business; the same position again replaces.
    await hub_store.put_snapshot(new_snapshot(attested(pid, b, 4, b"b4"), b"b4"), NOW + 2,
                                 keep=3)
    await hub_store.put_snapshot(new_snapshot(attested(pid, a, 6, b"six!"), b"six!"), NOW + 3,
                                 keep=3)
    assert _view(await hub_store.list_snapshots(pid)) == [(6, a.site_id, 4), (4, b.site_id, 2)]


async def test_the_site_mark_survives_pruning(hub_store: HubStore) -> None:
    """A replayed old snapshot of a site is refused even once its own row was pruned."""
    clinic, a, b = await _practice(hub_store, 8)
    pid = PracticeId(clinic.practice_id)
    await hub_store.put_snapshot(new_snapshot(attested(pid, a, 5, b"a5"), b"a5"), NOW, keep=1)
    await hub_store.put_snapshot(new_snapshot(attested(pid, b, 7, b"b7"), b"b7"), NOW, keep=1)
    assert _view(await hub_store.list_snapshots(pid)) == [(7, b.site_id, 2)]
    with pytest.raises(SnapshotBehind):
        await hub_store.put_snapshot(new_snapshot(attested(pid, a, 3, b"a3"), b"a3"), NOW,
                                     keep=1)


async def _schema_3_with_snapshot(store_url: str, pid: PracticeId, site: Site,
                                  hub_seq: int) -> None:
    """A store as a schema-3 hub left it, holding one (unsigned) snapshot."""
    row = (pid, hub_seq, site.site_id, b"unsigned", NOW, uuid.uuid4())
    insert = ("INSERT INTO snapshots (practice_id, hub_seq, site_id, key_epoch, blob, "
              "created_ms, snapshot_id) VALUES ({})")
    if store_url.startswith("sqlite:"):
        with sqlite3.connect(store_url[len("sqlite:"):]) as db:
            db.execute("CREATE TABLE schema_meta (id INTEGER PRIMARY KEY CHECK (id = 1), "
                       "version INTEGER NOT NULL)")
            for version in (1, 2, 3):
                for statement in sqlite.MIGRATIONS[version]:
                    db.execute(statement)
            db.execute("INSERT INTO schema_meta VALUES (1, 3)")
            db.execute(insert.format("?, ?, ?, 1, ?, ?, ?"), (
                pid.bytes, hub_seq, site.site_id.bytes, b"unsigned", NOW, row[5].bytes))
        return
    conn = await asyncpg.connect(store_url)
    try:
        async with conn.transaction():
            await conn.execute("CREATE TABLE schema_meta (id int PRIMARY KEY CHECK (id = 1), "
                               "version int NOT NULL)")
            for version in (1, 2, 3):
                for statement in postgres.MIGRATIONS[version]:
                    await conn.execute(statement)
            await conn.execute("INSERT INTO schema_meta VALUES (1, 3)")
            await conn.execute(insert.format("$1, $2, $3, 1, $4, $5, $6"), *row)
    finally:
        await conn.close()


async def test_an_unsigned_snapshot_of_schema_3_never_justifies_a_trim(store_url: str) -> None:
    clinic = new_clinic()
    a = clinic.new_site()
    pid = PracticeId(clinic.practice_id)
    await _schema_3_with_snapshot(store_url, pid, a, 9)
    async with open_store(store_url) as store:  # migrates from 3
        assert store.schema_version == SCHEMA_VERSION
        await enrolled(store, clinic, a, create=True)
        for _ in range(10):
            await push(store, clinic.seal(a, 1))
        assert await store.count_snapshots(pid) == 1
        assert await store.trim(pid, 2) == 0  # the unsigned snapshot covers nothing
        assert (await store.log_bounds(pid)).trimmed_through == 0
        assert await store.latest_snapshot_info(pid) is None  # never served or listed
        assert await store.list_snapshots(pid) == []
        await store.put_snapshot(new_snapshot(attested(pid, a, 4, b"a4"), b"a4"), NOW, keep=3)
        assert await store.trim(pid, 2) == 4  # only what the verified snapshot covers
        assert await store.count_snapshots(pid) == 1  # the unusable unsigned one is gone
        assert [b.hub_seq for b in await store.batches_after(pid, 0, 100)] == list(
            range(5, 11))
