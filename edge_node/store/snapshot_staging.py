"""The staging file of a restore: a private SQLite file the snapshot's rows are loaded into.

    found = staging_progress(path)             # (snapshot id, records staged, verified)
    with staging_errors(path):                 # sqlite3 faults → SnapshotError
        db, done = StagingFile.open_for(path, snapshot_id)
        db.add(kind, row); done = db.flush(index)    # one batch, one transaction
        db.finish()                            # secondary indexes, then verified = 1

The file has the edge schema plus a `restore_state` row: which snapshot it
holds, how many records are in, whether the signature verified.  Each batch
and its record count commit in one transaction, so a process killed at any
point resumes after the last committed batch.  A file of another snapshot, or
one a power cut damaged, is discarded.  The practice tables are loaded without
their secondary indexes, which are built once after the load (much faster
than keeping them up to date row by row).

Reading and verifying the sealed stream is the caller's (`snapshots.staging`);
this module owns only the file and its SQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import orjson

from edge_node.errors import SnapshotError, SnapshotRefused
from edge_node.fhir.search_index import index_tokens
from edge_node.store.schema import migrate
from edge_node.store.snapshot_records import BATCH, CONFLICT, HISTORY, RESOURCE, upgraded_row
from edge_node.store.transaction import write_transaction

_STATE: Final = """CREATE TABLE IF NOT EXISTS restore_state (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    snapshot_id TEXT NOT NULL,
    records_done INTEGER NOT NULL,
    verified INTEGER NOT NULL DEFAULT 0
)"""
_INSERT: Final = {
    RESOURCE: "INSERT INTO resources (type, id, version, last_updated_ms, deleted, state, json, "
              "patient_ref, vid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    HISTORY: "INSERT INTO history (hid, type, id, version, origin, seq, user, device, hlc, "
             "recorded_ms, deleted, json, vid, kind) "
             "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    CONFLICT: "INSERT INTO conflicts (type, id, register, heads, shown_origin, shown_seq) "
              "VALUES (?, ?, ?, ?, ?, ?)",
    BATCH: "INSERT OR IGNORE INTO received_batches (hub_seq, origin, seq_from, seq_to, sealed) "
           "VALUES (?, ?, ?, ?, ?)",
}
_TOKENS: Final = "INSERT INTO search_tokens (type, param, value, id) VALUES (?, ?, ?, ?)"
#: Tables bulk-loaded without their secondary indexes (built once, after the load).
_LOADED: Final = ("resources", "history", "search_tokens", "conflicts", "received_batches")
_INDEXES: Final = "CREATE TABLE IF NOT EXISTS restore_indexes (name TEXT PRIMARY KEY, sql TEXT)"
#: Page cache of the staging connection (KiB): the load touches every page once.
CACHE_KIB: Final = 128 * 1024


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    # OFF: this file is private, verified, then fsynced and renamed into place
    # (`snapshot_install`), so durability comes from that fsync + rename.  A killed
    # process loses nothing (the OS has the pages); a power cut may damage the file,
    # which a resume notices (`quick_check`) and starts over.
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    return conn


def discard_staging(path: Path) -> None:
    """Delete the staging file and its WAL files (nothing if there are none)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def staging_progress(path: Path) -> tuple[str, int, bool] | None:
    """(snapshot id, records staged, verified) of the staging file at `path`, if one exists.

    A file that is no database any more (a power cut mid-load) is discarded: None.
    """
    if not path.exists():
        return None
    try:
        conn = _connect(path)
        try:
            conn.execute(_STATE)
            row = conn.execute("SELECT snapshot_id, records_done, verified "
                               "FROM restore_state").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        discard_staging(path)
        return None
    return None if row is None else (str(row[0]), int(row[1]), bool(row[2]))


@contextmanager
def staging_errors(path: Path) -> Iterator[None]:
    """Turn a database fault of the staging file inside the block into `SnapshotError`."""
    try:
        yield
    except sqlite3.Error as exc:
        raise SnapshotError(f"staging the snapshot in {path} failed: {exc}",
                            hint="check free space in the data directory and run the "
                            "restore again; it resumes") from exc


def _defer_indexes(conn: sqlite3.Connection) -> None:
    """Drop the practice tables' secondary indexes, noting them to build after the load."""
    conn.execute(_INDEXES)
    with write_transaction(conn):
        found = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({', '.join('?' * len(_LOADED))})", _LOADED).fetchall()
        for name, sql in found:
            conn.execute("INSERT OR IGNORE INTO restore_indexes (name, sql) VALUES (?, ?)",
                         (name, sql))
            conn.execute(f'DROP INDEX "{name}"')


def _build_indexes(conn: sqlite3.Connection) -> None:
    """Build the deferred indexes in one transaction (a killed build is simply redone)."""
    conn.execute(_INDEXES)
    with write_transaction(conn):
        for _, sql in conn.execute("SELECT name, sql FROM restore_indexes").fetchall():
            conn.execute(str(sql).replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1))
        conn.execute("DROP TABLE restore_indexes")


def _sound(conn: sqlite3.Connection) -> bool:
    try:
        return bool(conn.execute("PRAGMA quick_check").fetchone()[0] == "ok")
    except sqlite3.DatabaseError:
        return False


def _tokens(row: list[Any]) -> list[tuple[str, str, str, str]]:
    rtype, rid = row[1], row[2]
    try:
        resource = orjson.loads(row[7])
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise SnapshotRefused(f"snapshot: resource {rtype} {rid!r} holds no JSON object",
                              hint="the writer site is faulty; use another snapshot") from exc
    return [(rtype, p, v, rid) for p, v in index_tokens(rtype, resource)]


class StagingFile:
    """An open staging file: rows buffered by `add`, written a batch at a time by `flush`."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._pending: dict[str, list[Any]] = {RESOURCE: [], HISTORY: [], CONFLICT: [],
                                               BATCH: []}
        self._tokens: list[tuple[str, str, str, str]] = []
        #: Bytes of sealed batches buffered since the last commit.
        self.pending_bytes = 0

    @classmethod
    def open_for(cls, path: Path, snapshot_id: str) -> tuple[StagingFile, int]:
        """The staging file at `path` for `snapshot_id` and the records it already holds.

        Resumes a sound file of the same snapshot; discards one of another
        snapshot, or a damaged one, and starts a fresh file (the meta record
        counts as staged: 1).  Close it with `close`.
        """
        found = staging_progress(path)
        if found is not None and found[0] != snapshot_id:
            discard_staging(path)
        conn = _connect(path)
        if found is not None and found[0] == snapshot_id and not _sound(conn):
            conn.close()
            discard_staging(path)  # damaged by a power cut (synchronous=OFF): start over
            conn = _connect(path)
        migrate(conn, path)
        conn.execute(_STATE)
        row = conn.execute("SELECT records_done FROM restore_state").fetchone()
        if row is None:
            _defer_indexes(conn)
            conn.execute("INSERT INTO restore_state (one, snapshot_id, records_done) "
                         "VALUES (1, ?, 1)", (snapshot_id,))
            return cls(conn), 1
        return cls(conn), int(row[0])

    def add(self, kind: str, row: list[Any]) -> None:
        """Buffer one checked row record (`check_row`) for the next `flush`.

        A resource row's search tokens are derived from its JSON here; raises
        `SnapshotRefused` if that JSON is not an object.
        """
        self._pending[kind].append(upgraded_row(kind, row)[1:])
        if kind == RESOURCE and row[7] is not None:
            self._tokens.extend(_tokens(row))
        elif kind == BATCH:
            self.pending_bytes += len(row[5])

    def flush(self, records_done: int) -> int:
        """Write the buffered rows and the new record count in one transaction; return it."""
        conn = self._conn
        with write_transaction(conn):
            for kind, rows in self._pending.items():
                if rows:
                    conn.executemany(_INSERT[kind], rows)
                    rows.clear()
            if self._tokens:
                conn.executemany(_TOKENS, self._tokens)
                self._tokens.clear()
            conn.execute("UPDATE restore_state SET records_done = ?", (records_done,))
        self.pending_bytes = 0
        return records_done

    def finish(self) -> None:
        """Build the deferred indexes and mark the file verified (after the signature checked)."""
        _build_indexes(self._conn)
        self._conn.execute("UPDATE restore_state SET verified = 1")

    def close(self) -> None:
        self._conn.close()


__all__ = ["CACHE_KIB", "StagingFile", "discard_staging", "staging_errors", "staging_progress"]
