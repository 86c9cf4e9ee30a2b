"""Re-bootstrap after the log was trimmed: snapshot data in, own pending changes kept and merged."""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path

from edge_node.config import EdgeConfig
from edge_node.node import Edge, open_sync
from edge_node.snapshots.export import export_snapshot
from edge_node.snapshots.position import read_position
from edge_node.snapshots.rebootstrap import replace_practice_data
from edge_node.snapshots.staging import Staging
from edge_node.store.check import check_store
from edge_node.store.writer import WriteOp
from tests.edge_node.conftest import wall_ms
from tests.edge_node.resources import patient
from tests.edge_node.snapshots.practice import (
    ACTOR,
    build_site,
    directory_of,
    enroll_locally,
    new_practice,
    practice_view,
)


async def test_rebootstrap_keeps_and_merges_local_pending_changes(tmp_path: Path) -> None:
    practice = new_practice()
    source = tmp_path / "a"
    site_a = await build_site(source, practice)
    result = export_snapshot(source, tmp_path / "out", keyring=practice.keyring, site=site_a,
                             practice_id=practice.practice_id, position_of=read_position,
                             snapshot_id=uuid.uuid4())
    # Site B was offline past the log's retention, with local changes not yet pushed.
    b = tmp_path / "b"
    enroll_locally(b, practice)
    async with Edge.open(EdgeConfig(b), clock=wall_ms, entropy=os.urandom) as edge:
        ops = [WriteOp("update", "Patient", "local1", {**patient(mrn="L1"), "id": "local1"}),
               WriteOp("update", "Patient", "p0003", {**patient(mrn="L2"), "id": "p0003"})]
        assert all(not isinstance(r, Exception)
                   for r in await edge.writer.submit(ops, actor=ACTOR, atomic=False))
        site_b = edge.site
    conn = open_sync(b)
    outbox_before = conn.execute("SELECT * FROM outbox ORDER BY seq").fetchall()
    staged = Staging.at(b / ".rebootstrap").stage_file(result.path, practice.keyring,
                                                       directory_of(site_a))
    merged = replace_practice_data(conn, staged, site_b.site_id, wall_ms())
    assert merged == 2
    assert conn.execute("SELECT * FROM outbox ORDER BY seq").fetchall() == outbox_before
    assert read_position(conn).hub_seq == 7
    ids = {r[0] for r in conn.execute("SELECT id FROM resources WHERE type = 'Patient'")}
    a = practice_view(source)
    assert {"local1", "p0003", "p0000"} <= ids and len(ids) == len(
        [r for r in a["resources"] if r[0] == "Patient"]) + 1
    # p0003 holds both the snapshot's version and this site's concurrent one (merged).
    versions = conn.execute("SELECT origin FROM history WHERE type = 'Patient' AND "
                            "id = 'p0003' ORDER BY version").fetchall()
    assert [v[0] for v in versions] == [str(site_a.site_id), str(site_b.site_id)]
    snapshot_history = {r for r in a["history"]}
    assert snapshot_history <= set(conn.execute("SELECT * FROM history").fetchall())
    conn.close()
    check = sqlite3.connect(b / "edge.sqlite3")
    try:
        report = check_store(check)
        assert report.ok, report.problems
    finally:
        check.close()
