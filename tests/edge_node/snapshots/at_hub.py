"""A practice of real edges at a real hub, with charts, history and conflicts — and
views to compare.

    dirs = await practice(tmp, hub.url, operator, 3)
    await offline_conflicts(dirs[:2])         # the same allergy edited apart on two sites
    async with running(d, SNAP) as edge: ...  # SNAP: snapshots every few changes
    assert site_view(a) == site_view(b)

`site_view` is what must be identical on every site at the same position:
`conflict.canonical_dump` of all states, the history as (type, id, origin,
seq, user, device, hlc, deleted) — `hid`, version numbers and the served JSON's
`meta` are per site — and the conflict records.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from uuid import UUID

import nacl.utils

from cloud_hub.config import parse_hub_config
from cloud_hub.server import serve
from conflict import canonical_dump
from conflict.decode import state_from_canonical
from edge_node.config import EdgeConfig
from edge_node.fhir.write_op import WriteOp
from edge_node.hub_link.client import HubClient, HubSettings
from edge_node.node import Edge
from tests.edge_node.resources import allergy, corrected, observation
from tests.edge_node.sync.edges import (
    ACTOR,
    FAST,
    Running,
    patient,
    practice,
    running,
    wait_for,
)
from tests.edge_node.sync.hubs import START_DEADLINE_S, LocalHub, wall_ms

#: Snapshots every few changes, looked at often (the production default is 5,000 / 30 s).
SNAP = replace(FAST, snapshot_every_changes=10, snapshot_check_s=0.1)


async def offline_conflicts(dirs: Sequence[Path]) -> None:
    """Each site edits allergy `a1` while offline: concurrent guarded edits, one conflict."""
    for i, data_dir in enumerate(dirs):
        async with Edge.open(EdgeConfig(data_dir), clock=wall_ms, entropy=os.urandom) as edge:
            critical = ("high", "low", "unable-to-assess")[i % 3]
            body = {**allergy("p0"), "id": "a1", "criticality": critical}
            [result] = await edge.writer.submit([WriteOp("update", "AllergyIntolerance", "a1",
                                                         body)], actor=ACTOR, atomic=False)
            assert not isinstance(result, Exception), result


async def write_charts(site: Running, tag: str, n: int) -> None:
    """`n` patients with an observation each, one edit and one delete."""
    for i in range(n):
        await site.write("Patient", f"{tag}p{i}", patient(f"{tag}-{i}"))
        await site.write("Observation", f"{tag}o{i}", observation(f"{tag}p{i}", 60 + i))
    await site.write("Observation", f"{tag}o0", corrected(observation(f"{tag}p0", 99)))
    await site.write("Observation", f"{tag}o1", None, action="delete")


def rows(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(data_dir / "edge.sqlite3")
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def site_view(data_dir: Path) -> dict[str, Any]:
    states = [state_from_canonical(bytes(r[0]))
              for r in rows(data_dir, "SELECT state FROM resources")]
    return {
        "states": canonical_dump(states),
        "history": sorted(rows(data_dir, "SELECT type, id, origin, seq, user, device, hlc, "
                                "deleted, vid, json FROM history WHERE kind = 'author'")),
        "conflicts": sorted(rows(data_dir, "SELECT type, id, register, heads, shown_origin, "
                                  "shown_seq FROM conflicts")),
    }


def applied(data_dir: Path) -> int:
    """Author versions (changes applied) on a site."""
    return int(rows(data_dir, "SELECT count(*) FROM history WHERE kind = 'author'")[0][0])


def acked(data_dir: Path) -> bool:
    """Every own change acknowledged by the hub."""
    return bool(rows(data_dir, "SELECT (SELECT coalesce(max(seq), 0) FROM outbox) <= "
                      "(SELECT coalesce(max(seq_to), 0) FROM pushed_batches "
                      "WHERE hub_seq IS NOT NULL)")[0][0])


async def converged(sites: Sequence[Running], *, expect_changes: int) -> None:
    """Wait until every site applied `expect_changes` changes and holds the same view."""
    await wait_for(lambda: all(applied(s.data_dir) == expect_changes for s in sites),
                   "every change everywhere")
    await wait_for(lambda: all(acked(s.data_dir) for s in sites), "outboxes acknowledged")
    first = site_view(sites[0].data_dir)
    for s in sites[1:]:
        assert site_view(s.data_dir) == first


async def latest_snapshot_seq(hub_url: str, credential: str) -> int | None:
    """The hub's latest snapshot's hub sequence (None if it has none)."""
    async with HubClient.open(HubSettings.parse(hub_url, insecure_http=True),
                              credential=credential) as hub, \
            hub.get_latest_snapshot() as download:
        return None if download is None else download.hub_seq


async def wait_snapshot(hub_url: str, credential: str, *, after: int = 0,
                        deadline_s: float = 30.0) -> int:
    """Wait until the hub holds a snapshot past hub sequence `after`; its hub sequence."""
    async with asyncio.timeout(deadline_s):
        while (seq := await latest_snapshot_seq(hub_url, credential)) is None or seq <= after:  # noqa: ASYNC110 - HTTP only, no event
            await asyncio.sleep(0.05)  # yield between hub polls; the deadline bounds the wait
    return seq


def restore_args(data_dir: Path, hub_url: str, kit: Path, *, token: str | None,
                 passphrase_file: Path | None = None, shares: Sequence[Path] = (),
                 name: str = "restored", snapshot: UUID | None = None) -> argparse.Namespace:
    """What `chartsync edge restore` parses from its command line."""
    return argparse.Namespace(data=data_dir, hub=hub_url, token=token, recovery_kit=kit,
                              passphrase_file=passphrase_file, share=list(shares),
                              hub_ca=None, insecure_http=True, name=name, admin="admin",
                              approval_timeout_s=60.0, json=True,
                              stage_batch_records=20_000, snapshot=snapshot)


@asynccontextmanager
async def hub_with(store_path: Path, **options: object) -> AsyncIterator[LocalHub]:
    """`tests.edge_node.sync.hubs.local_hub` with extra hub options (e.g. retention)."""
    config = parse_hub_config({"store": f"sqlite:{store_path}", "port": 0,
                               "host": "127.0.0.1", **options})
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_ready(url: str, fingerprint: str) -> None:
        ready.set_result(url)

    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(serve(config, now_ms=wall_ms, random_bytes=nacl.utils.random,
                                    on_ready=on_ready))
        try:
            async with asyncio.timeout(START_DEADLINE_S):
                url = await asyncio.shield(ready)
            yield LocalHub(url, int(url.rsplit(":", 1)[1]), store_path)
        finally:
            task.cancel()


async def practice_with_two_snapshots(tmp: Path, hub_url: str, operator: str
                                      ) -> tuple[list[Path], str, tuple[int, int]]:
    """Two sites that synced charts and had the hub keep two verified snapshots; the data
    dirs, a site credential and the two snapshots' hub positions (older, newer)."""
    dirs = await practice(tmp, hub_url, operator, 2)
    async with running(dirs[0], SNAP) as a, running(dirs[1], SNAP) as b:
        cred = a.sync.ctx.state.credential
        await wait_for(lambda: all(s.sync.ctx.keyring is not None for s in (a, b)),
                       "keys everywhere")
        await write_charts(a, "a", 4)
        await converged([a, b], expect_changes=2 * 4 + 2)
        first = await wait_snapshot(hub_url, cred)
        await write_charts(b, "b", 4)
        await converged([a, b], expect_changes=2 * (2 * 4 + 2))
        second = await wait_snapshot(hub_url, cred, after=first)
    return dirs, cred, (first, second)
