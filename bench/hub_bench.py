"""Hub figures on PostgreSQL, against a real hub process (`python -m cloud_hub serve`).

    push_changes_per_s     8 sites push concurrently, batches of 500 changes, heads tracked
    pull_changes_per_s     one site pulls everything back (limit 100 batches per request)
    fanout_p50_ms / p99    one small batch pushed → received by each of 500 WebSocket
                           subscribers (time from the push request to the frame)

Batches are sealed before the clock starts.  A fresh database is created on
the server of `pg_dsn` and dropped at the end.  Run alone:

    python -m bench.hub_bench [postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import asyncio
import base64
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import nacl.utils

from bench.pg import admin, with_db
from bench.workload import changes_for_site
from cloud_hub.credentials import credential_hash, new_operator_token
from cloud_hub.store.locator import open_store
from sync_protocol.batch import batch_hash, seal_batch
from sync_protocol.ids import uuid7
from sync_protocol.keys import PracticeKey, SiteKeyPair
from sync_protocol.pull_wire import decode_pull_response

ROOT = Path(__file__).resolve().parent.parent
SITES = 8
BATCH_CHANGES = 500
BATCHES_PER_SITE = 25
SUBSCRIBERS = 500
FANOUT_ROUNDS = 20
START_DEADLINE_S = 30.0


async def _start_hub(dsn: str, port: int, key_file: Path) -> asyncio.subprocess.Process:
    """Spawn the hub and wait (deadline) for its one line: "listening on ..."."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cloud_hub", "serve", "--store", dsn, "--host", "127.0.0.1",
        "--port", str(port), "--hub-key-file", str(key_file), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    async with asyncio.timeout(START_DEADLINE_S):
        line = await proc.stdout.readline()
    if b"listening on" not in line:
        raise RuntimeError(f"hub process did not start (exit {proc.returncode})")
    return proc


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Site:
    def __init__(self) -> None:
        self.keys = SiteKeyPair.generate(nacl.utils.random(64))
        self.site_id = uuid.UUID(int=0)
        self.credential = ""
        self.prev_hash = bytes(32)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"}


async def _enroll(session: aiohttp.ClientSession, url: str, token: str, site: _Site) -> None:
    pub = site.keys.public(uuid.UUID(int=0))
    async with session.post(f"{url}/v1/enroll", json={
            "token": token, "name": "bench", "verify_key": base64.b64encode(pub.verify_key)
            .decode(), "box_key": base64.b64encode(pub.box_key).decode()}) as resp:
        body = await resp.json()
    site.site_id, site.credential = uuid.UUID(body["site_id"]), body["credential"]


async def _setup(store_dsn: str, url: str) -> tuple[uuid.UUID, list[_Site]]:
    operator = new_operator_token(nacl.utils.random(32))
    async with open_store(store_dsn, pool_size=1) as store:
        await store.add_operator(credential_hash(operator), int(time.time() * 1000))
    op = {"Authorization": f"Bearer {operator}"}
    sites = [_Site() for _ in range(SITES)]
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/v1/practices", json={"name": "bench"}, headers=op) as r:
            practice_id = uuid.UUID((await r.json())["practice_id"])
        for i, site in enumerate(sites):
            headers = op if i == 0 else sites[0].headers
            async with session.post(f"{url}/v1/practices/{practice_id}/enrollment-tokens",
                                    json={}, headers=headers) as r:
                token = (await r.json())["token"]
            await _enroll(session, url, token, site)
            if i:
                async with session.post(f"{url}/v1/sites/{site.site_id}/approve",
                                        headers=sites[0].headers) as r:
                    assert r.status == 200, await r.text()
    return practice_id, sites


def _seal_all(practice_id: uuid.UUID, key: PracticeKey, site: _Site, batches: int,
              size: int, seed: int) -> list[bytes]:
    changes = changes_for_site(site.site_id, batches * size, seed=seed,
                               first_seq=1)
    out = []
    for b in range(batches):
        sealed = seal_batch(practice_id=practice_id, site_id=site.site_id, site_keys=site.keys,
                            key=key, changes=changes[b * size:(b + 1) * size],
                            prev_hash=site.prev_hash, batch_id=uuid7(int(time.time() * 1000),
                                                                     nacl.utils.random(10)))
        site.prev_hash = batch_hash(sealed)
        out.append(sealed)
    return out


async def _push_all(url: str, site: _Site, batches: list[bytes]) -> None:
    async with aiohttp.ClientSession() as session:
        for raw in batches:
            async with session.post(f"{url}/v1/batches", data=raw, headers={
                    **site.headers, "Content-Type": "application/octet-stream"}) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"push refused: {resp.status} {await resp.text()}")


async def _pull_all(url: str, site: _Site) -> int:
    changes = 0
    after = 0
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(f"{url}/v1/batches", params={"after": after, "limit": 100},
                                   headers=site.headers) as resp:
                pulled = decode_pull_response(await resp.read())
            if not pulled.batches:
                return changes
            after = pulled.batches[-1].hub_seq
            changes += BATCH_CHANGES * len(pulled.batches)


async def _fanout(url: str, practice_id: uuid.UUID, key: PracticeKey, pusher: _Site,
                  listeners: list[_Site], start_seq: int) -> list[float]:
    """Latency (s) of each (round, subscriber) pair."""
    rounds = _seal_small(practice_id, key, pusher, FANOUT_ROUNDS, start_seq)
    async with aiohttp.ClientSession() as probe, probe.get(
            f"{url}/v1/batches", params={"after": 0, "limit": 1},
            headers=pusher.headers) as resp:
        after = decode_pull_response(await resp.read()).head
    connector = aiohttp.TCPConnector(limit=0)
    latencies: list[float] = []
    async with aiohttp.ClientSession(connector=connector) as session:
        sockets = [await session.ws_connect(f"{url}/v1/stream?after={after}",
                                            headers=listeners[i % len(listeners)].headers)
                   for i in range(SUBSCRIBERS)]
        try:
            for raw in rounds:
                sent = time.perf_counter()
                receivers = asyncio.gather(*(_receive(ws, sent) for ws in sockets))
                async with session.post(f"{url}/v1/batches", data=raw,
                                        headers=pusher.headers) as resp:
                    assert resp.status == 200, await resp.text()
                latencies.extend(await receivers)
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets))
    return latencies


async def _receive(ws: aiohttp.ClientWebSocketResponse, sent: float) -> float:
    await ws.receive_bytes(timeout=30)
    return time.perf_counter() - sent


def _seal_small(practice_id: uuid.UUID, key: PracticeKey, site: _Site, n: int,
                start_seq: int) -> list[bytes]:
    changes = changes_for_site(site.site_id, n, seed=99, first_seq=start_seq)
    out = []
    for change in changes:
        sealed = seal_batch(practice_id=practice_id, site_id=site.site_id, site_keys=site.keys,
                            key=key, changes=[change], prev_hash=site.prev_hash,
                            batch_id=uuid.uuid4())
        site.prev_hash = batch_hash(sealed)
        out.append(sealed)
    return out


async def run_hub_bench(pg_dsn: str) -> dict[str, float]:
    """Push, pull and fan-out figures against a real hub process on PostgreSQL."""
    name = f"chartsync_bench_{uuid.uuid4().hex[:12]}"
    await admin(pg_dsn, f'CREATE DATABASE "{name}"')
    store_dsn = with_db(pg_dsn, name)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    key_dir = tempfile.TemporaryDirectory(prefix="chartsync-hub-bench-")
    proc = await _start_hub(store_dsn, port, Path(key_dir.name) / "hub-signing.key")
    try:
        practice_id, sites = await _setup(store_dsn, url)
        key = PracticeKey.generate(1, nacl.utils.random(32))
        sealed = {s.site_id: _seal_all(practice_id, key, s, BATCHES_PER_SITE, BATCH_CHANGES,
                                       seed=i) for i, s in enumerate(sites)}
        total = SITES * BATCHES_PER_SITE * BATCH_CHANGES
        started = time.perf_counter()
        await asyncio.gather(*(_push_all(url, s, sealed[s.site_id]) for s in sites))
        push_s = time.perf_counter() - started

        started = time.perf_counter()
        pulled = await _pull_all(url, sites[1])
        pull_s = time.perf_counter() - started
        assert pulled == total, (pulled, total)

        latencies = await _fanout(url, practice_id, key, sites[0], sites[1:],
                                  BATCHES_PER_SITE * BATCH_CHANGES + 1)
        ms = sorted(x * 1000 for x in latencies)
        return {
            "push_changes_per_s": total / push_s,
            "push_batches_per_s": SITES * BATCHES_PER_SITE / push_s,
            "pull_changes_per_s": pulled / pull_s,
            "fanout_subscribers": float(SUBSCRIBERS),
            "fanout_p50_ms": statistics.median(ms),
            "fanout_p99_ms": ms[min(len(ms) - 1, int(len(ms) * 0.99))],
        }
    finally:
        proc.terminate()
        await proc.wait()
        key_dir.cleanup()
        await admin(pg_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


#: Metrics and targets for the `make bench` table: (metric, target, higher is better).
HUB_TARGETS: list[tuple[str, float | None, bool]] = [
    ("push_changes_per_s", 50_000, True), ("pull_changes_per_s", None, True),
    ("fanout_p50_ms", None, False), ("fanout_p99_ms", 1_000, False)]


def run_hub_bench_sync(pg_dsn: str | None = None) -> dict[str, float]:
    """`run_hub_bench` for synchronous runners; DSN from CHARTSYNC_BENCH_PG_DSN by default."""
    dsn = pg_dsn or os.environ.get("CHARTSYNC_BENCH_PG_DSN",
                                   "postgresql://postgres@127.0.0.1:5432/postgres")
    return asyncio.run(run_hub_bench(dsn))


def main(argv: list[str]) -> int:
    results: dict[str, Any] = run_hub_bench_sync(argv[0] if argv else None)
    for metric, value in results.items():
        print(f"  {metric:24s} {value:>14,.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
