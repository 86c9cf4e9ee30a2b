"""What the operator may do to a practice's sites, each recorded: one implementation for the
operator API (`cloud_hub.api.sites`, `cloud_hub.api.practices`) and the hub commands
(`chartsync hub site ...`, `cloud_hub.cli.site`).

Every action goes to the store's `operator_actions` (with the operator's reference: a
credential ref from the API, `console:<login>` from the commands) and to the log, as a
warning with the ids.  Announcing a registry change to connected sites is the API's part
(the commands run in another process).
"""

from __future__ import annotations

import logging
from uuid import UUID

from cloud_hub.credentials import credential_hash, new_site_credential
from cloud_hub.errors import Forbidden
from cloud_hub.log_keys import ACTION_ID, OPERATOR_REF, PRACTICE_ID, SITE_ID
from cloud_hub.store.base import HubStore, NewSite, OperatorAction, SiteRecord, SiteStatus
from sync_protocol.errors import ProtocolError
from sync_protocol.ids import PracticeId, SiteId, uuid7
from sync_protocol.roster import fold

log = logging.getLogger(__name__)


def refuse_revoked(site: SiteRecord) -> None:
    """A revoked site stays revoked: raises `Forbidden` for an approval of one."""
    if site.status is SiteStatus.REVOKED:
        raise Forbidden(f"site {site.site_id} was revoked and cannot be approved again",
                        hint="enroll the machine again with a new token")


async def record_operator_action(store: HubStore, practice_id: PracticeId, site_id: SiteId,
                                 action: str, operator_ref: str, now_ms: int,
                                 random_bytes: bytes) -> None:
    """Keep one operator action (`random_bytes`: 10, for its id) and log it."""
    record = OperatorAction(uuid7(now_ms, random_bytes), practice_id, site_id, action,
                            operator_ref, now_ms)
    await store.record_operator_action(record)
    log.warning("operator %s a site", action, extra={
        PRACTICE_ID: str(practice_id), SITE_ID: str(site_id), OPERATOR_REF: operator_ref,
        ACTION_ID: str(record.action_id)})


async def approve_site(store: HubStore, practice_id: PracticeId, site_id: SiteId, *,
                       operator_ref: str, now_ms: int, random_bytes: bytes
                       ) -> SiteRecord | None:
    """Approve a pending site as the operator (disaster recovery); None if the practice
    has no such site.  Raises `Forbidden` for a revoked one.  `random_bytes`: 10."""
    existing = await store.get_site(practice_id, site_id)
    if existing is None:
        return None
    refuse_revoked(existing)
    updated = await store.set_site_status(practice_id, site_id, SiteStatus.APPROVED, None)
    if updated is not None:
        await record_operator_action(store, practice_id, site_id, "approved", operator_ref,
                                     now_ms, random_bytes)
    return updated


async def roster_note(store: HubStore, practice_id: PracticeId, site_id: SiteId) -> str | None:
    """What the operator must know after approving `site_id`: None when the practice roster
    admits it; otherwise why no site will ever send it a key."""
    entries = await store.roster_entries(practice_id, -1)
    if not entries:
        return None  # a practice enrolled before rosters existed: the registry decides
    try:
        if fold(practice_id, entries).is_approved(site_id):
            return None
    except ProtocolError:
        pass
    return (f"site {site_id} is approved at the hub but is not a member of the practice "
            "roster, so no site will seal the practice key to it and it cannot read any "
            "chart. A member site admits it with `chartsync edge approve`; with no site left, "
            "`chartsync edge restore` on that machine proves it with the recovery kit.")


async def register_former_site(store: HubStore, practice_id: PracticeId, site_id: UUID,
                               name: str, verify_key: bytes, box_key: bytes, *,
                               operator_ref: str, now_ms: int, random_bytes: bytes
                               ) -> SiteRecord:
    """Register a site lost with the hub, revoked, under its old id and public keys, so the
    batches it signed verify when the survivors relay them.  Raises `AlreadyExists` if the
    practice has that site.  `random_bytes`: 42 (32 for a credential nobody will ever
    hold — a former site never calls the hub — and 10 for the action's id)."""
    sid = SiteId(site_id)
    unusable = credential_hash(new_site_credential(practice_id, sid, random_bytes[:32]))
    record = await store.register_former_site(
        practice_id, NewSite(sid, name, verify_key, box_key, unusable), now_ms)
    await record_operator_action(store, practice_id, sid, "registered_former_site",
                                 operator_ref, now_ms, random_bytes[32:42])
    return record


__all__ = ["approve_site", "record_operator_action", "refuse_revoked",
           "register_former_site", "roster_note"]
