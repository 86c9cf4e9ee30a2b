"""Schema upgrades run on open, in place, keeping every row (schema v2 → v3)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from edge_node.cli.check import check_path
from edge_node.config import EdgeConfig
from edge_node.node import Edge
from edge_node.store.schema import MIGRATIONS, SCHEMA_VERSION, db_path
from edge_node.store.writer import Actor, WriteOp
from tests.edge_node.conftest import make_data_dir, wall_ms
from tests.edge_node.resources import patient

ACTOR = Actor("u1", "clinician", "dev-1", "127.0.0.1")


def _downgrade_to_v2(db: Path) -> None:
    """What a file written by the release before schema v3 looks like."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("DROP INDEX history_recent")
        conn.execute("PRAGMA user_version = 2")
    finally:
        conn.close()


async def test_a_v2_file_is_upgraded_in_place_and_keeps_its_charts(tmp_path: Path) -> None:
    assert SCHEMA_VERSION == len(MIGRATIONS) == 3
    data = tmp_path / "e"
    make_data_dir(data)
    async with Edge.open(EdgeConfig(data), clock=wall_ms, entropy=os.urandom) as edge:
        await edge.writer.submit([WriteOp("create", "Patient", "p1",
                                          {**patient(), "id": "p1"})], actor=ACTOR, atomic=False)
    db = db_path(data)
    _downgrade_to_v2(db)
    async with Edge.open(EdgeConfig(data), clock=wall_ms, entropy=os.urandom) as edge:
        current = await edge.reader.current("Patient", "p1")
        assert current is not None and current.version == 1
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone() == (3,)
        plan = conn.execute(
            "EXPLAIN QUERY PLAN SELECT seq FROM history INDEXED BY history_recent "
            "WHERE origin = ? AND recorded_ms >= ?", ("x", 0)).fetchall()
        assert "history_recent" in str(plan)
    finally:
        conn.close()
    report = check_path(data)
    assert report.ok, report.problems
