"""Tuning of the sync loop: one typed object, parsed by a pure function.

Options (defaults in brackets), in the `[sync]` part of the edge's settings:

    max_batch_changes   most changes per pushed batch [500]
    max_batch_bytes     most outbox bytes per pushed batch [4 MiB]
    long_poll_s         wait of one long-poll when the WebSocket is refused [25]
    backoff_max_s       cap of the exponential backoff with jitter [30]
    heartbeat_s         interval of heartbeats to the hub [10]
    mailbox_poll_s      interval of mailbox checks (keys, new epochs) [10]
    control_poll_s      how often a blocked pusher looks for an admin decision [1]
    guard_share         share of the practice's records one site may delete or
                        rewrite within an hour before its pushes are held [0.2]
    guard_min_records   ... but never fewer than this many [50]
    snapshot_every_changes  applied changes (history rows) since the last uploaded snapshot
                        before this site uploads a new one (`snapshots.snapshotter`) [5000]
    snapshot_check_s    how often the snapshotter looks at that count [30]
    max_group_batches   most pulled batches applied in one transaction [64]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from edge_node.errors import StoreError


@dataclass(frozen=True, slots=True)
class SyncSettings:
    max_batch_changes: int = 500
    max_batch_bytes: int = 4 * 1024 * 1024
    long_poll_s: float = 25.0
    backoff_max_s: float = 30.0
    heartbeat_s: float = 10.0
    mailbox_poll_s: float = 10.0
    control_poll_s: float = 1.0
    guard_share: float = 0.2
    guard_min_records: int = 50
    snapshot_every_changes: int = 5000
    snapshot_check_s: float = 30.0
    #: Most pulled batches applied in one transaction (a catch-up costs one commit per group).
    max_group_batches: int = 64


def parse_sync_settings(raw: Mapping[str, Any]) -> SyncSettings:
    """Pure; raises `StoreError` naming the bad key and a valid example."""
    known = {f.name: f for f in fields(SyncSettings)}
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in known:
            raise StoreError(f"unknown sync option {name!r}",
                             hint="options: " + ", ".join(sorted(known)))
        default = getattr(SyncSettings(), name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise StoreError(f"sync.{name}: {value!r} is not a positive number",
                             hint=f"example: {name} = {default}")
        if isinstance(default, int) and not isinstance(value, int):
            raise StoreError(f"sync.{name}: {value!r} is not a whole number",
                             hint=f"example: {name} = {default}")
        if name == "guard_share" and value > 1:
            raise StoreError(f"sync.guard_share: {value!r} is more than 1",
                             hint="example: guard_share = 0.2")
        values[name] = value
    return SyncSettings(**values)
