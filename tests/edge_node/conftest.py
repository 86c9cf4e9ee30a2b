"""Fixtures: a real edge (SQLite in tmp_path) behind a real aiohttp server on loopback."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from edge_node.api.app import build_app
from edge_node.config import EdgeConfig
from edge_node.node import Edge, init_data_dir
from edge_node.store.connection import open_sync
from edge_node.store.users import Role, add_user

ROOT = Path(__file__).resolve().parents[2]


async def start_serve(data: Path, log: Path, timeout_s: float = 30.0, *,
                      host: str = "127.0.0.1", extra: Sequence[str] = ()
                      ) -> tuple[asyncio.subprocess.Process, str]:
    """`python -m edge_node serve` on `data` as a child process; (process, base URL).

    `extra`: more `serve` options.  Its stderr goes to `log`; fails with the log's tail
    if it does not say it listens.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(log, "ab") as err:  # noqa: ASYNC230 - a local file, opened once per start
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "edge_node", "serve", "--data", str(data), "--host",
            host, "--port", "0", *extra, cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE,
            stderr=err)
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout_s)
    assert line.startswith(b"listening "), (line, log.read_text()[-2000:])  # noqa: ASYNC240
    return proc, line.split()[1].decode()


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Api:
    """A running edge and HTTP clients for it, one token per role."""

    client: TestClient[Any, Any]
    edge: Edge
    data_dir: Path
    tokens: dict[str, str]
    user_ids: dict[str, str]

    def headers(self, role: str = "clinician", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}", **extra}

    async def request(self, method: str, path: str, *, role: str = "clinician",
                      json: Any = None, data: bytes | None = None,
                      headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
        hdrs = self.headers(role, **(headers or {}))
        async with self.client.request(method, path, json=json, data=data,
                                       headers=hdrs) as resp:
            raw = await resp.read()
            body = None
            if raw:
                import orjson

                body = orjson.loads(raw)
            return resp.status, body, resp.headers

    def counts(self) -> dict[str, int]:
        """Rows per table, with audit rows of successful writes counted apart."""
        conn = sqlite3.connect(self.data_dir / "edge.sqlite3")
        try:
            out = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                   for t in ("resources", "history", "outbox", "search_tokens")}
            out["audit_writes"] = conn.execute(
                "SELECT count(*) FROM audit WHERE action IN ('create', 'update', 'delete') "
                "AND outcome < 400").fetchone()[0]
            return out
        finally:
            conn.close()


def make_data_dir(path: Path) -> tuple[dict[str, str], dict[str, str]]:  # tokens, ids
    """Init a data directory with one account per role; return tokens and user ids."""
    _, admin, admin_token = init_data_dir(path, now_ms=wall_ms(), entropy=os.urandom,
                                          admin_name="admin")
    tokens: dict[str, str] = {"admin": admin_token}
    ids: dict[str, str] = {"admin": str(admin.user_id)}
    conn = open_sync(path)
    try:
        for role in (Role.CLINICIAN, Role.CLERK, Role.AUDITOR):
            user, token = add_user(conn, name=role.value, role=role, now_ms=wall_ms(),
                                   random_bytes=os.urandom(42))
            tokens[role.value], ids[role.value] = token, str(user.user_id)
    finally:
        conn.close()
    return tokens, ids


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    data_dir = tmp_path / "edge"
    tokens, ids = make_data_dir(data_dir)
    config = EdgeConfig(data_dir, max_body_bytes=256 * 1024, max_bundle_entries=50)
    async with Edge.open(config, clock=wall_ms, entropy=os.urandom) as edge:
        client = TestClient(TestServer(build_app(edge)))
        await client.start_server()
        try:
            yield Api(client, edge, data_dir, tokens, ids)
        finally:
            await client.close()
            await edge.writer.wait_idle()
