"""Edge node figures from a real HTTP client on loopback against a real child process.

`run_edge_bench(tmp_dir)` initialises a data directory under `tmp_dir`, starts
`python -m edge_node serve` (durability on: WAL, synchronous=FULL, group
commit) and measures with aiohttp clients:

* creates/s and updates/s with 32 concurrent clients, with p50/p99 latency
  (target ≥ 3,000 writes/s, p99 ≤ 25 ms);
* resources/s through 1,000-entry transaction Bundles (these also bulk-load
  the store to 100,000 Observations);
* reads/s with 32 concurrent clients (target ≥ 5,000);
* `Observation?patient=` search latency on the 100,000-resource store, one
  client at a time (target p99 ≤ 20 ms).

Just before, in the same run, it measures what the machine can do that day
(`bench.machine_reference`): a do-nothing aiohttp server driven by the same
client, and sqlite3 with one fsynced transaction per row.  `creates_vs_bare_http`
is the edge's creates/s as a share of the first: it moves with the code, not
with the machine's mood.

    python -c "import asyncio, pathlib, tempfile; from bench.edge_bench import \\
        run_edge_bench; print(asyncio.run(run_edge_bench(pathlib.Path(tempfile.mkdtemp()))))"

Client and server share the machine's cores, so figures are a floor.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any, Final

import aiohttp
import orjson

from bench.edge_load import patient, run_concurrent
from bench.machine_reference import bare_http_posts_per_s, sqlite_full_txn_per_s
from edge_node.node import init_data_dir
from edge_node.store.connection import open_sync
from edge_node.store.users import Role, add_user

ROOT: Final = Path(__file__).resolve().parent.parent
CLIENTS: Final = 32
CREATES: Final = 6_000
UPDATES: Final = 6_000
READS: Final = 12_000
BUNDLE_SIZE: Final = 1_000
STORE_SIZE: Final = 100_000
BUNDLES_IN_FLIGHT: Final = 2
SEARCHES: Final = 2_000
OBS_PER_PATIENT: Final = 20
UNLIMITED: Final = 10_000_000


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _observation(patient_id: str, i: int) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4",
                                 "display": "Heart rate"}], "text": "脈拍"},
            "subject": {"reference": f"Patient/{patient_id}"},
            "effectiveDateTime": "2024-04-01T09:30:00+09:00",
            "valueQuantity": {"value": 60 + i % 40, "unit": "/min",
                              "system": "http://unitsofmeasure.org", "code": "/min"}}


async def _start(data: Path, log: Path) -> tuple[asyncio.subprocess.Process, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(log, "ab") as err:  # noqa: ASYNC230 - one local file at start
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "edge_node", "serve", "--data", str(data), "--host",
            "127.0.0.1", "--port", "0",
            # One token drives thousands of requests a second here: lift its rate limit
            # (the default, 200/s, is for staff PCs) so the figures measure the edge.
            "--limit-option", f"rate_per_s={UNLIMITED}", "--limit-option",
            f"rate_burst={UNLIMITED}", cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
            stderr=err)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    if not line.startswith(b"listening "):
        raise RuntimeError(f"edge did not start; see {log}")
    return proc, line.split()[1].decode()


async def _measure(base: str, token: str) -> dict[str, float]:
    out: dict[str, float] = {}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    connector = aiohttp.TCPConnector(limit=CLIENTS * 2)
    async with aiohttp.ClientSession(base, headers=headers, connector=connector) as http:
        ids: list[str] = [""] * CREATES

        async def create(i: int) -> None:
            async with http.post("/fhir/Patient", data=orjson.dumps(patient(i))) as r:
                body = await r.read()
                assert r.status == 201, body[:300]
                ids[i] = orjson.loads(body)["id"]

        rate, lat = await run_concurrent(CREATES, CLIENTS, create)
        out.update(creates_per_s=rate, create_p50_ms=_pct(lat, 0.5),
                   create_p99_ms=_pct(lat, 0.99))

        async def update(i: int) -> None:
            pid = ids[i % CREATES]
            body = {**patient(i), "id": pid, "gender": "female" if i % 2 else "other"}
            async with http.put(f"/fhir/Patient/{pid}", data=orjson.dumps(body)) as r:
                await r.read()
                assert r.status == 200

        rate, lat = await run_concurrent(UPDATES, CLIENTS, update)
        out.update(updates_per_s=rate, update_p50_ms=_pct(lat, 0.5),
                   update_p99_ms=_pct(lat, 0.99))

        patients = ids[: STORE_SIZE // OBS_PER_PATIENT]
        n_bundles = STORE_SIZE // BUNDLE_SIZE

        async def bundle(b: int) -> None:
            entries = [{"request": {"method": "POST", "url": "Observation"},
                        "resource": _observation(patients[(b * BUNDLE_SIZE + j) % len(patients)],
                                                 j)} for j in range(BUNDLE_SIZE)]
            payload = orjson.dumps({"resourceType": "Bundle", "type": "transaction",
                                    "entry": entries})
            async with http.post("/fhir", data=payload) as r:
                body = await r.read()
                assert r.status == 200, body[:300]

        rate, lat = await run_concurrent(n_bundles, BUNDLES_IN_FLIGHT, bundle)
        out.update(bundle_resources_per_s=rate * BUNDLE_SIZE, bundle_p50_ms=_pct(lat, 0.5))

        rng = random.Random(7)

        async def read(i: int) -> None:
            async with http.get(f"/fhir/Patient/{rng.choice(ids)}") as r:
                await r.read()
                assert r.status == 200

        rate, lat = await run_concurrent(READS, CLIENTS, read)
        out.update(reads_per_s=rate, read_p99_ms=_pct(lat, 0.99))

        async def search(i: int) -> None:
            async with http.get(f"/fhir/Observation?patient={rng.choice(patients)}") as r:
                body = await r.read()
                assert r.status == 200
                assert len(orjson.loads(body)["entry"]) == OBS_PER_PATIENT

        rate, lat = await run_concurrent(SEARCHES, 1, search)
        out.update(search_patient_p50_ms=_pct(lat, 0.5), search_patient_p99_ms=_pct(lat, 0.99),
                   store_resources=float(CREATES + STORE_SIZE))
    return out


async def run_edge_bench(tmp_dir: Path) -> dict[str, float]:
    """Start an edge child process in `tmp_dir` and measure it (see the module docstring)."""
    data = tmp_dir / "edge-bench"
    init_data_dir(data, now_ms=time.time_ns() // 1_000_000, entropy=os.urandom,
                  admin_name="admin")
    conn = open_sync(data)
    try:
        _, token = add_user(conn, name="bench", role=Role.CLINICIAN,
                            now_ms=time.time_ns() // 1_000_000, random_bytes=os.urandom(42))
    finally:
        conn.close()
    reference = {"reference_bare_http_posts_per_s": await bare_http_posts_per_s(),
                 "reference_sqlite_full_txn_per_s": sqlite_full_txn_per_s()}
    proc, base = await _start(data, tmp_dir / "edge-bench.log")
    try:
        out = await _measure(base, token)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 60)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    return {**reference, **out,
            "creates_vs_bare_http": out["creates_per_s"]
            / reference["reference_bare_http_posts_per_s"]}
