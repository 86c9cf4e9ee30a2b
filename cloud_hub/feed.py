"""Batches after a cursor, waiting for new ones: what long-poll and WebSocket both use.

Fan-out to many subscribers of one practice would otherwise run one identical
query per subscriber per batch; concurrent identical reads are coalesced into
one (`batches_after`), so 500 subscribers at the same cursor cost one query.
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
        self._inflight: dict[_Key, asyncio.Future[list[StoredBatch]]] = {}

    async def batches_after(self, practice_id: PracticeId, after: int,
                            limit: int) -> list[StoredBatch]:
        """Like `HubStore.batches_after`, sharing one query among identical concurrent calls."""
        key = (practice_id, after, limit)
        while True:
            pending = self._inflight.get(key)
            if pending is None:
                break
            try:
                return await asyncio.shield(pending)
            except _LeaderGone:
                continue
        future: asyncio.Future[list[StoredBatch]] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
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
