"""Recovery after the hub lost part of its log: rebuilt, restored from a backup, trimmed.

    recovery = HubRecovery(ctx)
    await recovery.check_log_id(page.log_id)   # True: the log was recreated, back to 0
    await recovery.check_head()                # rewinds if the hub lost what we read
    await recovery.drain_relays()              # give the hub back other sites' batches
    await recovery.rebootstrap()               # after 410 log_trimmed

A hub whose `log_id` differs from the stored one was rebuilt: the cursor goes
back to 0 (applies are idempotent per origin chain), every own batch is marked
unacknowledged (pushed again from seq 1) and every received batch is relayed in
the order it was received.  A hub restored from an older backup (same log id;
its `head` below the cursor, or another batch where this site read one) is
noticed by `check_head`: the site goes back to the last position that still
matches, re-sends and relays what came after (`store.rewind.RewindTo`).  A hub
that trimmed the log past the cursor (`410 log_trimmed`) makes the site
re-bootstrap from the latest snapshot, its own queued changes merged on top
(`snapshots.rebootstrap`).

`HubRecovery` owns the relay lock (one drain at a time: session start, rewinds,
mailbox polls) and remembers how many relays wait for their site to be approved at
the hub (`relays_waiting`).  `check_head=False` switches the head check off (an
edge of the release before it; see `SyncLoop.open`).  Every method raises the hub's
transient failures (`HubUnreachable`, a transient `HubRefused`) for the caller's
backoff.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Final
from uuid import UUID

from edge_node.errors import SnapshotError
from edge_node.hub_link.context import SyncContext
from edge_node.hub_link.errors import HubRefused
from edge_node.snapshots.rebootstrap import rebootstrap
from edge_node.store.ledger import last_own_hub_seq, recorded_hash, window_length
from edge_node.store.relay_queue import DeleteRelays, queued_relays
from edge_node.store.rewind import RewindTo
from edge_node.store.sync_state import SetLogId
from sync_protocol.batch import batch_hash

log = logging.getLogger(__name__)

#: The hub's answer when the log after our cursor was trimmed (retention).
LOG_TRIMMED: Final = "log_trimmed"
#: A relay the hub refuses with one of these stays queued and is tried again later: its
#: origin is not registered and approved there yet (a rebuilt hub, before that site
#: re-enrolls), or the batches before it in its origin's chain are still to come.
RELAY_LATER: Final = frozenset({"wrong_origin", "chain_broken"})


def _relay_later(exc: HubRefused) -> bool:
    """Whether a relay refused with `exc` stays queued (else it is dropped, logged)."""
    if exc.hub_code in RELAY_LATER:
        return True
    log.info("relay of a received batch refused (%s); dropped", exc.hub_code)
    return False


class HubRecovery:
    def __init__(self, ctx: SyncContext, *, check_head: bool = True) -> None:
        self.ctx = ctx
        #: False: `check_head` does nothing (`SyncLoop.open(check_head=False)`).
        self._check_head = check_head
        #: One relay drain at a time (session start, rewinds, mailbox polls).
        self._relaying = asyncio.Lock()
        #: Relays the hub could not take yet at the last drain (`RELAY_LATER`).
        self._relays_waiting = 0
        #: False once the hub refused several relays in one request (previous release).
        self._relay_many = True

    @property
    def relays_waiting(self) -> int:
        """Relays the hub could not take yet at the last drain (their site not approved)."""
        return self._relays_waiting

    async def check_log_id(self, log_id: UUID | None) -> bool:
        """Take note of the hub's log id; True if it changed (this site went back to 0)."""
        ctx = self.ctx
        if log_id is None:
            return False
        stored = ctx.state.log_id
        if stored == log_id:
            return False
        await ctx.write(SetLogId(log_id), label="log id")
        ctx.state = replace(ctx.state, log_id=log_id)
        if stored is None:
            return False
        log.warning("the hub's log was recreated (log id changed; practice %s, site %s): "
                    "re-sending this site's batches and relaying received ones to rebuild it",
                    ctx.state.practice_id, ctx.site_id)
        # Back to 0: received copies are keyed by the old log's sequence numbers.
        await ctx.write(RewindTo(0, ctx.now_ms()), label="hub rebuilt")
        ctx.cursor = 0
        ctx.push_due.set()
        await self.drain_relays()
        return True

    async def drain_relays(self) -> None:
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
            while rows := await ctx.read(queued_relays, after=after):
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
                        await ctx.write(DeleteRelays(tuple(handled)), label="relayed")
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

    async def check_head(self) -> None:
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
        if not self._check_head:
            return
        ctx = self.ctx
        # `top` before `head`: a push acknowledged in between must not look lost.
        top = max(ctx.cursor, await ctx.read(last_own_hub_seq))
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
        ours = await self.ctx.read(recorded_hash, position)
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
            recorded = await ctx.read(recorded_hash, probe)
            if recorded is not None and await self._hub_holds(probe) is not False:
                return probe  # the same batch, or a position trimmed since
            probe, step = max(0, probe - step), step * 2
        return 0

    async def _rewind(self, to: int, head: int, top: int) -> None:
        """Go back to position `to` (see `check_head`): logged once, shown on the status."""
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

        await ctx.write(RewindTo(to, ctx.now_ms()), label="hub rewound")
        ctx.cursor = min(cursor, to)
        ctx.status.hub_rewound(message, head)
        ctx.push_due.set()
        await self.drain_relays()

    # --- re-bootstrap (the work is edge_node.snapshots.rebootstrap) ----------------

    async def rebootstrap(self) -> None:
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


__all__ = ["LOG_TRIMMED", "RELAY_LATER", "HubRecovery"]
