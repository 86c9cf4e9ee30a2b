"""Other sites' batches: per-origin chains, received copies, held batches.

* `origin_chains`: for each origin, the next sequence number this site expects and
  the hash of the last batch it applied (`AdvanceChain`, `chain_of`).
* `received_batches`: a copy of every other site's batch this site pulled, keyed by
  hub sequence (`KeepReceivedCopy`, idempotent), so a lost hub can be given them back.
* `held_batches`: batches that cannot be applied yet, with the reason (`HoldBatch`,
  `ReleaseHeld`); the puller retries them from their received copies.

Writes are `LedgerOp`s (`store.ledger`) the writer applies in its group transaction.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import NamedTuple

from sync_protocol.models import GENESIS_HASH


@dataclass(frozen=True, slots=True)
class AdvanceChain:
    """Move `origin`'s chain past an applied batch (created at the first one)."""

    origin: str
    next_seq: int
    last_hash: bytes

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO origin_chains (origin, next_seq, last_hash) VALUES (?, ?, ?) "
                     "ON CONFLICT (origin) DO UPDATE SET next_seq = excluded.next_seq, "
                     "last_hash = excluded.last_hash",
                     (self.origin, self.next_seq, self.last_hash))


@dataclass(frozen=True, slots=True)
class KeepReceivedCopy:
    """Keep the sealed bytes of a pulled batch (a copy already kept stays as it is)."""

    hub_seq: int
    origin: str
    seq_from: int
    seq_to: int
    sealed: bytes

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT OR IGNORE INTO received_batches (hub_seq, origin, seq_from, "
                     "seq_to, sealed) VALUES (?, ?, ?, ?, ?)",
                     (self.hub_seq, self.origin, self.seq_from, self.seq_to, self.sealed))


@dataclass(frozen=True, slots=True)
class HoldBatch:
    """Hold a batch back with its reason (a batch held again keeps its `since_ms`)."""

    origin: str
    seq_from: int
    seq_to: int
    hub_seq: int
    reason: str
    detail: str
    since_ms: int

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO held_batches (origin, seq_from, seq_to, hub_seq, reason, "
                     "detail, since_ms) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (origin, "
                     "seq_from) DO UPDATE SET reason = excluded.reason, "
                     "detail = excluded.detail",
                     (self.origin, self.seq_from, self.seq_to, self.hub_seq, self.reason,
                      self.detail, self.since_ms))


@dataclass(frozen=True, slots=True)
class ReleaseHeld:
    """Forget the held batch of `origin` at `seq_from` (applied, or a duplicate)."""

    origin: str
    seq_from: int

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM held_batches WHERE origin = ? AND seq_from = ?",
                     (self.origin, self.seq_from))


class Chain(NamedTuple):
    """Where an origin's chain stands at this site."""

    next_seq: int
    last_hash: bytes


@dataclass(frozen=True, slots=True)
class HeldBatch:
    origin: str
    seq_from: int
    seq_to: int
    hub_seq: int
    reason: str
    detail: str
    since_ms: int

    def as_json(self) -> dict[str, object]:
        return {"origin": self.origin, "seq_from": self.seq_from, "seq_to": self.seq_to,
                "hub_seq": self.hub_seq, "reason": self.reason, "detail": self.detail,
                "since_ms": self.since_ms}


def chain_of(conn: sqlite3.Connection, origin: str) -> Chain:
    """`origin`'s chain; (1, genesis) for an origin nothing was applied of."""
    row = conn.execute("SELECT next_seq, last_hash FROM origin_chains WHERE origin = ?",
                       (origin,)).fetchone()
    return Chain(int(row[0]), bytes(row[1])) if row else Chain(1, GENESIS_HASH)


def chain_positions(conn: sqlite3.Connection) -> dict[str, int]:
    """Each origin's next expected sequence number."""
    return {r[0]: int(r[1]) for r in conn.execute("SELECT origin, next_seq FROM origin_chains")}


def held_batches(conn: sqlite3.Connection) -> list[HeldBatch]:
    """Every held batch, in hub order."""
    return [HeldBatch(*r) for r in conn.execute(
        "SELECT origin, seq_from, seq_to, hub_seq, reason, detail, since_ms "
        "FROM held_batches ORDER BY hub_seq")]


def held_ranges(conn: sqlite3.Connection, origin: str, before: int) -> list[tuple[int, int]]:
    """(seq_from, seq_to) of `origin`'s held batches starting before `before`."""
    return [(int(r[0]), int(r[1])) for r in conn.execute(
        "SELECT seq_from, seq_to FROM held_batches WHERE origin = ? AND seq_from < ?",
        (origin, before))]


def held_copies(conn: sqlite3.Connection) -> list[tuple[int, bytes]]:
    """(hub seq, sealed bytes) of every held batch, in origin chain order."""
    return [(int(r[0]), bytes(r[1])) for r in conn.execute(
        "SELECT h.hub_seq, r.sealed FROM held_batches AS h JOIN received_batches AS r "
        "ON r.hub_seq = h.hub_seq ORDER BY h.seq_from, h.hub_seq")]


def gap_origins(conn: sqlite3.Connection) -> set[str]:
    """Origins with a batch held for a gap."""
    return {origin for (origin,) in conn.execute(
        "SELECT DISTINCT origin FROM held_batches WHERE reason = 'gap'")}


__all__ = ["AdvanceChain", "Chain", "HeldBatch", "HoldBatch", "KeepReceivedCopy",
           "ReleaseHeld", "chain_of", "chain_positions", "gap_origins", "held_batches",
           "held_copies", "held_ranges"]
