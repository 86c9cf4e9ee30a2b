"""The store: migrations, refusing newer files untouched, group commit, restart
continuity, outbox replay, backup."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
from pathlib import Path

import msgpack
import pytest

from conflict import canonical_state, merge_all
from edge_node.config import EdgeConfig, parse_edge_config
from edge_node.errors import SchemaTooNew, StoreError
from edge_node.fhir.write_op import Actor, WriteOp
from edge_node.node import Edge
from edge_node.store.backup import backup
from edge_node.store.check import check_path
from edge_node.store.connection import open_sync
from edge_node.store.schema import SCHEMA_VERSION
from sync_protocol.wire import decode_changes
from tests.edge_node.conftest import make_data_dir, wall_ms
from tests.edge_node.resources import patient

ACTOR = Actor("u1", "clinician", "dev-1", "127.0.0.1")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_newer_schema_is_refused_without_touching_the_file(tmp_path: Path) -> None:
    data = tmp_path / "e"
    make_data_dir(data)
    db = data / "edge.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    before = (_digest(db), db.stat().st_mtime_ns, sorted(p.name for p in data.iterdir()))
    with pytest.raises(SchemaTooNew) as info:
        async with Edge.open(EdgeConfig(data), clock=wall_ms, entropy=os.urandom):
            pass
    # Names the file and both versions, and says what to do.
    assert str(info.value) == (
        f"{db} has edge schema version {SCHEMA_VERSION + 1}; this chartsync knows up to "
        f"{SCHEMA_VERSION} (run the newer chartsync that wrote it, or restore a backup made "
        "by this one; the file was not changed)")
    with pytest.raises(SchemaTooNew):
        open_sync(data)
    with pytest.raises(SchemaTooNew):
        check_path(data)
    after = (_digest(db), db.stat().st_mtime_ns, sorted(p.name for p in data.iterdir()))
    assert after == before


async def test_concurrent_writes_share_group_commits_and_survive_restart(tmp_path: Path
                                                                         ) -> None:
    data = tmp_path / "e"
    make_data_dir(data)
    config = EdgeConfig(data)
    async with Edge.open(config, clock=wall_ms, entropy=os.urandom) as edge:
        results = await asyncio.gather(*[
            edge.writer.submit([WriteOp("create", "Patient", f"p{i}",
                                        {**patient(mrn=str(i)), "id": f"p{i}"})],
                               actor=ACTOR, atomic=False) for i in range(100)])
        # Each create is its own version, named by its change: "<seq>-<site id>".
        seqs = sorted(int(r[0].version.split("-")[0]) for r in results)  # type: ignore[union-attr]
        assert seqs == list(range(1, 101))
        stats = edge.writer.statistics()
        assert stats.groups < 20 and stats.next_seq == 101
    async with Edge.open(config, clock=wall_ms, entropy=os.urandom) as edge:
        assert edge.writer.statistics().next_seq == 101
        [r] = await edge.writer.submit(
            [WriteOp("update", "Patient", "p3", {**patient(mrn="x"), "id": "p3"})],
            actor=ACTOR, atomic=False)
        assert r.version == f"101-{edge.site.site_id.hex}"  # type: ignore[union-attr]
    report = check_path(data)
    assert report.ok, report.problems
    assert (report.resources, report.history, report.outbox) == (100, 101, 101)


async def test_outbox_replay_reproduces_every_state(tmp_path: Path) -> None:
    data = tmp_path / "e"
    make_data_dir(data)
    async with Edge.open(EdgeConfig(data), clock=wall_ms, entropy=os.urandom) as edge:
        for i in range(5):
            await edge.writer.submit(
                [WriteOp("update", "Patient", "p", {**patient(mrn=str(i)), "id": "p"})],
                actor=ACTOR, atomic=False)
        await edge.writer.submit([WriteOp("delete", "Patient", "p", None)], actor=ACTOR,
                                 atomic=False)
        site = edge.site.site_id
    conn = sqlite3.connect(data / "edge.sqlite3")
    changes = []
    for seq, raw in conn.execute("SELECT seq, change FROM outbox ORDER BY seq"):
        changes += decode_changes(msgpack.unpackb(raw, raw=False), origin=site, seq_from=seq)
    assert [c.user for c in changes] == ["u1"] * 6 and changes[0].device == "dev-1"
    [state] = merge_all(changes).values()
    stored = conn.execute("SELECT state, deleted FROM resources").fetchone()
    assert canonical_state(state) == stored[0] and stored[1] == 1
    assert conn.execute("SELECT count(*) FROM history WHERE deleted = 1").fetchone()[0] == 1


async def test_backup_opens_and_passes_check(tmp_path: Path) -> None:
    data = tmp_path / "e"
    make_data_dir(data)
    async with Edge.open(EdgeConfig(data), clock=wall_ms, entropy=os.urandom) as edge:
        for i in range(10):
            await edge.writer.submit(
                [WriteOp("create", "Patient", f"p{i}", {**patient(), "id": f"p{i}"})],
                actor=ACTOR, atomic=False)
        target = backup(data, tmp_path / "b.sqlite3")  # online, while the edge runs
    report = check_path(target)
    assert report.ok and report.resources == 10
    with pytest.raises(StoreError):
        backup(data, target)


def test_config_parser_names_bad_keys(tmp_path: Path) -> None:
    assert parse_edge_config({"data_dir": str(tmp_path), "max_body_bytes": 10}) \
        .max_body_bytes == 10
    with pytest.raises(StoreError, match="max_body_bytes"):
        parse_edge_config({"data_dir": str(tmp_path), "max_body_bytes": "big"})
    with pytest.raises(StoreError, match="colour"):
        parse_edge_config({"data_dir": str(tmp_path), "colour": 1})


async def test_edge_refuses_a_directory_without_init(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="edge init"):
        async with Edge.open(EdgeConfig(tmp_path), clock=wall_ms, entropy=os.urandom):
            pass


def test_site_key_file_is_private_and_required(tmp_path: Path) -> None:
    data = tmp_path / "e"
    make_data_dir(data)
    key = data / "site.key"
    assert key.stat().st_mode & 0o777 == 0o600
    os.chmod(key, 0o644)
    with pytest.raises(StoreError, match="chmod 600"):
        from edge_node.store.site import load_site
        conn = open_sync(data)
        try:
            load_site(conn, data)
        finally:
            conn.close()
