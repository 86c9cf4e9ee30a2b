"""Re-bootstrap a site the hub's log no longer covers (`410 log_trimmed`), keeping its own changes.

    staged = await rebootstrap(data_dir, hub, keyring=..., directory=..., site_id=...,
                               run_exclusive=..., now_ms=clock())

1. Download and stage the latest snapshot (`bootstrap.fetch_and_stage`, into
   `DIR/.rebootstrap/`), verified, while the node keeps serving.
2. In ONE call of `run_exclusive` — the writer's turn between two groups, so
   no local write can slip in between — merge every own change of the outbox
   that the snapshot does not hold into the staged rows (as any other site
   will merge them), then swap the practice tables of the live database for
   the staged ones in one transaction and set the cursor and chain heads from
   the snapshot (`install.swap_into`).
3. The outbox is not touched: those changes stay queued and the pusher sends
   them as usual.  Nothing local is ever dropped; the site is never silently
   reset.

After it returns the caller must recompute the state digest
(`Writer.start_digest`) and resume pulling after `staged.meta.position.hub_seq`.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final, TypeVar
from uuid import UUID

from edge_node.hub_link.client import HubClient
from edge_node.snapshots.bootstrap import fetch_and_stage
from edge_node.snapshots.errors import NoSnapshot
from edge_node.snapshots.install import merge_own, swap_into
from edge_node.snapshots.progress import BootstrapProgress, NoProgress
from edge_node.snapshots.staging import Staged
from sync_protocol.canonical import unpack
from sync_protocol.keys import Keyring, SiteDirectory
from sync_protocol.models import Change
from sync_protocol.wire import decode_changes

log = logging.getLogger(__name__)

T = TypeVar("T")
RunExclusive = Callable[[Callable[[sqlite3.Connection], T]], Awaitable[T]]
REBOOTSTRAP_DIR: Final = ".rebootstrap"


def own_changes(conn: sqlite3.Connection, site_id: UUID) -> list[Change]:
    """Every change in this site's outbox, in sequence order."""
    out: list[Change] = []
    for seq, raw in conn.execute("SELECT seq, change FROM outbox ORDER BY seq"):
        out.extend(decode_changes(unpack(bytes(raw), what="outbox change", max_len=1 << 26),
                                  origin=site_id, seq_from=int(seq)))
    return out


def replace_practice_data(conn: sqlite3.Connection, staged: Staged, site_id: UUID,
                          now_ms: int) -> int:
    """Merge own changes into `staged`, then swap it into the live `conn`; return merged."""
    mine = own_changes(conn, site_id)
    staging = sqlite3.connect(staged.path, isolation_level=None)
    try:
        merged = merge_own(staging, mine, now_ms)
    finally:
        staging.close()
    swap_into(conn, staged.path, staged.meta)
    return merged


async def rebootstrap(data_dir: Path, hub: HubClient, *, keyring: Keyring,
                      directory: SiteDirectory, site_id: UUID,
                      run_exclusive: RunExclusive[int], now_ms: int,
                      progress: BootstrapProgress | None = None) -> Staged:
    """Replace the practice data from the latest snapshot, own changes merged on top.

    Raises `NoSnapshot` if the hub has none (the trimmed log cannot be
    replaced then: the operator must have a site upload one), `SnapshotRefused`
    for a bad snapshot (nothing changed), hub errors from the client.
    """
    work = data_dir / REBOOTSTRAP_DIR
    staged = await fetch_and_stage(hub, work, keyring, directory, progress or NoProgress())
    if staged is None:
        raise NoSnapshot("the hub trimmed the log this site needs and holds no snapshot",
                         hint="have an up-to-date site upload a snapshot "
                         "(`snapshot_every_changes`), then this site re-bootstraps")
    merged = await run_exclusive(lambda conn: replace_practice_data(conn, staged, site_id,
                                                                    now_ms))
    log.warning("re-bootstrapped from snapshot %s at hub seq %d; %d own changes merged on top "
                "and still queued for push", staged.header.snapshot_id,
                staged.meta.position.hub_seq, merged)
    await asyncio.to_thread(shutil.rmtree, work, True)
    return staged


__all__ = ["REBOOTSTRAP_DIR", "RunExclusive", "own_changes", "rebootstrap",
           "replace_practice_data"]
