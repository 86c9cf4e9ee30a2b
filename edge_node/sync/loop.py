"""The sync loop inside `chartsync edge serve`: a supervisor of the sync tasks.

    async with SyncLoop.open(edge, settings) as sync:   # None if not enrolled
        ...  # sync.statistics() for the status page

Five tasks in one TaskGroup: the pusher (`sync.pusher`), the pull session (here:
the hub's WebSocket stream, or long-polls through a proxy that refuses it, applied
by `sync.puller`), the mailbox (`sync.mailbox`), the heartbeat (`sync.heartbeat`)
and the snapshot upload (`snapshots.snapshotter`).  Each talks to the hub through
`HubClient` and recovers from `HubUnreachable` / transient refusals with tenacity
(exponential backoff with jitter, capped at `backoff_max_s`); the status logs a
failure once per change of state.  Each pull session first checks that the hub
still holds what this site read and pushed (`sync.recovery.HubRecovery`: a
rebuilt hub, one restored from an older backup, one that trimmed the log past
the cursor), and so does a long-poll page that answers from another log or below
the cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from tenacity import AsyncRetrying, retry_if_exception, wait_random_exponential

from edge_node.hub_link.client import HubClient, HubSettings
from edge_node.hub_link.context import SyncContext
from edge_node.hub_link.errors import HubRefused, HubUnreachable
from edge_node.hub_link.settings import SyncSettings
from edge_node.hub_link.status import SyncStatistics, SyncStatus
from edge_node.node import Edge
from edge_node.snapshots.snapshotter import run_snapshotter
from edge_node.store.connection import ReadConnections, call_on_new_connection
from edge_node.store.schema import db_path
from edge_node.store.sync_state import load_sync_state
from edge_node.sync.heartbeat import Heartbeat
from edge_node.sync.mailbox import Mailbox
from edge_node.sync.membership import refresh_registry
from edge_node.sync.puller import MAX_GROUP_BYTES, Puller
from edge_node.sync.pusher import Pusher
from edge_node.sync.recovery import LOG_TRIMMED, HubRecovery
from sync_protocol.models import PulledBatch

log = logging.getLogger(__name__)

#: Received stream frames waiting to be applied (back-pressure on the socket beyond).
STREAM_QUEUE_BATCHES = 128


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, HubUnreachable) or (isinstance(exc, HubRefused) and exc.transient)


class SyncLoop:
    def __init__(self, ctx: SyncContext, *, check_head: bool = True) -> None:
        self.ctx = ctx
        self.pusher = Pusher(ctx)
        self.puller = Puller(ctx)
        self.recovery = HubRecovery(ctx, check_head=check_head)
        self.mailbox = Mailbox(ctx, self.recovery)
        self.heartbeat = Heartbeat(ctx)

    @classmethod
    @asynccontextmanager
    async def open(cls, edge: Edge, settings: SyncSettings, *, check_head: bool = True
                   ) -> AsyncIterator[SyncLoop | None]:
        """Run the sync tasks of an enrolled edge until the block exits (None: not enrolled).

        `check_head=False` leaves out the check that the hub still holds what this site
        read and pushed (`HubRecovery.check_head`), as an edge of the release before it
        did: a restored hub is then repaired by the pusher's `chain_broken` resend alone
        (the tests of that fallback use it).
        """
        data_dir = edge.config.data_dir
        state = await call_on_new_connection(db_path(data_dir), load_sync_state, data_dir)
        if state is None:
            yield None
            return
        hub_settings = HubSettings(state.hub_url, state.hub_ca, state.insecure_http)
        async with HubClient.open(hub_settings, credential=state.credential) as hub, \
                ReadConnections.open(db_path(data_dir)) as reads:
            ctx = SyncContext(edge, hub, settings, state,
                              SyncStatus(state.enrolled_status, state.keyring is not None),
                              state.keyring, cursor=state.cursor, reads=reads)
            ctx.push_due = edge.writer.outbox_committed
            if ctx.keyring is not None:
                await edge.writer.start_digest(ctx.keyring.digest_key)
            loop = cls(ctx, check_head=check_head)
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(loop._forever("push", loop.pusher.run)),
                         tg.create_task(loop._forever("pull", loop._pull_session)),
                         tg.create_task(loop._forever("mailbox", loop.mailbox.run)),
                         tg.create_task(loop._forever("heartbeat", loop.heartbeat.run)),
                         tg.create_task(loop._forever("snapshot",
                                                      lambda: run_snapshotter(ctx)))]
                try:
                    yield loop
                finally:
                    for task in tasks:
                        task.cancel()

    def statistics(self) -> SyncStatistics:
        return self.ctx.status.snapshot()

    async def _forever(self, name: str, step: Callable[[], Awaitable[None]]) -> None:
        """Run `step` again and again; back off on transient failures (tenacity)."""
        ctx = self.ctx
        while True:
            retrying = AsyncRetrying(
                retry=retry_if_exception(_transient),
                wait=wait_random_exponential(multiplier=0.2, max=ctx.settings.backoff_max_s),
                before_sleep=lambda rs: self._failed(rs.outcome.exception() if rs.outcome
                                                     else None))
            try:
                async for attempt in retrying:
                    with attempt:
                        await step()
            except HubRefused as exc:
                # Waiting cannot fix this one (revoked, refused): say so on the status
                # page (logged once) and look again after the backoff cap, never in a loop.
                self._failed(exc)
                await asyncio.sleep(ctx.settings.backoff_max_s)

    def _failed(self, exc: BaseException | None) -> None:
        if isinstance(exc, HubRefused):
            self.ctx.status.failed(exc.hub_code, exc.message, self.ctx.now_ms(), offline=False)
        elif isinstance(exc, HubUnreachable):
            self.ctx.status.failed("hub_unreachable", exc.message, self.ctx.now_ms(),
                                   offline=True)

    # --- pull ----------------------------------------------------------------------

    async def _pull_session(self) -> None:
        try:
            await self._pull_log()
        except HubRefused as exc:
            if exc.hub_code != LOG_TRIMMED:
                raise
            await self.recovery.rebootstrap()  # then `_forever` starts the next session

    async def _pull_log(self) -> None:
        ctx = self.ctx
        await self._keys_ready()
        hub_key = await ctx.hub.hub_key()
        await self.recovery.check_log_id(hub_key.log_id)
        await self.recovery.check_head()
        await self.recovery.drain_relays()  # what an earlier session could not finish
        await refresh_registry(ctx)
        await self.puller.retry_held()
        ctx.status.online(ctx.now_ms())
        try:
            await self._stream()
        except HubRefused as exc:
            if exc.hub_code == "site_revoked":
                raise
            # No WebSocket through this path (a proxy?): long-poll instead.
            log.info("stream refused (%s); falling back to long-poll", exc.hub_code)
        while True:
            page = await ctx.hub.pull(after=ctx.cursor, wait_s=ctx.settings.long_poll_s)
            if await self.recovery.check_log_id(page.log_id):
                continue  # the page answered a cursor into the old log
            if page.head < ctx.cursor:  # the hub's log went back under us (a restore)
                await self.recovery.check_head()
                continue
            ctx.status.pulled(ctx.now_ms(), page.head)
            await self.puller.handle_group(page.batches)
            if ctx.keys_changed.is_set():
                ctx.keys_changed.clear()
                await self.puller.retry_held()

    async def _stream(self) -> None:
        """Apply the hub's WebSocket stream until it ends; raises what the stream raised.

        One task receives frames into a bounded queue while this one applies
        them: the frames that arrive during one group's commit form the next
        group (`Puller.handle_group`, one transaction each), so a catch-up is not
        one fsync per batch and a single live batch is applied as soon as it lands.
        """
        ctx = self.ctx
        queue: asyncio.Queue[PulledBatch | HubRefused | HubUnreachable] = \
            asyncio.Queue(STREAM_QUEUE_BATCHES)

        async def receive() -> None:
            try:
                async for pulled in ctx.hub.stream(after=ctx.cursor):
                    await queue.put(pulled)
            except (HubRefused, HubUnreachable) as exc:
                await queue.put(exc)  # after every batch received before it

        failure: BaseException | None = None
        async with asyncio.TaskGroup() as tg:
            receiver = tg.create_task(receive())
            try:
                failure = await self._apply_queued(queue)
            except Exception as exc:  # raised below, once the receiver has stopped
                failure = exc
            receiver.cancel()
        if failure is not None:
            raise failure

    async def _apply_queued(self, queue: asyncio.Queue[PulledBatch | HubRefused |
                                                       HubUnreachable]) -> BaseException:
        """Apply queued batches group by group; return the stream's ending error."""
        ctx = self.ctx
        while True:
            item = await self._next_queued(queue)
            group: list[PulledBatch] = []
            size = 0
            while isinstance(item, PulledBatch):
                group.append(item)
                size += len(item.sealed)
                if len(group) >= ctx.settings.max_group_batches or size >= MAX_GROUP_BYTES \
                        or queue.empty():
                    break
                item = queue.get_nowait()
            if group:
                await self.puller.handle_group(group)
                if ctx.keys_changed.is_set():
                    ctx.keys_changed.clear()
                    await self.puller.retry_held()
            if not isinstance(item, PulledBatch):
                return item

    async def _next_queued(self, queue: asyncio.Queue[PulledBatch | HubRefused |
                                                      HubUnreachable]
                           ) -> PulledBatch | HubRefused | HubUnreachable:
        """The next queued item; while none comes, held batches are tried again as soon as
        a key epoch arrives (a quiet stream brings no group to do it after)."""
        ctx = self.ctx
        while True:
            if ctx.keys_changed.is_set():
                ctx.keys_changed.clear()
                await self.puller.retry_held()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ctx.settings.control_poll_s):
                    return await queue.get()

    async def _keys_ready(self) -> None:
        while self.ctx.keyring is None:
            await self.ctx.keys_changed.wait()
            self.ctx.keys_changed.clear()


__all__ = ["STREAM_QUEUE_BATCHES", "SyncLoop"]
