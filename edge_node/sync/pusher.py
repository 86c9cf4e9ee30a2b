"""The pusher: outbox → sealed batches → hub, in chain order, with verified receipts.

Each batch is sealed once and stored in `pushed_batches` BEFORE it is sent,
so a resend after a crash or a lost answer is byte-identical and the site's
chain (seq range, prev hash) is local truth.  Pushes are pipelined: every
stored, unacknowledged batch (up to `PUSH_WINDOW`) goes in ONE request
(`sync_protocol.push_wire`), and while that request is in flight the pusher
seals the next batches from the outbox, so sealing (zstd, signing) overlaps the
round trip and a backlog costs one round trip per window, not per batch.  At
most `MAX_UNACKED` batches are sealed and unacknowledged (one window in flight,
one sealed ahead): an offline site does not seal its whole outbox, and memory
holds one window's bytes.  A hub of the previous release (which reads the body
as one batch and answers 400) gets them one by one.  When the outbox is empty
the pusher waits on the writer's outbox-commit event (no timer).  Every receipt
is verified with the hub key pinned at enrollment.

On `chain_broken` the hub names where it expects us: if that is a batch we
already sealed (the hub lost data or was rebuilt), everything from there is
marked unacknowledged and resent from the stored bytes.  Any other refusal
that waiting cannot fix goes to `dead_letters` with the hub's code, message
and hint, and the pusher stops there (no silent skip, no retry loop) until an
admin runs `chartsync edge dead-letters retry`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from dataclasses import dataclass

from edge_node.hub_link.context import SyncContext
from edge_node.hub_link.errors import HubRefused, HubUnreachable, SyncError
from edge_node.store.ledger import (
    PUSH_WINDOW,
    PUSH_WINDOW_BYTES,
    AddDeadLetter,
    MarkAcknowledged,
    MarkUnsent,
    NextSeal,
    OwnBatch,
    PushRound,
    SealLimits,
    StoreSealed,
    next_seal_unless_blocked,
    own_batch_sealed,
    push_round,
    seal_source,
    window_length,
)
from edge_node.store.sync_state import keyring_of_row, stored_keyring_row
from edge_node.sync.guard import guard_check, guard_verdict
from sync_protocol.batch import batch_hash, seal_batch
from sync_protocol.canonical import unpack
from sync_protocol.errors import BadSignature
from sync_protocol.ids import uuid7
from sync_protocol.keys import Keyring
from sync_protocol.models import Change, PushAck
from sync_protocol.receipt import verify_receipt
from sync_protocol.wire import decode_changes

log = logging.getLogger(__name__)

#: Batches of at most this many changes are sealed on the event loop.
INLINE_SEAL_CHANGES = 64
#: Most batches sealed and not yet acknowledged: one window in flight, one sealed
#: ahead while it is (sealing stops there until acks come back).
MAX_UNACKED = 2 * PUSH_WINDOW


@dataclass(frozen=True, slots=True)
class PusherStatistics:
    #: Push requests sent (a backlog takes fewer than it has batches).
    requests: int
    #: Batches the hub acknowledged (receipt verified and recorded).
    acked: int
    #: Batches sealed while a push request was in flight (sealing overlapped the link).
    sealed_while_pushing: int


class Pusher:
    def __init__(self, ctx: SyncContext) -> None:
        self.ctx = ctx
        self._requests = 0
        self._acked_count = 0
        self._sealed_while_pushing = 0
        #: False once the hub refused the many-batch form (a hub of the previous release).
        self._many = True
        #: Most sealed bytes per request; halved when the hub finds a request too large.
        self._window_bytes = PUSH_WINDOW_BYTES
        #: The stored keyring row last read (sealed at rest), to notice a new epoch.
        self._keyring_row: bytes | None = None

    def statistics(self) -> PusherStatistics:
        return PusherStatistics(self._requests, self._acked_count, self._sealed_while_pushing)

    async def run(self) -> None:
        ctx = self.ctx
        while True:
            ctx.push_due.clear()  # the writer's outbox event: cleared before we look
            if ctx.keyring is None:
                await self._wait(ctx.settings.control_poll_s)
                continue
            look = await self._look()
            if look.blocked:
                await self._wait(ctx.settings.control_poll_s)
                continue
            if look.unacked:
                await self._push_sealing_ahead(look)
            elif await self._seal_next(look.next) is not None:
                ctx.status.notify()  # progress: `wait_changed` callers look again
            else:
                await self._wait(ctx.settings.control_poll_s if ctx.guard_holding else None)

    def _limits(self) -> SealLimits:
        settings = self.ctx.settings
        return SealLimits(settings.guard_share, settings.guard_min_records,
                          settings.max_batch_changes, settings.max_batch_bytes)

    async def _look(self) -> PushRound:
        """Everything one round of the loop reads, in one thread hop (each hop costs
        more than these reads on a busy machine): dead letters, the unacknowledged
        batches, and unless `MAX_UNACKED` are sealed, what sealing the next needs."""
        ctx = self.ctx
        return await ctx.read(push_round, str(ctx.site_id), ctx.now_ms(), self._limits(),
                              window=PUSH_WINDOW if self._many else 1,
                              window_bytes=self._window_bytes, most=MAX_UNACKED)

    async def _wait(self, timeout_s: float | None) -> None:
        """Until the writer commits outbox rows (or someone asks), at most `timeout_s`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self.ctx.push_due.wait()

    async def _push_sealing_ahead(self, look: PushRound) -> None:
        """Push the window of `look`; while the request is in flight, seal the next
        batches, from the backlog or as the writer commits new changes, until
        `MAX_UNACKED` are unacknowledged or the push is answered.  Raises what the push
        raised, once the seal under way is stored.
        """
        ctx = self.ctx
        ahead = look.unacked_count - len(look.unacked)
        nxt = look.next
        async with asyncio.TaskGroup() as tg:
            # The push's own failures are its result, so that they do not cancel a seal
            # half-way; they are raised once the group is done.
            pushing = tg.create_task(self._push_outcome(list(look.unacked)))
            while ahead < PUSH_WINDOW and not pushing.done():
                if await self._seal_next(nxt) is not None:
                    ahead += 1
                    if not pushing.done():
                        self._sealed_while_pushing += 1
                    ctx.status.notify()  # progress: `wait_changed` callers look again
                else:
                    # Nothing to seal (or held by the guard): live writes made while the
                    # request is in flight are sealed as they commit and go in the next.
                    await self._wait_outbox_or(pushing)
                if pushing.done():
                    break
                ctx.push_due.clear()  # before reading the outbox: no commit is missed
                nxt = await ctx.read(next_seal_unless_blocked, str(ctx.site_id), ctx.now_ms(),
                                     self._limits())
                if nxt is None:
                    break  # a dead letter (this push's?): nothing more until resolved
        failure = pushing.result()
        if failure is not None:
            raise failure

    async def _wait_outbox_or(self, pushing: asyncio.Task[SyncError | None]) -> None:
        """Until the writer commits outbox rows (or someone asks), or `pushing` is done."""
        async with asyncio.TaskGroup() as tg:
            due = tg.create_task(self.ctx.push_due.wait())
            await asyncio.wait((pushing, due), return_when=asyncio.FIRST_COMPLETED)
            due.cancel()

    async def _push_outcome(self, batches: list[OwnBatch]) -> SyncError | None:
        try:
            await self._push(batches)
        except (HubRefused, HubUnreachable) as exc:
            return exc
        return None

    async def _seal_next(self, nxt: NextSeal | None) -> OwnBatch | None:
        """Seal the next outbox changes after the last sealed batch; None if none wait.

        `nxt`: what `next_seal` read just before (else it is read here)."""
        ctx = self.ctx
        settings = ctx.settings
        if nxt is not None and nxt.source is not None:
            guard_verdict(ctx, nxt.scan)
            source = nxt.source
        else:
            first = await guard_check(ctx, nxt.scan if nxt is not None else None)
            source = await ctx.read(seal_source, first, settings.max_batch_changes,
                                    settings.max_batch_bytes)
        prev, rows = source.prev_hash, source.rows
        if not rows:
            return None
        changes: list[Change] = []
        for seq, raw in rows:
            changes.extend(decode_changes(unpack(raw, what="outbox change", max_len=1 << 26),
                                          origin=ctx.site_id, seq_from=seq))
        keyring = await self._current_keyring()
        now = ctx.now_ms()
        seal = functools.partial(
            seal_batch, practice_id=ctx.state.practice_id, site_id=ctx.site_id,
            site_keys=ctx.edge.site.keys, key=keyring.current, changes=changes,
            prev_hash=prev, batch_id=uuid7(now, ctx.edge.entropy(10)))
        # A few changes seal in ~0.1 ms, less than the hop to a thread costs on a busy
        # machine (live writes); big batches (zstd, signing) go to a thread.
        sealed = seal() if len(changes) <= INLINE_SEAL_CHANGES else await asyncio.to_thread(seal)
        batch = OwnBatch(changes[0].seq, changes[-1].seq, batch_hash(sealed), sealed)
        await ctx.write(StoreSealed(batch.seq_from, batch.seq_to, batch.batch_hash, prev,
                                    keyring.current.epoch, sealed, now), label="seal")
        return batch

    async def _current_keyring(self) -> Keyring:
        """The keyring as stored now: `edge revoke` (another process) stores a new epoch
        before it returns, and every batch sealed after that must use it."""
        ctx = self.ctx
        row = await ctx.read(stored_keyring_row)
        if row is not None and row != self._keyring_row:
            self._keyring_row = row
            stored = keyring_of_row(ctx.data_dir, row)
            keys = {**(ctx.keyring.keys if ctx.keyring is not None else {}), **stored.keys}
            keyring = Keyring(stored.practice_id, keys)
            if keyring != ctx.keyring:
                ctx.keyring = keyring
                ctx.keys_changed.set()
        assert ctx.keyring is not None
        return ctx.keyring

    async def _push(self, batches: list[OwnBatch]) -> None:
        """Push `batches` (chain order) in one request; handle each ack, then any refusal."""
        ctx = self.ctx
        self._requests += 1
        refusal: HubRefused | None = None
        try:
            if len(batches) > 1 and self._many:
                acks, refusal = await ctx.hub.push_many([b.sealed for b in batches])
            else:
                acks = [await ctx.hub.push(batches[0].sealed)]
        except HubRefused as exc:
            if exc.status in (400, 413, 415) and len(batches) > 1:
                self._fewer_per_request(batches, exc)
                return
            if exc.transient:
                raise
            await self._refused(batches[0], exc)
            return
        if not await self._record_acks(batches, acks):
            return
        if refusal is not None:
            if refusal.transient:
                raise refusal
            await self._refused(batches[len(acks)], refusal)

    def _fewer_per_request(self, batches: list[OwnBatch], exc: HubRefused) -> None:
        """The hub refused several batches in one request as a whole: send fewer.

        413: its body limit is lower than our window (or it is a hub of the previous
        release, whose limit is one batch's): halve the window's bytes until one batch
        goes alone.  400 or 415: a hub of the previous release reads the body as one
        sealed batch: push one by one from now on.  A batch that is itself bad is then
        refused alone, and dead-lettered.
        """
        if exc.status == 413:
            self._window_bytes = sum(len(b.sealed) for b in batches) // 2
        else:
            self._many = False
        log.info("the hub refused %d batches in one push (HTTP %d); sending %s",
                 len(batches), exc.status,
                 "fewer bytes per request" if self._many else "one batch per request")

    async def _record_acks(self, batches: list[OwnBatch], acks: list[PushAck]) -> bool:
        """Record the hub's acks of `batches` (in order, one write for all); False if a
        receipt is wrong: the acks before it are recorded, that batch is dead-lettered."""
        ctx = self.ctx
        updates: list[MarkAcknowledged] = []
        wrong: tuple[OwnBatch, BadSignature] | None = None
        for batch, ack in zip(batches, acks, strict=False):
            receipt = ack.receipt
            try:
                verify_receipt(receipt, ctx.state.hub_verify_key)
                if (receipt.batch_hash, receipt.site_id, receipt.hub_seq) != (
                        batch.batch_hash, ctx.site_id, ack.hub_seq):
                    raise BadSignature(f"receipt for hub seq {receipt.hub_seq} names another "
                                       "batch", hint="the hub answered for a batch we did "
                                       "not send")
            except BadSignature as exc:
                wrong = (batch, exc)
                break
            updates.append(MarkAcknowledged(batch.seq_from, ack.hub_seq, receipt.signature))
        if updates:
            await ctx.write(*updates, label="ack")
            self._acked_count += len(updates)
            ctx.status.pushed(ctx.now_ms())
            ctx.status.online(ctx.now_ms())
            ctx.heartbeat_due.set()
        if wrong is not None:
            batch, error = wrong
            await self._dead_letter(batch, error.code, error.message, error.hint)
            return False
        return True

    async def _refused(self, batch: OwnBatch, exc: HubRefused) -> None:
        ctx = self.ctx
        if exc.hub_code == "chain_broken" and exc.expected_seq is not None:
            expected = exc.expected_seq
            if expected <= batch.seq_from and (
                    expected == 1 or await ctx.read(own_batch_sealed, expected)):
                log.warning("hub expects our seq %d (we sent %d); resending stored batches "
                            "from there", expected, batch.seq_from)
                await ctx.write(MarkUnsent(expected), label="resend")
                return
        await self._dead_letter(batch, exc.hub_code, exc.message, exc.hint)

    async def _dead_letter(self, batch: OwnBatch, code: str, message: str, hint: str) -> None:
        ctx = self.ctx
        log.error("batch seq %d-%d refused by the hub (%s); held as a dead letter until an "
                  "admin runs `chartsync edge dead-letters retry`", batch.seq_from,
                  batch.seq_to, code)
        await ctx.write(AddDeadLetter(batch.seq_from, batch.seq_to, code, message, hint,
                                      ctx.now_ms()), label="dead letter")
        ctx.status.failed(code, message, ctx.now_ms(), offline=False)
        ctx.heartbeat_due.set()


__all__ = ["MAX_UNACKED", "PUSH_WINDOW", "PUSH_WINDOW_BYTES", "OwnBatch", "Pusher",
           "PusherStatistics", "SyncError", "window_length"]
