"""Bearer-token authentication and role checks for every request.

Every request needs `Authorization: Bearer <token>` of an enabled account
(401 otherwise).  Accounts are looked up by the token's SHA-256 on a read
connection and cached per process (positive answers only) for
`ACCOUNT_RECHECK_S`: `edge user add` in another process is seen on the next
request that carries the new token, and `edge user disable` (or a replaced
token) within that time.

Abuse limits (`edge_node.config`): each account's token is rate-limited (a token
bucket, 429 with `Retry-After` beyond it), and a client address whose tokens are
refused `login_failures` times within `lockout_s` gets 429 to every request until
`lockout_s` after its last refusal (a request with no `Authorization` header at all
is answered 401 but not counted).  A refused token is logged by the first 8 hex digits
of its SHA-256 and the client address, never the token or part of it.

What each role may do is listed in `edge_node.store.users`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from aiohttp import web

from edge_node.api.throttle import Lockout, RateLimiter, retry_after
from edge_node.config import EdgeConfig
from edge_node.errors import Forbidden, TooManyRequests, Unauthorized
from edge_node.store.reads import Reader
from edge_node.store.users import Role, User, token_hash, user_from_row
from sync_protocol.ids import UserId

USER_KEY: Final = web.RequestKey("chartsync.user", User)
CHART_READERS: Final = frozenset({Role.CLINICIAN, Role.CLERK, Role.ADMIN})
CLERK_WRITES: Final = frozenset({"Patient", "Encounter"})
AUDIT_READERS: Final = frozenset({Role.ADMIN, Role.AUDITOR})
#: How long an account seen enabled is trusted before it is looked up again: a disabled
#: account or a replaced token is refused at most this long after the change.
ACCOUNT_RECHECK_S: Final = 5.0
log = logging.getLogger(__name__)


def bearer_token(request: web.Request) -> str:
    """The bearer token of `request`; raises `Unauthorized`."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("this request carries no bearer token",
                           hint="send Authorization: Bearer <token>; an admin creates one "
                           "with `chartsync edge user add NAME --role clinician`")
    return token.strip()


class Authenticator:
    """Token → user, with a per-process cache of accounts already seen, a rate limit per
    account and a lockout per client address (module doc)."""

    def __init__(self, limits: EdgeConfig, recheck_s: float = ACCOUNT_RECHECK_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        #: token hash -> (account, when to look it up again)
        self._cache: dict[bytes, tuple[User, float]] = {}
        self.recheck_s = recheck_s
        self.monotonic = monotonic
        self.rate: RateLimiter[UserId] = RateLimiter(limits.rate_per_s, limits.rate_burst)
        self.lockout: Lockout[str] = Lockout(limits.login_failures, limits.lockout_s)

    async def user(self, request: web.Request, reader: Reader) -> User:
        """The account of the request's token; raises `Unauthorized` or `TooManyRequests`."""
        client = request.remote or "-"
        now = self.monotonic()
        locked_s = self.lockout.locked_for(client, now)
        if locked_s > 0:
            raise TooManyRequests(
                f"client {client} is locked out after {self.lockout.max_failures} refused "
                "tokens", hint=f"wait {retry_after(locked_s)} s, then send a valid token; an "
                "admin makes a new one with `chartsync edge user token NAME`",
                retry_after_s=retry_after(locked_s))
        try:
            user = await self._account(request, reader, now)
        except Unauthorized:
            self._refused(request, client, now)
            raise
        self.lockout.succeeded(client)
        wait_s = self.rate.take(user.user_id, now)
        if wait_s > 0:
            raise TooManyRequests(
                f"account {user.user_id} sent more than {self.rate.rate_per_s:g} requests "
                "a second", hint=f"retry after {retry_after(wait_s)} s; a script should "
                "send fewer requests (several changes in one Bundle)",
                retry_after_s=retry_after(wait_s))
        return user

    async def _account(self, request: web.Request, reader: Reader, now: float) -> User:
        token = bearer_token(request)
        digest = token_hash(token)
        cached = self._cache.get(digest)
        if cached is not None and now < cached[1]:
            return cached[0]
        row = await reader.user_row(digest)
        user = user_from_row(row, token) if row is not None else None
        if user is None:
            self._cache.pop(digest, None)
            raise Unauthorized("the bearer token is not valid for this edge (unknown or "
                               "disabled account)",
                               hint="ask an admin for a token made with `chartsync edge "
                               "user add`")
        self._cache[digest] = (user, now + self.recheck_s)
        return user

    def _refused(self, request: web.Request, client: str, now: float) -> None:
        header = request.headers.get("Authorization", "")
        if not header:  # no credential tried (a browser's first request): not a failure
            return
        ref = token_hash(header.partition(" ")[2].strip())[:4].hex()
        locked = self.lockout.failed(client, now)
        log.warning("refused a bearer token (sha256 %s...) from %s%s", ref, client,
                    f"; locked out for {self.lockout.lockout_s:g} s" if locked else "")


def user_of(request: web.Request) -> User:
    return request[USER_KEY]


def require_chart_read(user: User) -> None:
    if user.role not in CHART_READERS:
        raise Forbidden(f"role {user.role} may not read chart data",
                        hint="use an account with the clinician, clerk or admin role")


def require_chart_write(user: User, resource_type: str) -> None:
    if user.role in (Role.CLINICIAN, Role.ADMIN):
        return
    if user.role is Role.CLERK and resource_type in CLERK_WRITES:
        return
    raise Forbidden(f"role {user.role} may not write {resource_type}",
                    hint="ask a clinician or admin to make this change")


def require_audit_read(user: User) -> None:
    if user.role not in AUDIT_READERS:
        raise Forbidden(f"role {user.role} may not read the audit log",
                        hint="use an account with the admin or auditor role")
