"""A gap in an origin's chain is never skipped: later batches wait, the status says so,
and they apply by themselves once the missing batch arrives.

The hub checks every origin's chain on push, so a healthy hub cannot deliver a gap.
A faulty one can — or one restored from a backup that lost a batch which comes back
later.  The tests make such a hub by editing its SQLite store behind its back (the
store's own `append_batch` checks the chain too): one of A's batches is taken out of
the log, and later put back at the end of it, so the log delivers A's seq k+1.. before
seq k.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from aiohttp.test_utils import TestClient, TestServer

from edge_node.api.app import build_app
from edge_node.api.status import sync_section
from edge_node.sync.heartbeat import heartbeat_report
from edge_node.sync.puller import gap_detail, missing_seqs, seq_words
from tests.edge_node.sync.edges import (
    Running,
    clinician_token,
    patient,
    practice,
    running,
    unsynced,
    wait_for,
)
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


@asynccontextmanager
async def _api(site: Running, token: str) -> AsyncIterator[Any]:
    """`get(path) -> (status, body)` against the site's real HTTP API."""
    async with TestClient(TestServer(build_app(site.edge, site.sync))) as client:
        async def get(path: str) -> tuple[int, Any]:
            async with client.get(path, headers={"Authorization": f"Bearer {token}"}) as r:
                raw = await r.read()
                return r.status, orjson.loads(raw) if raw else None

        yield get


async def test_gap_words_name_only_what_is_missing() -> None:
    # Applied up to 1, held 3 and 5-6: before 7, seqs 2 and 4 are missing.
    assert missing_seqs(2, [(5, 6), (3, 3)], 7) == [(2, 2), (4, 4)]
    assert missing_seqs(2, [(3, 3)], 3) == [(2, 2)]
    assert missing_seqs(2, [(2, 2)], 3) == []  # held, not missing
    assert seq_words([(2, 2)]) == "seq 2" and seq_words([(2, 2), (4, 6)]) == "seqs 2, 4-6"
    assert gap_detail("A", 3, 4, [(2, 2)]) == (
        "seq 2 of site A not received yet (not delivered by the hub); until then this site "
        "holds back, unapplied, that site's seqs 3-4")


async def test_a_gap_holds_later_batches_until_it_is_filled(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    operator = await add_operator(db)
    async with local_hub(db) as hub:
        a_dir, b_dir = await practice(tmp_path, hub.url, operator, 2)
        token = clinician_token(b_dir)
        async with running(a_dir) as a:
            # A pushes four batches, seq 1-4 (one patient each), while B is stopped.
            for n, (rid, name) in enumerate((("p1", "Sato"), ("p2", "Suzuki"),
                                             ("p3", "Takahashi"), ("p4", "Tanaka")), start=1):
                await a.write("Patient", rid, patient(name))
                await wait_for(lambda a=a, n=n: a.query(  # type: ignore[misc]
                    "SELECT count(*), max(seq_to) FROM pushed_batches WHERE hub_seq IS NOT "
                    "NULL") == [(n, n)], f"{rid} pushed as batch {n}")
            a_site = str(a.edge.site.site_id)
            # The faulty hub loses seq 2 (k = 2). In a thread: the hub serving in this
            # process must keep its event loop (it may hold its store's write lock across
            # an await while we wait for that lock).
            lost = await asyncio.to_thread(_take_out, db, a_site, 2)

            async with running(b_dir) as b, _api(b, token) as get:
                await wait_for(lambda: b.query("SELECT origin, seq_from, reason FROM "
                                               "held_batches ORDER BY seq_from")
                               == [(a_site, 3, "gap"), (a_site, 4, "gap")], "3, 4 held at b")
                # Held, not dropped: the sealed copies are kept for the retry.
                assert b.query("SELECT seq_from FROM received_batches WHERE origin = ? "
                               "ORDER BY seq_from", a_site) == [(1,), (3,), (4,)]
                # Applied: seq 1 only; nothing of 3 and 4 anywhere in the store or the API.
                assert set(b.states()) == {("Patient", "p1")}
                assert {h[:4] for h in b.history()} == {("Patient", "p1", a_site, 1)}
                assert (await get("/fhir/Patient/p1"))[0] == 200
                for rid in ("p3", "p4", "p2"):
                    assert (await get(f"/fhir/Patient/{rid}"))[0] == 404, rid
                status, bundle = await get("/fhir/Patient?name=Takahashi")
                assert status == 200 and not bundle.get("entry"), bundle

                # GET /status: which origin, which seqs are missing, in plain words.
                status, body = await get("/status")
                assert status == 200
                sync = body["sync"]
                missing = f"seq 2 of site {a_site} not received yet"
                assert [h["detail"] for h in sync["held"]] == [
                    f"{missing} (not delivered by the hub); until then this site holds "
                    "back, unapplied, that site's seq 3",
                    f"{missing} (not delivered by the hub); until then this site holds "
                    "back, unapplied, that site's seq 4"]
                assert sum(missing in note for note in sync["notes"]) == 2, sync["notes"]
                # ... and the same to the hub's dashboard: seq 2 only (3 is held, not missing).
                report = await heartbeat_report(b.sync.ctx)
                assert report["gaps"] == [{"origin": a_site, "missing_from": 2,
                                           "missing_to": 2}]
                assert report["held_batches"] == 2

                # The missing batch arrives at the end of the log. The hub is not told
                # about rows edited behind its back, so its streams wake at A's next push
                # (seq 5), which comes right after it. Nothing is done at B.
                filled_at = await asyncio.to_thread(_put_back_at_the_end, db, lost)
                await a.write("Patient", "p5", patient("Ito"))

                def converged() -> bool:
                    return len(b.states()) == 5 and b.states() == a.states()

                await wait_for(converged, "b applied seq 2, then the held 3 and 4, then 5")
                assert b.query("SELECT count(*) FROM held_batches") == [(0,)]
                assert b.query("SELECT next_seq FROM origin_chains WHERE origin = ?",
                               a_site) == [(6,)]
                assert b.history() == a.history()  # each change once, none twice
                await wait_for(lambda: b.sync.ctx.cursor > filled_at, "b's cursor past it")
                for rid in ("p2", "p3", "p4", "p5"):
                    assert (await get(f"/fhir/Patient/{rid}"))[0] == 200, rid
                status, bundle = await get("/fhir/Patient?name=Takahashi")
                assert status == 200 and len(bundle["entry"]) == 1, bundle
                status, body = await get("/status")
                assert body["sync"]["held"] == [] and body["sync"]["notes"] == [], body
                section = await sync_section(b.sync, b.edge.clock())
                assert not any("not received" in note for note in _notes(section))
                assert (await heartbeat_report(b.sync.ctx))["gaps"] == []


async def test_a_gap_at_the_first_batch(tmp_path: Path) -> None:
    """k = 1: the origin's chain starts with a gap (no batch of it applied yet)."""
    db = tmp_path / "hub.db"
    operator = await add_operator(db)
    async with local_hub(db) as hub:
        a_dir, b_dir = await practice(tmp_path, hub.url, operator, 2)
        for n, (rid, name) in enumerate((("p1", "Sato"), ("p2", "Suzuki")), start=1):
            async with unsynced(a_dir) as a:
                await a.write("Patient", rid, patient(name))
            async with running(a_dir) as a:
                await wait_for(lambda a=a, n=n: a.query(  # type: ignore[misc]
                    "SELECT count(*), max(seq_to) FROM pushed_batches WHERE hub_seq IS NOT "
                    "NULL") == [(n, n)], f"{rid} pushed as batch {n}")
                a_site = str(a.edge.site.site_id)
                a_states = a.states()
        lost = await asyncio.to_thread(_take_out, db, a_site, 1)

        async with running(b_dir) as b:
            await wait_for(lambda: b.query("SELECT origin, seq_from, reason FROM held_batches")
                           == [(a_site, 2, "gap")], "seq 2 held at b")
            assert b.states() == {}
            section = await sync_section(b.sync, b.edge.clock())
            assert any(f"seq 1 of site {a_site} not received yet" in note
                       for note in _notes(section)), section

            filled_at = await asyncio.to_thread(_put_back_at_the_end, db, lost)
            # Here it is B's own push that wakes the hub's stream (A is stopped).
            await b.write("Patient", "b1", patient("Kato"))
            await wait_for(lambda: b.query("SELECT count(*) FROM held_batches") == [(0,)],
                           "held batch applied once the gap filled")
            assert {k: v for k, v in b.states().items() if k[1] != "b1"} == a_states
            assert b.sync.ctx.cursor >= filled_at
            section = await sync_section(b.sync, b.edge.clock())
            assert not any("not received" in note for note in _notes(section))
            b.history()  # no change applied twice
