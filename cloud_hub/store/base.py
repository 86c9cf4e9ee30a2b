"""The hub's storage port: what the API needs from a database, and nothing more.

Two implementations pass one contract suite (`tests/cloud_hub/store/test_store_contract.py`):
`postgres.PostgresStore` (production) and `sqlite.SqliteStore` (embedded).

Every table is keyed by practice id first (the partition key).  Every method
is one transaction.  Library exceptions never leave an implementation: a lost
database becomes `StoreUnavailable` (retryable), constraint races become our
own results or errors.

Ordering contract of `append_batch` (docs/design.md, "Hub sequence in commit
order"): hub sequence numbers of a practice are assigned under a per-practice
lock in the same transaction that stores the batch, so once a reader sees hub
sequence n, every m < n is already visible — a reader never sees a gap filled later.

Both stores migrate to the one `SCHEMA_VERSION` defined here; its changelog:
    1  practices, sites, enrollment tokens, operators, batches, site chains, practice
       sequences, record heads, concurrency stats, mailbox, snapshots, hub key.
    2  hub_meta (log id, made once per store), practice_seq.trimmed_through (retention),
       site_chain.last_push_ms, snapshots.snapshot_id, heartbeats, push_rejections,
       operator_actions (audit of operator approvals, revocations, registrations).
    3  hub_identity: the hub's PUBLIC key only.  The signing seed lives in the hub key
       file; a seed left in hub_key by schema 2 is deleted by `bind_hub_key` once the
       hub has written it to its key file.
    4  roster (the practice's member-signed roster entries, opaque signed bytes in
       chain order) and kit_epochs (practice key epochs sealed to the recovery kit).
    5  snapshots.digest, .signature, .verified: a snapshot is kept only with its making
       site's attestation (`sync_protocol.snapshot_signature`), checked by the API before
       `put_snapshot`; rows from before stay unverified: never listed, served or used to
       justify a trim, and deleted by the next verified upload of their practice.
       snapshot_marks: each site's highest verified snapshot position, so a replayed
       older snapshot of that site is refused even after its own row was pruned.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import BinaryIO, Final, Protocol
from uuid import UUID

from cloud_hub.errors import BadRequest, SnapshotBehind
from sync_protocol.ids import BatchId, HubSeq, KeyEpoch, PracticeId, SiteId
from sync_protocol.models import ChangeMeta

#: The hub store's schema, for both stores (changelog in this module's docstring).
#: A store refuses to open a database with a newer schema than this.
SCHEMA_VERSION: Final = 5


class SiteStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class PracticeRecord:
    practice_id: PracticeId
    name: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class SiteRecord:
    practice_id: PracticeId
    site_id: SiteId
    name: str
    verify_key: bytes
    box_key: bytes
    credential_hash: bytes
    status: SiteStatus
    approved_by: SiteId | None
    created_ms: int

    def __repr__(self) -> str:  # no credential hash in logs
        return f"SiteRecord(practice={self.practice_id}, site={self.site_id}, {self.status})"


@dataclass(frozen=True, slots=True)
class NewSite:
    """A site being enrolled: the hub minted its id and credential."""

    site_id: SiteId
    name: str
    verify_key: bytes
    box_key: bytes
    credential_hash: bytes


@dataclass(frozen=True, slots=True)
class IncomingBatch:
    """A batch whose credential, signature, limits and clock the API already checked."""

    practice_id: PracticeId
    site_id: SiteId
    batch_id: BatchId
    seq_from: int
    seq_to: int
    prev_hash: bytes
    batch_hash: bytes
    key_epoch: KeyEpoch
    max_hlc: int
    metas: Sequence[ChangeMeta]
    sealed: bytes


@dataclass(frozen=True, slots=True)
class Appended:
    """Where a batch is: `duplicate` when the same bytes were stored before."""

    hub_seq: HubSeq
    duplicate: bool


@dataclass(frozen=True, slots=True)
class StoredBatch:
    hub_seq: HubSeq
    site_id: SiteId
    sealed: bytes


@dataclass(frozen=True, slots=True)
class MailItem:
    mail_id: UUID
    from_site: SiteId
    sealed: bytes
    created_ms: int


@dataclass(frozen=True, slots=True)
class NewSnapshot:
    """A snapshot whose attestation the API verified against the uploading site's key."""

    practice_id: PracticeId
    site_id: SiteId
    snapshot_id: UUID
    hub_seq: HubSeq
    key_epoch: KeyEpoch
    digest: bytes
    signature: bytes
    #: Bytes in the body, and how to read it: the API's staging file, opened and read in
    #: pieces (`SNAPSHOT_PIECE_BYTES`), so a store never holds a snapshot whole.
    size: int
    open_body: Callable[[], BinaryIO]


#: Bytes a store reads from a snapshot's body per step when storing it.
SNAPSHOT_PIECE_BYTES: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """A stored, verified snapshot without its bytes (`size` is the blob's length)."""

    snapshot_id: UUID
    hub_seq: HubSeq
    site_id: SiteId
    key_epoch: KeyEpoch
    size: int
    created_ms: int
    digest: bytes = b""
    signature: bytes = b""


@dataclass(frozen=True, slots=True)
class KitEpochRecord:
    """A practice key epoch sealed to a recovery kit (bytes the hub cannot open)."""

    epoch: KeyEpoch
    kit_fingerprint: str
    sealed: bytes
    created_ms: int


@dataclass(frozen=True, slots=True)
class RosterStatusChange:
    """The registry change a roster entry makes, applied with it in one transaction."""

    site_id: SiteId
    status: SiteStatus
    by: SiteId | None


@dataclass(frozen=True, slots=True)
class LogBounds:
    """Where a practice's log starts and ends: batches 1..`trimmed_through` are gone."""

    head: int
    trimmed_through: int

    @property
    def oldest_kept(self) -> int:
        return self.trimmed_through + 1


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A site's latest self-report (`report` is the validated JSON body, as stored)."""

    site_id: SiteId
    report: bytes
    received_ms: int


@dataclass(frozen=True, slots=True)
class SiteActivity:
    """What the hub saw of one site: heartbeat, pushes, refusals (for the dashboard)."""

    site_id: SiteId
    last_push_ms: int | None
    heartbeat: Heartbeat | None
    rejections: dict[str, int]


@dataclass(frozen=True, slots=True)
class OperatorAction:
    action_id: UUID
    practice_id: PracticeId
    site_id: SiteId | None
    action: str
    operator_ref: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class SiteStats:
    site_id: SiteId
    batches: int
    changes: int
    concurrent_edits: int
    next_seq: int


@dataclass(frozen=True, slots=True)
class PracticeStats:
    head: int
    tracked_records: int
    sites: tuple[SiteStats, ...]


def trim_point(head: int, trimmed_through: int, verified_hub_seq: int, keep: int) -> int:
    """How far a trim may go: keep the latest `keep` batches and all that no *verified*
    snapshot covers (`verified_hub_seq`: the highest hub_seq of a snapshot whose making
    site's signature and digest the hub checked; 0 if none — an unsigned snapshot of
    an older schema never counts); never un-trim.  `keep` 0 means keep everything.  (Both
    stores use this rule.)"""
    if keep <= 0:
        return trimmed_through
    return max(trimmed_through, min(head - keep, verified_hub_seq))


def check_position(snapshot: NewSnapshot, head: int, mark: int | None) -> None:
    """Refuse a snapshot past the practice's `head` (`BadRequest`) or behind its site's
    highest verified snapshot `mark` (`SnapshotBehind`).  (Both stores use this rule.)"""
    label = f"snapshot {snapshot.snapshot_id} of site {snapshot.site_id}"
    if snapshot.hub_seq > head:
        raise BadRequest(f"{label} claims hub sequence {snapshot.hub_seq}, the practice is "
                         f"at {head}", hint="tag a snapshot with the last hub sequence the "
                         "site applied")
    if mark is not None and snapshot.hub_seq < mark:
        raise SnapshotBehind(f"{label} is at hub sequence {snapshot.hub_seq}, behind the "
                             f"site's verified snapshot at {mark}",
                             hint="upload a snapshot made now; an older one never replaces "
                             "a newer one")


def activities(sites: Sequence[tuple[SiteId, int | None, bytes | None, int | None]],
               refusals: Sequence[tuple[SiteId, str, int]]) -> list[SiteActivity]:
    """Rows (site, last push, heartbeat report, heartbeat time) and (site, code, count) as
    `SiteActivity` values, in the order of `sites`."""
    by_site: dict[SiteId, dict[str, int]] = {}
    for site_id, code, count in refusals:
        by_site.setdefault(site_id, {})[code] = count
    return [SiteActivity(site_id, last_push,
                         Heartbeat(site_id, report, received) if report is not None
                         and received is not None else None, by_site.get(site_id, {}))
            for site_id, last_push, report, received in sites]


#: Default bound on the sealed bytes of one pull answer (a pull must not load gigabytes).
MAX_PULL_BYTES = 32 * 1024 * 1024

#: Called after a commit with (practice, hub_seq), from any process sharing the store.
CommitListener = Callable[[PracticeId, HubSeq], None]


class HubStore(Protocol):
    """Storage of practices, sites, credentials, batches, mail and snapshots.

    Raises `StoreUnavailable` (retryable) whenever the database cannot be reached.
    """

    schema_version: int
    #: Fixed when the store was created: a rebuilt hub has a different one.
    log_id: UUID

    async def close(self) -> None: ...

    async def legacy_hub_seed(self) -> bytes | None:
        """The signing seed a schema ≤2 hub kept in the store, or None (moved out or never
        there).  Read only to move it to the hub key file (`cloud_hub.keyprint`)."""
        ...

    async def bind_hub_key(self, verify_key: bytes, now_ms: int) -> bytes:
        """Record `verify_key` (public) as this store's hub key unless one is recorded;
        return the recorded one.  When that is `verify_key`, a legacy seed is deleted in
        the same transaction, so call this only once the seed is safe in the key file.
        Idempotent."""
        ...

    # --- operators, practices, enrollment --------------------------------------------------

    async def add_operator(self, credential_hash: bytes, now_ms: int) -> None: ...

    async def operator_exists(self, credential_hash: bytes) -> bool: ...

    async def create_practice(self, practice_id: PracticeId, name: str, now_ms: int) -> None:
        """Create a practice with hub sequence 0."""
        ...

    async def list_practices(self) -> list[PracticeRecord]: ...

    async def practice_exists(self, practice_id: PracticeId) -> bool: ...

    async def add_enrollment_token(self, practice_id: PracticeId, token_hash: bytes,
                                   expires_ms: int, now_ms: int) -> None: ...

    async def enroll_site(self, practice_id: PracticeId, token_hash: bytes, site: NewSite,
                          now_ms: int) -> SiteRecord:
        """Use the token once and register `site`, in one transaction.

        The practice's first site is approved by the token itself; later ones are
        pending.  Raises `EnrollmentRefused` for an unknown, expired or used token.
        """
        ...

    async def register_former_site(self, practice_id: PracticeId, site: NewSite,
                                   now_ms: int) -> SiteRecord:
        """Register a revoked site with its old id and keys (rebuilding a lost hub).

        It can never sync; its key verifies its batches when other sites relay them.
        Raises `AlreadyExists` if the practice has a site with that id.
        """
        ...

    # --- sites --------------------------------------------------------------------------------

    async def get_site(self, practice_id: PracticeId, site_id: SiteId) -> SiteRecord | None: ...

    async def list_sites(self, practice_id: PracticeId) -> list[SiteRecord]: ...

    async def set_site_status(self, practice_id: PracticeId, site_id: SiteId,
                              status: SiteStatus, by: SiteId | None) -> SiteRecord | None:
        """Set a site's status; None if no such site in that practice.  Revoked stays revoked."""
        ...

    # --- batches ------------------------------------------------------------------------------

    async def append_batch(self, batch: IncomingBatch, now_ms: int) -> Appended:
        """Store `batch` at the practice's next hub sequence, or find it stored already.

        Idempotent: the same bytes again return the same hub_seq with
        `duplicate=True`.  Raises `ChainMismatch` (with where the chain
        continues) when the batch does not follow the site's last stored batch.
        Updates record heads and concurrency counts in the same transaction,
        and on PostgreSQL notifies other hub processes on commit.
        """
        ...

    async def batches_after(self, practice_id: PracticeId, after: int, limit: int,
                            max_bytes: int = MAX_PULL_BYTES) -> list[StoredBatch]:
        """Batches with hub_seq > `after`, in hub order: at most `limit`, and no more than
        `max_bytes` of sealed bytes in all — but always the first one, however large."""
        ...

    async def head(self, practice_id: PracticeId) -> int:
        """The practice's latest hub sequence (0 before the first batch)."""
        ...

    async def log_bounds(self, practice_id: PracticeId) -> LogBounds:
        """Head and how far the log was trimmed (both 0 for an unknown practice)."""
        ...

    async def trim(self, practice_id: PracticeId, keep_batches: int) -> int:
        """Delete batches, keeping at least the latest `keep_batches` and every batch after
        the latest *verified* snapshot's hub_seq (`trim_point`); return the new
        `trimmed_through`.  Idempotent; `keep_batches` 0 keeps everything."""
        ...

    async def received_ms(self, practice_id: PracticeId,
                          hub_seqs: Sequence[int]) -> dict[int, int]:
        """When each of the (still stored) batches `hub_seqs` was received."""
        ...

    # --- roster and kit-sealed epochs -------------------------------------------------------

    async def roster_entries(self, practice_id: PracticeId, after: int) -> list[bytes]:
        """The practice's roster entries after position `after` (-1: all), in order."""
        ...

    async def append_roster_entry(self, practice_id: PracticeId, seq: int, raw: bytes,
                                  now_ms: int, change: RosterStatusChange | None) -> bool:
        """Store entry `seq` and apply `change` in one transaction; False (nothing written)
        when the practice already has an entry at `seq` (another site appended first)."""
        ...

    async def put_kit_epoch(self, practice_id: PracticeId, record: KitEpochRecord) -> None:
        """Keep a kit-sealed epoch key (replacing one of the same epoch and kit)."""
        ...

    async def kit_epochs(self, practice_id: PracticeId) -> list[KitEpochRecord]:
        """Every kit-sealed epoch key of the practice, by epoch."""
        ...

    # --- mailbox, snapshots, stats ----------------------------------------------------------

    async def post_mail(self, practice_id: PracticeId, to_site: SiteId, from_site: SiteId,
                        mail_id: UUID, sealed: bytes, now_ms: int) -> None: ...

    async def list_mail(self, practice_id: PracticeId, site_id: SiteId) -> list[MailItem]: ...

    async def mail_usage(self, practice_id: PracticeId, site_id: SiteId) -> tuple[int, int]:
        """(items, sealed bytes) waiting in `site_id`'s mailbox (the hub's quota)."""
        ...

    async def delete_mail(self, practice_id: PracticeId, site_id: SiteId,
                          mail_id: UUID) -> bool: ...

    async def put_snapshot(self, snapshot: NewSnapshot, now_ms: int, *, keep: int) -> None:
        """Store a verified snapshot covering hub sequences 1..hub_seq, in one transaction,
        reading its body in pieces.

        Refuses, storing nothing: `SnapshotBehind` if the same site already had a verified
        snapshot at a later position, `BadRequest` if hub_seq is past the practice's head.
        Replaces the site's snapshot at the same hub_seq (idempotent re-upload).  Then
        keeps the latest `keep` (≥ 1) verified snapshots of the practice and deletes every
        other one, unverified ones of an older schema included.
        """
        ...

    async def latest_snapshot_info(self, practice_id: PracticeId) -> SnapshotInfo | None:
        """The latest verified snapshot's metadata; its bytes are not loaded."""
        ...

    async def snapshot_info(self, practice_id: PracticeId,
                            snapshot_id: UUID) -> SnapshotInfo | None:
        """A verified snapshot of the practice by id (None: none, unverified or foreign)."""
        ...

    async def list_snapshots(self, practice_id: PracticeId) -> list[SnapshotInfo]:
        """The practice's verified snapshots, newest (highest hub_seq) first."""
        ...

    async def snapshot_chunk(self, practice_id: PracticeId, snapshot_id: UUID, offset: int,
                             length: int) -> bytes | None:
        """Bytes [offset, offset+length) of a snapshot; None once it is gone (pruned)."""
        ...

    async def count_snapshots(self, practice_id: PracticeId) -> int: ...

    # --- dashboard: heartbeats, refusals, operator actions ------------------------------

    async def put_heartbeat(self, practice_id: PracticeId, site_id: SiteId, report: bytes,
                            now_ms: int) -> None:
        """Keep `report` as the site's latest heartbeat (replacing the previous one)."""
        ...

    async def count_rejection(self, practice_id: PracticeId, site_id: SiteId, code: str,
                              now_ms: int) -> None:
        """Count one refused push of `site_id` under the wire `code`."""
        ...

    async def site_activity(self, practice_id: PracticeId) -> list[SiteActivity]:
        """Per site of the practice: last push, latest heartbeat, refusals by code."""
        ...

    async def record_operator_action(self, action: OperatorAction) -> None: ...

    async def operator_actions(self, practice_id: PracticeId) -> list[OperatorAction]:
        """The practice's operator actions, oldest first."""
        ...

    async def practice_stats(self, practice_id: PracticeId) -> PracticeStats: ...

    async def watch_commits(self, listener: CommitListener, on_reconnect: Callable[[], None],
                            ) -> None:
        """Run until cancelled, calling `listener` for commits made by *other* processes.

        On SQLite (one process) it only waits.  On PostgreSQL it LISTENs on a
        dedicated connection, reconnects after a database restart, and calls
        `on_reconnect` so waiters re-check what they may have missed.
        """
        ...
