"""Admission of a pushed batch: everything the hub checks before it stores one.

Order (cheapest refusal first, nothing expanded or decrypted — the hub cannot):
size and layout limits, protocol version, origin (the header's practice and
site must be the pushing credential's), signature against the site's
registered Ed25519 key, and the header's max HLC against the hub's clock.
The chain (sequence and previous hash) is checked by the store inside the
storing transaction, where it cannot race.
"""

from __future__ import annotations

from dataclasses import dataclass

from cloud_hub.errors import WrongOrigin
from cloud_hub.store.base import IncomingBatch, SiteRecord
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


def admit_batch(raw: bytes, site: SiteRecord, policy: PushPolicy, now_ms: int) -> IncomingBatch:
    """Check `raw` as a push from `site`; return what the store needs.

    Raises `TooLarge`, `MalformedInput`, `UnsupportedVersion`, `UpgradeRequired`,
    `WrongOrigin`, `BadSignature` or `ClockTooFarAhead`.
    """
    sealed = read_sealed(raw, policy.limits)
    header = sealed.header
    if header.practice_id != site.practice_id or header.site_id != site.site_id:
        raise WrongOrigin(f"{sealed.label} names practice {header.practice_id}; the pushing "
                          f"credential is site {site.site_id} of practice {site.practice_id}",
                          hint="a site pushes only its own batches with its own credential")
    sealed.verify_signature(SiteDirectory([public_keys(site)]))
    check_drift(header.max_hlc, now_ms, policy.max_drift_ms, source=sealed.label)
    return incoming(sealed)


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
