"""A real hub (cloud_hub.server.serve, SQLite store) on loopback inside the test's loop.

    async with local_hub(tmp_path / "hub.db") as hub:        # http, port picked
        ...
    async with local_hub(path, port=hub.port, tls=(cert, key)) as hub:  # restart, same port

The hub task is owned by a TaskGroup in the context manager; leaving the block
cancels it (a real shutdown: open streams and long-polls end).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import nacl.utils

from cloud_hub.api.context import PushFaults
from cloud_hub.config import parse_hub_config
from cloud_hub.credentials import credential_hash, new_operator_token
from cloud_hub.server import serve
from cloud_hub.store.locator import open_store

START_DEADLINE_S = 15.0


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class LocalHub:
    url: str
    port: int
    store_path: Path


async def add_operator(store_path: Path) -> str:
    """Mint an operator credential straight into the store (as `hub operator create`)."""
    token = new_operator_token(os.urandom(32))
    async with open_store(f"sqlite:{store_path}") as store:
        await store.add_operator(credential_hash(token), wall_ms())
    return token


@asynccontextmanager
async def local_hub(store_path: Path, *, port: int = 0,
                    tls: tuple[Path, Path] | None = None,
                    config: dict[str, object] | None = None,
                    push_faults: PushFaults | None = None) -> AsyncIterator[LocalHub]:
    """`config`: more hub options (`cloud_hub.config`), e.g. {"max_batch_bytes": 4096};
    `push_faults`: fault points of the hub's push path (`cloud_hub.api.context`)."""
    raw: dict[str, object] = {"store": f"sqlite:{store_path}", "port": port,
                              "host": "127.0.0.1", **(config or {})}
    if tls is not None:
        raw |= {"tls_cert": str(tls[0]), "tls_key": str(tls[1])}
    parsed = parse_hub_config(raw)
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_ready(url: str, fingerprint: str) -> None:
        ready.set_result(url)

    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(serve(parsed, now_ms=wall_ms, random_bytes=nacl.utils.random,
                                    on_ready=on_ready, push_faults=push_faults))
        try:
            async with asyncio.timeout(START_DEADLINE_S):
                url = await asyncio.shield(ready)
            url = url.replace("127.0.0.1", "localhost") if tls else url
            yield LocalHub(url, int(url.rsplit(":", 1)[1]), store_path)
        finally:
            task.cancel()
