"""Download a snapshot from the hub, verified: nothing is written before its signature
checks, nothing is staged before its bytes match the signed digest.

    got = await download_snapshot(client, restore_dir, practice_id, directory, progress,
                                  snapshot_id=None)      # None: the latest verified
    path, attestation = got                               # None if the hub has none

1. The hub answers the snapshot with the making site's attestation as headers
   (`sync_protocol.snapshot_signature`).  It is read for *this* site's practice
   and verified against the making site's key from `directory` before the first
   byte is written to the data directory: a snapshot of another practice, an
   attestation altered at the hub, or one signed by a key that is not the
   site's raises `SnapshotRefused` with nothing written.
2. The body goes to `snapshot.partial` (and the attestation to
   `snapshot.attestation`, so a rerun continues the same snapshot).  Once
   complete, the file's BLAKE2b-256 is computed reading it in pieces and must
   be the signed digest; only then is it renamed `snapshot.css`.  A mismatch
   (bytes changed at rest in the hub's database, or on the way) deletes both
   files and raises `SnapshotRefused`.

Resuming: a complete download is reused when its attestation is the one asked
for.  A partial download continues with `Range: bytes=N-` when the hub answers
206 with the same attestation; any other answer (200, another snapshot — a
newer one replaced it —, 416) starts the file over.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import Final
from uuid import UUID

from edge_node.errors import SnapshotError, SnapshotRefused
from edge_node.hub_link.client import HubClient
from edge_node.hub_link.errors import HubRefused
from edge_node.snapshots.progress import BootstrapProgress
from edge_node.store.durable_files import fsync_path
from sync_protocol.errors import ProtocolError
from sync_protocol.keys import SiteDirectory
from sync_protocol.snapshot_signature import (
    SnapshotAttestation,
    SnapshotDigest,
    attestation_from_headers,
    attestation_headers,
    check_digest,
    verify_attestation,
)

PARTIAL: Final = "snapshot.partial"
ATTESTATION: Final = "snapshot.attestation"
COMPLETE: Final = "snapshot.css"
READ_BYTES: Final = 1 << 20
_PICK_HINT: Final = ("list the hub's snapshots with `chartsync edge snapshots --data DIR` and "
                     "restore from another with --snapshot ID; tell the operator")


def verified_attestation(headers: dict[str, str], practice_id: UUID,
                         directory: SiteDirectory) -> SnapshotAttestation:
    """The attestation in `headers`, checked for `practice_id`; raises `SnapshotRefused`."""
    try:
        attestation = attestation_from_headers(headers, practice_id)
        verify_attestation(attestation, directory.get(attestation.claim.site_id))
    except ProtocolError as exc:
        raise SnapshotRefused(f"snapshot refused before download: {exc.message}",
                              hint=_PICK_HINT) from exc
    return attestation


async def download_snapshot(client: HubClient, restore_dir: Path, practice_id: UUID,
                            directory: SiteDirectory, progress: BootstrapProgress, *,
                            snapshot_id: UUID | None = None,
                            ) -> tuple[Path, SnapshotAttestation] | None:
    """Snapshot `snapshot_id` (None: the latest verified) as a complete, verified local file.

    None if the hub has no snapshot (only when `snapshot_id` is None).  Raises
    `SnapshotRefused` (bad signature, bytes not the signed ones, short body, no
    such snapshot), `HubUnreachable` / `HubRefused` from the client,
    `SnapshotError` for a disk fault.
    """
    complete = restore_dir / COMPLETE
    reused = await asyncio.to_thread(_reusable, restore_dir, practice_id, snapshot_id)
    if reused is not None:
        progress.download(reused[0], reused[0])
        return complete, reused[1]
    have, have_att = await asyncio.to_thread(_partial_state, restore_dir, practice_id)
    try:
        done = await _download(client, restore_dir, have if have_att else 0, have_att,
                               practice_id, directory, snapshot_id, progress)
    except HubRefused as exc:
        if exc.status != 416:
            raise
        # The partial file is not a prefix the hub can continue: start over.
        done = await _download(client, restore_dir, 0, None, practice_id, directory,
                               snapshot_id, progress)
    if done is None:
        return None
    await asyncio.to_thread(_check_and_complete, restore_dir, done)
    return complete, done


def _read_attestation(restore_dir: Path, practice_id: UUID) -> SnapshotAttestation | None:
    try:
        raw = json.loads((restore_dir / ATTESTATION).read_text(encoding="utf-8"))
        return attestation_from_headers(raw, practice_id)
    except (OSError, ValueError, TypeError, ProtocolError):
        return None  # none, or unreadable: download again


def _reusable(restore_dir: Path, practice_id: UUID, snapshot_id: UUID | None
              ) -> tuple[int, SnapshotAttestation] | None:
    complete = restore_dir / COMPLETE
    if not complete.exists():
        return None
    attestation = _read_attestation(restore_dir, practice_id)
    if attestation is None or (snapshot_id is not None
                               and attestation.claim.snapshot_id != snapshot_id):
        complete.unlink(missing_ok=True)  # another snapshot than the one asked for
        return None
    return complete.stat().st_size, attestation


def _partial_state(restore_dir: Path, practice_id: UUID
                   ) -> tuple[int, SnapshotAttestation | None]:
    try:
        size = (restore_dir / PARTIAL).stat().st_size
    except OSError:
        return 0, None
    return size, _read_attestation(restore_dir, practice_id)


def _check_and_complete(restore_dir: Path, attestation: SnapshotAttestation) -> None:
    """Hash the whole download; rename it complete only if it is the signed bytes."""
    partial = restore_dir / PARTIAL
    digest = SnapshotDigest()
    with partial.open("rb") as src:
        while chunk := src.read(READ_BYTES):
            digest.update(chunk)
    try:
        check_digest(attestation, digest.digest(), digest.size)
    except ProtocolError as exc:
        discard_download(restore_dir)
        raise SnapshotRefused(f"snapshot refused: {exc.message}; nothing was staged",
                              hint=_PICK_HINT) from exc
    os.replace(partial, restore_dir / COMPLETE)
    fsync_path(restore_dir)


async def _download(client: HubClient, restore_dir: Path, offset: int,
                    have: SnapshotAttestation | None, practice_id: UUID,
                    directory: SiteDirectory, snapshot_id: UUID | None,
                    progress: BootstrapProgress) -> SnapshotAttestation | None:
    """Write (or continue) the partial file; its attestation, None if the hub has none."""
    partial = restore_dir / PARTIAL
    async with client.get_snapshot(snapshot_id, offset=offset) as download:
        if download is None:
            if snapshot_id is not None:
                raise SnapshotRefused(f"the hub holds no verified snapshot {snapshot_id} of "
                                      "this practice", hint="list the snapshots with "
                                      "`chartsync edge snapshots --data DIR`")
            return None
        attestation = verified_attestation(dict(download.headers), practice_id, directory)
        if snapshot_id is not None and attestation.claim.snapshot_id != snapshot_id:
            raise SnapshotRefused(f"asked for snapshot {snapshot_id}, the hub sent "
                                  f"{attestation.claim.snapshot_id}", hint=_PICK_HINT)
        same = download.offset == offset and offset > 0 and attestation == have
        start = offset if same else 0
        total = download.total if same else download.size
        done = start
        try:
            await asyncio.to_thread(_begin, restore_dir, attestation, same)
            # Appending only to a prefix of the same snapshot; anything else starts over.
            # Unbuffered: a killed process keeps every byte it received for the resume.
            with partial.open("ab" if same else "wb", buffering=0) as out:
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
    return attestation


def discard_download(restore_dir: Path) -> None:
    """Delete a refused snapshot's files, and `restore_dir` itself once it is empty.

    A short download is not refused this way: its partial file stays for the rerun.
    """
    for name in (PARTIAL, ATTESTATION, COMPLETE):
        (restore_dir / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty (a staging file of its own) or gone
        restore_dir.rmdir()


def _begin(restore_dir: Path, attestation: SnapshotAttestation, same: bool) -> None:
    """The first write to the data directory, once the attestation verified."""
    restore_dir.mkdir(parents=True, exist_ok=True)
    if not same:
        (restore_dir / ATTESTATION).write_text(
            json.dumps(attestation_headers(attestation)), encoding="utf-8")


__all__ = ["ATTESTATION", "COMPLETE", "PARTIAL", "discard_download", "download_snapshot",
           "verified_attestation"]
