"""Hub fixtures: every store test runs against SQLite and real PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cloud_hub.store.base import HubStore
from cloud_hub.store.locator import open_store
from tests.cloud_hub.harness import Harness, running_hub


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
    async with running_hub(hub_store) as running:
        yield running
