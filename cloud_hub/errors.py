"""The hub's own refusals, next to the wire errors of `sync_protocol.errors`.

    HubError
    ├── Unauthorized        no credential, or one the hub does not know (401)
    ├── SitePending         the site waits for approval by an approved site (403)
    ├── SiteRevoked         the site was revoked; its access ended (403)
    ├── Forbidden           a known caller asking for something its role may not do (403)
    ├── WrongOrigin         a batch naming another practice or site than its pusher (403)
    ├── NotFound            nothing of that id *visible to this caller* (404); the same body
    │                       for "does not exist" and "belongs to another practice"
    ├── LogTrimmed          the batches after the cursor were trimmed; bootstrap from the
    │                       latest snapshot (410)
    ├── BadRequest          a request body or query that does not fit the API (400)
    ├── AlreadyExists       a practice or site id given by the caller is taken (409)
    ├── RosterMoved         a roster entry for a position another site took first (409)
    ├── SnapshotBehind      a snapshot behind its site's previous verified one (409)
    ├── RangeNotSatisfiable a snapshot `Range` outside its bytes (416)
    ├── UnsupportedMediaType a compressed or mistyped request body (415)
    ├── EnrollmentRefused   an enrollment token that is unknown, expired or used (401)
    ├── TooManyRequests     over a credential's rate limit, or locked out after refused
    │                       credentials (429, `Retry-After`; `retry_after_s` in the body)
    ├── BodyTimeout         the request body did not arrive in time (408)
    ├── MailboxFull         the recipient's mailbox is at its quota (409, retryable)
    ├── StoreUnavailable    the database is unreachable right now; retry (503)
    ├── SchemaTooNew        the store was written by a newer hub (startup only)
    └── HubKeyRefused       the hub key file is unsafe, unreadable or not this store's
                            hub key (startup only)

`ChainMismatch` extends the wire's `ChainBroken` with where the hub expects the
site to resume.  Each class has a stable `code`, an HTTP status and says whether
a retry can help; the API turns them into RFC 9457 problem details.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sync_protocol.errors import ActionableError, ChainBroken


class HubError(ActionableError):
    """A refused request or an unavailable hub.  See the module docstring for the tree."""

    code: ClassVar[str] = "hub_error"
    http_status: ClassVar[int] = 500
    retryable: ClassVar[bool] = False

    def details(self) -> dict[str, Any]:
        """Extra members of the problem body (stable names clients may read)."""
        return {}


class Unauthorized(HubError):
    code = "unauthorized"
    http_status = 401


class SitePending(HubError):
    code = "site_pending"
    http_status = 403
    retryable = True  # approval by an administrator of an approved site lets it through


class SiteRevoked(HubError):
    code = "site_revoked"
    http_status = 403


class Forbidden(HubError):
    code = "forbidden"
    http_status = 403


class NotFound(HubError):
    code = "not_found"
    http_status = 404


class BadRequest(HubError):
    code = "bad_request"
    http_status = 400


class EnrollmentRefused(HubError):
    code = "enrollment_refused"
    http_status = 401


class StoreUnavailable(HubError):
    code = "store_unavailable"
    http_status = 503
    retryable = True


class SchemaTooNew(HubError):
    code = "schema_too_new"
    http_status = 500


class HubKeyRefused(HubError):
    code = "hub_key_refused"
    http_status = 500


class ChainMismatch(ChainBroken):
    """`ChainBroken` that says where the site's chain continues on this hub."""

    def __init__(self, message: str, *, hint: str = "", expected_seq: int,
                 expected_prev_hash: bytes) -> None:
        super().__init__(message, hint=hint)
        self.expected_seq = expected_seq
        self.expected_prev_hash = expected_prev_hash


class RosterMoved(HubError):
    """A roster entry for a position another site has taken first."""

    code = "roster_moved"
    http_status = 409
    retryable = True  # fetch the roster again, rebuild the entry on the new head

    def __init__(self, message: str, *, hint: str = "", head_seq: int) -> None:
        super().__init__(message, hint=hint)
        self.head_seq = head_seq

    def details(self) -> dict[str, Any]:
        return {"head_seq": self.head_seq}


def not_found(what: str) -> NotFound:
    """The one 404 for a missing *or foreign* object: callers cannot tell them apart."""
    return NotFound(f"no {what} with that id is visible to this credential",
                    hint="check the id; a site sees only its own practice")


class WrongOrigin(HubError):
    """A batch whose header names another practice or site than the pushing credential."""

    code = "wrong_origin"
    http_status = 403


class UnsupportedMediaType(HubError):
    """A body in an encoding or type the route does not take (e.g. compressed)."""

    code = "unsupported_media_type"
    http_status = 415


class LogTrimmed(HubError):
    """A pull or stream from a cursor older than the oldest batch the hub still keeps."""

    code = "log_trimmed"
    http_status = 410

    def __init__(self, message: str, *, hint: str = "", oldest_kept: int,
                 snapshot_hub_seq: int | None) -> None:
        super().__init__(message, hint=hint)
        self.oldest_kept = oldest_kept
        self.snapshot_hub_seq = snapshot_hub_seq

    def details(self) -> dict[str, Any]:
        return {"oldest_kept": self.oldest_kept, "snapshot_hub_seq": self.snapshot_hub_seq}


class RangeNotSatisfiable(HubError):
    """A `Range` header outside the snapshot's bytes."""

    code = "range_not_satisfiable"
    http_status = 416

    def __init__(self, message: str, *, hint: str = "", size: int) -> None:
        super().__init__(message, hint=hint)
        self.size = size

    def details(self) -> dict[str, Any]:
        return {"size": self.size}


class AlreadyExists(HubError):
    """A practice or site id the caller chose (rebuilding a hub) is already registered."""

    code = "already_exists"
    http_status = 409


class TooManyRequests(HubError):
    """Over a rate limit or locked out; answered with `Retry-After: retry_after_s`."""

    code = "too_many_requests"
    http_status = 429
    retryable = True

    def __init__(self, message: str, *, hint: str = "", retry_after_s: int = 1) -> None:
        super().__init__(message, hint=hint)
        self.retry_after_s = retry_after_s

    def details(self) -> dict[str, Any]:
        return {"retry_after_s": self.retry_after_s}


class BodyTimeout(HubError):
    code = "body_timeout"
    http_status = 408
    retryable = True


class MailboxFull(HubError):
    """The recipient has not collected its mail; retry once it has."""

    code = "mailbox_full"
    http_status = 409
    retryable = True


class SnapshotBehind(HubError):
    """A snapshot at a position behind the uploading site's previous verified snapshot."""

    code = "snapshot_behind"
    http_status = 409
