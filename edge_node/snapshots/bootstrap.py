"""Bootstrap a site from the hub's latest snapshot: download, stage, verify, install.

    staged = await fetch_and_stage(client, restore_dir, keyring, directory, progress)
    await restore_into(data_dir, client, keyring, directory, progress)   # restore

Files, all in `DIR/.restore/` (removed once installed):

    snapshot.partial   the download in progress
    snapshot.id        the hub's id of the snapshot being downloaded (`X-Snapshot-Id`)
    snapshot.css       a complete download (fsynced, renamed): a rerun stages from it
                       without downloading again
    staging.sqlite3    the records staged so far (see `staging`)

Resuming: a killed restore reruns the same command.  A complete download is
reused and staging resumes after its last committed batch.  A partial
download continues with `Range: bytes=N-` when the hub answers 206 for the
same `X-Snapshot-Id`; any other answer (200, another snapshot — a newer one
replaced it —, 416) starts the file over.  Records staged from a previous
attempt are kept as long as they are of the same snapshot (`Staging`).

A snapshot that fails verification raises `SnapshotRefused`; its download and
staging file are deleted so the next attempt starts clean, and the data
directory's database is never touched.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Final

from edge_node.errors import SnapshotError, SnapshotRefused
from edge_node.hub_link.client import HubClient
from edge_node.hub_link.errors import HubRefused
from edge_node.snapshots.progress import BootstrapProgress
from edge_node.snapshots.staging import BATCH_RECORDS, Staged, Staging
from edge_node.store.durable_files import fsync_path
from edge_node.store.snapshot_install import install_file, restore_pending
from sync_protocol.keys import Keyring, SiteDirectory

RESTORE_DIR: Final = ".restore"
PARTIAL: Final = "snapshot.partial"
SNAPSHOT_ID: Final = "snapshot.id"
COMPLETE: Final = "snapshot.css"


def restore_dir_of(data_dir: Path) -> Path:
    return data_dir / RESTORE_DIR


def _prepare(restore_dir: Path, complete: Path) -> int | None:
    restore_dir.mkdir(parents=True, exist_ok=True)
    return complete.stat().st_size if complete.exists() else None


async def download_latest(client: HubClient, restore_dir: Path,
                          progress: BootstrapProgress) -> Path | None:
    """The latest snapshot as a complete local file (reused if already downloaded).

    None if the hub has none.  Continues a partial download of the same
    snapshot (HTTP Range).  Raises `HubUnreachable` / `HubRefused` from the
    client, `SnapshotRefused` for a short body, `SnapshotError` for a disk fault.
    """
    complete = restore_dir / COMPLETE
    size = await asyncio.to_thread(_prepare, restore_dir, complete)
    if size is not None:
        progress.download(size, size)
        return complete
    partial, id_file = restore_dir / PARTIAL, restore_dir / SNAPSHOT_ID
    have, have_id = await asyncio.to_thread(_partial_state, partial, id_file)
    try:
        done = await _download(client, partial, id_file, have if have_id else 0, have_id,
                               progress)
    except HubRefused as exc:
        if exc.status != 416:
            raise
        # The partial file is not a prefix the hub can continue: start over.
        done = await _download(client, partial, id_file, 0, None, progress)
    if done is None:
        return None
    await asyncio.to_thread(_complete, partial, id_file, complete, restore_dir)
    return complete


def _partial_state(partial: Path, id_file: Path) -> tuple[int, str | None]:
    try:
        return partial.stat().st_size, id_file.read_text(encoding="ascii").strip() or None
    except OSError:
        return 0, None


def _complete(partial: Path, id_file: Path, complete: Path, restore_dir: Path) -> None:
    os.replace(partial, complete)
    id_file.unlink(missing_ok=True)
    fsync_path(restore_dir)


async def _download(client: HubClient, partial: Path, id_file: Path, offset: int,
                    have_id: str | None, progress: BootstrapProgress) -> int | None:
    """Write (or continue) `partial`; return its final size, None if the hub has no snapshot."""
    async with client.get_latest_snapshot(offset=offset) as download:
        if download is None:
            return None
        same = (download.offset == offset and offset > 0 and download.snapshot_id is not None
                and str(download.snapshot_id) == have_id)
        start = offset if same else 0
        total = download.total if same else download.size
        done = start
        try:
            # Appending only to a prefix of the same snapshot; anything else starts over.
            # Unbuffered: a killed process keeps every byte it received for the resume.
            with partial.open("ab" if same else "wb", buffering=0) as out:
                if not same:
                    await asyncio.to_thread(id_file.write_text,
                                            str(download.snapshot_id or ""), encoding="ascii")
                async for chunk in download.chunks(1 << 20):
                    out.write(chunk)
                    done += len(chunk)
                    progress.download(done, total)
                os.fsync(out.fileno())
        except OSError as exc:
            raise SnapshotError(f"writing the snapshot download to {partial} failed: {exc}",
                                hint="check free space in the data directory") from exc
    if total is not None and done != total:
        raise SnapshotRefused(f"snapshot download ended at {done} of {total} bytes",
                              hint="run the restore again; it downloads the rest")
    return done


async def fetch_and_stage(client: HubClient, restore_dir: Path, keyring: Keyring,
                          directory: SiteDirectory, progress: BootstrapProgress, *,
                          batch_records: int = BATCH_RECORDS) -> Staged | None:
    """Download (or reuse) the latest snapshot and stage it verified; None if the hub has none."""
    path = await download_latest(client, restore_dir, progress)
    if path is None:
        return None
    staging = Staging.at(restore_dir)
    try:
        return await asyncio.to_thread(staging.stage_file, path, keyring, directory,
                                       progress.stage, batch_records=batch_records)
    except SnapshotRefused:
        staging.discard()
        path.unlink(missing_ok=True)
        raise


def finish_restore(restore_dir: Path) -> None:
    shutil.rmtree(restore_dir, ignore_errors=True)


async def restore_into(data_dir: Path, client: HubClient, keyring: Keyring,
                       directory: SiteDirectory, progress: BootstrapProgress, *,
                       batch_records: int = BATCH_RECORDS) -> Staged | None:
    """Bootstrap the (enrolled, empty) data directory from the latest snapshot.

    Returns what was installed, or None if the practice has no snapshot yet
    (the sync loop then pulls the whole log from hub sequence 0).  The tail
    after the snapshot's `hub_seq` is the sync loop's to pull: the cursor and
    every origin's chain head are set from the snapshot.
    """
    if await asyncio.to_thread(restore_pending, data_dir):
        finish_restore(restore_dir_of(data_dir))
        return None
    staged = await fetch_and_stage(client, restore_dir_of(data_dir), keyring, directory,
                                   progress, batch_records=batch_records)
    if staged is None:
        return None
    await asyncio.to_thread(install_file, data_dir, staged.path, staged.meta)
    finish_restore(restore_dir_of(data_dir))
    return staged


__all__ = ["download_latest", "fetch_and_stage", "finish_restore", "restore_dir_of",
           "restore_into"]
