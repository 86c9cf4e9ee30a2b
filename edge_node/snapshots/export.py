"""Write a sealed snapshot of a data directory, from a consistent copy, never blocking the writer.

    result = export_snapshot(data_dir, work_dir, keyring=..., site=..., position_of=...,
                             snapshot_id=..., now_ms=...)

1. SQLite's online backup API copies the live database into `work_dir` in one
   read transaction: WAL readers never block the writer, and the copy is
   consistent at one commit (the resources, history, conflicts and the sync
   position all come from that same commit).
2. Records are streamed from the copy through `SnapshotSealer` into
   `snapshot.partial`, fsynced and renamed to `snapshot.css`; the copy is
   deleted.  Runs in a worker thread (`asyncio.to_thread`): it is CPU and disk.

The caller decides *whether* to export (the outbox must be acknowledged and
pulled back, see `snapshotter`); this module only writes.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from uuid import UUID

from edge_node.snapshots.errors import SnapshotError
from edge_node.snapshots.records import (
    BATCH,
    CONFLICT,
    HISTORY,
    RESOURCE,
    SnapshotMeta,
    SyncPosition,
)
from edge_node.store.schema import db_path
from edge_node.store.site import Site
from sync_protocol.keys import Keyring
from sync_protocol.snapshot import SnapshotSealer

COPY_NAME: Final = "export-copy.sqlite3"
PARTIAL_NAME: Final = "snapshot.partial"
SNAPSHOT_NAME: Final = "snapshot.css"
_FETCH: Final = 2000

PositionOf = Callable[[sqlite3.Connection], SyncPosition]


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path
    snapshot_id: UUID
    hub_seq: int
    key_epoch: int
    size_bytes: int
    records: int
    meta: SnapshotMeta


def consistent_copy(data_dir: Path, target: Path) -> None:
    """Copy the live database to `target` at one commit (online backup, one read transaction)."""
    target.unlink(missing_ok=True)
    try:
        src = sqlite3.connect(db_path(data_dir))
        try:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        target.unlink(missing_ok=True)
        raise SnapshotError(f"copying {data_dir} for a snapshot failed: {exc}",
                            hint="check free space in the data directory; the next "
                            "snapshot round retries") from exc


def read_meta(conn: sqlite3.Connection, practice_id: UUID, site_id: UUID,
              position: SyncPosition) -> SnapshotMeta:
    def count(table: str) -> int:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])

    hlc = conn.execute("SELECT max(hlc) FROM history").fetchone()[0] or 0
    batches = conn.execute(f"SELECT count(*) FROM ({_BATCHES})",
                           _batch_params(site_id, position)).fetchone()[0]
    return SnapshotMeta(practice_id, site_id, position, int(hlc), count("resources"),
                        count("history"), count("conflicts"), int(batches))


# The sealed log up to the snapshot's hub_seq: what this site received, and its own
# acknowledged pushes (the puller keeps no received copy of those).
_BATCHES: Final = (
    "SELECT hub_seq, origin, seq_from, seq_to, sealed FROM received_batches "
    "WHERE hub_seq <= ? UNION ALL SELECT hub_seq, ?, seq_from, seq_to, sealed "
    "FROM pushed_batches WHERE hub_seq IS NOT NULL AND hub_seq <= ?")


def _batch_params(site_id: UUID, position: SyncPosition) -> tuple[object, ...]:
    return (position.hub_seq, str(site_id), position.hub_seq)


def _rows(conn: sqlite3.Connection, kind: str, sql: str) -> Iterator[list[Any]]:
    cur = conn.execute(sql)
    while batch := cur.fetchmany(_FETCH):
        for row in batch:
            yield [kind, *row]


def iter_records(conn: sqlite3.Connection, meta: SnapshotMeta) -> Iterator[list[Any]]:
    """The meta record, then every resource, history and conflict row (see `records`)."""
    yield meta.to_record()
    yield from _rows(conn, RESOURCE, "SELECT type, id, version, last_updated_ms, deleted, "
                     "state, json, patient_ref FROM resources ORDER BY type, id")
    yield from _rows(conn, HISTORY, "SELECT hid, type, id, version, origin, seq, user, device, "
                     "hlc, recorded_ms, deleted, json FROM history ORDER BY hid")
    yield from _rows(conn, CONFLICT, "SELECT type, id, register, heads, shown_origin, "
                     "shown_seq FROM conflicts ORDER BY type, id, register")
    cur = conn.execute(_BATCHES + " ORDER BY hub_seq", _batch_params(meta.site_id,
                                                                     meta.position))
    while batch := cur.fetchmany(16):  # sealed batches are up to a few MiB each
        for row in batch:
            yield [BATCH, *row]


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def export_snapshot(data_dir: Path, work_dir: Path, *, keyring: Keyring, site: Site,
                    practice_id: UUID, position_of: PositionOf, snapshot_id: UUID,
                    chunk_bytes: int = 1 << 20) -> ExportResult:
    """Seal a snapshot of `data_dir` into `work_dir/snapshot.css`; return what it covers.

    Blocking (run it with `asyncio.to_thread`).  Raises `SnapshotError` if the
    copy or the write fails; nothing is left under the final name then.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    copy = work_dir / COPY_NAME
    partial, final = work_dir / PARTIAL_NAME, work_dir / SNAPSHOT_NAME
    consistent_copy(data_dir, copy)
    try:
        conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
        try:
            meta = read_meta(conn, practice_id, site.site_id, position_of(conn))
            key = keyring.current
            sealer = SnapshotSealer(
                practice_id=practice_id, site_id=site.site_id, snapshot_id=snapshot_id,
                hub_seq=meta.position.hub_seq, created_hlc=meta.hlc, key=key,
                site_keys=site.keys, chunk_bytes=chunk_bytes)
            with partial.open("wb") as out:
                out.write(sealer.begin())
                for record in iter_records(conn, meta):
                    out.write(sealer.add(record))
                out.write(sealer.finish())
        finally:
            conn.close()
        _fsync(partial)
        os.replace(partial, final)
    except (OSError, sqlite3.Error) as exc:
        partial.unlink(missing_ok=True)
        raise SnapshotError(f"writing snapshot {snapshot_id} failed: {exc}",
                            hint="check free space in the data directory") from exc
    finally:
        copy.unlink(missing_ok=True)
    return ExportResult(final, snapshot_id, meta.position.hub_seq, key.epoch,
                        final.stat().st_size, sealer.records, meta)


__all__ = ["ExportResult", "PositionOf", "consistent_copy", "export_snapshot", "iter_records",
           "read_meta"]
