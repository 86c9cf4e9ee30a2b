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
   the snapshot (`store.snapshot_install.replace_practice_data`).
3. The outbox is not touched: those changes stay queued and the pusher sends
   them as usual.  Nothing local is ever dropped; the site is never silently
   reset.

After it returns the caller must recompute the state digest
(`Writer.start_digest`) and resume pulling after `staged.meta.position.hub_seq`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import shutil
from pathlib import Path
from typing import Final
from uuid import UUID

from edge_node.errors import NoSnapshot
from edge_node.hub_link.client import HubClient
from edge_node.log_keys import HUB_SEQ, SITE_ID, SNAPSHOT_ID
from edge_node.snapshots.bootstrap import fetch_and_stage
from edge_node.snapshots.progress import BootstrapProgress, NoProgress
from edge_node.snapshots.staging import Staged
from edge_node.store.snapshot_install import RunExclusive, replace_practice_data
from sync_protocol.keys import Keyring, SiteDirectory

log = logging.getLogger(__name__)

REBOOTSTRAP_DIR: Final = ".rebootstrap"


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
    merged = await run_exclusive(functools.partial(
        replace_practice_data, staging=staged.path, meta=staged.meta, site_id=site_id,
        now_ms=now_ms))
    log.warning("re-bootstrapped from snapshot %s at hub seq %d; %d own changes merged on top "
                "and still queued for push", staged.header.snapshot_id,
                staged.meta.position.hub_seq, merged,
                extra={SNAPSHOT_ID: str(staged.header.snapshot_id),
                       HUB_SEQ: staged.meta.position.hub_seq, SITE_ID: str(site_id)})
    await asyncio.to_thread(shutil.rmtree, work, True)
    return staged


__all__ = ["REBOOTSTRAP_DIR", "RunExclusive", "rebootstrap"]
