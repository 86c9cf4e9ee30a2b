"""Hub fixtures: every store test runs against SQLite and real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import nacl.utils
import pytest
from aiohttp.test_utils import TestClient, TestServer

from cloud_hub.api.app import build_app
from cloud_hub.api.context import HubContext
from cloud_hub.config import parse_hub_config
from cloud_hub.feed import Feed
from cloud_hub.keyprint import load_signing_key
from cloud_hub.notifier import Notifier
from cloud_hub.store.base import HubStore
from cloud_hub.store.locator import open_store
from tests.cloud_hub.harness import Clock, Harness, add_operator, hub_seed


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh hub store lives: an SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'hub.db'}"
    dsn: str = request.getfixturevalue("pg_dsn")
    return dsn


@pytest.fixture
async def hub_store(store_url: str) -> AsyncIterator[HubStore]:
    async with open_store(store_url) as store:
        yield store


@pytest.fixture
async def harness(hub_store: HubStore) -> AsyncIterator[Harness]:
    """The hub's real aiohttp app on a loopback test server, over each store."""
    clock = Clock()
    notifier = Notifier()
    signing_key = await load_signing_key(hub_store, hub_seed(), clock())
    config = parse_hub_config({"store": "sqlite:unused", "max_batch_bytes": 4 * 1024 * 1024,
                               "max_snapshot_bytes": 8 * 1024 * 1024})
    ctx = HubContext(config, hub_store, notifier, Feed(hub_store, notifier), signing_key, clock,
                     nacl.utils.random)
    server = TestServer(build_app(ctx))
    # As in production (server.py): the hub never expands a request body.
    await server.start_server(auto_decompress=False)
    async with TestClient(server) as client:
        yield Harness(client, hub_store, clock, await add_operator(hub_store))
