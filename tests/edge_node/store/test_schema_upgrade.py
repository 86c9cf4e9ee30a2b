"""Schema upgrades run on open, in place, keeping every row (schema v2 → v4).  (A file
newer than this build is refused untouched: `test_store`.)"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from edge_node.config import EdgeConfig
from edge_node.fhir.write_op import Actor, WriteOp
from edge_node.node import Edge
from edge_node.store.check import check_path
from edge_node.store.schema import MIGRATIONS, SCHEMA_VERSION, db_path
from edge_node.sync.guard import WINDOW_MS, guard_scan
from tests.edge_node.conftest import make_data_dir, wall_ms
from tests.edge_node.resources import patient

ACTOR = Actor("u1", "clinician", "dev-1", "127.0.0.1")
#: The guard's query as schema v2 ran it (no history_recent index to read through).
_V2_GUARD_QUERY = (
    "SELECT h.seq, h.type, h.id FROM history AS h WHERE h.origin = ? AND h.seq > ? "
    "AND h.recorded_ms >= ? AND (h.deleted = 1 OR EXISTS (SELECT 1 FROM history AS p "
    "WHERE p.type = h.type AND p.id = h.id AND p.recorded_ms < ?)) ORDER BY h.seq")
#: The plan of the guard's query must walk only the window (not every row of the site).
_GUARD_PLAN = (
    "EXPLAIN QUERY PLAN SELECT h.seq, h.type, h.id FROM history AS h INDEXED BY "
    "history_recent WHERE h.origin = ? AND h.seq > ? AND h.recorded_ms >= ? AND "
    "(h.deleted = 1 OR EXISTS (SELECT 1 FROM history AS p WHERE p.type = h.type AND "
    "p.id = h.id AND p.recorded_ms < ?)) ORDER BY h.seq")


class _Clock:
    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def _downgrade_to_v2(db: Path) -> None:
    """What a file written by the release before schema v3 looks like."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("DROP TABLE relay_queue")
        conn.execute("DROP TABLE practice_sites")
        conn.execute("DROP TABLE account_events")
        conn.execute("DROP TABLE roster")
        conn.execute("ALTER TABLE sync_state DROP COLUMN pending_key_sealed")
        conn.execute("DROP INDEX history_recent")
        conn.execute("DROP INDEX history_vid")
        conn.execute("ALTER TABLE history DROP COLUMN vid")
        conn.execute("ALTER TABLE history DROP COLUMN kind")
        conn.execute("ALTER TABLE resources DROP COLUMN vid")
        conn.execute("PRAGMA user_version = 2")
    finally:
        conn.close()


def _dump(db: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(db)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: sorted(conn.execute(f"SELECT * FROM {t}"), key=repr) for t in tables}
    finally:
        conn.close()


async def test_a_v2_file_is_upgraded_in_place_and_keeps_its_charts(tmp_path: Path) -> None:
    assert SCHEMA_VERSION == len(MIGRATIONS) == 7
    data = tmp_path / "e"
    make_data_dir(data)
    # Records created two hours ago, then, within the last hour, two rewritten and one
    # deleted: three destructive changes the guard counts.
    clock = _Clock(wall_ms() - 2 * WINDOW_MS)
    async with Edge.open(EdgeConfig(data), clock=clock, entropy=os.urandom) as edge:
        await edge.writer.submit([WriteOp("create", "Patient", f"p{i}",
                                          {**patient(), "id": f"p{i}"}) for i in range(5)],
                                 actor=ACTOR, atomic=False)
        clock.now_ms += WINDOW_MS + 60_000
        await edge.writer.submit(
            [WriteOp("update", "Patient", "p0", {**patient(), "id": "p0", "gender": "male"}),
             WriteOp("update", "Patient", "p1", {**patient(), "id": "p1", "gender": "male"}),
             WriteOp("delete", "Patient", "p2", None),
             WriteOp("create", "Patient", "new", {**patient(), "id": "new"})],
            actor=ACTOR, atomic=False)
        site = str(edge.site.site_id)
    now = clock.now_ms + 60_000
    db = db_path(data)
    _downgrade_to_v2(db)
    conn = sqlite3.connect(db)
    try:
        before = list(conn.execute(_V2_GUARD_QUERY, (site, 0, now - WINDOW_MS,
                                                     now - WINDOW_MS)))
    finally:
        conn.close()
    assert [(t, i) for _, t, i in before] == [("Patient", "p0"), ("Patient", "p1"),
                                              ("Patient", "p2")]
    rows = _dump(db)

    async with Edge.open(EdgeConfig(data), clock=wall_ms, entropy=os.urandom) as edge:
        current = await edge.reader.current("Patient", "p1")
        # Versions written before shared version ids keep their counter as id.
        assert current is not None and current.version == "2"
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone() == (7,)
        assert conn.execute("SELECT count(*) FROM relay_queue").fetchone() == (0,)
        plan = " / ".join(r[3] for r in conn.execute(_GUARD_PLAN, (site, 0, now, now)))
        assert "SEARCH h USING INDEX history_recent (origin=? AND recorded_ms>?)" in plan, plan
        # The guard decides exactly as before the upgrade.
        scan = guard_scan(conn, site, now, 2)
        assert scan.changes == before and scan.total == 6
    finally:
        conn.close()
    after = _dump(db)
    assert after.pop("relay_queue") == after.pop("practice_sites") == []
    assert after.pop("account_events") == after.pop("roster") == []
    # The new columns: each old version's id is its counter, every old row an author's.
    assert {(r[3], r[-2], r[-1]) for r in after["history"]} == {
        (r[3], str(r[3]), "author") for r in rows["history"]}
    after["history"] = sorted((r[:-2] for r in after["history"]), key=repr)
    after["resources"] = sorted((r[:-1] for r in after["resources"]), key=repr)
    assert after == rows  # every row kept, in place
    report = check_path(data)
    assert report.ok, report.problems

