"""What a snapshot holds: the edge's records inside `sync_protocol.snapshot`'s sealed stream.

In store/ because the records are rows of the edge's tables: the export reads
them (`snapshot_export`), the staging file inserts them (`snapshot_staging`).

Record shapes (msgpack arrays; FORMAT names this layout):

    ["meta", {format, practice, site, log_id, hub_seq, chains, hlc, counts}]      first
    ["resource", type, id, version, last_updated_ms, deleted, state, json, patient_ref,
     vid]                                                                   vid: FORMAT 3
    ["history", hid, type, id, version, origin, seq, user, device, hlc, recorded_ms,
     deleted, json, vid, kind]                                       vid, kind: FORMAT 3
    ["conflict", type, id, register, heads, shown_origin, shown_seq]
    ["batch", hub_seq, origin, seq_from, seq_to, sealed]                      FORMAT 2

`state` is `conflict.canonical_state` bytes; `json` the served JSON (with this
site's `meta.versionId` / `lastUpdated`), so a restored site serves exactly
what the writer served and keeps every version's history row.  Search tokens
are derived from `json` when staging.  `chains` is the applied position of
every origin, `{origin: (next_seq, last_hash)}`, so the restored site's puller
knows which batches after `hub_seq` it already holds.

`batch` records (FORMAT 2) are the sealed log up to `hub_seq` exactly as the
hub served it: every received batch and the writer's own acknowledged ones.
A restored site keeps them in `received_batches`, so it can help rebuild a
lost hub (`sync.recovery` relays them) like any site that pulled the whole log.
Cost: the snapshot (and its download) grows by the sealed log's size — it is
already compressed, so roughly the size of the compressed changes; staging
them is a plain blob insert per batch.  FORMAT 1 snapshots (no batch
records) are still read.

FORMAT 3 adds the version ids of the history (author and view versions,
`store.apply`); rows of older snapshots read with their row counter as id, as the
schema migration gives rows written before (`upgraded_row`).

Left out on purpose: the audit log (site-local: who read what at the writer
site, not practice data; the restored site starts its own chain), the outbox
(the writer's own changes are in the log up to `hub_seq` — a snapshot is only
made when the outbox is fully acknowledged and pulled back), users, site
identity and keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from uuid import UUID

from edge_node.errors import SnapshotRefused

FORMAT: Final = 3
READABLE_FORMATS: Final = frozenset({1, 2, 3})
META: Final = "meta"
RESOURCE: Final = "resource"
HISTORY: Final = "history"
CONFLICT: Final = "conflict"
BATCH: Final = "batch"
_ARITY: Final = {RESOURCE: (9, 10), HISTORY: (13, 15), CONFLICT: (7,), BATCH: (6,)}


@dataclass(frozen=True, slots=True)
class SyncPosition:
    """How far a site has applied the hub's log: the cursor and every origin's chain head."""

    hub_seq: int = 0
    log_id: UUID | None = None
    #: origin site → (next seq expected from it, hash of its last applied batch)
    chains: Mapping[UUID, tuple[int, bytes]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """The first record: who wrote the snapshot, what it covers, how many rows follow."""

    practice_id: UUID
    site_id: UUID
    position: SyncPosition
    hlc: int
    resources: int
    history: int
    conflicts: int
    batches: int = 0

    @property
    def records(self) -> int:
        """Records in the snapshot, this one included."""
        return 1 + self.resources + self.history + self.conflicts + self.batches

    def to_record(self) -> list[Any]:
        pos = self.position
        return [META, {
            "format": FORMAT, "practice": self.practice_id.bytes, "site": self.site_id.bytes,
            "log_id": pos.log_id.bytes if pos.log_id else None, "hub_seq": pos.hub_seq,
            "chains": [[o.bytes, n, h] for o, (n, h) in sorted(pos.chains.items())],
            "hlc": self.hlc, "counts": {RESOURCE: self.resources, HISTORY: self.history,
                                        CONFLICT: self.conflicts, BATCH: self.batches}}]

    @classmethod
    def from_record(cls, record: Any, *, label: str) -> SnapshotMeta:
        """Parse the first record; raises `SnapshotRefused` if it is not a meta record."""
        if type(record) is not list or len(record) != 2 or record[0] != META:
            raise SnapshotRefused(f"{label}: first record is not the snapshot's meta record",
                                  hint="the snapshot was not written by a chartsync edge")
        raw = record[1]
        try:
            if raw["format"] not in READABLE_FORMATS:
                raise SnapshotRefused(
                    f"{label}: record format {raw['format']}, this build reads {FORMAT}",
                    hint="upgrade this chartsync to the version of the site that wrote it")
            counts = raw["counts"]
            log_id = raw["log_id"]
            chains = {UUID(bytes=bytes(o)): (int(n), bytes(h)) for o, n, h in raw["chains"]}
            return cls(UUID(bytes=bytes(raw["practice"])), UUID(bytes=bytes(raw["site"])),
                       SyncPosition(int(raw["hub_seq"]),
                                    UUID(bytes=bytes(log_id)) if log_id else None, chains),
                       int(raw["hlc"]), int(counts[RESOURCE]), int(counts[HISTORY]),
                       int(counts[CONFLICT]), int(counts.get(BATCH, 0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise SnapshotRefused(f"{label}: malformed meta record ({type(exc).__name__})",
                                  hint="the snapshot was not written by a chartsync edge"
                                  ) from exc


def check_row(record: Any, *, label: str) -> tuple[str, list[Any]]:
    """(kind, fields) of a row record; raises `SnapshotRefused` for anything else."""
    if type(record) is list and record and len(record) in _ARITY.get(record[0], ()):
        return record[0], record
    kind = record[0] if type(record) is list and record else type(record).__name__
    raise SnapshotRefused(f"{label}: unexpected record {kind!r}",
                          hint="the snapshot is damaged or from another build; download "
                          "the latest one again")


def upgraded_row(kind: str, row: list[Any]) -> list[Any]:
    """A checked row record in the FORMAT 3 layout (an older row gets its counter as id)."""
    if kind == RESOURCE and len(row) == 9:
        return [*row, str(row[3])]
    if kind == HISTORY and len(row) == 13:
        return [*row, str(row[4]), "author"]
    return row


__all__ = ["BATCH", "CONFLICT", "FORMAT", "HISTORY", "META", "RESOURCE", "SnapshotMeta",
           "SyncPosition", "check_row", "upgraded_row"]
