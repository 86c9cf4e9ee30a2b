"""The puller: hub batches → verified, chained, decrypted, merged — cursor in the same commit.

For each batch in hub order: our own → only the cursor moves; another
site's → header and protocol version, per-origin chain (`origin_chains`),
signature against the registry (refreshed once on an unknown site), decrypt
with the keyring, clock drift; then every change merges through the writer
(the same `apply_change` as local writes) together with the chain, the
cursor and a copy of the sealed bytes (`received_batches`, to rebuild a lost
hub) in ONE transaction.

Nothing is skipped and nothing is dropped: a batch that cannot be applied yet
is stored in `held_batches` with its reason — `gap` (an earlier batch of that
origin is missing; later ones wait), `upgrade` (newer protocol or schema),
`key_epoch` (the sealed key has not arrived), `clock`, `fork`, `unknown_site`,
`refused` — and retried when keys arrive, when the origin's chain moves, and
at every (re)connect (an upgraded build retries at start).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final
from uuid import UUID

from edge_node.errors import EdgeError
from edge_node.hub_link.context import SyncContext
from edge_node.store.ledger import LedgerOp
from edge_node.store.received import (
    AdvanceChain,
    HoldBatch,
    KeepReceivedCopy,
    ReleaseHeld,
    chain_of,
    gap_origins,
    held_copies,
    held_ranges,
)
from edge_node.store.sync_state import AdvanceCursor
from edge_node.sync.membership import refresh_registry
from sync_protocol.batch import SealedBatch, batch_hash, open_batch, read_sealed
from sync_protocol.canonical import unpack
from sync_protocol.errors import (
    MalformedInput,
    ProtocolError,
    UnknownKeyEpoch,
    UnknownSite,
    UnsupportedVersion,
    UpgradeRequired,
)
from sync_protocol.framing import DEFAULT_LIMITS, split_sealed
from sync_protocol.hlc import check_drift
from sync_protocol.models import GENESIS_HASH, BatchHeader, Change, PulledBatch, header_from_wire

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Hold(Exception):
    reason: str
    detail: str


def missing_seqs(next_seq: int, held: Iterable[tuple[int, int]], before: int
                 ) -> list[tuple[int, int]]:
    """The seq ranges of an origin below `before` that this site has neither applied
    (all below `next_seq`) nor holds (`held`: (seq_from, seq_to) of its held batches) —
    what the hub has not delivered (pure)."""
    out: list[tuple[int, int]] = []
    start = next_seq
    for seq_from, seq_to in sorted(held):
        if seq_from >= before:
            break
        if seq_from > start:
            out.append((start, seq_from - 1))
        start = max(start, seq_to + 1)
    if start < before:
        out.append((start, before - 1))
    return out


def seq_words(ranges: Sequence[tuple[int, int]]) -> str:
    """`seq 4`, `seqs 4-6`, `seqs 2, 4-6` (pure)."""
    parts = [str(a) if a == b else f"{a}-{b}" for a, b in ranges]
    single = len(ranges) == 1 and ranges[0][0] == ranges[0][1]
    return ("seq " if single else "seqs ") + ", ".join(parts)


def gap_detail(origin: str, seq_from: int, seq_to: int, missing: Sequence[tuple[int, int]]
               ) -> str:
    """What the status page says about a batch held for a gap, in plain words (pure)."""
    waiting = seq_words([(seq_from, seq_to)])
    if not missing:
        return (f"{waiting} of site {origin} held back, unapplied, behind an earlier batch "
                "of that site that is held too (see the other held batches)")
    return (f"{seq_words(missing)} of site {origin} not received yet (not delivered by the "
            f"hub); until then this site holds back, unapplied, that site's {waiting}")


#: Most sealed bytes applied in one transaction by `Puller.handle_group` (the most
#: batches is the `max_group_batches` setting).
MAX_GROUP_BYTES: Final = 32 << 20


@dataclass(frozen=True, slots=True)
class _Ready:
    """A pulled batch checked and opened, waiting for its group's transaction."""

    pulled: PulledBatch
    changes: list[Change]
    ops: list[LedgerOp]
    origin: str | None = None


class Puller:
    def __init__(self, ctx: SyncContext) -> None:
        self.ctx = ctx
        #: Origins with a batch held for a gap: once a batch of one of them applies,
        #: the held ones are tried again at once (not only at the next session).
        self._gap_origins: set[str] = set()

    async def _after_applied(self, origins: set[str]) -> None:
        if origins & self._gap_origins:
            await self.retry_held()

    async def handle_group(self, group: Sequence[PulledBatch]) -> None:
        """Take pulled batches in hub order: the same outcome as `handle` on each in turn.

        Batches that follow their origin's chain and open cleanly are applied
        together in ONE writer transaction (changes, chains, copies and cursor —
        all or nothing), so a catch-up costs one commit per group instead of one
        per batch.  Anything else (own batches aside) —
        a duplicate, a gap, a fork, a batch that does not open, an unknown site —
        goes through `handle` alone after the batches before it committed.  If
        the group does not merge, its batches go through `handle` one by one, so
        exactly the faulty one is held.
        """
        ctx = self.ctx
        chains: dict[str, tuple[int, bytes]] | None = None
        pending: list[_Ready] = []
        top = ctx.cursor
        for pulled in group:
            if pulled.hub_seq <= top:
                continue
            top = pulled.hub_seq
            if pulled.site_id == ctx.site_id:
                pending.append(_Ready(pulled, [], [AdvanceCursor(pulled.hub_seq)]))
                continue
            if chains is None:
                chains = await ctx.edge.reader.origin_chains()
            ready = self._ready(pulled, chains)
            if ready is not None:
                pending.append(ready)
                continue
            await self._flush(pending)
            pending = []
            await self.handle(pulled)
            chains = None  # `handle` may have moved a chain
        await self._flush(pending)

    def _ready(self, pulled: PulledBatch, chains: dict[str, tuple[int, bytes]]
               ) -> _Ready | None:
        """The batch opened and its ledger ops, if it simply follows its chain; else None."""
        ctx = self.ctx
        raw = pulled.sealed
        try:
            sealed = read_sealed(raw)
            header = sealed.header
            origin = str(header.site_id)
            next_seq, last_hash = chains.get(origin, (1, GENESIS_HASH))
            if header.seq_from != next_seq or header.prev_hash != last_hash \
                    or header.site_id not in ctx.directory or ctx.keyring is None:
                return None
            _, changes = open_batch(sealed, ctx.keyring, ctx.directory)
            check_drift(header.max_hlc, ctx.now_ms(), ctx.edge.writer.max_drift_ms,
                        source=sealed.label)
        except ProtocolError:
            return None  # `handle` holds it with the reason
        link = sealed.hash
        chains[origin] = (header.seq_to + 1, link)
        return _Ready(pulled, changes, origin=origin, ops=[
            AdvanceChain(origin, header.seq_to + 1, link),
            KeepReceivedCopy(pulled.hub_seq, origin, header.seq_from, header.seq_to, raw),
            ReleaseHeld(origin, header.seq_from),
            AdvanceCursor(pulled.hub_seq)])

    async def _flush(self, pending: list[_Ready]) -> None:
        if not pending:
            return
        ctx = self.ctx
        first, last = pending[0].pulled.hub_seq, pending[-1].pulled.hub_seq
        try:
            await ctx.edge.writer.apply_remote(
                [c for r in pending for c in r.changes],
                [op for r in pending for op in r.ops],
                label=f"pulled batches at hub seq {first}-{last}")
        except EdgeError as exc:
            if exc.retryable:
                raise
            for ready in pending:  # find the one that does not merge; hold it alone
                await self.handle(ready.pulled)
            return
        ctx.cursor = max(ctx.cursor, last)
        ctx.status.pulled(ctx.now_ms(), last)
        ctx.heartbeat_due.set()
        await self._after_applied({r.origin for r in pending if r.origin is not None})

    async def handle(self, pulled: PulledBatch) -> None:
        """Take one pulled batch (idempotent: an old hub seq changes nothing)."""
        ctx = self.ctx
        if pulled.hub_seq <= ctx.cursor:
            return
        if pulled.site_id == ctx.site_id:
            await ctx.write(AdvanceCursor(pulled.hub_seq), label="own batch")
            applied = False
        else:
            applied = await self._receive(pulled.sealed, pulled.hub_seq, held=False)
        ctx.cursor = pulled.hub_seq
        ctx.status.pulled(ctx.now_ms(), pulled.hub_seq)
        ctx.heartbeat_due.set()
        if applied:
            await self._after_applied({str(pulled.site_id)})

    async def retry_held(self) -> None:
        """Try every held batch again, oldest first, until none of them moves."""
        ctx = self.ctx
        progress = True
        while progress:
            progress = False
            for hub_seq, sealed in await ctx.read(held_copies):
                if await self._receive(sealed, hub_seq, held=True):
                    progress = True
                    ctx.status.notify()  # fewer held batches: the status page changes
        self._gap_origins = await ctx.read(gap_origins)

    async def _receive(self, raw: bytes, hub_seq: int, *, held: bool) -> bool:
        """Apply, skip or hold one batch; True if it was applied now."""
        ctx = self.ctx
        header: BatchHeader | None = None
        try:
            header = _header(raw)
            origin = str(header.site_id)
            next_seq, last_hash = await ctx.read(chain_of, origin)
            copy = KeepReceivedCopy(hub_seq, origin, header.seq_from, header.seq_to, raw)
            if header.seq_to < next_seq:  # applied before (a duplicate, or a relay)
                dup: list[LedgerOp] = [copy, ReleaseHeld(origin, header.seq_from)]
                await ctx.write(*dup, *([] if held else [AdvanceCursor(hub_seq)]),
                                label="duplicate")
                return False
            if header.seq_from > next_seq:
                held_before = await ctx.read(held_ranges, origin, header.seq_from)
                raise Hold("gap", gap_detail(origin, header.seq_from, header.seq_to,
                                             missing_seqs(next_seq, held_before,
                                                          header.seq_from)))
            if header.seq_from < next_seq or header.prev_hash != last_hash:
                raise Hold("fork", f"batch of site {origin} at seq {header.seq_from} does "
                           "not follow the batch this site applied; report it")
            sealed = self._parsed(raw)
            changes = await self._open(sealed)
            check_drift(header.max_hlc, ctx.now_ms(), ctx.edge.writer.max_drift_ms,
                        source=sealed.label)
        except Hold as hold:
            await self._hold(raw, hub_seq, header, hold, held)
            return False
        except UpgradeRequired as exc:
            await self._hold(raw, hub_seq, header, Hold("upgrade", str(exc)), held)
            return False
        except UnsupportedVersion as exc:
            await self._hold(raw, hub_seq, header, Hold("upgrade", str(exc)), held)
            return False
        except UnknownKeyEpoch as exc:
            await self._hold(raw, hub_seq, header, Hold("key_epoch", str(exc)), held)
            return False
        except UnknownSite as exc:
            await self._hold(raw, hub_seq, header, Hold("unknown_site", str(exc)), held)
            return False
        except ProtocolError as exc:
            await self._hold(raw, hub_seq, header, Hold(exc.code, str(exc)), held)
            return False
        ops: list[LedgerOp] = [AdvanceChain(origin, header.seq_to + 1, batch_hash(raw)),
                               copy, ReleaseHeld(origin, header.seq_from)]
        if not held:
            ops.append(AdvanceCursor(hub_seq))
        try:
            await ctx.edge.writer.apply_remote(changes, ops, label=sealed.label)
        except EdgeError as exc:
            if exc.retryable:
                raise
            await self._hold(raw, hub_seq, header, Hold("merge", exc.message), held)
            return False
        if held:
            log.info("held batch applied", extra={"origin": origin, "seq": header.seq_from})
        return True

    def _parsed(self, raw: bytes) -> SealedBatch:
        return read_sealed(raw)

    async def _open(self, sealed: SealedBatch) -> list[Change]:
        ctx = self.ctx
        if sealed.header.site_id not in ctx.directory:
            await refresh_registry(ctx)
        if ctx.keyring is None:
            raise Hold("key_epoch", "this site has no practice key yet")
        _, changes = open_batch(sealed, ctx.keyring, ctx.directory)
        return changes

    async def _hold(self, raw: bytes, hub_seq: int, header: BatchHeader | None, hold: Hold,
                    held: bool) -> None:
        ctx = self.ctx
        origin = str(header.site_id) if header else "unknown"
        seq_from = header.seq_from if header else -hub_seq
        seq_to = header.seq_to if header else -hub_seq
        if hold.reason == "gap":
            self._gap_origins.add(origin)
        ops: list[LedgerOp] = [
            KeepReceivedCopy(hub_seq, origin, seq_from, seq_to, raw),
            HoldBatch(origin, seq_from, seq_to, hub_seq, hold.reason, hold.detail,
                      ctx.now_ms())]
        if not held:
            ops.append(AdvanceCursor(hub_seq))
            log.warning("batch held (%s); see `chartsync edge held` and the status page",
                        hold.reason, extra={"origin": origin, "hub_seq": hub_seq})
        await ctx.write(*ops, label="hold")


def _header(raw: bytes) -> BatchHeader:
    """The header without the version check (a newer minor is held, not refused)."""
    parts = split_sealed(raw, DEFAULT_LIMITS)
    return header_from_wire(unpack(parts.header, what="batch header",
                                   max_len=DEFAULT_LIMITS.max_header_bytes))


__all__ = ["UUID", "MalformedInput", "Puller", "gap_detail", "missing_seqs", "seq_words"]
