"""The feed's coalesced reads never hand a woken subscriber an answer older than its wake-up."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from cloud_hub.feed import Feed
from cloud_hub.notifier import Notifier
from cloud_hub.store.base import StoredBatch
from sync_protocol.ids import HubSeq, PracticeId, SiteId


class GatedStore:
    """A fake at the store port: each read waits for its gate, then sees `rows` as they are
    when the read *started* (like a database snapshot)."""

    def __init__(self) -> None:
        self.rows: list[StoredBatch] = []
        self.gates: list[asyncio.Event] = []
        self.reads = 0

    async def batches_after(self, practice_id: PracticeId, after: int, limit: int,
                            max_bytes: int = 0) -> list[StoredBatch]:
        self.reads += 1
        seen = list(self.rows)
        gate = asyncio.Event()
        self.gates.append(gate)
        await gate.wait()
        return seen


async def test_a_read_started_before_an_announced_commit_is_not_shared() -> None:
    store, notifier = GatedStore(), Notifier()
    feed = Feed(store, notifier)  # type: ignore[arg-type]
    pid = PracticeId(uuid.uuid4())
    early = asyncio.ensure_future(feed.batches_after(pid, 0, 100))
    while not store.gates:  # noqa: ASYNC110 - yield until the first read is in the store
        await asyncio.sleep(0)
    woken: asyncio.Future[list[StoredBatch]]
    store.rows.append(StoredBatch(HubSeq(1), SiteId(uuid.uuid4()), b"sealed"))
    notifier.publish(pid, HubSeq(1))  # after the commit, as the push handler does
    woken = asyncio.ensure_future(feed.batches_after(pid, 0, 100))
    async with asyncio.timeout(5):  # a shared (stale) read would never start a second one
        while len(store.gates) < 2:  # noqa: ASYNC110
            await asyncio.sleep(0)
    for gate in store.gates:
        gate.set()
    assert await early == []
    assert [b.hub_seq for b in await woken] == [1]
    assert store.reads == 2


async def test_identical_reads_without_news_are_shared() -> None:
    store, notifier = GatedStore(), Notifier()
    feed = Feed(store, notifier)  # type: ignore[arg-type]
    pid = PracticeId(uuid.uuid4())
    readers: list[asyncio.Future[Any]] = [asyncio.ensure_future(feed.batches_after(pid, 0, 100))
                                          for _ in range(50)]
    while not store.gates:  # noqa: ASYNC110
        await asyncio.sleep(0)
    for _ in range(5):
        await asyncio.sleep(0)
    store.gates[0].set()
    assert [await r for r in readers] == [[]] * 50
    assert store.reads == 1
