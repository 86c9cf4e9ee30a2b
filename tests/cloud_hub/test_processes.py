"""Real hub processes: fan-out across processes (LISTEN/NOTIFY), schema on start, CLI."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from cloud_hub.store.locator import open_store
from cloud_hub.store.postgres import PostgresStore
from sync_protocol.pull_wire import decode_pull_response, decode_pulled
from tests.cloud_hub.harness import Clock, Harness, add_operator
from tests.cloud_hub.processes import ROOT, HubProcess, hub_process


async def test_batch_pushed_to_one_process_reaches_subscribers_of_another(
        pg_dsn: str, tmp_path: Path) -> None:
    key_file = tmp_path / "hub-signing.key"  # one hub key, shared by both processes
    async with hub_process(pg_dsn, key_file=key_file) as hub1, \
            hub_process(pg_dsn, key_file=key_file) as hub2, \
            open_store(pg_dsn, pool_size=2) as store, \
            aiohttp.ClientSession(base_url=hub1.url) as s1, \
            aiohttp.ClientSession(base_url=hub2.url) as s2:
        harness = Harness(s1, store, Clock(), await add_operator(store))
        clinic, (a, b) = await harness.practice_with_sites()
        async with asyncio.timeout(20):
            async with s2.ws_connect("/v1/stream?after=0", headers=b.headers) as ws:
                poll = asyncio.ensure_future(s2.get(
                    "/v1/batches", params={"after": 0, "wait_s": 15}, headers=b.headers))
                sealed = clinic.seal(a.site, 3)
                resp = await s1.post("/v1/batches", data=sealed, headers=a.headers)
                assert resp.status == 200
                frame = decode_pulled(await ws.receive_bytes())
                assert (frame.hub_seq, frame.site_id, frame.sealed) == (1, a.site.site_id, sealed)
                pulled = decode_pull_response(await (await poll).read())
                assert [p.sealed for p in pulled.batches] == [sealed]
                # And the other way round.
                back = clinic.seal(b.site, 1)
                assert (await s2.post("/v1/batches", data=back, headers=b.headers)).status == 200
                assert decode_pulled(await ws.receive_bytes()).sealed == back


async def test_serve_creates_the_schema_and_refuses_a_newer_one(pg_dsn: str,
                                                               tmp_path: Path) -> None:
    key_file = tmp_path / "hub-signing.key"
    async with hub_process(pg_dsn, key_file=key_file) as hub, \
            aiohttp.ClientSession() as session, \
            session.get(f"{hub.url}/healthz") as resp:
        assert (await resp.json())["schema_version"] == PostgresStore.schema_version
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute("UPDATE schema_meta SET version = 7")
    await conn.close()
    done = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "cloud_hub", "serve", "--store", pg_dsn, "--port", "0",
        "--hub-key-file", str(key_file)],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "schema version 7" in done.stderr
    assert f"up to {PostgresStore.schema_version}" in done.stderr


def test_cli_operator_and_practices(tmp_path: Path) -> None:
    store = f"sqlite:{tmp_path / 'hub.db'}"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "chartsync", "hub", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)

    op = cli("operator", "create", "--store", store)
    assert op.returncode == 0 and op.stdout.startswith("cso_")
    made = cli("practice", "create", "Sato Clinic", "--store", store, "--json")
    assert made.returncode == 0, made.stderr
    out = json.loads(made.stdout)
    assert out["enrollment_token"].startswith("cse_")
    listed = json.loads(cli("practice", "list", "--store", store, "--json").stdout)
    assert [p["name"] for p in listed] == ["Sato Clinic"]
    assert listed[0]["practice_id"] == out["practice_id"]
    assert cli("practice", "list", "--store", "nonsense").returncode == 2
    bad = cli("serve", "--store", store, "--tls-cert", "x.pem")
    assert bad.returncode == 2 and "tls_key" in bad.stderr


async def test_serve_over_tls(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl binary to make a self-signed certificate with")
    cert, key = tmp_path / "hub.pem", tmp_path / "hub.key"
    done = await asyncio.to_thread(subprocess.run, [
        openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    hub = HubProcess(f"sqlite:{tmp_path / 'hub.db'}", tls=(cert, key))
    await hub.start()
    try:
        assert hub.url.startswith("https://")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{hub.url}/v1/hub-key", ssl=hub.ssl) as resp:
                assert resp.status == 200 and (await resp.json())["fingerprint"]
            with pytest.raises(aiohttp.ClientError):  # plain HTTP is not served
                async with session.get(f"http://127.0.0.1:{hub.port}/healthz") as resp:
                    await resp.read()
    finally:
        await hub.stop()


def test_serve_refuses_a_key_file_others_may_read(tmp_path: Path) -> None:
    key_file = tmp_path / "hub-signing.key"
    key_file.write_text("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n")
    key_file.chmod(0o644)
    done = subprocess.run([
        sys.executable, "-m", "cloud_hub", "serve", "--store", f"sqlite:{tmp_path / 'hub.db'}",
        "--port", "0", "--hub-key-file", str(key_file)],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert str(key_file) in done.stderr and f"chmod 600 {key_file}" in done.stderr


def test_serve_without_a_key_file_for_postgresql_is_a_usage_error() -> None:
    done = subprocess.run([
        sys.executable, "-m", "cloud_hub", "serve", "--store", "postgresql://hub@db/chartsync"],
        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "hub_key_file" in done.stderr and "example" in done.stderr
