"""Real processes killed mid-sync: nothing lost, nothing applied twice.

* the hub (`python -m cloud_hub serve`, SQLite store) gets SIGKILL while a site pushes
  and another pulls, and comes back on the same store and port;
* an edge (`python -m edge_node serve`) gets SIGKILL while it applies a long stream of
  pulled batches, and is started again.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edge_node.fhir.write_op import WriteOp
from edge_node.hub_link.settings import SyncSettings
from tests.edge_node.sync.children import (
    FAST_OPTIONS,
    edge_child,
    free_port,
    hub_child,
    started,
)
from tests.edge_node.sync.edges import (
    ACTOR,
    FAST,
    patient,
    practice,
    running,
    unsynced,
    wait_for,
)
from tests.edge_node.sync.hubs import add_operator, local_hub

SMALL_BATCHES = SyncSettings(**{**{f: getattr(FAST, f) for f in FAST.__slots__},
                                "max_batch_changes": 40})


async def test_hub_sigkill_mid_sync_loses_and_doubles_nothing(tmp_path: Path) -> None:
    db, port = tmp_path / "hub.db", free_port()
    operator = await add_operator(db)
    url = f"http://127.0.0.1:{port}"
    async with started(hub_child(db, port, tmp_path)):
        a_dir, b_dir = await practice(tmp_path, url, operator, 2)
    async with running(a_dir, SMALL_BATCHES) as a, running(b_dir, SMALL_BATCHES) as b:
        async with started(hub_child(db, port, tmp_path)) as hub:
            await wait_for(lambda: a.sync.ctx.keyring and b.sync.ctx.keyring, "keys")
            for i in range(10):
                await a.edge.writer.submit(
                    [WriteOp("update", "Patient", f"p{i}-{j}",
                             {"resourceType": "Patient", "id": f"p{i}-{j}", **patient("S")})
                     for j in range(20)], actor=ACTOR, atomic=False)
            # mid-sync: some batches acknowledged and some applied at b, not all
            await wait_for(lambda: len(b.states()) >= 40, "b applying")
            await hub.kill()
        await b.write("Patient", "from-b", patient("Offline"))  # while the hub is down
        async with started(hub_child(db, port, tmp_path)):
            await wait_for(lambda: len(b.states()) == 201 and a.states() == b.states(),
                           "converged after the hub restart", 30)
        assert a.history() == b.history() and len(a.history()) == 201
        origins = a.query("SELECT origin, count(DISTINCT seq), count(*) FROM history "
                          "GROUP BY origin")
        assert sorted(r[1:] for r in origins) == [(1, 1), (200, 200)]
    hub_db = sqlite3.connect(db)
    try:  # the hub stored every batch once: per site, its ranges tile 1..n exactly
        ranges = list(hub_db.execute("SELECT site_id, seq_from, seq_to FROM batches"))
    finally:
        hub_db.close()
    per_site: dict[bytes, list[int]] = {}
    for site, lo, hi in ranges:
        per_site.setdefault(bytes(site), []).extend(range(lo, hi + 1))
    assert sorted(sorted(v) for v in per_site.values()) == [[1], list(range(1, 201))]


async def test_edge_sigkill_while_applying_a_pulled_stream_applies_each_change_once(
        tmp_path: Path) -> None:
    operator = await add_operator(tmp_path / "hub.db")
    async with local_hub(tmp_path / "hub.db") as hub:
        a_dir, b_dir = await practice(tmp_path, hub.url, operator, 2)
        async with running(a_dir, SMALL_BATCHES) as a:
            await wait_for(lambda: a.sync.ctx.keyring is not None, "keys at a")
            for i in range(40):
                await a.edge.writer.submit(
                    [WriteOp("update", "Patient", f"p{i}-{j}",
                             {"resourceType": "Patient", "id": f"p{i}-{j}", **patient("S")})
                     for j in range(50)], actor=ACTOR, atomic=False)
            await wait_for(lambda: not a.query(
                "SELECT 1 FROM outbox WHERE seq > (SELECT coalesce(max(seq_to), 0) FROM "
                "pushed_batches WHERE hub_seq IS NOT NULL)"), "a pushed 2000 changes", 60)
        b_db = b_dir / "edge.sqlite3"

        def applied() -> int:
            conn = sqlite3.connect(b_db)
            try:
                return int(conn.execute(
                    "SELECT count(*) FROM history WHERE kind = 'author'").fetchone()[0])
            finally:
                conn.close()

        # One pulled batch per transaction, so the kill lands between commits of the stream.
        child = edge_child(b_dir, tmp_path, sync_options=(*FAST_OPTIONS, "max_group_batches=1"))
        async with started(child):
            await wait_for(lambda: applied() >= 200, "b applying the stream", 60)
            await child.kill()
        killed_at = applied()
        assert killed_at < 2000, "the kill came too late to test anything"
        async with started(edge_child(b_dir, tmp_path, sync_options=FAST_OPTIONS)):
            await wait_for(lambda: applied() >= 2000, "b applied everything", 60)
        async with unsynced(a_dir) as a, unsynced(b_dir) as b:
            assert len(b.history()) == 2000  # history() fails on a duplicate row
            assert b.states() == a.states()
            assert b.query("SELECT count(*) FROM held_batches") == [(0,)]
