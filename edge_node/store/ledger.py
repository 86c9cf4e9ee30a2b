"""The sync ledger's own side: the outbox, this site's sealed batches, the dead letters.

Two kinds of operation, for every sync table (this module and `store.received`,
`store.relay_queue`, `store.rewind`, `store.practice_sites`, `store.sync_state`):

* **Writes** are `LedgerOp`s: frozen values whose `apply(conn)` runs their
  statements.  A caller never runs one itself; it hands them to the writer
  (`Writer.apply_remote(changes, ops)`, `SyncContext.write(*ops)`), which applies
  them in order inside its group transaction, with the group's rows — all or nothing.
* **Reads** are functions of a connection first, returning typed values; the sync
  tasks run them on a read connection (`SyncContext.read(fn, *args)`), commands on
  the connection they opened.

Own batches (`pushed_batches`) are sealed once and stored before they are sent, so a
resend is byte-identical; acknowledged ones carry the hub's sequence and receipt.  The
pusher's reads of one round (`push_round`) and of sealing the next batch (`next_seal`)
each take one query batch on one connection, so one thread hop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol, TypeAlias

from edge_node.store.guard_counts import GuardScan, guard_scan, hold_from
from sync_protocol.batch import batch_hash
from sync_protocol.models import GENESIS_HASH

#: The connection type store functions take first (callers outside store name only this).
Connection: TypeAlias = sqlite3.Connection

#: Most batches pushed in one request (the hub takes up to 16).
PUSH_WINDOW: Final = 8
#: Most sealed bytes pushed in one request (a bigger batch goes alone); under the
#: hub's default limit for a whole push body (16 MiB).
PUSH_WINDOW_BYTES: Final = 8 << 20


class LedgerOp(Protocol):
    """One bookkeeping write, run by the writer inside its group transaction."""

    def apply(self, conn: sqlite3.Connection) -> None: ...


# --- writes --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreSealed:
    """Keep a batch this site sealed, before it is pushed (unacknowledged)."""

    seq_from: int
    seq_to: int
    batch_hash: bytes
    prev_hash: bytes
    key_epoch: int
    sealed: bytes
    created_ms: int

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO pushed_batches (seq_from, seq_to, batch_hash, prev_hash, key_epoch, "
            "sealed, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self.seq_from, self.seq_to, self.batch_hash, self.prev_hash, self.key_epoch,
             self.sealed, self.created_ms))


@dataclass(frozen=True, slots=True)
class MarkAcknowledged:
    """Record the hub's acknowledgement (its sequence and signed receipt) of a batch."""

    seq_from: int
    hub_seq: int
    receipt: bytes

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE pushed_batches SET hub_seq = ?, receipt = ? WHERE seq_from = ?",
                     (self.hub_seq, self.receipt, self.seq_from))


@dataclass(frozen=True, slots=True)
class MarkUnsent:
    """Mark every own batch from `seq_from` on unacknowledged (the pusher sends it again)."""

    seq_from: int

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE pushed_batches SET hub_seq = NULL, receipt = NULL "
                     "WHERE seq_from >= ?", (self.seq_from,))


@dataclass(frozen=True, slots=True)
class AddDeadLetter:
    """Keep the hub's refusal of a batch; the pusher stops until an admin releases it."""

    seq_from: int
    seq_to: int
    code: str
    message: str
    hint: str
    at_ms: int

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO dead_letters (seq_from, seq_to, code, message, hint, at_ms) "
                     "VALUES (?, ?, ?, ?, ?, ?)",
                     (self.seq_from, self.seq_to, self.code, self.message, self.hint,
                      self.at_ms))


def release_dead_letters(conn: sqlite3.Connection, now_ms: int) -> None:
    """Mark every open dead letter resolved (`edge dead-letters retry`; autocommit)."""
    conn.execute("UPDATE dead_letters SET resolved_ms = ? WHERE resolved_ms IS NULL",
                 (now_ms,))


# --- reads ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OwnBatch:
    seq_from: int
    seq_to: int
    batch_hash: bytes
    sealed: bytes


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    seq_from: int
    seq_to: int
    code: str
    message: str
    hint: str
    at_ms: int

    def as_json(self) -> dict[str, object]:
        return {"id": self.id, "seq_from": self.seq_from, "seq_to": self.seq_to,
                "code": self.code, "message": self.message, "hint": self.hint,
                "at_ms": self.at_ms}


@dataclass(frozen=True, slots=True)
class SealLimits:
    """What bounds the next batch: the guard's thresholds and the batch's size."""

    guard_share: float
    guard_min_records: int
    max_batch_changes: int
    max_batch_bytes: int


@dataclass(frozen=True, slots=True)
class SealSource:
    """The hash of the last sealed batch, and the outbox rows (seq, change) to seal next."""

    prev_hash: bytes
    rows: list[tuple[int, bytes]]


@dataclass(frozen=True, slots=True)
class NextSeal:
    """What sealing the next batch needs (`next_seal`)."""

    scan: GuardScan
    #: None when the guard must act first (an admin's discard to carry out).
    source: SealSource | None


@dataclass(frozen=True, slots=True)
class PushRound:
    """What one round of the pusher reads (`push_round`)."""

    blocked: bool = False
    #: The window to push next, in chain order.
    unacked: tuple[OwnBatch, ...] = ()
    #: Unacknowledged batches (up to the round's `most`), the window's and those after it.
    unacked_count: int = 0
    #: None when blocked, or when `most` batches are sealed already.
    next: NextSeal | None = None


def window_length(sizes: Sequence[int], most: int = PUSH_WINDOW,
                  most_bytes: int = PUSH_WINDOW_BYTES) -> int:
    """How many of the batches of `sizes` (bytes, in order) go in one push request: at
    most `most`, and within `most_bytes` unless the first alone is bigger (it goes
    alone).  0 only for no batches (pure)."""
    n, size = 0, 0
    for length in sizes[:most]:
        if n and size + length > most_bytes:
            break
        n, size = n + 1, size + length
    return n


def blocked_by_dead_letter(conn: sqlite3.Connection) -> bool:
    """Whether an unresolved dead letter stops the pusher."""
    row = conn.execute("SELECT count(*) FROM dead_letters WHERE resolved_ms IS NULL").fetchone()
    return bool(row[0])


def unacked_window(conn: sqlite3.Connection, window: int, window_bytes: int, most: int
                   ) -> tuple[list[OwnBatch], int]:
    """(the first unacknowledged batches in chain order, within one push's window of
    `window` batches and `window_bytes`; how many are unacknowledged, counted up to
    `most`).  Only the window's sealed bytes are read."""
    rows = conn.execute("SELECT seq_from, length(sealed) FROM pushed_batches "
                        "WHERE hub_seq IS NULL ORDER BY seq_from LIMIT ?",
                        (most,)).fetchall()
    chosen = [seq_from for seq_from, _ in
              rows[:window_length([length for _, length in rows], window, window_bytes)]]
    if not chosen:
        return [], 0
    marks = ",".join("?" * len(chosen))
    out = [OwnBatch(r[0], r[1], bytes(r[2]), bytes(r[3])) for r in conn.execute(
        f"SELECT seq_from, seq_to, batch_hash, sealed FROM pushed_batches "
        f"WHERE seq_from IN ({marks}) ORDER BY seq_from", chosen)]
    return out, len(rows)


def seal_source(conn: sqlite3.Connection, hold_from_seq: int | None, limit: int,
                max_bytes: int) -> SealSource:
    """The last sealed batch's hash and the outbox rows to seal next — before
    `hold_from_seq`, at most `limit` rows and `max_bytes` (one row at least)."""
    row = conn.execute("SELECT seq_to, batch_hash FROM pushed_batches "
                       "ORDER BY seq_from DESC LIMIT 1").fetchone()
    last, prev = (row[0], bytes(row[1])) if row else (0, GENESIS_HASH)
    upto = hold_from_seq - 1 if hold_from_seq is not None else 1 << 62
    rows: list[tuple[int, bytes]] = []
    size = 0
    for seq, raw in conn.execute("SELECT seq, change FROM outbox WHERE seq > ? AND "
                                 "seq <= ? ORDER BY seq LIMIT ?", (last, upto, limit)):
        if rows and size + len(raw) > max_bytes:
            break
        rows.append((int(seq), bytes(raw)))
        size += len(raw)
    return SealSource(prev, rows)


def next_seal(conn: sqlite3.Connection, site: str, now_ms: int, limits: SealLimits
              ) -> NextSeal:
    """The guard's scan and the outbox rows it lets through (no rows: discard first)."""
    scan = guard_scan(conn, site, now_ms, limits.guard_min_records)
    if scan.decision == "discard":
        return NextSeal(scan, None)  # compensate first (`sync.guard.guard_check`)
    first = hold_from(scan, limits.guard_share, limits.guard_min_records)
    return NextSeal(scan, seal_source(conn, first, limits.max_batch_changes,
                                      limits.max_batch_bytes))


def next_seal_unless_blocked(conn: sqlite3.Connection, site: str, now_ms: int,
                             limits: SealLimits) -> NextSeal | None:
    """`next_seal`, or None while a dead letter stops the pusher."""
    return None if blocked_by_dead_letter(conn) else next_seal(conn, site, now_ms, limits)


def push_round(conn: sqlite3.Connection, site: str, now_ms: int, limits: SealLimits, *,
               window: int, window_bytes: int, most: int) -> PushRound:
    """Everything one round of the pusher reads: dead letters, the unacknowledged
    batches, and unless `most` are sealed, what sealing the next needs."""
    if blocked_by_dead_letter(conn):
        return PushRound(blocked=True)
    unacked, count = unacked_window(conn, window, window_bytes, most)
    return PushRound(unacked=tuple(unacked), unacked_count=count,
                     next=next_seal(conn, site, now_ms, limits) if count < most else None)


def own_batch_sealed(conn: sqlite3.Connection, seq_from: int) -> bool:
    """Whether this site sealed a batch starting at `seq_from`."""
    return conn.execute("SELECT 1 FROM pushed_batches WHERE seq_from = ?",
                        (seq_from,)).fetchone() is not None


def own_batch_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM pushed_batches").fetchone()[0])


def last_own_hub_seq(conn: sqlite3.Connection) -> int:
    """The hub sequence of this site's last acknowledged batch (0 if none)."""
    # Own batches are acknowledged in chain order: the last acknowledged is the highest.
    row = conn.execute("SELECT hub_seq FROM pushed_batches WHERE hub_seq IS NOT NULL "
                       "ORDER BY seq_from DESC LIMIT 1").fetchone()
    return int(row[0]) if row else 0


def recorded_hash(conn: sqlite3.Connection, hub_seq: int) -> bytes | None:
    """Hash of the batch this site read at `hub_seq` (its own or a received one), if kept."""
    row = conn.execute("SELECT batch_hash FROM pushed_batches WHERE hub_seq = ?",
                       (hub_seq,)).fetchone()
    if row is not None:
        return bytes(row[0])
    row = conn.execute("SELECT sealed FROM received_batches WHERE hub_seq = ?",
                       (hub_seq,)).fetchone()
    return batch_hash(bytes(row[0])) if row is not None else None


def dead_letters(conn: sqlite3.Connection) -> list[DeadLetter]:
    """The unresolved dead letters, oldest first."""
    return [DeadLetter(int(r[0]), int(r[1]), int(r[2]), r[3], r[4], r[5], int(r[6]))
            for r in conn.execute(
                "SELECT id, seq_from, seq_to, code, message, hint, at_ms FROM dead_letters "
                "WHERE resolved_ms IS NULL ORDER BY id")]


__all__ = [
    "PUSH_WINDOW", "PUSH_WINDOW_BYTES", "AddDeadLetter", "Connection", "DeadLetter",
    "LedgerOp", "MarkAcknowledged", "MarkUnsent", "NextSeal", "OwnBatch", "PushRound",
    "SealLimits", "SealSource", "StoreSealed", "blocked_by_dead_letter",
    "dead_letters", "last_own_hub_seq", "next_seal", "next_seal_unless_blocked",
    "own_batch_count", "own_batch_sealed", "push_round", "recorded_hash",
    "release_dead_letters", "seal_source", "unacked_window", "window_length",
]
