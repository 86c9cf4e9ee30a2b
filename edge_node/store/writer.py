"""The one writer: group commit of every change, audit row and outbox entry.

All writes go through one task (`Writer.run`, owned by the edge's TaskGroup).
It takes requests from a queue, drains whatever else is waiting (up to
`max_group_ops` operations), and applies the whole group in ONE SQLite
transaction (one SELECT of the states it needs, then one `executemany` per
table and COMMIT — fsynced, `synchronous=FULL` — as one hop to the write
thread, `store.connection`), then answers every request.  While one group
commits, the next one gathers in the queue, so durability costs one fsync per
group instead of one per write.

Inside a group, requests apply in arrival order, each seeing the previous
one's result (If-Match checks, version counters, sequence numbers).  Every
row is computed in Python first: a request that fails (412, a merge refusal)
contributes nothing and does not disturb the others; an atomic request (a
transaction Bundle) contributes all its operations or none.  Per write, the
transaction holds the resources row, a history row, an outbox change with
the next per-site sequence number, and an audit row — there is no path that
writes one without the others.

Reads' audit rows (`Writer.audit`) ride along with the next group without
anyone waiting for them (see `store.audit` for the durability trade-off).

Remote changes (`Writer.apply_remote`) go through the same queue and the same
`apply_change`, so a pulled batch and local writes serialise and merge
identically: a remote batch contributes its resources and history rows (origin
site and user of each change) but NO outbox row, plus the caller's bookkeeping
operations (`store.ledger.LedgerOp`: cursor, per-origin chain, received copy) —
all in the group's one transaction, all or nothing.  Once the practice key is known the writer also
keeps the state digest (`sync_protocol.digest`) of every record in step, in the
same transaction (`sync_state.digest`).  `Writer.exclusive(fn)` runs whole-database
work (a re-bootstrap's table swap) alone between two groups.

The writer is the only writer of the `resources` table, so it keeps the committed
state of the resources it last wrote or loaded (`store.recent_states`, bounded,
least recently used out): an update of a chart written moments ago — the common case
at the front desk and in a catch-up of another site's edits — needs no SELECT
and no decoding.  Entries change only after a COMMIT succeeds; a failed commit
and `exclusive` (which may rewrite any row) empty it.  The bound is the
`recent_states` argument of `Writer`.

The rows of a local write are computed by `store.local_write`; a group's rows are
written by `store.group_rows.write_rows`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from conflict import CoreError
from edge_node.errors import (
    EdgeError,
    InvalidResource,
    StoreUnavailable,
)
from edge_node.fhir.write_op import Actor, WriteOp
from edge_node.store.apply import Applied, Key, Rows, Stored, apply_change
from edge_node.store.audit import AuditChain, AuditRecord
from edge_node.store.connection import WriteConnection
from edge_node.store.group_rows import Overlay, write_rows
from edge_node.store.ledger import LedgerOp
from edge_node.store.local_write import audit_records, plan_local_op
from edge_node.store.recent_states import RecentStates, load_states
from edge_node.store.sync_state import SaveDigest
from sync_protocol.digest import StateDigest
from sync_protocol.hlc import HybridClock
from sync_protocol.ids import SiteId
from sync_protocol.models import Change

log = logging.getLogger(__name__)

T = TypeVar("T")
Result = Applied | EdgeError



@dataclass(slots=True)
class _Request:
    ops: tuple[WriteOp, ...]
    atomic: bool
    actor: Actor | None
    future: asyncio.Future[list[Result]] | None
    audits: tuple[AuditRecord, ...]
    label: str
    remote: tuple[Change, ...] = ()
    ledger: tuple[LedgerOp, ...] = ()
    digest_key: bytes | None = None
    #: Whole-database work run alone between groups (`Writer.exclusive`).
    exclusive: Callable[[sqlite3.Connection], None] | None = None


@dataclass(frozen=True, slots=True)
class WriterStatistics:
    groups: int
    operations: int
    largest_group: int
    queued: int
    next_seq: int


class Writer:
    """Owns the write connection, the site's sequence counter, HLC and audit chain head."""

    def __init__(self, conn: WriteConnection, *, site_id: SiteId, next_seq: int,
                 hlc: HybridClock, chain: AuditChain, clock: Callable[[], int],
                 max_group_ops: int = 256, require_if_match: bool = False,
                 recent_states: int = 2048) -> None:
        self._conn = conn
        self._site_id = site_id
        self._next_seq = next_seq
        self._hlc = hlc
        self._chain = chain
        self._clock = clock
        self._max_group_ops = max_group_ops
        self._require_if_match = require_if_match
        self._queue: asyncio.Queue[_Request | None] = asyncio.Queue()
        self._groups = 0
        self._operations = 0
        self._largest = 0
        self._idle = asyncio.Event()
        self._idle.set()
        #: Set after every commit that added outbox rows (wakes the pusher).
        self.outbox_committed = asyncio.Event()
        self.digest: StateDigest | None = None
        self._loaded_raw: dict[Key, bytes] = {}
        #: Committed (state, canonical bytes) of recently written or loaded resources.
        self._recent = RecentStates(recent_states)

    # --- callers -----------------------------------------------------------------------

    async def submit(self, ops: Sequence[WriteOp], *, actor: Actor, atomic: bool,
                     label: str = "") -> list[Result]:
        """Apply `ops` durably; return one result per op (an `EdgeError` for a refused op).

        With `atomic`, either every op applies or none does: a refusal of op i
        is returned for every op, its message naming op i.  Returns after the
        group's COMMIT (fsynced).  Raises `StoreUnavailable` if the commit failed
        (nothing of the group was written; a retry may succeed).
        """
        future: asyncio.Future[list[Result]] = asyncio.get_running_loop().create_future()
        self._idle.clear()
        self._queue.put_nowait(_Request(tuple(ops), atomic, actor, future, (), label))
        return await future

    async def apply_remote(self, changes: Sequence[Change], ops: Sequence[LedgerOp],
                           *, label: str) -> None:
        """Merge another site's `changes` and apply the bookkeeping `ops`, in one transaction.

        No outbox row is written.  Raises `InvalidResource` if a change cannot be
        merged (nothing of the batch is written), `StoreUnavailable` if the
        commit failed.  With no changes, just applies `ops` in order.
        """
        future: asyncio.Future[list[Result]] = asyncio.get_running_loop().create_future()
        self._idle.clear()
        self._queue.put_nowait(_Request((), True, None, future, (), label, tuple(changes),
                                        tuple(ops)))
        out = await future
        if out and isinstance(out[0], EdgeError):
            raise out[0]

    async def start_digest(self, digest_key: bytes) -> StateDigest:
        """Compute the state digest of every stored record and keep it in step from now on."""
        future: asyncio.Future[list[Result]] = asyncio.get_running_loop().create_future()
        self._idle.clear()
        self._queue.put_nowait(_Request((), False, None, future, (), "digest",
                                        digest_key=digest_key))
        await future
        assert self.digest is not None
        return self.digest

    async def exclusive(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on the write connection between two groups; return its result.

        Nothing else writes meanwhile (re-bootstrap swaps the practice tables this
        way).  `fn` owns its transactions; its exceptions propagate to
        the caller and the writer carries on.  Afterwards the state digest is
        dropped (`fn` may have changed any row): call `start_digest` again.
        """
        out: list[T] = []
        future: asyncio.Future[list[Result]] = asyncio.get_running_loop().create_future()
        self._idle.clear()
        self._queue.put_nowait(_Request((), False, None, future, (), "exclusive",
                                        exclusive=lambda conn: out.append(fn(conn))))
        await future
        return out[0]

    @property
    def max_drift_ms(self) -> int:
        """How far ahead of this site's wall clock a remote change's clock may be."""
        return self._hlc.max_drift_ms

    def observe_hlc(self, hlc: int) -> None:
        """Let the site's clock absorb `hlc` (a snapshot's newest change)."""
        self._hlc = _observed(self._hlc, hlc, 0)

    def audit(self, records: Sequence[AuditRecord]) -> None:
        """Queue audit rows of reads; committed with the next group, nobody waits."""
        if records:
            self._idle.clear()
            self._queue.put_nowait(_Request((), False, None, None, tuple(records), "audit"))

    async def flush(self) -> None:
        """Commit a group now, even an empty one; return after its COMMIT.

        The audit query calls it first, so account changes made by `edge user` in
        another process are in the chain it reads (`store.account_events`).
        """
        future: asyncio.Future[list[Result]] = asyncio.get_running_loop().create_future()
        self._idle.clear()
        self._queue.put_nowait(_Request((), False, None, future, (), "flush"))
        await future

    async def wait_idle(self) -> None:
        """Wait until everything queued so far is committed (tests, shutdown)."""
        await self._idle.wait()

    def stop(self) -> None:
        """Ask `run` to return after committing everything queued before this call."""
        self._queue.put_nowait(None)

    def statistics(self) -> WriterStatistics:
        return WriterStatistics(self._groups, self._operations, self._largest,
                                self._queue.qsize(), self._next_seq)

    # --- the loop ----------------------------------------------------------------------

    async def run(self) -> None:
        """Commit groups until `stop` is called; CancelledError propagates."""
        stopping = False
        deferred: _Request | None = None
        while not stopping:
            first, deferred = (deferred, None) if deferred is not None else (
                await self._queue.get(), None)
            if first is None:
                break
            if first.exclusive is not None:
                await self._run_exclusive(first)
                if self._queue.empty():
                    self._idle.set()
                continue
            if first.digest_key is not None:
                await self._init_digest(first)
                if self._queue.empty():
                    self._idle.set()
                continue
            group = [first]
            size = max(1, len(first.ops))
            while size < self._max_group_ops and not self._queue.empty():
                nxt = self._queue.get_nowait()
                if nxt is None:
                    stopping = True
                    break
                if nxt.digest_key is not None or nxt.exclusive is not None:
                    deferred = nxt  # a digest start runs between groups, in queue order
                    break
                group.append(nxt)
                size += max(1, len(nxt.ops))
            await self._commit_group(group)
            if self._queue.empty() and deferred is None:
                self._idle.set()
        self._idle.set()

    async def _run_exclusive(self, request: _Request) -> None:
        assert request.exclusive is not None and request.future is not None
        try:
            await self._conn.call(request.exclusive)
        except Exception as exc:  # the caller's failure, handed to the caller
            self.digest = None
            self._recent.clear()
            request.future.set_exception(exc)
            return
        self.digest = None
        self._recent.clear()
        request.future.set_result([])

    async def _init_digest(self, request: _Request) -> None:
        assert request.digest_key is not None
        key = request.digest_key

        def scan(conn: sqlite3.Connection) -> StateDigest:
            digest = StateDigest(key)
            for rtype, rid, state in conn.execute("SELECT type, id, state FROM resources"):
                digest.add(f"{rtype}/{rid}".encode(), bytes(state))
            conn.execute("UPDATE sync_state SET digest = ?, digest_count = ?",
                         (digest.hexdigest(), digest.count))
            return digest

        try:
            self.digest = await self._conn.call(scan)
        except sqlite3.Error as exc:
            self._fail([request], exc)
            return
        if request.future is not None and not request.future.done():
            request.future.set_result([])

    async def _commit_group(self, group: list[_Request]) -> None:
        now_ms = self._clock()
        keys = {(op.resource_type, op.resource_id) for r in group for op in r.ops
                if op.action != "create"}
        keys |= {(c.resource_type, c.resource_id) for r in group for c in r.remote}
        try:
            found = await self._load(keys)
        except sqlite3.Error as exc:
            self._fail(group, exc)
            return
        fresh = keys - found.keys()
        seq_before = self._next_seq
        view: dict[Key, Stored | None] = dict(found)
        rows = Rows()
        audits: list[AuditRecord] = []
        results: list[list[Result]] = []
        ledger: list[LedgerOp] = []
        for request in group:
            audits.extend(request.audits)
            if request.remote or request.ledger:
                results.append(self._apply_remote(request, view, rows, now_ms, ledger))
                continue
            if not request.ops:
                results.append([])
                continue
            assert request.actor is not None
            out = self._apply_request(request, view, rows, now_ms)
            results.append(out)
            audits.extend(self._audit_rows(request, out, now_ms))
        for key, stored in view.items():
            if stored is not None and key not in found and key not in fresh:
                fresh.add(key)  # created in this group: no old tokens to delete
        sealed_from = (self._chain.last_seq, self._chain.last_hash)
        audit_rows = self._chain.seal(audits)
        digest_before = self._step_digest(rows, ledger)
        try:
            await self._write(rows, audit_rows, fresh, ledger)
        except sqlite3.Error as exc:
            self._next_seq = seq_before
            self._chain.last_seq, self._chain.last_hash = sealed_from
            if digest_before is not None and self.digest is not None:
                self.digest = digest_before
            self._recent.clear()
            self._fail(group, exc)
            return
        self._recent.remember(view, rows)
        if rows.outbox:
            self.outbox_committed.set()
        self._groups += 1
        n_ops = sum(len(r.ops) for r in group)
        self._operations += n_ops
        self._largest = max(self._largest, n_ops)
        for request, out in zip(group, results, strict=True):
            if request.future is not None and not request.future.done():
                request.future.set_result(out)

    def _fail(self, group: list[_Request], exc: sqlite3.Error) -> None:
        log.error("group commit failed; %d requests refused with 503: %s", len(group),
                  type(exc).__name__)
        for request in group:
            if request.future is not None and not request.future.done():
                request.future.set_exception(StoreUnavailable(
                    "the edge database refused the commit; nothing of this request was "
                    "written",
                    hint="retry; if it repeats, check disk space and run `chartsync edge "
                    "check`"))

    async def _load(self, keys: set[Key]) -> dict[Key, Stored]:
        """The stored form of each of `keys` that exists: remembered, else one SELECT."""
        found: dict[Key, Stored] = {}
        raw: dict[Key, bytes] = {}
        missing = self._recent.lookup(keys, found, raw)
        self._loaded_raw = raw
        if not missing:
            return found
        rows = await self._conn.call(lambda conn: load_states(conn, missing))
        self._recent.loaded(rows, found, raw)
        return found

    def _step_digest(self, rows: Rows, ledger: list[LedgerOp]) -> StateDigest | None:
        """Move the digest to the group's new states; return the old one (for a rollback)."""
        if self.digest is None or not rows.resources:
            return None
        old = self.digest
        new = old.copy()
        for key, row in rows.resources.items():
            new.replace(f"{key[0]}/{key[1]}".encode(), self._loaded_raw.get(key), bytes(row[5]))
        self.digest = new
        ledger.append(SaveDigest(new.hexdigest(), new.count))
        return old

    async def _write(self, rows: Rows, audit_rows: list[tuple[Any, ...]],
                     fresh: set[Key], ledger: list[LedgerOp]) -> None:
        await self._conn.call(lambda conn: write_rows(conn, rows, audit_rows, fresh,
                                                      ledger, self._chain))

    def _apply_remote(self, request: _Request, view: dict[Key, Stored | None], rows: Rows,
                      now_ms: int, ledger: list[LedgerOp]) -> list[Result]:
        """Merge a remote batch into the group, all or nothing; no outbox rows."""
        local_rows, local_view = Rows(), Overlay(view)
        try:
            for change in request.remote:
                key = (change.resource_type, change.resource_id)
                stored, _ = apply_change(local_view.get(key), change, now_ms, local_rows)
                local_view.changes[key] = stored
        except CoreError as exc:
            return [InvalidResource(f"{request.label}: change of {change.resource_type} "
                                    f"from site {change.origin} seq {change.seq} does not "
                                    f"merge: {exc.message}", hint=exc.hint)]
        for change in request.remote:
            self._hlc = _observed(self._hlc, change.hlc, now_ms)
        rows.absorb(local_rows)
        view.update(local_view.changes)
        ledger.extend(request.ledger)
        return []

    # --- computing rows ------------------------------------------------------------------

    def _apply_request(self, request: _Request, view: dict[Key, Stored | None], rows: Rows,
                       now_ms: int) -> list[Result]:
        assert request.actor is not None
        if not request.atomic:
            out: list[Result] = []
            for op in request.ops:
                local_rows, local_view = Rows(), Overlay(view)
                seq = self._next_seq
                try:
                    applied = self._apply_op(op, local_view, local_rows, now_ms, request.actor)
                except EdgeError as exc:
                    self._next_seq = seq
                    out.append(exc)
                    continue
                rows.absorb(local_rows)
                view.update(local_view.changes)
                out.append(applied)
            return out
        local_rows, local_view = Rows(), Overlay(view)
        seq = self._next_seq
        applied_all: list[Result] = []
        for i, op in enumerate(request.ops):
            try:
                applied_all.append(self._apply_op(op, local_view, local_rows, now_ms,
                                                  request.actor))
            except EdgeError as exc:
                self._next_seq = seq
                refused = type(exc)(f"{request.label or 'transaction'} entry {i} "
                                    f"({op.action} {op.resource_type}): {exc.message}; "
                                    "nothing in the transaction was written", hint=exc.hint)
                return [refused] * len(request.ops)
        rows.absorb(local_rows)
        view.update(local_view.changes)
        return applied_all

    def _apply_op(self, op: WriteOp, view: Overlay, rows: Rows, now_ms: int,
                  actor: Actor) -> Applied:
        outbox_before = len(rows.outbox)
        applied = plan_local_op(op, view, rows, now_ms, actor, site_id=self._site_id,
                                seq=self._next_seq, hlc=self._hlc,
                                require_if_match=self._require_if_match)
        if len(rows.outbox) > outbox_before:
            self._next_seq += 1
        return applied

    def _audit_rows(self, request: _Request, out: list[Result], now_ms: int
                    ) -> list[AuditRecord]:
        assert request.actor is not None
        return audit_records(request.ops, out, request.actor, request.label, now_ms)


def _observed(clock: HybridClock, remote: int, now_ms: int) -> HybridClock:
    """`clock` after seeing `remote` (drift was checked by the puller before applying)."""
    if remote > clock.last:
        return HybridClock(remote, max_drift_ms=clock.max_drift_ms)
    return clock


__all__ = ["Result", "Writer", "WriterStatistics"]
