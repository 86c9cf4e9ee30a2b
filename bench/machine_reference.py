"""What this machine can do today, measured the way the edge suite measures the edge.

The reference machine's speed drifts by a factor of two or more from one day to
the next (a shared virtual machine), so an edge figure alone cannot say whether
the code got slower or the machine did.  This suite measures two ceilings with
the same tools, in the same run:

* `bare_http_posts_per_s`: an aiohttp server on uvloop in a child process that
  only answers each POST with its body (no auth, no JSON, no disk), driven by
  the edge suite's own client (32 concurrent, the same Patient body).  No edge
  API write can be faster than this on this machine; `creates_vs_bare_http`
  is the edge's share of it.
* `sqlite_full_txn_per_s`: Python's sqlite3, WAL, `synchronous=FULL`, one
  fsynced transaction per ~500-byte row (about 5,000-7,000/s on the reference
  machine; docs/performance.md).  Group commit is how the edge beats it.

The edge suite runs both just before its own figures and prints them beside
them (`python -m bench --only edge`).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

import aiohttp
import orjson

from bench.edge_load import patient, run_concurrent

CLIENTS: Final = 32
POSTS: Final = 6_000
ROWS: Final = 3_000

#: The child: the least an HTTP server on this stack does per request.
_BARE_SERVER: Final = """
import asyncio, sys
from aiohttp import web

async def echo(request):
    return web.Response(body=await request.read(), status=201,
                        content_type="application/fhir+json")

async def main():
    app = web.Application()
    app.router.add_post("/fhir/Patient", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(f"listening http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    await asyncio.Event().wait()

try:
    import uvloop
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
"""


async def bare_http_posts_per_s() -> float:
    """POSTs/s through a do-nothing aiohttp server in a child process (see module doc)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _BARE_SERVER, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        if not line.startswith(b"listening "):
            raise RuntimeError("the bare HTTP server did not start")
        headers = {"Authorization": "Bearer x" * 6, "Content-Type": "application/fhir+json"}
        connector = aiohttp.TCPConnector(limit=CLIENTS * 2)
        async with aiohttp.ClientSession(line.split()[1].decode(), headers=headers,
                                         connector=connector) as http:

            async def post(i: int) -> None:
                async with http.post("/fhir/Patient", data=orjson.dumps(patient(i))) as r:
                    await r.read()
                    assert r.status == 201

            await run_concurrent(CLIENTS * 10, CLIENTS, post)  # connections open, warm
            rate, _ = await run_concurrent(POSTS, CLIENTS, post)
            return rate
    finally:
        proc.send_signal(signal.SIGTERM)
        await proc.wait()


def sqlite_full_txn_per_s(rows: int = ROWS) -> float:
    """Rows/s with one fsynced sqlite3 transaction per row (WAL, synchronous=FULL)."""
    with tempfile.TemporaryDirectory(prefix="chartsync-bench-") as tmp:
        conn = sqlite3.connect(Path(tmp) / "probe.db", isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, body BLOB NOT NULL)")
            body = os.urandom(500)
            start = time.perf_counter()
            for _ in range(rows):
                conn.execute("BEGIN")
                conn.execute("INSERT INTO t VALUES (?, ?)", (os.urandom(16).hex(), body))
                conn.execute("COMMIT")
            return rows / (time.perf_counter() - start)
        finally:
            conn.close()

