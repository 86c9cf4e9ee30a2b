"""Read a data directory's database for a snapshot: a consistent copy, its meta and its rows.

    with consistent_rows(data_dir, copy_path, practice_id=..., site_id=...,
                         position_of=read_position, snapshot_id=...) as rows:
        for record in rows.records:   # rows.meta first, then every row (`snapshot_records`)
            ...

SQLite's online backup API copies the live database to `copy_path` in one read
transaction: WAL readers never block the writer, and the copy is consistent at
one commit (the resources, history, conflicts and the sync position all come
from that same commit).  The rows are then read from the copy, never from the
live file, and the copy is deleted when the block ends.  Blocking: the caller
runs it in a worker thread.  Sealing the records is the caller's
(`snapshots.export`); this module only reads.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from uuid import UUID

from edge_node.errors import SnapshotError
from edge_node.store.schema import db_path
from edge_node.store.snapshot_position import PositionOf
from edge_node.store.snapshot_records import (
    BATCH,
    CONFLICT,
    HISTORY,
    RESOURCE,
    SnapshotMeta,
    SyncPosition,
)

_FETCH: Final = 2000


@dataclass(frozen=True, slots=True)
class ExportRows:
    """The meta record of a consistent copy and an iterator over all its records."""

    meta: SnapshotMeta
    #: The meta record, then every resource, history, conflict and batch row.
    records: Iterator[list[Any]]


def consistent_copy(data_dir: Path, target: Path) -> None:
    """Copy the live database to `target` at one commit (online backup, one read transaction).

    Raises `SnapshotError` (and leaves no `target`) if the copy fails.
    """
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
    """The meta record, then every resource, history and conflict row (see `snapshot_records`)."""
    yield meta.to_record()
    yield from _rows(conn, RESOURCE, "SELECT type, id, version, last_updated_ms, deleted, "
                     "state, json, patient_ref, vid FROM resources ORDER BY type, id")
    yield from _rows(conn, HISTORY, "SELECT hid, type, id, version, origin, seq, user, device, "
                     "hlc, recorded_ms, deleted, json, vid, kind FROM history ORDER BY hid")
    yield from _rows(conn, CONFLICT, "SELECT type, id, register, heads, shown_origin, "
                     "shown_seq FROM conflicts ORDER BY type, id, register")
    cur = conn.execute(_BATCHES + " ORDER BY hub_seq", _batch_params(meta.site_id,
                                                                     meta.position))
    while batch := cur.fetchmany(16):  # sealed batches are up to a few MiB each
        for row in batch:
            yield [BATCH, *row]


@contextmanager
def consistent_rows(data_dir: Path, copy: Path, *, practice_id: UUID, site_id: UUID,
                    position_of: PositionOf, snapshot_id: UUID) -> Iterator[ExportRows]:
    """The records of a consistent copy of `data_dir`'s database, taken at `copy`.

    `position_of` reads the sync position from the copy (and may refuse it,
    `SnapshotDeferred`).  Raises `SnapshotError` if the copy or a read fails;
    the copy is deleted when the block ends, whatever happens.
    """
    consistent_copy(data_dir, copy)
    try:
        conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
        try:
            meta = read_meta(conn, practice_id, site_id, position_of(conn))
            yield ExportRows(meta, iter_records(conn, meta))
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise SnapshotError(f"writing snapshot {snapshot_id} failed: {exc}",
                            hint="check free space in the data directory") from exc
    finally:
        copy.unlink(missing_ok=True)


__all__ = ["ExportRows", "consistent_copy", "consistent_rows", "iter_records", "read_meta"]
