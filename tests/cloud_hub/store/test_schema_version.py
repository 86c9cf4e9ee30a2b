"""Both hub stores migrate to the one `SCHEMA_VERSION` of `cloud_hub.store.base`."""

from __future__ import annotations

from cloud_hub.store import base, postgres, sqlite


def test_both_stores_have_one_migration_per_schema_version() -> None:
    expected = list(range(1, base.SCHEMA_VERSION + 1))
    assert sorted(postgres.MIGRATIONS) == expected
    assert sorted(sqlite.MIGRATIONS) == expected


def test_both_stores_report_the_shared_schema_version() -> None:
    assert postgres.PostgresStore.schema_version == base.SCHEMA_VERSION
    assert sqlite.SqliteStore.schema_version == base.SCHEMA_VERSION
