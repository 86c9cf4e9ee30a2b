"""The practice's site registry: list, approve, revoke; and a site's own status.

The operator may approve (disaster recovery: every site of the practice was
lost, and a restored site holding the keys from the recovery kit has no approved
site to approve it) and revoke; each operator action is kept in the store's
`operator_actions` with the acting credential's ref, and logged with the ids
(`cloud_hub.operator_actions`, shared with the hub commands).
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from aiohttp import web

from cloud_hub.api import auth
from cloud_hub.api.context import hub
from cloud_hub.api.messages import SiteOut
from cloud_hub.errors import not_found
from cloud_hub.ingest import public_keys
from cloud_hub.log_keys import PRACTICE_ID, SITE_ID
from cloud_hub.notifier import REGISTRY_CHANGED
from cloud_hub.operator_actions import (
    approve_site,
    record_operator_action,
    refuse_revoked,
    roster_note,
)
from cloud_hub.store.base import SiteRecord, SiteStatus
from sync_protocol.ids import PracticeId, SiteId

log = logging.getLogger(__name__)


def site_out(site: SiteRecord) -> dict[str, Any]:
    return SiteOut(site_id=site.site_id, name=site.name, verify_key=site.verify_key,
                   box_key=site.box_key, fingerprint=public_keys(site).fingerprint,
                   status=site.status.value, approved_by=site.approved_by,
                   created_ms=site.created_ms).model_dump(mode="json")


def _site_id(request: web.Request) -> SiteId:
    try:
        return SiteId(UUID(request.match_info["sid"]))
    except ValueError:
        raise not_found("site") from None


async def me(request: web.Request) -> web.Response:
    """The calling site's own entry: a pending site polls this to learn it was approved."""
    site = await auth.site(request, approved=False)
    return web.json_response(site_out(site))


async def list_sites(request: web.Request) -> web.Response:
    site = await auth.site(request)
    sites = await hub(request).store.list_sites(site.practice_id)
    return web.json_response({"sites": [site_out(s) for s in sites]})


async def _set_status(request: web.Request, practice_id: PracticeId, target: SiteId,
                      status: SiteStatus, by: SiteId | None) -> web.Response:
    updated = await hub(request).store.set_site_status(practice_id, target, status, by)
    return _changed(request, practice_id, updated)


def _changed(request: web.Request, practice_id: PracticeId,
             updated: SiteRecord | None) -> web.Response:
    """Announce a site's new status to the practice's connected sites; its entry."""
    if updated is None:
        raise not_found("site")
    hub(request).notifier.publish(practice_id, REGISTRY_CHANGED)
    log.info("site %s", updated.status.value, extra={PRACTICE_ID: str(practice_id),
                                                      SITE_ID: str(updated.site_id)})
    return web.json_response(site_out(updated))


async def approve(request: web.Request) -> web.Response:
    """An approved site approves a pending site of its own practice (after the fingerprint)."""
    site = await auth.site(request)
    target = _site_id(request)
    existing = await hub(request).store.get_site(site.practice_id, target)
    if existing is None:
        raise not_found("site")
    refuse_revoked(existing)
    return await _set_status(request, site.practice_id, target, SiteStatus.APPROVED,
                             site.site_id)


async def revoke(request: web.Request) -> web.Response:
    """An approved site revokes a site of its practice; access ends at the next request."""
    site = await auth.site(request)
    return await _set_status(request, site.practice_id, _site_id(request), SiteStatus.REVOKED,
                             None)


def _practice_id(request: web.Request) -> PracticeId:
    try:
        return PracticeId(UUID(request.match_info["pid"]))
    except ValueError:
        raise not_found("site") from None


async def operator_revoke(request: web.Request) -> web.Response:
    who = await auth.operator(request)
    practice_id, target = _practice_id(request), _site_id(request)
    response = await _set_status(request, practice_id, target, SiteStatus.REVOKED, None)
    ctx = hub(request)
    await record_operator_action(ctx.store, practice_id, target, "revoked", who.ref,
                                 ctx.now_ms(), ctx.random_bytes(10))
    return response


async def operator_approve(request: web.Request) -> web.Response:
    """The operator approves a pending site: disaster recovery when no approved site is left.

    The operator cannot compare fingerprints for the practice; the restored site proves
    itself by holding the practice key (recovery kit), which the hub never sees.
    """
    who = await auth.operator(request)
    practice_id, target = _practice_id(request), _site_id(request)
    ctx = hub(request)
    updated = await approve_site(ctx.store, practice_id, target, operator_ref=who.ref,
                                 now_ms=ctx.now_ms(), random_bytes=ctx.random_bytes(10))
    response = _changed(request, practice_id, updated)
    assert updated is not None
    note = await roster_note(ctx.store, practice_id, updated.site_id)
    if note is None:
        return response
    return web.json_response({**site_out(updated), "roster_member": False, "note": note})
