"""The practice's site registry: list, approve, revoke; and a site's own status.

The operator may approve (disaster recovery: every site of the practice was
lost, and a restored site holding the keys from the recovery kit has no approved
site to approve it) and revoke; each operator action is kept in the store's
`operator_actions` with the acting credential's ref, and logged with the ids.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from aiohttp import web

from cloud_hub.api import auth
from cloud_hub.api.context import hub
from cloud_hub.api.messages import SiteOut
from cloud_hub.errors import Forbidden, not_found
from cloud_hub.ingest import public_keys
from cloud_hub.log_keys import ACTION_ID, OPERATOR_REF, PRACTICE_ID, SITE_ID
from cloud_hub.notifier import REGISTRY_CHANGED
from cloud_hub.store.base import OperatorAction, SiteRecord, SiteStatus
from sync_protocol.ids import PracticeId, SiteId, uuid7

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
    ctx = hub(request)
    updated = await ctx.store.set_site_status(practice_id, target, status, by)
    if updated is None:
        raise not_found("site")
    ctx.notifier.publish(practice_id, REGISTRY_CHANGED)
    log.info("site %s", status.value, extra={PRACTICE_ID: str(practice_id),
                                               SITE_ID: str(target)})
    return web.json_response(site_out(updated))


async def approve(request: web.Request) -> web.Response:
    """An approved site approves a pending site of its own practice (after the fingerprint)."""
    site = await auth.site(request)
    target = _site_id(request)
    existing = await hub(request).store.get_site(site.practice_id, target)
    if existing is None:
        raise not_found("site")
    if existing.status is SiteStatus.REVOKED:
        raise Forbidden(f"site {target} was revoked and cannot be approved again",
                        hint="enroll the machine again with a new token")
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


async def audit(request: web.Request, who: auth.OperatorCaller, practice_id: PracticeId,
                 site_id: SiteId, action: str) -> None:
    """Record an operator action (store and log, with ids and the credential's ref)."""
    ctx = hub(request)
    now = ctx.now_ms()
    record = OperatorAction(uuid7(now, ctx.random_bytes(10)), practice_id, site_id, action,
                            who.ref, now)
    await ctx.store.record_operator_action(record)
    log.warning("operator %s a site", action, extra={
        PRACTICE_ID: str(practice_id), SITE_ID: str(site_id), OPERATOR_REF: who.ref,
        ACTION_ID: str(record.action_id)})


async def operator_revoke(request: web.Request) -> web.Response:
    who = await auth.operator(request)
    practice_id, target = _practice_id(request), _site_id(request)
    response = await _set_status(request, practice_id, target, SiteStatus.REVOKED, None)
    await audit(request, who, practice_id, target, "revoked")
    return response


async def operator_approve(request: web.Request) -> web.Response:
    """The operator approves a pending site: disaster recovery when no approved site is left.

    The operator cannot compare fingerprints for the practice; the restored site proves
    itself by holding the practice key (recovery kit), which the hub never sees.
    """
    who = await auth.operator(request)
    practice_id, target = _practice_id(request), _site_id(request)
    existing = await hub(request).store.get_site(practice_id, target)
    if existing is None:
        raise not_found("site")
    if existing.status is SiteStatus.REVOKED:
        raise Forbidden(f"site {target} was revoked and cannot be approved again",
                        hint="enroll the machine again with a new token")
    response = await _set_status(request, practice_id, target, SiteStatus.APPROVED, None)
    await audit(request, who, practice_id, target, "approved")
    return response
