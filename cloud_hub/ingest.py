"""Admission of a pushed batch: everything the hub checks before it stores one.

Order (cheapest refusal first, nothing expanded or decrypted — the hub cannot):
size and layout limits, protocol version, origin, signature against the
origin's registered Ed25519 key, and the header's max HLC against the hub's clock.

Origin: the header's practice must be the pushing credential's.  Its site is
the pusher's own, or — a relay, to rebuild a lost hub from the edges' copies
(docs/design.md) — another site of the same practice that was approved at some time
(approved now, or revoked later: its registered key stays).  The origin's
chain rules apply either way; an unknown site, a pending one or another
practice is refused as `WrongOrigin`.
The chain (sequence and previous hash) is checked by the store inside the
storing transaction, where it cannot race.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloud_hub.errors import WrongOrigin
from cloud_hub.store.base import IncomingBatch, SiteRecord, SiteStatus
from sync_protocol.batch import SealedBatch, read_sealed
from sync_protocol.framing import Limits
from sync_protocol.hlc import check_drift
from sync_protocol.ids import BatchId, KeyEpoch, PracticeId, SiteId
from sync_protocol.keys import SiteDirectory, SitePublicKeys


@dataclass(frozen=True, slots=True)
class PushPolicy:
    """Limits on what a site may push."""

    limits: Limits
    max_drift_ms: int


def read_push(raw: bytes, pusher: SiteRecord, policy: PushPolicy) -> SealedBatch:
    """Parse `raw` and check its practice is the pusher's.

    Raises `TooLarge`, `MalformedInput`, `UnsupportedVersion`, `UpgradeRequired` or
    `WrongOrigin`.  The origin site is `header.site_id`; see `admit_batch`.
    """
    sealed = read_sealed(raw, policy.limits)
    if sealed.header.practice_id != pusher.practice_id:
        raise _wrong_origin(sealed, pusher)
    return sealed


def admit_batch(sealed: SealedBatch, pusher: SiteRecord, origin: SiteRecord | None,
                policy: PushPolicy, now_ms: int) -> IncomingBatch:
    """Check `sealed` (from `read_push`) as pushed by `pusher` on behalf of `origin`, the
    registered site its header names (None if there is none); return what the store needs.

    Raises `WrongOrigin`, `BadSignature` or `ClockTooFarAhead`.
    """
    header = sealed.header
    if (origin is None or origin.practice_id != pusher.practice_id
            or origin.site_id != header.site_id or origin.status is SiteStatus.PENDING):
        raise _wrong_origin(sealed, pusher)
    sealed.verify_signature(SiteDirectory([public_keys(origin)]))
    check_drift(header.max_hlc, now_ms, policy.max_drift_ms, source=sealed.label)
    return incoming(sealed)


def _wrong_origin(sealed: SealedBatch, pusher: SiteRecord) -> WrongOrigin:
    # The same answer for another practice and for an unknown site: nothing is learnt.
    return WrongOrigin(f"{sealed.label} names practice {sealed.header.practice_id}; the "
                       f"pushing credential is site {pusher.site_id} of practice "
                       f"{pusher.practice_id}", hint="a site pushes its own batches, or relays "
                       "batches of registered sites of its own practice")


def public_keys(site: SiteRecord) -> SitePublicKeys:
    return SitePublicKeys(site_id=site.site_id, verify_key=site.verify_key,
                          box_key=site.box_key)


def incoming(sealed: SealedBatch) -> IncomingBatch:
    """The store's view of a parsed batch (no checks)."""
    h = sealed.header
    return IncomingBatch(
        practice_id=PracticeId(h.practice_id), site_id=SiteId(h.site_id),
        batch_id=BatchId(h.batch_id),
        seq_from=h.seq_from, seq_to=h.seq_to, prev_hash=h.prev_hash, batch_hash=sealed.hash,
        key_epoch=KeyEpoch(h.key_epoch), max_hlc=h.max_hlc, metas=h.changes, sealed=sealed.raw)
