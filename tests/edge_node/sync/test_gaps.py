"""A gap in an origin's chain is never skipped: later batches wait, the status says so,
and they apply by themselves once the missing batch arrives.

The hub checks every origin's chain on push, so a healthy hub cannot deliver a gap.
A faulty one can — or one restored from a backup that lost a batch another site's
relay later brings back.  The test makes that hub by editing its store: A's first
batch is taken out of the log, then put back at the end of it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from edge_node.api.status import _sync_section
from tests.edge_node.sync.edges import patient, practice, running, unsynced, wait_for
from tests.edge_node.sync.hubs import add_operator, local_hub

_COLUMNS = ("practice_id, hub_seq, site_id, seq_from, seq_to, batch_id, batch_hash, prev_hash, "
            "key_epoch, max_hlc, sealed, received_ms")


def _notes(section: dict[str, object]) -> list[str]:
    notes = section["notes"]
    assert isinstance(notes, list)
    return [str(n) for n in notes]


def _hub_db(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=10)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn


def _take_out(path: Path, site_id: str, seq_from: int) -> tuple[Any, ...]:
    """Remove one batch of `site_id` from the hub's log; return its row."""
    conn = _hub_db(path)
    try:
        row = conn.execute(f"SELECT {_COLUMNS} FROM batches WHERE site_id = ? AND seq_from = ?",
                           (bytes.fromhex(site_id.replace("-", "")), seq_from)).fetchone()
        assert row is not None
        conn.execute("DELETE FROM batches WHERE practice_id = ? AND hub_seq = ?",
                     (row[0], row[1]))
        return tuple(row)
    finally:
        conn.close()


def _put_back_at_the_end(path: Path, row: tuple[Any, ...]) -> int:
    """Append `row` to its practice's log under a new hub sequence number; return it."""
    conn = _hub_db(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        (seq,) = conn.execute("UPDATE practice_seq SET last_hub_seq = last_hub_seq + 1 "
                              "WHERE practice_id = ? RETURNING last_hub_seq",
                              (row[0],)).fetchone()
        conn.execute(f"INSERT INTO batches ({_COLUMNS}) VALUES "
                     f"({', '.join('?' * len(row))})", (row[0], seq, *row[2:]))
        conn.execute("COMMIT")
        return int(seq)
    finally:
        conn.close()


async def test_a_gap_holds_later_batches_until_it_is_filled(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    operator = await add_operator(db)
    async with local_hub(db) as hub:
        a_dir, b_dir = await practice(tmp_path, hub.url, operator, 2)
        # A pushes two batches: seq 1 (p1), then seq 2 (p2).
        for n, (rid, name) in enumerate((("p1", "Sato"), ("p2", "Suzuki")), start=1):
            async with unsynced(a_dir) as a:
                await a.write("Patient", rid, patient(name))
            async with running(a_dir) as a:
                await wait_for(lambda a=a, n=n: a.query(  # type: ignore[misc]
                    "SELECT count(*), max(seq_to) FROM pushed_batches WHERE hub_seq IS NOT "
                    "NULL") == [(n, n)], f"{rid} pushed as batch {n}")
                a_site = str(a.edge.site.site_id)
                a_states = a.states()
        # In a thread: the hub serving in this process must keep its event loop (it may
        # hold its store's write lock across an await while we wait for that lock).
        lost = await asyncio.to_thread(_take_out, db, a_site, 1)

        async with running(b_dir) as b:
            await wait_for(lambda: b.query("SELECT origin, seq_from, reason FROM held_batches")
                           == [(a_site, 2, "gap")], "seq 2 held at b")
            assert b.states() == {}  # nothing of A's seq 2 was applied
            section = await _sync_section(b.sync, b.edge.clock())
            assert any(a_site in note and "waiting for seqs 1-1" in note
                       for note in _notes(section)), section

            filled_at = await asyncio.to_thread(_put_back_at_the_end, db, lost)
            # A write at B: its push wakes the hub's stream, which then also sends the
            # batch put back (the hub is not told about edits made behind its back).
            await b.write("Patient", "b1", patient("Tanaka"))
            await wait_for(lambda: b.query("SELECT count(*) FROM held_batches") == [(0,)],
                           "held batch applied once the gap filled")
            assert {k: v for k, v in b.states().items() if k[1] != "b1"} == a_states
            assert b.query("SELECT next_seq FROM origin_chains WHERE origin = ?", a_site) \
                == [(3,)]
            assert b.sync.ctx.cursor >= filled_at
            section = await _sync_section(b.sync, b.edge.clock())
            assert not any("waiting for seqs" in note for note in _notes(section))
            b.history()  # no change applied twice
