"""The edge node's one error tree: what a request or a command can be refused for.

    EdgeError
    ├── RequestError            the client's request is wrong; fix it and retry
    │   ├── InvalidJson             400  body is not JSON
    │   ├── InvalidResource         422  resource fails validation
    │   ├── RecordConfirmed         422  in-place change of a confirmed record or a note
    │   ├── IdMismatch              400  body id differs from the URL id
    │   ├── UnsupportedSearch       400  search parameter we do not serve
    │   ├── BadRequest              400  anything else malformed in the request
    │   ├── UnknownType             404  resource type this edge does not serve
    │   ├── NotFound                404  no such resource or version
    │   ├── Gone                    410  resource deleted (a tombstone version exists)
    │   ├── MethodNotAllowed        405
    │   ├── VersionConflict         412  stale If-Match
    │   ├── WrongState              409  the records are not in a state the operation
    │   │                                applies to (e.g. a patient already merged)
    │   ├── ConflictChanged         409  an open conflict changed since the client read it
    │   ├── PreconditionRequired    428  If-Match required by configuration
    │   ├── BodyTooLarge            413
    │   ├── BodyTimeout             408  the body did not arrive within body_timeout_s
    │   └── HeadersTooLarge         431  request line or headers past their caps
    ├── Unauthorized            401  no or unknown token
    ├── TooManyRequests         429  rate limit of a token, or a client address locked
    │                                out after failed logins; `retry_after_s` says when
    ├── Forbidden               403  role may not do this
    ├── StoreUnavailable        503  the database refused a commit; retry may help
    ├── StoreError                   a data directory that cannot be used (commands)
    │   ├── SchemaTooNew              file written by a newer chartsync
    │   ├── DataDirInUse              another process owns the directory (`edge serve`)
    │   └── BackupRefused             a backup file that does not open or restore (wrong
    │                                 passphrase or kit, altered, cut short, another site)
    └── SnapshotError                a snapshot could not be made, read or installed
        ├── SnapshotRefused           the bytes are not a sound snapshot of this practice
        │                             (tampered, truncated, wrong key, malformed records)
        ├── NoSnapshot                the hub holds no snapshot for this practice yet
        ├── SnapshotDeferred          not now: the site is not at a snapshot-safe position
        └── RestoreBlocked            the data directory is not in a state to restore into

Each class has a stable `code`, an HTTP status and a FHIR `issue.code` (the
OperationOutcome the API answers with) and says whether a retry can help.
Messages carry ids and the next step; never chart data.  A refused snapshot
leaves nothing in the data directory but the staging area, which the next
attempt discards.
"""

from __future__ import annotations

from typing import ClassVar

from sync_protocol.errors import ActionableError


class EdgeError(ActionableError):
    """A refused request or command.  See the module docstring for the tree."""

    code: ClassVar[str] = "edge_error"
    http_status: ClassVar[int] = 500
    fhir_code: ClassVar[str] = "exception"
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        #: Set once an audit row records this refusal (so it is recorded once).
        self.audited = False


class RequestError(EdgeError):
    code = "bad_request"
    http_status = 400
    fhir_code = "invalid"


class InvalidJson(RequestError):
    code = "invalid_json"
    fhir_code = "structure"


class InvalidResource(RequestError):
    code = "invalid_resource"
    http_status = 422
    fhir_code = "invalid"


class RecordConfirmed(RequestError):
    """A write that would change a confirmed record (or a note) in place."""

    code = "record_confirmed"
    http_status = 422
    fhir_code = "business-rule"


class IdMismatch(RequestError):
    code = "id_mismatch"
    fhir_code = "invalid"


class UnsupportedSearch(RequestError):
    code = "unsupported_search"
    fhir_code = "not-supported"


class BadRequest(RequestError):
    code = "bad_request"


class UnknownType(RequestError):
    code = "unknown_type"
    http_status = 404
    fhir_code = "not-supported"


class NotFound(RequestError):
    code = "not_found"
    http_status = 404
    fhir_code = "not-found"


class Gone(RequestError):
    code = "gone"
    http_status = 410
    fhir_code = "deleted"


class MethodNotAllowed(RequestError):
    code = "method_not_allowed"
    http_status = 405
    fhir_code = "not-supported"


class VersionConflict(RequestError):
    code = "version_conflict"
    http_status = 412
    fhir_code = "conflict"


class WrongState(RequestError):
    code = "wrong_state"
    http_status = 409
    fhir_code = "business-rule"


class ConflictChanged(RequestError):
    code = "conflict_changed"
    http_status = 409
    fhir_code = "conflict"


class PreconditionRequired(RequestError):
    code = "precondition_required"
    http_status = 428
    fhir_code = "conflict"


class BodyTooLarge(RequestError):
    code = "body_too_large"
    http_status = 413
    fhir_code = "too-costly"


class BodyTimeout(RequestError):
    code = "body_timeout"
    http_status = 408
    fhir_code = "timeout"
    retryable = True


class HeadersTooLarge(RequestError):
    code = "headers_too_large"
    http_status = 431
    fhir_code = "too-long"


class Unauthorized(EdgeError):
    code = "unauthorized"
    http_status = 401
    fhir_code = "login"


class Forbidden(EdgeError):
    code = "forbidden"
    http_status = 403
    fhir_code = "forbidden"


class TooManyRequests(EdgeError):
    """Over a rate limit or locked out; answered with `Retry-After: retry_after_s`."""

    code = "too_many_requests"
    http_status = 429
    fhir_code = "throttled"
    retryable = True

    def __init__(self, message: str, *, hint: str = "", retry_after_s: int = 1) -> None:
        super().__init__(message, hint=hint)
        self.retry_after_s = retry_after_s


class StoreUnavailable(EdgeError):
    code = "store_unavailable"
    http_status = 503
    fhir_code = "transient"
    retryable = True


class StoreError(EdgeError):
    code = "store_error"


class SchemaTooNew(StoreError):
    code = "schema_too_new"


class DataDirInUse(StoreError):
    code = "data_dir_in_use"
    retryable = True


class BackupRefused(StoreError):
    """The backup was refused before anything was installed; the data directory is untouched."""

    code = "backup_refused"


class SnapshotError(EdgeError):
    code = "snapshot_error"


class SnapshotRefused(SnapshotError):
    """The snapshot failed verification; a fresh download may help (retryable)."""

    code = "snapshot_refused"
    http_status = 502
    retryable = True


class NoSnapshot(SnapshotError):
    code = "no_snapshot"
    http_status = 404


class SnapshotDeferred(SnapshotError):
    """The consistent copy was not at a snapshot-safe position; the next round retries."""

    code = "snapshot_deferred"
    http_status = 409
    retryable = True


class RestoreBlocked(SnapshotError):
    code = "restore_blocked"
    http_status = 409
