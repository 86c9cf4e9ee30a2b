"""Errors of snapshots, bootstrap and restore.

    EdgeError
    └── SnapshotError                  a snapshot could not be made, read or installed
        ├── SnapshotRefused            the bytes are not a sound snapshot of this practice
        │                              (tampered, truncated, wrong key, malformed records)
        ├── NoSnapshot                 the hub holds no snapshot for this practice yet
        ├── SnapshotDeferred           not now: the site is not at a snapshot-safe position
        └── RestoreBlocked             the data directory is not in a state to restore into

Messages name snapshot, site and hub sequence ids, never chart data.  A
refused snapshot leaves nothing in the data directory but the staging area,
which the next attempt discards.
"""

from __future__ import annotations

from typing import ClassVar

from edge_node.errors import EdgeError


class SnapshotError(EdgeError):
    code: ClassVar[str] = "snapshot_error"
    http_status: ClassVar[int] = 500
    retryable: ClassVar[bool] = False


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


__all__ = ["NoSnapshot", "RestoreBlocked", "SnapshotDeferred", "SnapshotError",
           "SnapshotRefused"]
