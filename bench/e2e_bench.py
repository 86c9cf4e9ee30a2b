"""End-to-end figures on loopback: edge A → hub (PostgreSQL) → edge B, real processes.

* propagation: single writes at A at a steady 50/s; time from A's 2xx answer to the
  resource being committed (so readable) at B, found by watching B's database;
* throughput: A writes changes while cut off from the hub; its line comes back and
  A pushes, the hub fans out, B pulls and applies durably: changes per second from
  the first of them readable at B to the last (A's reconnect wait is not counted);
* catch-up: B is cut off while A writes 50,000 changes; B's line comes back:
  seconds until B has applied them all.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any

from bench.pg import bench_dsn, fresh_database
from chartsync.local_practice import LocalPractice, local_practice

PROPAGATION_WRITES = 300
PROPAGATION_RATE_PER_S = 50
THROUGHPUT_CHANGES = 20_000
CATCHUP_CHANGES = 50_000
BUNDLE = 1_000
DEADLINE_S = 600.0
#: A short reconnect backoff: the figures measure the pipeline, not the retry policy
#: (production default backoff_max_s=30 adds up to 30 s before a returning link is used).
SYNC = ("heartbeat_s=5", "mailbox_poll_s=0.3", "backoff_max_s=1.0")


def _observation(patient: str, i: int) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4",
                                 "display": "心拍数"}]},
            "subject": {"reference": f"Patient/{patient}"},
            "valueQuantity": {"value": 60 + i % 40, "unit": "/min"},
            "note": [{"text": "安静時。測定は自動血圧計による。"}]}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _count(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM resources").fetchone()[0])
    finally:
        conn.close()


async def _bulk(lp: LocalPractice, site: str, patient: str, n: int) -> None:
    fhir = lp.fhir(site)
    for start in range(0, n, BUNDLE):
        entries = [{"request": {"method": "POST", "url": "Observation"},
                    "resource": _observation(patient, i)}
                   for i in range(start, min(n, start + BUNDLE))]
        await fhir.ok("POST", "/fhir", {"resourceType": "Bundle", "type": "transaction",
                                        "entry": entries})


async def _until_count(lp: LocalPractice, db: Path, n: int, what: str) -> float:
    async def reached() -> bool:
        return _count(db) >= n
    return await lp.wait(reached, DEADLINE_S, what)


async def _propagation(lp: LocalPractice, patient: str) -> dict[str, float]:
    a, b = lp.fhir("a"), lp.sites["b"]
    conn = sqlite3.connect(f"file:{b.data_dir / 'edge.sqlite3'}?mode=ro", uri=True)
    latencies: list[float] = []

    async def one(i: int) -> None:
        created = await a.ok("POST", "/fhir/Observation", _observation(patient, i))
        acked = time.perf_counter()
        while conn.execute("SELECT 1 FROM resources WHERE type = 'Observation' AND id = ?",
                           (created["id"],)).fetchone() is None:
            if time.perf_counter() - acked > 30:
                raise TimeoutError("a write did not reach B within 30 s")
            await asyncio.sleep(0.0005)  # watching another process's database
        latencies.append((time.perf_counter() - acked) * 1000)

    try:
        async with asyncio.TaskGroup() as tg:
            start = time.perf_counter()
            for i in range(PROPAGATION_WRITES):
                # a steady offered rate: the i-th write starts at i / rate seconds
                delay = start + i / PROPAGATION_RATE_PER_S - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tg.create_task(one(i))
    finally:
        conn.close()
    return {"propagation_p50_ms": statistics.median(latencies),
            "propagation_p99_ms": _pct(latencies, 0.99)}


async def run_e2e_bench(tmp_dir: Path) -> dict[str, float]:
    async with fresh_database(bench_dsn(), "chartsync_e2e") as dsn, \
            local_practice(tmp_dir, store=dsn, site_names=("a", "b"), sync_options=SYNC) as lp:
        a_db, b_db = (lp.sites[n].data_dir / "edge.sqlite3" for n in ("a", "b"))
        patient = (await lp.fhir("a").ok("POST", "/fhir/Patient", {
            "resourceType": "Patient", "name": [{"family": "山田", "given": ["太郎"]}]}))["id"]
        await _until_count(lp, b_db, 1, "first patient at B")
        out = await _propagation(lp, patient)

        lp.sites["a"].link.cut()
        base = _count(a_db)
        await _bulk(lp, "a", patient, THROUGHPUT_CHANGES)
        lp.sites["a"].link.restore()
        # Sustained rate: from the first of them readable at B to the last, so A's
        # reconnect wait (backoff, up to 1 s here) is not counted as pipeline time.
        await _until_count(lp, b_db, base + 1, "first change at B")
        started, first = time.perf_counter(), _count(b_db) - base
        await _until_count(lp, b_db, base + THROUGHPUT_CHANGES, "throughput at B")
        out["throughput_changes_per_s"] = (THROUGHPUT_CHANGES - first) / (
            time.perf_counter() - started)

        lp.sites["b"].link.cut()
        base = _count(a_db)
        await _bulk(lp, "a", patient, CATCHUP_CHANGES)
        await lp.wait(lp.converged_push("a"), DEADLINE_S, "A pushed everything")
        lp.sites["b"].link.restore()
        out["catchup_50k_s"] = await _until_count(lp, b_db, base + CATCHUP_CHANGES,
                                                  "catch-up at B")
        return out
