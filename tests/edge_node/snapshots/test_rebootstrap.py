"""Re-bootstrap after the log was trimmed: snapshot data in, own pending changes kept and merged."""

from __future__ import annotations

import functools
import os
import sqlite3
import uuid
from pathlib import Path

from edge_node.config import EdgeConfig
from edge_node.fhir.write_op import WriteOp
from edge_node.node import Edge
from edge_node.snapshots.export import export_snapshot
from edge_node.snapshots.staging import Staging
from edge_node.store.check import check_store
from edge_node.store.connection import open_sync
from edge_node.store.snapshot_install import replace_practice_data
from edge_node.store.snapshot_position import read_position
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
    merged = replace_practice_data(conn, staged.path, staged.meta, site_b.site_id,
                                   wall_ms())
    assert merged == 2
    assert conn.execute("SELECT * FROM outbox ORDER BY seq").fetchall() == outbox_before
    assert read_position(conn).hub_seq == 7
    ids = {r[0] for r in conn.execute("SELECT id FROM resources WHERE type = 'Patient'")}
    a = practice_view(source)
    assert {"local1", "p0003", "p0000"} <= ids and len(ids) == len(
        [r for r in a["resources"] if r[0] == "Patient"]) + 1
    # p0003 holds both the snapshot's version and this site's concurrent one (merged).
    # Each author's version, then this site's merged view (credited to no user).
    versions = conn.execute("SELECT origin, kind FROM history WHERE type = 'Patient' AND "
                            "id = 'p0003' ORDER BY version").fetchall()
    assert versions == [(str(site_a.site_id), "author"), (str(site_b.site_id), "author"),
                        ("", "view")]
    snapshot_history = {r for r in a["history"]}
    assert snapshot_history <= set(conn.execute("SELECT * FROM history").fetchall())
    conn.close()
    check = sqlite3.connect(b / "edge.sqlite3")
    try:
        report = check_store(check)
        assert report.ok, report.problems
    finally:
        check.close()


async def test_rebootstrap_swaps_inside_a_running_writer_and_writes_go_on(tmp_path: Path) -> None:
    """The serve path: `Writer.exclusive` runs the swap alone; digest and HLC follow."""
    practice = new_practice()
    source = tmp_path / "a"
    site_a = await build_site(source, practice)
    result = export_snapshot(source, tmp_path / "out", keyring=practice.keyring, site=site_a,
                             practice_id=practice.practice_id, position_of=read_position,
                             snapshot_id=uuid.uuid4())
    b = tmp_path / "b"
    enroll_locally(b, practice)
    staged = Staging.at(b / ".rebootstrap").stage_file(result.path, practice.keyring,
                                                       directory_of(site_a))
    async with Edge.open(EdgeConfig(b), clock=wall_ms, entropy=os.urandom) as edge:
        writer = edge.writer
        await writer.start_digest(practice.keyring.digest_key)
        pending = writer.submit([WriteOp("update", "Patient", "mine",
                                         {**patient(mrn="M1"), "id": "mine"})],
                                actor=ACTOR, atomic=False)
        merged = await writer.exclusive(functools.partial(
            replace_practice_data, staging=staged.path, meta=staged.meta,
            site_id=edge.site.site_id, now_ms=wall_ms()))
        assert not isinstance((await pending)[0], Exception)
        writer.observe_hlc(staged.meta.hlc)
        digest = await writer.start_digest(practice.keyring.digest_key)
        [after] = await writer.submit([WriteOp("update", "Patient", "later",
                                               {**patient(mrn="M2"), "id": "later"})],
                                      actor=ACTOR, atomic=False)
        assert not isinstance(after, Exception)
        await writer.wait_idle()
        assert merged in (0, 1)  # the queued write landed before or after the swap
        assert digest.count >= staged.meta.resources
    conn = open_sync(b)
    try:
        ids = {r[0] for r in conn.execute("SELECT id FROM resources WHERE type = 'Patient'")}
        assert {"mine", "later", "p0000"} <= ids
        hlcs = conn.execute("SELECT hlc FROM history WHERE id = 'later'").fetchone()
        assert hlcs[0] > staged.meta.hlc
        assert read_position(conn).hub_seq == staged.meta.position.hub_seq
        report = check_store(conn)
        assert report.ok, report.problems
    finally:
        conn.close()
