"""The practice's site registry: list, approve, revoke; and a site's own status."""

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
from cloud_hub.log_keys import PRACTICE_ID, SITE_ID
from cloud_hub.notifier import REGISTRY_CHANGED
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


async def operator_revoke(request: web.Request) -> web.Response:
    await auth.operator(request)
    try:
        practice_id = PracticeId(UUID(request.match_info["pid"]))
    except ValueError:
        raise not_found("site") from None
    return await _set_status(request, practice_id, _site_id(request), SiteStatus.REVOKED, None)
