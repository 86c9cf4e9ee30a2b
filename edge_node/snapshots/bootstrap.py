"""Bootstrap a site from a hub snapshot: download verified, stage, verify, install.

    staged = await fetch_and_stage(client, restore_dir, keyring, directory, progress)
    await restore_into(data_dir, client, keyring, directory, progress)   # restore
    await restore_into(..., snapshot_id=ID)                              # a chosen one

Files, all in `DIR/.restore/` (removed once installed):

    snapshot.partial      the download in progress
    snapshot.attestation  the making site's signed attestation of the snapshot being
                          downloaded (checked before the directory is even created)
    snapshot.css          a complete download whose bytes matched the signed digest
                          (fsynced, renamed): a rerun stages from it without
                          downloading again
    staging.sqlite3       the records staged so far (see `staging`)

What is verified, in order (`download`): the attestation's signature against
the making site's key, before anything is written; the digest of the complete
download, before anything is staged; while staging, the sealed stream itself
(the practice key's authentication, the writer's inner signature, record
shapes); finally that the sealed header names the snapshot the attestation
does.  A snapshot that fails any check raises `SnapshotRefused`; the restore
folder is deleted so the next attempt starts clean, and the data directory's
database is never touched.

Resuming: a killed restore reruns the same command.  A complete download is
reused and staging resumes after its last committed batch; a partial one
continues with an HTTP Range (`download`).  Records staged from a previous
attempt are kept as long as they are of the same snapshot (`Staging`).
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Final
from uuid import UUID

from edge_node.errors import SnapshotRefused
from edge_node.hub_link.client import HubClient
from edge_node.snapshots.download import discard_download, download_snapshot
from edge_node.snapshots.progress import BootstrapProgress
from edge_node.snapshots.staging import BATCH_RECORDS, Staged, Staging
from edge_node.store.snapshot_install import install_file, restore_pending
from sync_protocol.keys import Keyring, SiteDirectory
from sync_protocol.snapshot_signature import SnapshotAttestation

RESTORE_DIR: Final = ".restore"


def restore_dir_of(data_dir: Path) -> Path:
    return data_dir / RESTORE_DIR


def _check_header(staged: Staged, attestation: SnapshotAttestation) -> None:
    h, c = staged.header, attestation.claim
    if (h.snapshot_id, h.site_id, h.hub_seq, h.key_epoch) != (
            c.snapshot_id, c.site_id, c.hub_seq, c.key_epoch):
        raise SnapshotRefused(f"snapshot {h.snapshot_id} (site {h.site_id}, hub seq "
                              f"{h.hub_seq}) is not the one its attestation names "
                              f"({attestation.label()})",
                              hint="the writer site is faulty; tell its administrator and "
                              "restore from another snapshot (--snapshot ID)")


async def fetch_and_stage(client: HubClient, restore_dir: Path, keyring: Keyring,
                          directory: SiteDirectory, progress: BootstrapProgress, *,
                          batch_records: int = BATCH_RECORDS,
                          snapshot_id: UUID | None = None) -> Staged | None:
    """Download (or reuse) a snapshot (`snapshot_id`, or the latest verified) and stage it
    verified; None if the hub has none.  A refused snapshot leaves none of its files (a
    short download keeps its partial file, for the rerun to continue)."""
    got = await download_snapshot(client, restore_dir, keyring.practice_id, directory,
                                  progress, snapshot_id=snapshot_id)
    if got is None:
        return None
    path, attestation = got
    staging = Staging.at(restore_dir)
    try:
        staged = await asyncio.to_thread(staging.stage_file, path, keyring, directory,
                                         progress.stage, batch_records=batch_records)
        _check_header(staged, attestation)
    except SnapshotRefused:
        staging.discard()
        await asyncio.to_thread(discard_download, restore_dir)
        raise
    return staged


def finish_restore(restore_dir: Path) -> None:
    shutil.rmtree(restore_dir, ignore_errors=True)


async def restore_into(data_dir: Path, client: HubClient, keyring: Keyring,
                       directory: SiteDirectory, progress: BootstrapProgress, *,
                       batch_records: int = BATCH_RECORDS,
                       snapshot_id: UUID | None = None) -> Staged | None:
    """Bootstrap the (enrolled, empty) data directory from a snapshot (`snapshot_id`, or
    the latest verified one).

    Returns what was installed, or None if the practice has no snapshot yet
    (the sync loop then pulls the whole log from hub sequence 0).  The tail
    after the snapshot's `hub_seq` is the sync loop's to pull: the cursor and
    every origin's chain head are set from the snapshot.
    """
    if await asyncio.to_thread(restore_pending, data_dir):
        finish_restore(restore_dir_of(data_dir))
        return None
    staged = await fetch_and_stage(client, restore_dir_of(data_dir), keyring, directory,
                                   progress, batch_records=batch_records,
                                   snapshot_id=snapshot_id)
    if staged is None:
        return None
    await asyncio.to_thread(install_file, data_dir, staged.path, staged.meta)
    finish_restore(restore_dir_of(data_dir))
    return staged


__all__ = ["fetch_and_stage", "finish_restore", "restore_dir_of",
           "restore_into"]
