"""The hub's storage port: what the API needs from a database, and nothing more.

Two implementations pass one contract suite (`tests/cloud_hub/test_store_contract.py`):
`postgres.PostgresStore` (production) and `sqlite.SqliteStore` (embedded).

Every table is keyed by practice id first (the partition key).  Every method
is one transaction.  Library exceptions never leave an implementation: a lost
database becomes `StoreUnavailable` (retryable), constraint races become our
own results or errors.

Ordering contract of `append_batch` (PERFORMANCE.md, "Hub sequence in commit
order"): hub sequence numbers of a practice are assigned under a per-practice
lock in the same transaction that stores the batch, so once a reader sees hub
sequence n, every m < n is already visible — a reader never sees a gap filled later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol
from uuid import UUID

from sync_protocol.ids import BatchId, HubSeq, KeyEpoch, PracticeId, SiteId
from sync_protocol.models import ChangeMeta


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
class SnapshotRecord:
    hub_seq: HubSeq
    site_id: SiteId
    key_epoch: KeyEpoch
    blob: bytes
    created_ms: int


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


#: Default bound on the sealed bytes of one pull answer (a pull must not load gigabytes).
MAX_PULL_BYTES = 32 * 1024 * 1024

#: Called after a commit with (practice, hub_seq), from any process sharing the store.
CommitListener = Callable[[PracticeId, HubSeq], None]


class HubStore(Protocol):
    """Storage of practices, sites, credentials, batches, mail and snapshots.

    Raises `StoreUnavailable` (retryable) whenever the database cannot be reached.
    """

    schema_version: int

    async def close(self) -> None: ...

    async def hub_signing_seed(self, candidate: bytes, now_ms: int) -> bytes:
        """Return the hub's Ed25519 seed, storing `candidate` if there is none yet (once)."""
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

    # --- mailbox, snapshots, stats ----------------------------------------------------------

    async def post_mail(self, practice_id: PracticeId, to_site: SiteId, from_site: SiteId,
                        mail_id: UUID, sealed: bytes, now_ms: int) -> None: ...

    async def list_mail(self, practice_id: PracticeId, site_id: SiteId) -> list[MailItem]: ...

    async def delete_mail(self, practice_id: PracticeId, site_id: SiteId,
                          mail_id: UUID) -> bool: ...

    async def put_snapshot(self, practice_id: PracticeId, site_id: SiteId, hub_seq: HubSeq,
                           key_epoch: KeyEpoch, blob: bytes, now_ms: int) -> None:
        """Store a snapshot covering hub sequences 1..hub_seq (replacing one of the same site
        and hub_seq)."""
        ...

    async def latest_snapshot(self, practice_id: PracticeId) -> SnapshotRecord | None: ...

    async def practice_stats(self, practice_id: PracticeId) -> PracticeStats: ...

    async def watch_commits(self, listener: CommitListener, on_reconnect: Callable[[], None],
                            ) -> None:
        """Run until cancelled, calling `listener` for commits made by *other* processes.

        On SQLite (one process) it only waits.  On PostgreSQL it LISTENs on a
        dedicated connection, reconnects after a database restart, and calls
        `on_reconnect` so waiters re-check what they may have missed.
        """
        ...
