"""The sync loop inside `chartsync edge serve`: pusher, puller, mailbox, heartbeat.

    async with SyncLoop.open(edge, settings) as sync:   # None if not enrolled
        ...  # sync.statistics() for the status page

Five tasks in one TaskGroup (the fifth, `snapshots.snapshotter`, uploads
snapshots).  Each talks to the hub through `HubClient` and
recovers from `HubUnreachable` / transient refusals with tenacity (exponential
backoff with jitter, capped at `backoff_max_s`); the status logs a failure
once per change of state.  A hub whose `log_id` differs from the stored one
was rebuilt: the cursor goes back to 0 (applies are idempotent per origin
chain), every own batch is marked unacknowledged (pushed again from seq 1)
and every received batch is relayed in the order it was received.  A hub
restored from an older backup (same log id; its `head` below the cursor, or
another batch where this site read one) is noticed at the start of each
session and by the long-poll: the site goes back to the last position that
still matches, re-sends and relays what came after (`_check_head`).  A hub
that trimmed the log past the cursor (`410 log_trimmed`) makes the site
re-bootstrap from the latest snapshot, its own queued changes merged on top
(`snapshots.rebootstrap`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception, wait_random_exponential

from edge_node.hub_link.client import HubClient, HubSettings
from edge_node.hub_link.context import SyncContext
from edge_node.hub_link.errors import HubRefused, HubUnreachable
from edge_node.hub_link.settings import SyncSettings
from edge_node.hub_link.status import SyncStatus
from edge_node.node import Edge, connect
from edge_node.snapshots.errors import SnapshotError
from edge_node.snapshots.rebootstrap import rebootstrap
from edge_node.snapshots.snapshotter import run_snapshotter
from edge_node.store.connection import ReadConnections
from edge_node.store.schema import db_path
from edge_node.store.sync_state import SyncState, keyring_row, load_sync_state
from edge_node.sync.puller import MAX_GROUP_BYTES, Puller, missing_seqs, refresh_registry
from edge_node.sync.pusher import Pusher, window_length
from edge_node.sync.rewind import RELAY_LATER, queued_relays, relay_depth, rewind_statements
from sync_protocol.batch import batch_hash
from sync_protocol.errors import ProtocolError
from sync_protocol.key_delivery import open_keys_for_site
from sync_protocol.models import PulledBatch
from sync_protocol.version import PROTOCOL_VERSION, SOFTWARE_VERSION

log = logging.getLogger(__name__)

#: The hub's answer when the log after our cursor was trimmed (retention, issue #5).
LOG_TRIMMED = "log_trimmed"
#: Least time between two heartbeats (events set `heartbeat_due` much more often).
HEARTBEAT_MIN_GAP_S = 1.0
#: Received stream frames waiting to be applied (back-pressure on the socket beyond).
STREAM_QUEUE_BATCHES = 128


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, HubUnreachable) or (isinstance(exc, HubRefused) and exc.transient)


def _load(edge: Edge) -> SyncState | None:
    conn = connect(db_path(edge.config.data_dir))
    try:
        return load_sync_state(conn, edge.config.data_dir)
    finally:
        conn.close()


class SyncLoop:
    def __init__(self, ctx: SyncContext) -> None:
        self.ctx = ctx
        self.pusher = Pusher(ctx)
        self.puller = Puller(ctx)
        #: One relay drain at a time (session start, rewinds, mailbox polls).
        self._relaying = asyncio.Lock()
        #: Relays the hub could not take yet at the last drain (`RELAY_LATER`).
        self._relays_waiting = 0
        #: False once the hub refused several relays in one request (previous release).
        self._relay_many = True

    @classmethod
    @asynccontextmanager
    async def open(cls, edge: Edge, settings: SyncSettings) -> AsyncIterator[SyncLoop | None]:
        state = await asyncio.to_thread(_load, edge)
        if state is None:
            yield None
            return
        hub_settings = HubSettings(state.hub_url, state.hub_ca, state.insecure_http)
        async with HubClient.open(hub_settings, credential=state.credential) as hub, \
                ReadConnections.open(db_path(edge.config.data_dir)) as reads:
            ctx = SyncContext(edge, hub, settings, state,
                              SyncStatus(state.enrolled_status, state.keyring is not None),
                              state.keyring, cursor=state.cursor, reads=reads)
            ctx.push_due = edge.writer.outbox_committed
            if ctx.keyring is not None:
                await edge.writer.start_digest(ctx.keyring.digest_key)
            loop = cls(ctx)
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(loop._forever("push", loop.pusher.run)),
                         tg.create_task(loop._forever("pull", loop._pull_session)),
                         tg.create_task(loop._forever("mailbox", loop._mailbox)),
                         tg.create_task(loop._forever("heartbeat", loop._heartbeat)),
                         # Snapshots (issue #5): periodic upload, owned by edge_node.snapshots.
                         tg.create_task(loop._forever("snapshot",
                                                      lambda: run_snapshotter(ctx)))]
                try:
                    yield loop
                finally:
                    for task in tasks:
                        task.cancel()

    def statistics(self) -> Any:
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
            await self._rebootstrap()  # then `_forever` starts the next session

    async def _pull_log(self) -> None:
        ctx = self.ctx
        await self._keys_ready()
        hub_key = await ctx.hub.hub_key()
        await self._check_log_id(hub_key.log_id)
        await self._check_head()
        await self._drain_relays()  # what an earlier session could not finish
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
            if await self._check_log_id(page.log_id):
                continue  # the page answered a cursor into the old log
            if page.head < ctx.cursor:  # the hub's log went back under us (a restore)
                await self._check_head()
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
            item = await queue.get()
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

    async def _keys_ready(self) -> None:
        while self.ctx.keyring is None:
            await self.ctx.keys_changed.wait()
            self.ctx.keys_changed.clear()

    async def _check_log_id(self, log_id: Any) -> bool:
        """Take note of the hub's log id; True if it changed (this site went back to 0)."""
        ctx = self.ctx
        if log_id is None:
            return False
        stored = ctx.state.log_id
        if stored == log_id:
            return False
        await ctx.execute(("UPDATE sync_state SET log_id = ?", (str(log_id),)), label="log id")
        ctx.state = _replace_log(ctx.state, log_id)
        if stored is None:
            return False
        log.warning("the hub's log was recreated (log id changed; practice %s, site %s): "
                    "re-sending this site's batches and relaying received ones to rebuild it",
                    ctx.state.practice_id, ctx.site_id)
        # Back to 0: received copies are keyed by the old log's sequence numbers.
        await ctx.execute(*rewind_statements(0, ctx.now_ms()), label="hub rebuilt")
        ctx.cursor = 0
        ctx.push_due.set()
        await self._drain_relays()
        return True

    async def _drain_relays(self) -> None:
        """Push the other sites' batches queued for relay (`relay_queue`, oldest first)
        back to the hub, to rebuild what it lost.

        A queued batch leaves the queue only once the hub has it (stored, or already
        held) or refused it for good, so a relay cut by a dropped line or a crash goes
        on at the next session; re-pushing one the hub took meanwhile is harmless (a
        duplicate is acknowledged).  One the hub cannot take yet (`RELAY_LATER`: its
        site has not re-enrolled on a rebuilt hub, or is still pending) stays queued
        and is tried again at the next session and every mailbox poll.  Raises the
        transient failure that stopped it.
        """
        ctx = self.ctx
        async with self._relaying:
            after, waiting = 0, 0
            while rows := await ctx.read(functools.partial(queued_relays, after=after)):
                handled: list[int] = []
                try:
                    i = 0
                    while i < len(rows):
                        window = rows[i:i + window_length([len(s) for _, s in rows[i:]])]
                        outcomes = await self._relay(window)
                        for (relay_id, _), later in zip(window, outcomes, strict=False):
                            after = relay_id
                            if later:
                                waiting += 1
                            else:
                                handled.append(relay_id)
                        i += len(outcomes)
                finally:
                    if handled:
                        marks = ",".join("?" * len(handled))
                        await ctx.execute((f"DELETE FROM relay_queue WHERE id IN ({marks})",
                                           tuple(handled)), label="relayed")
                        ctx.status.notify()  # progress: `wait_changed` callers look again
            if waiting and waiting != self._relays_waiting:
                log.warning("%d received batches wait to be passed on to the hub until their "
                            "site is registered and approved there (practice %s, site %s)",
                            waiting, ctx.state.practice_id, ctx.site_id)
            self._relays_waiting = waiting

    async def _relay(self, window: list[tuple[int, bytes]]) -> list[bool]:
        """Push `window` (in one request when it holds several batches); for a prefix of
        it, whether each batch must wait (`RELAY_LATER`) rather than being done with
        (stored, already held, or refused for good).  Raises a transient failure."""
        hub = self.ctx.hub
        if len(window) > 1 and self._relay_many:
            try:
                acks, refusal = await hub.push_many([sealed for _, sealed in window])
            except HubRefused as exc:
                if exc.status not in (400, 413, 415):
                    if exc.transient:
                        raise
                    return [_relay_later(exc)]  # the first batch's refusal
                # A hub of the previous release, or a lower body limit: one by one.
                self._relay_many = False
            else:
                out = [False] * len(acks)
                if refusal is not None:
                    if refusal.transient and not out:
                        raise refusal
                    if not refusal.transient:
                        out.append(_relay_later(refusal))
                return out
        try:
            await hub.push(window[0][1])
        except HubRefused as exc:
            if exc.transient:
                raise
            return [_relay_later(exc)]
        return [False]

    async def _check_head(self) -> None:
        """Rewind if the hub's log no longer holds what this site read from it or pushed.

        That is a hub restored from an older backup (same log id, batches lost, and
        their sequence numbers handed out again to other batches).  Going on would
        silently skip the batches that take the lost numbers.  `top` is the furthest
        position this site knows of: its cursor, or its own last acknowledged batch
        if that is further (pushed, not yet pulled back).

        * The hub's `head` is before `top`: everything after the head is gone.  The
          hub's batch at the head is compared with the one this site recorded there
          (if it kept one); the same, or nothing to compare, and the site goes back
          to the head.
        * Otherwise the batch at `top` is compared (one request per session).
        * On a difference, older positions are compared (1, 2, 4... back) until one
          matches (or none is left: back to 0).

        Going back to position P: the cursor goes to P, our own batches after it are
        marked unsent (the pusher sends them again; what the hub still has is
        acknowledged as a duplicate, what it lost is stored again), and the batches
        of other sites received after it are relayed to the hub.  Re-delivered
        batches are recognised by their origin's chain and skipped.
        """
        ctx = self.ctx
        # `top` before `head`: a push acknowledged in between must not look lost.
        top = max(ctx.cursor, await ctx.read(_last_own_hub_seq))
        try:
            head = (await ctx.hub.pull(after=ctx.cursor, limit=1, wait_s=0)).head
        except HubRefused as exc:
            if exc.hub_code != LOG_TRIMMED:
                raise
            return  # older than what the hub keeps: the session's pull re-bootstraps
        if head >= top:
            if top == 0 or await self._hub_holds(top) is not False:
                return  # the same batch, or nothing recorded to compare (a snapshot)
            to = await self._last_match(top - 1)
        elif head == 0 or await self._hub_holds(head) is not False:
            to = head
        else:
            to = await self._last_match(head - 1)
        await self._rewind(to, head, top)

    async def _hub_holds(self, position: int) -> bool | None:
        """Whether the hub's batch at `position` is the one this site recorded there;
        None if this site kept none there, or the hub no longer keeps that position."""
        ours = await self.ctx.read(functools.partial(_recorded_hash, hub_seq=position))
        if ours is None:
            return None
        try:
            page = await self.ctx.hub.pull(after=position - 1, limit=1, wait_s=0)
        except HubRefused as exc:
            if exc.hub_code != LOG_TRIMMED:
                raise
            return None
        theirs = page.batches[0] if page.batches else None
        return theirs is not None and theirs.hub_seq == position \
            and batch_hash(theirs.sealed) == ours

    async def _last_match(self, start: int) -> int:
        """The newest position at or before `start` (probed 1, 2, 4... back) where the
        hub holds what this site recorded; 0 if none.  A position the hub no longer
        keeps (trimmed) ends the search there: the next pull re-bootstraps."""
        ctx = self.ctx
        probe, step = start, 1
        while probe > 0:
            recorded = await ctx.read(functools.partial(_recorded_hash, hub_seq=probe))
            if recorded is not None and await self._hub_holds(probe) is not False:
                return probe  # the same batch, or a position trimmed since
            probe, step = max(0, probe - step), step * 2
        return 0

    async def _rewind(self, to: int, head: int, top: int) -> None:
        """Go back to position `to` (see `_check_head`): logged once, shown on the status."""
        ctx = self.ctx
        cursor = ctx.cursor
        if head < top:
            seen = (f"the hub's log ends at position {head} but this site was at {cursor}"
                    + (f" and its own changes at {top}" if top > cursor else ""))
        else:
            seen = (f"the hub's log differs from what this site read after position {to} "
                    f"(this site was at {cursor})")
        message = (f"{seen}: was the hub restored from an older backup? This site went back "
                   f"to position {to}, sends its own changes again and passes on the ones it "
                   "received from other sites, so the hub gets back what it lost. Nothing to "
                   "do here; if the hub was not restored, tell its operator")
        log.warning("hub log rewound (practice %s, site %s): %s", ctx.state.practice_id,
                    ctx.site_id, message,
                    extra={"practice_id": str(ctx.state.practice_id),
                           "site_id": str(ctx.site_id)})

        await ctx.execute(*rewind_statements(to, ctx.now_ms()), label="hub rewound")
        ctx.cursor = min(cursor, to)
        ctx.status.hub_rewound(message, head)
        ctx.push_due.set()
        await self._drain_relays()

    # --- re-bootstrap (issue #5; the work is edge_node.snapshots.rebootstrap) -------

    async def _rebootstrap(self) -> None:
        """The hub trimmed the log past our cursor: take its snapshot, own changes on top."""
        ctx = self.ctx
        assert ctx.keyring is not None
        writer = ctx.edge.writer
        try:
            staged = await rebootstrap(ctx.data_dir, ctx.hub, keyring=ctx.keyring,
                                       directory=ctx.directory, site_id=ctx.site_id,
                                       run_exclusive=writer.exclusive, now_ms=ctx.now_ms())
        except SnapshotError as exc:
            ctx.status.failed(exc.code, exc.message, ctx.now_ms(), offline=False)
            log.warning("the hub trimmed the log this site needs and re-bootstrap failed: "
                        "%s; %s", exc.message, exc.hint)
            await asyncio.sleep(ctx.settings.backoff_max_s)
            return
        writer.observe_hlc(staged.meta.hlc)
        await writer.start_digest(ctx.keyring.digest_key)
        ctx.cursor = staged.meta.position.hub_seq
        ctx.push_due.set()

    # --- mailbox: keys and approval ------------------------------------------------

    async def _mailbox(self) -> None:
        ctx = self.ctx
        while True:
            if ctx.state.enrolled_status != "approved":
                me = await ctx.hub.me()
                if me.status != ctx.state.enrolled_status:
                    await ctx.execute(("UPDATE sync_state SET enrolled_status = ?",
                                       (me.status,)), label="status")
                    ctx.state = _replace_status(ctx.state, me.status)
                    ctx.status.keys(me.status, ctx.keyring is not None)
            if ctx.state.enrolled_status == "approved":
                await self._open_mail()
                if self._relays_waiting:
                    await self._drain_relays()  # a site re-enrolled and approved since?
            poll = ctx.settings.mailbox_poll_s
            if ctx.keyring is None:
                poll = min(poll, 1.0)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll):
                    await asyncio.Event().wait()

    async def _open_mail(self) -> None:
        ctx = self.ctx
        items = await ctx.hub.mailbox()
        if not items:
            return
        await refresh_registry(ctx)
        first_keys = ctx.keyring is None
        for mail in items:
            try:
                delivered = open_keys_for_site(
                    mail.sealed, practice_id=ctx.state.practice_id, site_id=ctx.site_id,
                    site_keys=ctx.edge.site.keys, directory=ctx.directory)
            except ProtocolError as exc:
                log.warning("mailbox item refused (%s); deleted", exc.code)
                await ctx.hub.delete_mail(mail.mail_id)
                continue
            keyring = ctx.keyring
            for key in delivered.keys.values():
                keyring = key_added(keyring, ctx.state.practice_id, key)
            assert keyring is not None
            await ctx.execute(("UPDATE sync_state SET keyring_sealed = ?",
                               (keyring_row(ctx.data_dir, keyring),)), label="keys")
            ctx.keyring = keyring
            await ctx.hub.delete_mail(mail.mail_id)
            log.info("practice key epochs %s received", sorted(delivered.keys))
        if first_keys and ctx.keyring is not None:
            await ctx.edge.writer.start_digest(ctx.keyring.digest_key)
        ctx.status.keys(ctx.state.enrolled_status, ctx.keyring is not None)
        ctx.keys_changed.set()
        ctx.push_due.set()

    # --- heartbeat -----------------------------------------------------------------

    async def _heartbeat(self) -> None:
        ctx = self.ctx
        loop = asyncio.get_running_loop()
        gap_s = min(ctx.settings.heartbeat_s, HEARTBEAT_MIN_GAP_S)
        last = -gap_s
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ctx.settings.heartbeat_s):
                    await ctx.heartbeat_due.wait()
            # Events (every push, every pulled group) come far faster than a dashboard
            # needs: report at most once per HEARTBEAT_MIN_GAP_S; what happens meanwhile
            # goes in the next report. Each heartbeat costs a read here and a request and
            # a commit at the hub, on the cores the live path (push -> hub -> stream) uses.
            wait_s = last + gap_s - loop.time()
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            last = loop.time()
            ctx.heartbeat_due.clear()
            if ctx.state.enrolled_status != "approved":
                continue
            report = await heartbeat_report(self)
            try:
                await ctx.hub.heartbeat(report)
            except HubRefused as exc:
                if exc.status != 404 and exc.transient:
                    raise
                # 404: a hub without the dashboard yet (issue #5 hub side); nothing to do.


def _relay_later(exc: HubRefused) -> bool:
    """Whether a relay refused with `exc` stays queued (else it is dropped, logged)."""
    if exc.hub_code in RELAY_LATER:
        return True
    log.info("relay of a received batch refused (%s); dropped", exc.hub_code)
    return False


def _last_own_hub_seq(conn: sqlite3.Connection) -> int:
    """The hub sequence of this site's last acknowledged batch (0 if none)."""
    # Own batches are acknowledged in chain order: the last acknowledged is the highest.
    row = conn.execute("SELECT hub_seq FROM pushed_batches WHERE hub_seq IS NOT NULL "
                       "ORDER BY seq_from DESC LIMIT 1").fetchone()
    return int(row[0]) if row else 0


def _recorded_hash(conn: sqlite3.Connection, hub_seq: int) -> bytes | None:
    """Hash of the batch this site read at `hub_seq` (its own or a received one), if kept."""
    row = conn.execute("SELECT batch_hash FROM pushed_batches WHERE hub_seq = ?",
                       (hub_seq,)).fetchone()
    if row is not None:
        return bytes(row[0])
    row = conn.execute("SELECT sealed FROM received_batches WHERE hub_seq = ?",
                       (hub_seq,)).fetchone()
    return batch_hash(bytes(row[0])) if row is not None else None


def key_added(keyring: Any, practice_id: Any, key: Any) -> Any:
    from sync_protocol.keys import Keyring

    if keyring is None:
        return Keyring(practice_id, {key.epoch: key})
    return keyring.with_key(key)


def _replace_log(state: SyncState, log_id: Any) -> SyncState:
    from dataclasses import replace

    return replace(state, log_id=log_id)


def _replace_status(state: SyncState, status: str) -> SyncState:
    from dataclasses import replace

    return replace(state, enrolled_status=status)


def sync_counts(conn: sqlite3.Connection) -> dict[str, Any]:
    """Bookkeeping the status page and the heartbeat show (one read)."""
    acked = conn.execute("SELECT coalesce(max(seq_to), 0) FROM pushed_batches "
                         "WHERE hub_seq IS NOT NULL").fetchone()[0]
    depth, oldest = conn.execute("SELECT count(*), min(created_ms) FROM outbox WHERE seq > ?",
                                 (acked,)).fetchone()
    held = [{"origin": r[0], "seq_from": r[1], "seq_to": r[2], "hub_seq": r[3],
             "reason": r[4], "detail": r[5], "since_ms": r[6]} for r in conn.execute(
        "SELECT origin, seq_from, seq_to, hub_seq, reason, detail, since_ms "
        "FROM held_batches ORDER BY hub_seq")]
    dead = [{"id": r[0], "seq_from": r[1], "seq_to": r[2], "code": r[3], "message": r[4],
             "hint": r[5], "at_ms": r[6]} for r in conn.execute(
        "SELECT id, seq_from, seq_to, code, message, hint, at_ms FROM dead_letters "
        "WHERE resolved_ms IS NULL ORDER BY id")]
    row = conn.execute("SELECT cursor, digest, digest_count FROM sync_state").fetchone()
    chains = dict(conn.execute("SELECT origin, next_seq FROM origin_chains"))
    return {"outbox_depth": int(depth), "oldest_unpushed_ms": oldest, "acked_seq": acked,
            "relays_queued": relay_depth(conn),
            "held": held, "dead_letters": dead, "cursor": int(row[0]) if row else 0,
            "state_digest": row[1] if row else None, "records": row[2] if row else 0,
            "chains": chains}


async def heartbeat_report(loop: SyncLoop) -> dict[str, Any]:
    """The body of `POST /v1/heartbeat` (the hub refuses unknown keys; see its OpenAPI)."""
    ctx = loop.ctx
    counts = await ctx.read(sync_counts)
    stats = ctx.status.snapshot()
    upgrades = [h["detail"] for h in counts["held"] if h["reason"] == "upgrade"]
    gaps: list[dict[str, Any]] = []
    for origin in sorted({h["origin"] for h in counts["held"] if h["reason"] == "gap"}):
        # What the hub has not delivered: neither applied nor held (a held batch is not
        # missing), up to this origin's last batch held for a gap.
        ranges = [(h["seq_from"], h["seq_to"]) for h in counts["held"] if h["origin"] == origin]
        last = max(h["seq_from"] for h in counts["held"]
                   if h["origin"] == origin and h["reason"] == "gap")
        gaps.extend({"origin": origin, "missing_from": a, "missing_to": b}
                    for a, b in missing_seqs(counts["chains"].get(origin, 1), ranges, last))
    oldest = counts["oldest_unpushed_ms"]
    return {"cursor": counts["cursor"], "outbox_depth": counts["outbox_depth"],
            "oldest_unpushed_age_s": None if oldest is None
            else max(0.0, (ctx.now_ms() - oldest) / 1000),
            "software_version": SOFTWARE_VERSION,
            "protocol_version": f"{PROTOCOL_VERSION[0]}.{PROTOCOL_VERSION[1]}",
            "state_digest": counts["state_digest"],
            "held_batches": len(counts["held"]), "dead_letters": len(counts["dead_letters"]),
            "gaps": gaps[:100],
            "upgrade_needed": upgrades[0][:200] if upgrades else None,
            "guard_held": bool(ctx.guard_holding),
            "last_error": stats.last_error[:500] if stats.last_error else None}


__all__ = ["SyncLoop", "heartbeat_report", "sync_counts"]
