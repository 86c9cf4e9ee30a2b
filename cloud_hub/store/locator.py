"""Open a hub store from its URL: `sqlite:PATH` or `postgresql://...`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from cloud_hub.store.base import HubStore
from cloud_hub.store.postgres import PostgresStore
from cloud_hub.store.sqlite import SqliteStore

SQLITE_PREFIX = "sqlite:"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")


def is_store_url(url: str) -> bool:
    """Whether `url` names a store this hub can open."""
    return (url.startswith(SQLITE_PREFIX) and len(url) > len(SQLITE_PREFIX)) or \
        url.startswith(POSTGRES_PREFIXES)


@asynccontextmanager
async def open_store(url: str, *, pool_size: int = 10) -> AsyncIterator[HubStore]:
    """Open (creating or migrating) the store at `url`.

    Raises `ValueError` for an unknown scheme, `SchemaTooNew`, `StoreUnavailable`.
    """
    if url.startswith(SQLITE_PREFIX):
        async with SqliteStore.open(Path(url[len(SQLITE_PREFIX):])) as sqlite_store:
            yield sqlite_store
    elif url.startswith(POSTGRES_PREFIXES):
        async with PostgresStore.open(url, max_size=pool_size) as pg_store:
            yield pg_store
    else:
        raise ValueError(f"unknown store {url!r} (examples: sqlite:/var/lib/chartsync/hub.db, "
                         "postgresql://hub@db.example.jp/chartsync)")
