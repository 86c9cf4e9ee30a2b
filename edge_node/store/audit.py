"""The audit log: append-only rows, each chained to the one before by SHA-256.

    hash(n) = SHA-256(hash(n-1) || canonical JSON of row n without its hashes)

with hash(0) = 32 zero bytes.  Editing a row changes its hash; deleting one
breaks the next row's `prev_hash` (and leaves a gap in `seq`); `verify_chain`
finds both.  Truncating the newest rows is caught for writes by `edge check`
(every local history row has its audit row); for reads, only by an exported
copy: no one outside this machine holds the chain head to compare with.

Rows of writes are committed in the same transaction as the write.  Rows of
reads are queued to the same group-commit writer and committed with the next
group (a read does not wait for an fsync), so a power cut can lose the audit
rows of reads answered in the last group-commit interval (a few ms).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from sync_protocol.canonical import canonical_json

GENESIS: Final = bytes(32)
AUDIT_COLUMNS: Final = ("seq", "at_ms", "user", "role", "action", "resource_type",
                        "resource_id", "patient_ref", "outcome", "client", "detail")
INSERT_AUDIT: Final = (
    "INSERT INTO audit (seq, at_ms, user, role, action, resource_type, resource_id, "
    "patient_ref, outcome, client, detail, prev_hash, hash) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One audited action, before it has a place in the chain.

    `detail` holds ids and counts only (e.g. search parameter names and the
    result count), never names or other chart text; the one exception is the reason
    a clinician gives for resolving a conflict, which is part of that decision's record.
    """

    at_ms: int
    user: str
    role: str
    action: str
    resource_type: str | None
    resource_id: str | None
    patient_ref: str | None
    outcome: int
    client: str
    detail: dict[str, Any] = field(default_factory=dict)


def row_hash(prev_hash: bytes, row: tuple[Any, ...]) -> bytes:
    """Hash of an audit row (its AUDIT_COLUMNS values) after `prev_hash`."""
    return hashlib.sha256(prev_hash + canonical_json(dict(zip(AUDIT_COLUMNS, row,
                                                              strict=True)))).digest()


class AuditChain:
    """The chain head (last seq and hash) and the sealing of new records.

    Owned by the one writer; `seal` is pure apart from advancing the head, and
    `reset` puts the head back after a rolled-back commit.
    """

    __slots__ = ("last_hash", "last_seq")

    def __init__(self, last_seq: int, last_hash: bytes) -> None:
        self.last_seq = last_seq
        self.last_hash = last_hash

    @classmethod
    def load(cls, conn: sqlite3.Connection) -> AuditChain:
        row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return cls(0, GENESIS) if row is None else cls(int(row[0]), bytes(row[1]))

    def seal(self, records: Iterable[AuditRecord]) -> list[tuple[Any, ...]]:
        """Rows (for INSERT_AUDIT) of `records` in order, chained after the head."""
        out = []
        seq, prev = self.last_seq, self.last_hash
        for r in records:
            seq += 1
            body = (seq, r.at_ms, r.user, r.role, r.action, r.resource_type, r.resource_id,
                    r.patient_ref, r.outcome, r.client,
                    canonical_json(r.detail).decode("utf-8"))
            digest = row_hash(prev, body)
            out.append((*body, prev, digest))
            prev = digest
        self.last_seq, self.last_hash = seq, prev
        return out


def verify_chain(rows: Iterable[tuple[Any, ...]]) -> Iterator[str]:
    """Problems in audit rows given in seq order (AUDIT_COLUMNS, prev_hash, hash)."""
    expected_seq, prev = 1, GENESIS
    for row in rows:
        body, prev_hash, digest = tuple(row[:-2]), bytes(row[-2]), bytes(row[-1])
        seq = int(body[0])
        if seq != expected_seq:
            yield f"audit rows {expected_seq}..{seq - 1} are missing (deleted?)"
        if prev_hash != prev:
            yield f"audit row {seq} does not follow the row before it (a row was removed " \
                  "or replaced)"
        if row_hash(prev_hash, body) != digest:
            yield f"audit row {seq} was altered after it was written"
        expected_seq, prev = seq + 1, digest
