"""Practices, enrollment tokens and enrollment (operator calls, plus site invites)."""

from __future__ import annotations

import logging
from uuid import UUID

from aiohttp import web

from cloud_hub import operator_actions
from cloud_hub.api import auth
from cloud_hub.api.body import read_json
from cloud_hub.api.context import hub
from cloud_hub.api.messages import (
    CreateEnrollmentToken,
    CreatePractice,
    EnrollmentTokenOut,
    EnrollRequest,
    EnrollResponse,
    FormerSite,
    PracticeOut,
)
from cloud_hub.api.sites import site_out
from cloud_hub.credentials import (
    credential_hash,
    new_enrollment_token,
    new_site_credential,
    parse_token,
)
from cloud_hub.errors import AlreadyExists, EnrollmentRefused, not_found
from cloud_hub.log_keys import PRACTICE_ID, SITE_ID
from cloud_hub.store.base import HubStore, NewSite
from sync_protocol.ids import PracticeId, SiteId, uuid7
from sync_protocol.keys import SitePublicKeys

log = logging.getLogger(__name__)


def path_uuid(request: web.Request, name: str, what: str) -> UUID:
    """A UUID path segment; anything else is as absent as a foreign id (404)."""
    try:
        return UUID(request.match_info[name])
    except ValueError:
        raise not_found(what) from None


async def create_practice(request: web.Request) -> web.Response:
    await auth.operator(request)
    ctx = hub(request)
    body = await read_json(request, CreatePractice, ctx.config.max_json_bytes)
    now = ctx.now_ms()
    if body.practice_id is not None:  # rebuilding a lost hub: the practice keeps its id
        practice_id = PracticeId(body.practice_id)
        if await ctx.store.practice_exists(practice_id):
            raise AlreadyExists(f"practice {practice_id} exists on this hub",
                                hint="omit practice_id to create a new practice")
    else:
        practice_id = PracticeId(uuid7(now, ctx.random_bytes(10)))
    await ctx.store.create_practice(practice_id, body.name, now)
    log.info("practice created", extra={PRACTICE_ID: str(practice_id)})
    out = PracticeOut(practice_id=practice_id, name=body.name, created_ms=now)
    return web.json_response(out.model_dump(mode="json"), status=201)


async def list_practices(request: web.Request) -> web.Response:
    await auth.operator(request)
    practices = await hub(request).store.list_practices()
    return web.json_response({"practices": [
        PracticeOut(practice_id=p.practice_id, name=p.name, created_ms=p.created_ms)
        .model_dump(mode="json") for p in practices]})


async def practice_sites(request: web.Request) -> web.Response:
    """The operator's view of one practice's sites."""
    await auth.operator(request)
    practice_id = PracticeId(path_uuid(request, "pid", "practice"))
    store = hub(request).store
    if not await store.practice_exists(practice_id):
        raise not_found("practice")
    sites = await store.list_sites(practice_id)
    return web.json_response({"sites": [site_out(s) for s in sites]})


async def register_former_site(request: web.Request) -> web.Response:
    """The operator registers a gone site (revoked) with its old id and keys, so that its
    batches relayed by the surviving sites verify on a rebuilt hub (docs/design.md,
    "Rebuilding a lost hub").  Audited."""
    who = await auth.operator(request)
    practice_id = PracticeId(path_uuid(request, "pid", "practice"))
    ctx = hub(request)
    if not await ctx.store.practice_exists(practice_id):
        raise not_found("practice")
    body = await read_json(request, FormerSite, ctx.config.max_json_bytes)
    record = await operator_actions.register_former_site(
        ctx.store, practice_id, body.site_id, body.name, body.verify_key, body.box_key,
        operator_ref=who.ref, now_ms=ctx.now_ms(), random_bytes=ctx.random_bytes(42))
    return web.json_response(site_out(record), status=201)


async def create_enrollment_token(request: web.Request) -> web.Response:
    """A one-time, expiring token; the operator or an approved site of the practice."""
    practice_id = PracticeId(path_uuid(request, "pid", "practice"))
    await auth.practice_member_or_operator(request, practice_id)
    ctx = hub(request)
    body = await read_json(request, CreateEnrollmentToken, ctx.config.max_json_bytes)
    token, expires_ms = await issue_enrollment_token(ctx.store, practice_id, ctx.now_ms(),
                                                     ctx.random_bytes(32),
                                                     body.ttl_s or ctx.config.enrollment_ttl_s)
    out = EnrollmentTokenOut(practice_id=practice_id, token=token, expires_ms=expires_ms)
    return web.json_response(out.model_dump(mode="json"), status=201)


async def issue_enrollment_token(store: HubStore, practice_id: PracticeId, now_ms: int,
                                 random_bytes: bytes, ttl_s: int) -> tuple[str, int]:
    """Mint and store a token for `practice_id`; return it (shown once) and its expiry."""
    token = new_enrollment_token(practice_id, random_bytes)
    expires_ms = now_ms + ttl_s * 1000
    await store.add_enrollment_token(practice_id, credential_hash(token), expires_ms, now_ms)
    return token, expires_ms


async def enroll(request: web.Request) -> web.Response:
    """Register a site with a token and its public keys; the token is the only credential."""
    ctx = hub(request)
    body = await read_json(request, EnrollRequest, ctx.config.max_json_bytes)
    parsed = parse_token(body.token)
    if parsed is None or parsed.kind != "enrollment" or parsed.practice_id is None:
        raise EnrollmentRefused("this enrollment token is not known to the hub",
                                hint="copy the whole token, starting with cse_")
    now = ctx.now_ms()
    practice_id = parsed.practice_id
    if body.site_id is not None:  # a site re-enrolling on a rebuilt hub keeps its id
        site_id = SiteId(body.site_id)
        if await ctx.store.get_site(practice_id, site_id) is not None:
            raise AlreadyExists(f"site {site_id} is already registered in this practice",
                                hint="omit site_id to enroll as a new site")
    else:
        site_id = SiteId(uuid7(now, ctx.random_bytes(10)))
    credential = new_site_credential(practice_id, site_id, ctx.random_bytes(32))
    record = await ctx.store.enroll_site(
        practice_id, parsed.hash,
        NewSite(site_id, body.name, body.verify_key, body.box_key, credential_hash(credential)),
        now)
    log.info("site enrolled", extra={PRACTICE_ID: str(practice_id), SITE_ID: str(site_id)})
    fingerprint = SitePublicKeys(site_id=site_id, verify_key=body.verify_key,
                                 box_key=body.box_key).fingerprint
    out = EnrollResponse(practice_id=practice_id, site_id=site_id, credential=credential,
                         status=record.status.value, fingerprint=fingerprint,
                         hub_verify_key=bytes(ctx.signing_key.verify_key))
    return web.json_response(out.model_dump(mode="json"), status=201)
