"""The PostgreSQL fixtures give real, separate, empty databases (see tests/conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import asyncpg
import pytest

from tests.conftest import TEST_DB_PREFIX, database_exists, fresh_database

USER_TABLES = """
    select count(*) from information_schema.tables
    where table_schema not in ('pg_catalog', 'information_schema')
"""


@pytest.fixture
def other_pg_dsn(pg_server_dsn: str) -> Iterator[str]:
    """A second fresh database in the same test, made by the code behind ``pg_dsn``."""
    with fresh_database(pg_server_dsn) as dsn:
        yield dsn


async def test_two_databases_are_distinct_and_empty(pg_dsn: str, other_pg_dsn: str) -> None:
    assert pg_dsn != other_pg_dsn
    names = set()
    for dsn in (pg_dsn, other_pg_dsn):
        conn = await asyncpg.connect(dsn)
        try:
            names.add(await conn.fetchval("select current_database()"))
            assert await conn.fetchval(USER_TABLES) == 0
        finally:
            await conn.close()
    assert len(names) == 2


async def test_table_in_one_database_is_absent_in_the_other(pg_dsn: str, other_pg_dsn: str) -> None:
    one = await asyncpg.connect(pg_dsn)
    other = await asyncpg.connect(other_pg_dsn)
    try:
        await one.execute("create table probe (id int primary key)")
        await one.execute("insert into probe values (1)")
        assert await one.fetchval("select count(*) from probe") == 1
        assert await other.fetchval("select to_regclass('public.probe')") is None
    finally:
        await one.close()
        await other.close()


async def test_server_is_real_postgresql(pg_dsn: str) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        version = await conn.fetchval("select version()")
    finally:
        await conn.close()
    assert "PostgreSQL" in version


def test_fixture_serves_sync_tests(pg_dsn: str) -> None:
    async def current_database() -> str:
        conn = await asyncpg.connect(pg_dsn)
        try:
            return str(await conn.fetchval("select current_database()"))
        finally:
            await conn.close()

    assert asyncio.run(current_database()).startswith(TEST_DB_PREFIX)


def test_database_is_dropped_after_use(pg_server_dsn: str) -> None:
    with fresh_database(pg_server_dsn) as dsn:
        name = dsn.rsplit("/", 1)[1]
        assert asyncio.run(database_exists(pg_server_dsn, name))
    assert not asyncio.run(database_exists(pg_server_dsn, name))


def test_postgres_marker_is_added(request: pytest.FixtureRequest, pg_dsn: str) -> None:
    assert request.node.get_closest_marker("postgres") is not None
