"""Batches after a cursor, waiting for new ones: what long-poll and WebSocket both use.

Fan-out to many subscribers of one practice would otherwise run one identical
query per subscriber per batch; concurrent identical reads are coalesced into
one (`batches_after`), so 500 subscribers at the same cursor cost one query.

A caller joins a read in flight only if no commit was announced since that read
started: a subscriber woken by a new batch must not get the answer of a read
that began before the batch was committed, or it would wait again with the
batch unsent (seen as a stream that stalls until the next push).
"""

from __future__ import annotations

import asyncio
from typing import Final

from cloud_hub.notifier import Notifier
from cloud_hub.store.base import HubStore, StoredBatch
from sync_protocol.ids import PracticeId

_Key = tuple[PracticeId, int, int]
#: Bound on one wait between re-checks (a missed wake-up costs at most this).
MAX_WAIT_SLICE_S: Final = 30.0


class _LeaderGone(Exception):
    """The coalesced read was cancelled with its first caller; followers read again."""


class Feed:
    """Reads of the practice's batch log, coalesced, with waiting on the notifier."""

    __slots__ = ("_inflight", "_notifier", "_store")

    def __init__(self, store: HubStore, notifier: Notifier) -> None:
        self._store = store
        self._notifier = notifier
        #: Reads in flight, with `Notifier.published` when each started.
        self._inflight: dict[_Key, tuple[asyncio.Future[list[StoredBatch]], int]] = {}

    async def batches_after(self, practice_id: PracticeId, after: int,
                            limit: int) -> list[StoredBatch]:
        """Like `HubStore.batches_after`, sharing one query among identical concurrent calls."""
        key = (practice_id, after, limit)
        while True:
            entry = self._inflight.get(key)
            if entry is None or entry[1] != self._notifier.published(practice_id):
                break  # nothing to join, or a read that may predate an announced commit
            try:
                return await asyncio.shield(entry[0])
            except _LeaderGone:
                continue
        future: asyncio.Future[list[StoredBatch]] = asyncio.get_running_loop().create_future()
        mine = (future, self._notifier.published(practice_id))
        self._inflight[key] = mine
        try:
            rows = await self._store.batches_after(practice_id, after, limit)
        except asyncio.CancelledError:
            _fail(future, _LeaderGone())
            raise
        except Exception as exc:
            _fail(future, exc)
            raise
        else:
            future.set_result(rows)
            return rows
        finally:
            if self._inflight.get(key) is mine:  # a fresher read may have taken the slot
                del self._inflight[key]

    async def wait_batches(self, practice_id: PracticeId, after: int, limit: int,
                           wait_s: float) -> list[StoredBatch]:
        """Batches after `after`; if none, wait up to `wait_s` for some to be committed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            ticket = self._notifier.ticket(practice_id)
            rows = await self.batches_after(practice_id, after, limit)
            remaining = deadline - loop.time()
            if rows or remaining <= 0:
                return rows
            try:
                async with asyncio.timeout(min(remaining, MAX_WAIT_SLICE_S)):
                    await ticket.wait()
            except TimeoutError:
                continue


def _fail(future: asyncio.Future[list[StoredBatch]], exc: BaseException) -> None:
    future.set_exception(exc)
    future.exception()  # mark retrieved: nobody may be waiting, and that is fine
