"""A fresh PostgreSQL database for one benchmark run, dropped afterwards."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def bench_dsn() -> str:
    """CHARTSYNC_BENCH_PG_DSN, or the local server's postgres database."""
    return os.environ.get("CHARTSYNC_BENCH_PG_DSN", DEFAULT_DSN)


def with_db(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path="/" + name))


async def admin(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def fresh_database(dsn: str, prefix: str) -> AsyncIterator[str]:
    """Create a uniquely named database on `dsn`'s server; yield its DSN; drop it."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    await admin(dsn, f'CREATE DATABASE "{name}"')
    try:
        yield with_db(dsn, name)
    finally:
        await admin(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
