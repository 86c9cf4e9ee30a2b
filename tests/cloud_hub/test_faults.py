"""Faults with real processes: PostgreSQL restarted under load; the hub SIGKILLed mid-push."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from cloud_hub.store.base import HubStore
from cloud_hub.store.locator import open_store
from sync_protocol.pull_wire import decode_pulled
from tests.cloud_hub.clinic import Clinic
from tests.cloud_hub.harness import Clock, Harness, Member, add_operator
from tests.cloud_hub.processes import (
    HubProcess,
    cluster_hub_dsn,
    hub_process,
    restartable_cluster,
)
from tests.cloud_hub.pushers import audit, push_site, sealed_run

SITES = 4
PER_SITE = 25
DEADLINE_S = 90.0


async def _practice(session: aiohttp.ClientSession, store: HubStore,
                    n: int) -> tuple[Clinic, list[Member]]:
    harness = Harness(session, store, Clock(), await add_operator(store))
    return await harness.practice_with_sites(n)


async def test_postgres_restart_while_sites_push(tmp_path: Path) -> None:
    async with restartable_cluster() as cluster:
        dsn = cluster_hub_dsn(cluster)
        async with hub_process(dsn, key_file=tmp_path / "hub.key") as hub, \
                open_store(dsn, pool_size=2) as store, \
                aiohttp.ClientSession(base_url=hub.url) as session:
            clinic, members = await _practice(session, store, SITES)
            run = sealed_run(clinic, members, PER_SITE, 20)
            # A subscriber streams throughout: it must see every batch once, in hub order.
            ws = await session.ws_connect("/v1/stream?after=0", headers=members[-1].headers)
            async with asyncio.timeout(DEADLINE_S):
                pushers = asyncio.gather(*(push_site(session, hub.url, m, run, DEADLINE_S)
                                           for m in members))
                await run.wait_acks(run.total // 4)
                await asyncio.to_thread(cluster.stop_now)  # crash-like: -m immediate
                await asyncio.to_thread(cluster.start_again)
                await pushers
                assert run.retries > 0, "the restart should have been felt"
                await hub.wait_healthy()
                streamed = [decode_pulled(await ws.receive_bytes()).hub_seq
                            for _ in range(run.total)]
                await ws.close()
            assert streamed == list(range(1, run.total + 1))
            # The same hub process serves on: no restart of the hub was needed.
            assert hub.proc is not None and hub.proc.returncode is None
        async with open_store(dsn, pool_size=2) as fresh:
            await audit(fresh, clinic.practice_id, run)


async def test_hub_killed_mid_push_loses_and_doubles_nothing(pg_dsn: str,
                                                             tmp_path: Path) -> None:
    hub = HubProcess(pg_dsn, key_file=tmp_path / "hub.key")
    await hub.start()
    try:
        async with open_store(pg_dsn, pool_size=2) as store, \
                aiohttp.ClientSession() as session:
            sess = aiohttp.ClientSession(base_url=hub.url)
            async with sess:
                clinic, members = await _practice(sess, store, SITES)
            run = sealed_run(clinic, members, PER_SITE, 20)
            async with asyncio.timeout(DEADLINE_S):
                pushers = asyncio.gather(*(push_site(session, hub.url, m, run, DEADLINE_S)
                                           for m in members))
                for _ in range(2):
                    await run.wait_acks(len(run.acks) + run.total // 4)
                    await hub.kill()
                    await hub.start()  # same port, same database
                await pushers
            assert run.retries > 0
            await audit(store, clinic.practice_id, run)
    finally:
        await hub.stop()

