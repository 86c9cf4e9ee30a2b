"""The hub's signing seed lives in a key file (mode 0600), never in the store; the store
keeps the public key and refuses a key file that is not its own."""

from __future__ import annotations

import base64
import sqlite3
import stat
from pathlib import Path

import asyncpg
import nacl.signing
import pytest

from cloud_hub.config import ConfigError, parse_hub_config
from cloud_hub.errors import HubKeyRefused
from cloud_hub.keyprint import hub_fingerprint, load_signing_key, read_seed
from cloud_hub.store.base import SCHEMA_VERSION
from cloud_hub.store.locator import open_store
from sync_protocol.models import push_ack_from_json
from sync_protocol.receipt import verify_receipt
from tests.cloud_hub.harness import NOW_MS, running_hub

SEED = bytes(range(32))
OTHER = b"\x07" * 32


def public(seed: bytes) -> bytes:
    return bytes(nacl.signing.SigningKey(seed).verify_key)


async def test_first_start_writes_a_private_key_file(store_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "hub-signing.key"
    async with open_store(store_url) as store:
        key = await load_signing_key(store, key_file, SEED, NOW_MS)
        assert bytes(key) == SEED
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert key_file.read_bytes() == base64.b64encode(SEED) + b"\n"
        assert await store.legacy_hub_seed() is None
        # The store records the public key only; a later start finds the same key.
        assert await store.bind_hub_key(public(SEED), NOW_MS) == public(SEED)
        again = await load_signing_key(store, key_file, OTHER, NOW_MS)
        assert bytes(again) == SEED


async def test_raw_32_byte_key_file_is_read(store_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "hub.key"
    key_file.write_bytes(SEED)
    key_file.chmod(0o600)
    async with open_store(store_url) as store:
        assert bytes(await load_signing_key(store, key_file, OTHER, NOW_MS)) == SEED


async def test_a_key_file_of_another_hub_is_refused(store_url: str, tmp_path: Path) -> None:
    mine, other = tmp_path / "mine.key", tmp_path / "other.key"
    async with open_store(store_url) as store:
        await load_signing_key(store, mine, SEED, NOW_MS)
        with pytest.raises(HubKeyRefused) as err:
            await load_signing_key(store, other, OTHER, NOW_MS)
    text = str(err.value)
    assert f"this store belongs to hub key {hub_fingerprint(public(SEED))}" in text
    assert f"holds {hub_fingerprint(public(OTHER))}" in text


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
async def test_a_key_file_others_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    key_file = tmp_path / "hub.key"
    key_file.write_bytes(base64.b64encode(SEED))
    key_file.chmod(mode)
    with pytest.raises(HubKeyRefused) as err:
        read_seed(key_file)
    assert str(key_file) in str(err.value) and f"chmod 600 {key_file}" in str(err.value)
    async with open_store(f"sqlite:{tmp_path / 'hub.db'}") as store:
        with pytest.raises(HubKeyRefused):
            await load_signing_key(store, key_file, SEED, NOW_MS)
        assert await store.legacy_hub_seed() is None


async def test_a_key_file_without_a_seed_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "hub.key"
    key_file.write_bytes(b"not a key\n")
    key_file.chmod(0o600)
    with pytest.raises(HubKeyRefused, match="32-byte seed"):
        read_seed(key_file)


async def _as_schema_2_with_seed(store_url: str, seed: bytes) -> None:
    """Turn a fresh store into what the schema-2 hub left: the seed in hub_key."""
    statements = ["DROP TABLE hub_identity", "DROP TABLE roster", "DROP TABLE kit_epochs",
                  "DROP TABLE snapshot_marks", "ALTER TABLE snapshots DROP COLUMN digest",
                  "ALTER TABLE snapshots DROP COLUMN signature",
                  "ALTER TABLE snapshots DROP COLUMN verified",
                  "UPDATE schema_meta SET version = 2"]
    if store_url.startswith("sqlite:"):
        with sqlite3.connect(store_url.removeprefix("sqlite:")) as db:
            db.execute("INSERT INTO hub_key VALUES (1, ?, 1)", (seed,))
            for statement in statements:
                db.execute(statement)
    else:
        conn = await asyncpg.connect(store_url)
        await conn.execute("INSERT INTO hub_key VALUES (1, $1, 1)", seed)
        for statement in statements:
            await conn.execute(statement)
        await conn.close()


async def _stored_seeds(store_url: str) -> list[bytes]:
    if store_url.startswith("sqlite:"):
        with sqlite3.connect(store_url.removeprefix("sqlite:")) as db:
            return [bytes(r[0]) for r in db.execute("SELECT signing_seed FROM hub_key")]
    conn = await asyncpg.connect(store_url)
    rows = await conn.fetch("SELECT signing_seed FROM hub_key")
    await conn.close()
    return [bytes(r[0]) for r in rows]


async def test_migration_moves_the_seed_out_of_the_store(store_url: str,
                                                         tmp_path: Path) -> None:
    async with open_store(store_url):
        pass
    await _as_schema_2_with_seed(store_url, SEED)
    key_file = tmp_path / "hub-signing.key"
    async with open_store(store_url) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert await store.legacy_hub_seed() == SEED
        key = await load_signing_key(store, key_file, OTHER, NOW_MS)
        assert bytes(key) == SEED, "the edges' pinned key is kept"
        assert read_seed(key_file) == SEED
        assert await store.legacy_hub_seed() is None
    assert await _stored_seeds(store_url) == []
    async with open_store(store_url) as store:  # and a restart reads the file
        assert bytes(await load_signing_key(store, key_file, OTHER, NOW_MS)) == SEED


async def test_migration_refuses_a_foreign_key_file_and_keeps_the_seed(
        store_url: str, tmp_path: Path) -> None:
    async with open_store(store_url):
        pass
    await _as_schema_2_with_seed(store_url, SEED)
    key_file = tmp_path / "other.key"
    key_file.write_bytes(base64.b64encode(OTHER))
    key_file.chmod(0o600)
    async with open_store(store_url) as store:
        with pytest.raises(HubKeyRefused, match="this store belongs to hub key"):
            await load_signing_key(store, key_file, b"\x09" * 32, NOW_MS)
        assert await store.legacy_hub_seed() == SEED, "nothing lost: the seed stays"


async def test_receipts_verify_with_the_pinned_key_across_a_restart(
        store_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "hub-signing.key"
    async with open_store(store_url) as store:
        async with running_hub(store, key_file) as harness:
            clinic, (a,) = await harness.practice_with_sites(1)
            pinned = harness.hub_verify_key  # what the edge pinned at enrollment
            first = clinic.seal(a.site, 2)
            resp = await harness.push(a, first)
            verify_receipt(push_ack_from_json(await resp.json()).receipt, pinned)
        async with running_hub(store, key_file) as harness:
            key = await (await harness.client.get("/v1/hub-key")).json()
            assert base64.b64decode(key["verify_key"]) == pinned
            for sealed in (first, clinic.seal(a.site, 1)):
                resp = await harness.push(a, sealed)
                assert resp.status == 200, await resp.text()
                verify_receipt(push_ack_from_json(await resp.json()).receipt, pinned)


def test_key_file_defaults_next_to_a_sqlite_store() -> None:
    config = parse_hub_config({"store": "sqlite:/var/lib/chartsync-hub/hub.db"})
    assert config.hub_key_file == Path("/var/lib/chartsync-hub/hub-signing.key")
    given = parse_hub_config({"store": "sqlite:hub.db", "hub_key_file": "/etc/k"})
    assert given.hub_key_file == Path("/etc/k")


def test_key_file_is_required_with_postgresql() -> None:
    with pytest.raises(ConfigError) as err:
        parse_hub_config({"store": "postgresql://hub@db/chartsync"})
    assert "hub_key_file" in str(err.value) and "example: hub_key_file=" in str(err.value)
    config = parse_hub_config({"store": "postgresql://hub@db/chartsync",
                               "hub_key_file": "/var/lib/chartsync-hub/hub-signing.key"})
    assert config.hub_key_file == Path("/var/lib/chartsync-hub/hub-signing.key")
