"""The snapshot errors, under the names `sync/loop.py` imports them by.

The classes live in `edge_node.errors` (the edge's one error tree) so that
`store/`, which stages, exports and installs snapshots, can raise them: store
stands below `snapshots/` and may not import it.
"""

from __future__ import annotations

from edge_node.errors import (
    NoSnapshot,
    RestoreBlocked,
    SnapshotDeferred,
    SnapshotError,
    SnapshotRefused,
)

__all__ = ["NoSnapshot", "RestoreBlocked", "SnapshotDeferred", "SnapshotError",
           "SnapshotRefused"]
