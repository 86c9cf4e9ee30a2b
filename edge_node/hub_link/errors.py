"""Errors of the sync side of the edge (hub client, enrollment, sync loop).

    EdgeError
    └── SyncError                     the hub could not be used for this step
        ├── HubUnreachable            network, TLS handshake, timeout, 5xx: retry may help
        ├── HubRefused                the hub answered with problem details (`code`, `hint`)
        ├── InsecureHubUrl            an http:// hub without --insecure-http
        └── EnrollmentError           enrollment / approval refused locally
            └── FingerprintMismatch   the fingerprint given does not match the registry

`HubRefused` keeps the hub's `code`, HTTP status, `retryable` flag and, on
`chain_broken`, the position the hub expects.  Callers branch on `code`.
"""

from __future__ import annotations

from typing import ClassVar

from edge_node.errors import EdgeError


class SyncError(EdgeError):
    code: ClassVar[str] = "sync_error"
    http_status: ClassVar[int] = 502
    retryable: ClassVar[bool] = False


class HubUnreachable(SyncError):
    """No usable answer from the hub (connection, TLS, timeout, 5xx)."""

    code = "hub_unreachable"
    http_status = 503
    retryable = True


class InsecureHubUrl(SyncError):
    code = "insecure_hub_url"
    http_status = 400


class EnrollmentError(SyncError):
    code = "enrollment_error"
    http_status = 400


class FingerprintMismatch(EnrollmentError):
    code = "fingerprint_mismatch"


class HubRefused(SyncError):
    """The hub refused the request (RFC 9457 problem details)."""

    code = "hub_refused"

    def __init__(self, message: str, *, hint: str = "", hub_code: str = "http_error",
                 status: int = 0, hub_retryable: bool = False,
                 expected_seq: int | None = None,
                 expected_prev_hash: bytes | None = None) -> None:
        super().__init__(message, hint=hint)
        self.hub_code = hub_code
        self.status = status
        self.hub_retryable = hub_retryable or status >= 500
        self.expected_seq = expected_seq
        self.expected_prev_hash = expected_prev_hash

    @property
    def transient(self) -> bool:
        """True if waiting and retrying the same request can succeed."""
        return self.hub_retryable or self.status in (408, 429) or self.status >= 500


__all__ = ["EnrollmentError", "FingerprintMismatch", "HubRefused", "HubUnreachable",
           "InsecureHubUrl", "SyncError"]
