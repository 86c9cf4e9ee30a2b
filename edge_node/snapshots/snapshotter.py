"""The periodic snapshot upload inside `edge serve`: one more task of the sync loop's TaskGroup.

    tg.create_task(loop._forever("snapshot", lambda: run_snapshotter(ctx)))

Every `snapshot_check_s` the snapshotter counts the changes applied here
(history rows, local and remote) since its last upload.  Once there are
`snapshot_every_changes` of them and the site is *ready* (`store.snapshot_position`:
every own change acknowledged, the cursor past the last push, nothing held), it
exports a sealed snapshot from a consistent copy (`export`), signs its
attestation (practice, site, snapshot id, hub_seq, key epoch, digest of the
file) with the site's key, uploads both with `HubClient.put_snapshot`
(streamed from the file) and notes the history id it
covered in `DIR/.snapshots/last.json`.  Readiness is checked again *on the
copy*: a local write between the check and the copy defers the round instead
of uploading a snapshot that holds changes the log before its `hub_seq` lacks.

A failed round never stops the node: a disk fault is logged with its hint
and the next round tries again; hub outages go to the sync loop's backoff.
Idempotent: uploading the same position twice replaces the hub's copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from edge_node.errors import SnapshotDeferred, SnapshotError
from edge_node.hub_link.context import SyncContext
from edge_node.hub_link.errors import HubRefused
from edge_node.log_keys import ERROR_CODE, HUB_SEQ, SITE_ID, SNAPSHOT_ID
from edge_node.snapshots.export import ExportResult, export_snapshot
from edge_node.store.snapshot_position import changes_since, ready_position, snapshot_ready

log = logging.getLogger(__name__)

SNAPSHOT_DIR: Final = ".snapshots"
MARKER: Final = "last.json"
UPLOAD_CHUNK_BYTES: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class Uploaded:
    """The last snapshot this site uploaded (kept in `DIR/.snapshots/last.json`)."""

    snapshot_id: str
    hub_seq: int
    history_id: int
    size_bytes: int


def marker_path(data_dir: Path) -> Path:
    return data_dir / SNAPSHOT_DIR / MARKER


def read_marker(data_dir: Path) -> Uploaded | None:
    try:
        raw = json.loads(marker_path(data_dir).read_text(encoding="utf-8"))
        return Uploaded(str(raw["snapshot_id"]), int(raw["hub_seq"]), int(raw["history_id"]),
                        int(raw["size_bytes"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # none yet, or unreadable: the next upload writes a fresh one


def write_marker(data_dir: Path, uploaded: Uploaded) -> None:
    path = marker_path(data_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"snapshot_id": uploaded.snapshot_id, "hub_seq": uploaded.hub_seq,
                               "history_id": uploaded.history_id,
                               "size_bytes": uploaded.size_bytes}), encoding="utf-8")
    os.replace(tmp, path)


async def file_chunks(path: Path, chunk_bytes: int = UPLOAD_CHUNK_BYTES
                      ) -> AsyncIterator[bytes]:
    with path.open("rb") as src:
        while chunk := await asyncio.to_thread(src.read, chunk_bytes):
            yield chunk


async def snapshot_round(ctx: SyncContext) -> Uploaded | None:
    """Export and upload one snapshot if one is due and the site is ready; else None.

    Raises `SnapshotError` (disk), `HubUnreachable` / `HubRefused` (upload).
    """
    keyring = ctx.keyring
    if keyring is None or ctx.state.enrolled_status != "approved":
        return None
    data_dir = ctx.data_dir
    last = await asyncio.to_thread(read_marker, data_dir)
    since, top = await ctx.read(functools.partial(
        changes_since, history_id=last.history_id if last else 0))
    if since < ctx.settings.snapshot_every_changes:
        return None
    why = await ctx.read(functools.partial(snapshot_ready, site_id=ctx.site_id))
    if why is not None:
        log.debug("snapshot due but deferred: %s", why, extra={SITE_ID: str(ctx.site_id)})
        return None
    snapshot_id = uuid.UUID(bytes=ctx.edge.entropy(16), version=4)
    work = data_dir / SNAPSHOT_DIR
    result: ExportResult = await asyncio.to_thread(
        export_snapshot, data_dir, work, keyring=keyring, site=ctx.edge.site,
        practice_id=ctx.state.practice_id, position_of=ready_position(ctx.site_id),
        snapshot_id=snapshot_id)
    try:
        await ctx.hub.put_snapshot(result.attest(ctx.state.practice_id, ctx.edge.site),
                                   file_chunks(result.path))
    finally:
        result.path.unlink(missing_ok=True)
    uploaded = Uploaded(str(snapshot_id), result.hub_seq, top, result.size_bytes)
    await asyncio.to_thread(write_marker, data_dir, uploaded)
    log.info("snapshot %s uploaded: hub seq %d, %d records, %d bytes", snapshot_id,
             result.hub_seq, result.records, result.size_bytes,
             extra={SNAPSHOT_ID: str(snapshot_id), HUB_SEQ: result.hub_seq,
                    SITE_ID: str(ctx.site_id)})
    return uploaded


async def run_snapshotter(ctx: SyncContext) -> None:
    """Run `snapshot_round` every `snapshot_check_s`, forever (the sync loop owns the task)."""
    while True:
        try:
            await snapshot_round(ctx)
        except SnapshotDeferred as exc:
            log.debug("%s", exc.message, extra={SITE_ID: str(ctx.site_id)})
        except SnapshotError as exc:
            log.warning("snapshot round failed: %s; %s", exc.message, exc.hint,
                        extra={SITE_ID: str(ctx.site_id), ERROR_CODE: exc.code})
        except HubRefused as exc:
            if exc.transient:
                raise
            log.warning("the hub refused a snapshot upload (%s); check this site's "
                        "enrollment (approved, its key registered at the hub) and the "
                        "hub's max_snapshot_bytes", exc.hub_code,
                        extra={SITE_ID: str(ctx.site_id), ERROR_CODE: exc.hub_code})
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ctx.settings.snapshot_check_s):
                await asyncio.Event().wait()


__all__ = ["SNAPSHOT_DIR", "Uploaded", "file_chunks", "marker_path", "read_marker",
           "run_snapshotter", "snapshot_round", "write_marker"]
