"""Who is calling: `Authorization: Bearer <token>` → the operator, or one site of one practice.

A site credential names its (practice, site); the row is found by those ids
and the hash compared in constant time.  Status is read on every request, so
approval and revocation take effect at once.

Abuse limits (`cloud_hub.config`): each credential is rate-limited (a token bucket,
429 with `Retry-After`); an account (the one a credential claims) whose credentials are
refused `login_failures` times from one client address within `lockout_s` is locked out
from that address (429) until `lockout_s` after the last refusal.  Refusals are logged
with the claimed account's id and the first 8 hex digits of the credential's SHA-256,
never the credential or part of it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web

from cloud_hub.api.context import hub
from cloud_hub.api.throttle import THROTTLE, retry_after
from cloud_hub.credentials import ParsedCredential, parse_token, same_hash
from cloud_hub.errors import (
    Forbidden,
    SitePending,
    SiteRevoked,
    TooManyRequests,
    Unauthorized,
    not_found,
)
from cloud_hub.store.base import SiteRecord, SiteStatus
from sync_protocol.ids import PracticeId


@dataclass(frozen=True, slots=True)
class OperatorCaller:
    """The hub's operator: administers practices; never reads batches.

    `ref` names which operator credential acted (the first 8 bytes of its stored
    hash, hex) for the audit of operator actions; it reveals nothing of the secret.
    """

    ref: str = ""


Caller = OperatorCaller | SiteRecord
log = logging.getLogger(__name__)

_UNAUTHORIZED_HINT = "send `Authorization: Bearer <credential>` with a site or operator credential"


async def caller(request: web.Request) -> Caller:
    """Authenticate the request; raises `Unauthorized` (same answer for every bad token),
    or `TooManyRequests` when the account is over its rate or locked out here."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    parsed = parse_token(token.strip()) if scheme.lower() == "bearer" else None
    throttle = request.app[THROTTLE]
    now_s = hub(request).now_ms() / 1000
    key = (_claimed_account(parsed), request.remote or "-")
    locked_s = throttle.lockout.locked_for(key, now_s)
    if locked_s > 0:
        raise TooManyRequests(
            f"{key[0]} is locked out from {key[1]} after {throttle.lockout.max_failures} "
            "refused credentials", hint=f"wait {retry_after(locked_s)} s, then send the "
            "right credential", retry_after_s=retry_after(locked_s))
    try:
        who = await _authenticated(request, parsed)
    except Unauthorized:
        if header:  # a request with no credential at all tried nothing
            locked = throttle.lockout.failed(key, now_s)
            log.warning("refused a credential for %s (sha256 %s...) from %s%s", key[0],
                        parsed.hash[:4].hex() if parsed else "-", key[1],
                        f"; locked out for {throttle.lockout.lockout_s:g} s" if locked else "")
        raise
    throttle.lockout.succeeded(key)
    account = f"operator {who.ref}" if isinstance(who, OperatorCaller) else \
        f"site {who.site_id}"
    wait_s = throttle.rate.take(account, now_s)
    if wait_s > 0:
        raise TooManyRequests(f"{account} sent more than {throttle.rate.rate_per_s:g} "
                              "requests a second", hint=f"retry after {retry_after(wait_s)} s",
                              retry_after_s=retry_after(wait_s))
    return who


def _claimed_account(parsed: ParsedCredential | None) -> str:
    """The account a credential names (ids only; nothing of the secret)."""
    if parsed is None:
        return "a malformed credential"
    if parsed.kind == "site" and parsed.site_id is not None:
        return f"site {parsed.site_id}"
    return parsed.kind


async def _authenticated(request: web.Request, parsed: ParsedCredential | None) -> Caller:
    if parsed is None:
        raise Unauthorized("missing or malformed credential", hint=_UNAUTHORIZED_HINT)
    store = hub(request).store
    if parsed.kind == "operator" and await store.operator_exists(parsed.hash):
        return OperatorCaller(parsed.hash[:8].hex())
    if parsed.kind == "site" and parsed.practice_id and parsed.site_id:
        site = await store.get_site(parsed.practice_id, parsed.site_id)
        if site is not None and same_hash(site.credential_hash, parsed.hash):
            return site
    raise Unauthorized("credential not recognised", hint=_UNAUTHORIZED_HINT)


async def operator(request: web.Request) -> OperatorCaller:
    """The operator, or `Forbidden` for a site (which learns nothing by it)."""
    who = await caller(request)
    if not isinstance(who, OperatorCaller):
        raise Forbidden("this call is for the hub operator",
                        hint="use the operator credential from `chartsync hub operator create`")
    return who


def check_active(site: SiteRecord) -> SiteRecord:
    """`site` if approved; raises `SitePending` or `SiteRevoked` otherwise."""
    if site.status is SiteStatus.APPROVED:
        return site
    if site.status is SiteStatus.PENDING:
        raise SitePending(f"site {site.site_id} waits for approval",
                          hint="an administrator at an approved site of the practice must "
                          "compare the key fingerprint and approve this site")
    raise SiteRevoked(f"site {site.site_id} was revoked",
                      hint="enroll this machine again with a new token if it should sync")


async def site(request: web.Request, *, approved: bool = True) -> SiteRecord:
    """The calling site (approved unless `approved=False`); an operator gets `Forbidden`."""
    who = await caller(request)
    if isinstance(who, OperatorCaller):
        raise Forbidden("this call is for sites", hint="use a site credential")
    if who.status is SiteStatus.REVOKED or approved:
        return check_active(who)
    return who


async def practice_member_or_operator(request: web.Request,
                                      practice_id: PracticeId) -> Caller:
    """The operator, or an approved site of `practice_id`; anyone else sees 404."""
    who = await caller(request)
    if isinstance(who, OperatorCaller):
        if not await hub(request).store.practice_exists(practice_id):
            raise not_found("practice")
        return who
    check_active(who)
    if who.practice_id != practice_id:
        raise not_found("practice")
    return who
