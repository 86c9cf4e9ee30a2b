"""The pusher: outbox → sealed batches → hub, in chain order, with verified receipts.

Each batch is sealed once and stored in `pushed_batches` BEFORE it is sent,
so a resend after a crash or a lost answer is byte-identical and the site's
chain (seq range, prev hash) is local truth.  Pushes are pipelined: while the
outbox has more, up to `PUSH_WINDOW` batches are sealed ahead and sent in ONE
request (`sync_protocol.push_wire`), so a backlog costs one round trip per
window, not per batch; a hub of the previous release (which reads the body as
one batch and answers 400) gets them one by one.  When the outbox is empty the
pusher waits on the writer's outbox-commit event (no timer).  Every receipt is
verified with the hub key pinned at enrollment.

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
import sqlite3
from dataclasses import dataclass

from edge_node.sync.context import SyncContext
from edge_node.sync.errors import HubRefused, SyncError
from edge_node.sync.guard import GuardScan, guard_check, guard_scan, guard_verdict, hold_from
from sync_protocol.batch import batch_hash, seal_batch
from sync_protocol.canonical import unpack
from sync_protocol.errors import BadSignature
from sync_protocol.ids import uuid7
from sync_protocol.models import GENESIS_HASH, Change, PushAck
from sync_protocol.receipt import verify_receipt
from sync_protocol.wire import decode_changes

log = logging.getLogger(__name__)

#: Batches of at most this many changes are sealed on the event loop.
INLINE_SEAL_CHANGES = 64
#: Most batches sealed ahead and pushed in one request (the hub takes up to 16).
PUSH_WINDOW = 8
#: Most sealed bytes pushed in one request (a bigger batch goes alone).
PUSH_WINDOW_BYTES = 8 << 20


@dataclass(frozen=True, slots=True)
class OwnBatch:
    seq_from: int
    seq_to: int
    batch_hash: bytes
    sealed: bytes


def _unacked(conn: sqlite3.Connection) -> list[OwnBatch]:
    """The first unacknowledged batches, in chain order, within one push's window."""
    out: list[OwnBatch] = []
    size = 0
    for row in conn.execute("SELECT seq_from, seq_to, batch_hash, sealed FROM pushed_batches "
                            "WHERE hub_seq IS NULL ORDER BY seq_from LIMIT ?", (PUSH_WINDOW,)):
        if out and size + len(row[3]) > PUSH_WINDOW_BYTES:
            break
        out.append(OwnBatch(row[0], row[1], bytes(row[2]), bytes(row[3])))
        size += len(row[3])
    return out


def _outbox(conn: sqlite3.Connection, hold_from: int | None, limit: int, max_bytes: int
            ) -> tuple[bytes, list[tuple[int, bytes]]]:
    """(hash of the last sealed batch, outbox rows to seal next — before `hold_from`)."""
    row = conn.execute("SELECT seq_to, batch_hash FROM pushed_batches "
                       "ORDER BY seq_from DESC LIMIT 1").fetchone()
    last, prev = (row[0], bytes(row[1])) if row else (0, GENESIS_HASH)
    upto = hold_from - 1 if hold_from is not None else 1 << 62
    rows: list[tuple[int, bytes]] = []
    size = 0
    for seq, raw in conn.execute("SELECT seq, change FROM outbox WHERE seq > ? AND "
                                 "seq <= ? ORDER BY seq LIMIT ?", (last, upto, limit)):
        if rows and size + len(raw) > max_bytes:
            break
        rows.append((int(seq), bytes(raw)))
        size += len(raw)
    return prev, rows


@dataclass(frozen=True, slots=True)
class _Look:
    """What one round of the pusher read (`Pusher._look`)."""

    blocked: bool = False
    unacked: tuple[OwnBatch, ...] = ()
    scan: GuardScan | None = None
    #: (previous batch hash, outbox rows); None when the guard must act first.
    outbox: tuple[bytes, list[tuple[int, bytes]]] | None = None


def _blocked(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT count(*) FROM dead_letters WHERE resolved_ms IS NULL").fetchone()
    return bool(row[0])


class Pusher:
    def __init__(self, ctx: SyncContext) -> None:
        self.ctx = ctx
        #: Push requests sent (statistics; a backlog takes fewer than its batches).
        self.requests = 0
        #: False once the hub refused the many-batch form (a hub of the previous release).
        self._many = True

    async def run(self) -> None:
        ctx = self.ctx
        while True:
            ctx.push_due.clear()  # the writer's outbox event: cleared before we look
            if ctx.keyring is None:
                await self._wait(ctx.settings.control_poll_s)
                continue
            look = await ctx.read(self._look)
            if look.blocked:
                await self._wait(ctx.settings.control_poll_s)
                continue
            if len(look.unacked) < PUSH_WINDOW and await self._seal_next(look) is not None:
                continue  # look again: seal more ahead, up to the window
            if not look.unacked:
                await self._wait(ctx.settings.control_poll_s if ctx.guard_holding else None)
                continue
            await self._push(list(look.unacked))

    def _look(self, conn: sqlite3.Connection) -> _Look:
        """Everything one round of the loop reads, in one thread hop (each hop costs
        more than these reads on a busy machine): dead letters, the first
        unacknowledged batch, else the guard's scan and the outbox it lets through."""
        if _blocked(conn):
            return _Look(blocked=True)
        unacked = tuple(_unacked(conn))
        if len(unacked) >= PUSH_WINDOW:
            return _Look(unacked=unacked)
        settings = self.ctx.settings
        scan = guard_scan(conn, str(self.ctx.site_id), self.ctx.now_ms(),
                          settings.guard_min_records)
        if scan.decision == "discard":
            return _Look(unacked=unacked, scan=scan)  # compensate first (`guard_check`)
        first = hold_from(scan, settings.guard_share, settings.guard_min_records)
        return _Look(unacked=unacked, scan=scan, outbox=_outbox(
            conn, first, settings.max_batch_changes, settings.max_batch_bytes))

    async def _wait(self, timeout_s: float | None) -> None:
        """Until the writer commits outbox rows (or someone asks), at most `timeout_s`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self.ctx.push_due.wait()

    async def _seal_next(self, look: _Look) -> OwnBatch | None:
        """Seal the next outbox changes after the last sealed batch; None if none wait."""
        ctx = self.ctx
        settings = ctx.settings
        if look.outbox is not None and look.scan is not None:
            guard_verdict(ctx, look.scan)
            outbox = look.outbox
        else:
            first = await guard_check(ctx, look.scan)
            outbox = await ctx.read(lambda c: _outbox(c, first, settings.max_batch_changes,
                                                      settings.max_batch_bytes))
        prev, rows = outbox
        if not rows:
            return None
        changes: list[Change] = []
        for seq, raw in rows:
            changes.extend(decode_changes(unpack(raw, what="outbox change", max_len=1 << 26),
                                          origin=ctx.site_id, seq_from=seq))
        keyring = ctx.keyring
        assert keyring is not None
        now = ctx.now_ms()
        seal = functools.partial(
            seal_batch, practice_id=ctx.state.practice_id, site_id=ctx.site_id,
            site_keys=ctx.edge.site.keys, key=keyring.current, changes=changes,
            prev_hash=prev, batch_id=uuid7(now, ctx.edge.entropy(10)))
        # A few changes seal in ~0.1 ms, less than the hop to a thread costs on a busy
        # machine (live writes); big batches (zstd, signing) go to a thread.
        sealed = seal() if len(changes) <= INLINE_SEAL_CHANGES else await asyncio.to_thread(seal)
        batch = OwnBatch(changes[0].seq, changes[-1].seq, batch_hash(sealed), sealed)
        await ctx.execute((
            "INSERT INTO pushed_batches (seq_from, seq_to, batch_hash, prev_hash, key_epoch, "
            "sealed, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (batch.seq_from, batch.seq_to, batch.batch_hash, prev, keyring.current.epoch,
             sealed, now)), label="seal")
        return batch

    async def _push(self, batches: list[OwnBatch]) -> None:
        """Push `batches` (chain order) in one request; handle each ack, then any refusal."""
        ctx = self.ctx
        self.requests += 1
        refusal: HubRefused | None = None
        try:
            if len(batches) > 1 and self._many:
                acks, refusal = await ctx.hub.push_many([b.sealed for b in batches])
            else:
                acks = [await ctx.hub.push(batches[0].sealed)]
        except HubRefused as exc:
            if exc.status in (400, 413, 415) and len(batches) > 1:
                # A hub of the previous release reads the body as one sealed batch (400),
                # or its body limit is lower (413): push one by one from now on.  A batch
                # that is itself malformed is then refused alone, and dead-lettered.
                log.info("the hub refused %d batches in one push (HTTP %d); pushing one "
                         "by one", len(batches), exc.status)
                self._many = False
                return
            if exc.transient:
                raise
            await self._refused(batches[0], exc)
            return
        for batch, ack in zip(batches, acks, strict=False):
            if not await self._acked(batch, ack):
                return
        if refusal is not None:
            if refusal.transient:
                raise refusal
            await self._refused(batches[len(acks)], refusal)

    async def _acked(self, batch: OwnBatch, ack: PushAck) -> bool:
        """Record the hub's ack of `batch`; False (dead letter) if its receipt is wrong."""
        ctx = self.ctx
        receipt = ack.receipt
        try:
            verify_receipt(receipt, ctx.state.hub_verify_key)
            if receipt.batch_hash != batch.batch_hash or receipt.site_id != ctx.site_id:
                raise BadSignature(f"receipt for hub seq {receipt.hub_seq} names another batch",
                                   hint="the hub answered for a batch we did not send")
        except BadSignature as exc:
            await self._dead_letter(batch, exc.code, exc.message, exc.hint)
            return False
        await ctx.execute(("UPDATE pushed_batches SET hub_seq = ?, receipt = ? "
                           "WHERE seq_from = ?", (ack.hub_seq, receipt.signature, batch.seq_from)),
                          label="ack")
        ctx.status.pushed(ctx.now_ms())
        ctx.status.online(ctx.now_ms())
        ctx.heartbeat_due.set()
        return True

    async def _refused(self, batch: OwnBatch, exc: HubRefused) -> None:
        ctx = self.ctx
        if exc.hub_code == "chain_broken" and exc.expected_seq is not None:
            expected = exc.expected_seq

            def known(conn: sqlite3.Connection) -> bool:
                return conn.execute("SELECT 1 FROM pushed_batches WHERE seq_from = ?",
                                    (expected,)).fetchone() is not None

            if expected <= batch.seq_from and (expected == 1 or await ctx.read(known)):
                log.warning("hub expects our seq %d (we sent %d); resending stored batches "
                            "from there", expected, batch.seq_from)
                await ctx.execute(("UPDATE pushed_batches SET hub_seq = NULL, receipt = NULL "
                                   "WHERE seq_from >= ?", (expected,)), label="resend")
                return
        await self._dead_letter(batch, exc.hub_code, exc.message, exc.hint)

    async def _dead_letter(self, batch: OwnBatch, code: str, message: str, hint: str) -> None:
        ctx = self.ctx
        log.error("batch seq %d-%d refused by the hub (%s); held as a dead letter until an "
                  "admin runs `chartsync edge dead-letters retry`", batch.seq_from,
                  batch.seq_to, code)
        await ctx.execute((
            "INSERT INTO dead_letters (seq_from, seq_to, code, message, hint, at_ms) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (batch.seq_from, batch.seq_to, code, message, hint, ctx.now_ms())),
            label="dead letter")
        ctx.status.failed(code, message, ctx.now_ms(), offline=False)
        ctx.heartbeat_due.set()


__all__ = ["OwnBatch", "Pusher", "SyncError"]
