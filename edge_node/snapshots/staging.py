"""Stage a downloaded snapshot into a private SQLite file, resumably, and verify it.

    staging = Staging.open(restore_dir)
    staged = staging.stage_file(snapshot_path, keyring, directory, on_progress)

The staging file (`.restore/staging.sqlite3` in the data directory) has the
edge schema plus a `restore_state` row: which snapshot it holds, how many
records are in, whether the signature verified.  Records go in batches, each
batch and its record count in one transaction, so a process killed at any
point resumes from the last committed batch: the snapshot file is read again
from the start (the stream cipher and the signature need every byte), the
records already staged are skipped, the rest inserted.  A staging file of
another snapshot is discarded.

Nothing here touches the live database: a snapshot that turns out tampered,
truncated or malformed raises `SnapshotRefused` and leaves only this file,
which the next attempt discards.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from edge_node.fhir.search_index import index_tokens
from edge_node.snapshots.errors import SnapshotError, SnapshotRefused
from edge_node.snapshots.records import (
    BATCH,
    CONFLICT,
    HISTORY,
    RESOURCE,
    SnapshotMeta,
    check_row,
)
from edge_node.store.schema import migrate
from edge_node.store.transaction import write_transaction
from sync_protocol.errors import ProtocolError
from sync_protocol.keys import Keyring, SiteDirectory
from sync_protocol.snapshot import SnapshotHeader, SnapshotOpener

STAGING_NAME: Final = "staging.sqlite3"
READ_BYTES: Final = 1 << 20
BATCH_RECORDS: Final = 20_000
#: ... or fewer, once the sealed batches pending reach this many bytes.
BATCH_BYTES: Final = 64 << 20

#: (bytes of the snapshot file read, its size, records staged, records in all)
Progress = Callable[[int, int, int, int], None]

_STATE: Final = """CREATE TABLE IF NOT EXISTS restore_state (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    snapshot_id TEXT NOT NULL,
    records_done INTEGER NOT NULL,
    verified INTEGER NOT NULL DEFAULT 0
)"""
_INSERT: Final = {
    RESOURCE: "INSERT INTO resources (type, id, version, last_updated_ms, deleted, state, json, "
              "patient_ref) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    HISTORY: "INSERT INTO history (hid, type, id, version, origin, seq, user, device, hlc, "
             "recorded_ms, deleted, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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


@dataclass(frozen=True, slots=True)
class Staged:
    """A verified staging file: what it holds and where it is."""

    path: Path
    header: SnapshotHeader
    meta: SnapshotMeta
    resumed_from: int


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    # OFF: this file is private, verified, then fsynced and renamed into place
    # (`install`), so durability comes from that fsync + rename.  A killed process
    # loses nothing (the OS has the pages); a power cut may damage the file, which
    # a resume notices (`quick_check`) and starts over.
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    return conn


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


class Staging:
    """The staging file of one data directory's restore."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def at(cls, restore_dir: Path) -> Staging:
        restore_dir.mkdir(parents=True, exist_ok=True)
        return cls(restore_dir / STAGING_NAME)

    def discard(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def progress(self) -> tuple[str, int, bool] | None:
        """(snapshot id, records staged, verified) of the staging file, if one exists."""
        if not self.path.exists():
            return None
        try:
            conn = _connect(self.path)
            try:
                conn.execute(_STATE)
                row = conn.execute("SELECT snapshot_id, records_done, verified "
                                   "FROM restore_state").fetchone()
            finally:
                conn.close()
        except sqlite3.DatabaseError:
            self.discard()  # not a database any more (a power cut mid-load): start over
            return None
        return None if row is None else (str(row[0]), int(row[1]), bool(row[2]))

    def stage_file(self, snapshot: Path, keyring: Keyring, directory: SiteDirectory,
                   on_progress: Progress | None = None, *,
                   batch_records: int = BATCH_RECORDS) -> Staged:
        """Stage every record of `snapshot` and verify its signature; blocking.

        Resumes a staging file of the same snapshot; discards one of another.
        Raises `SnapshotRefused` (tampered, truncated, wrong key, bad records)
        or `SnapshotError` (disk).
        """
        try:
            return self._stage(snapshot, keyring, directory, on_progress, batch_records)
        except ProtocolError as exc:
            raise SnapshotRefused(f"snapshot refused: {exc}",
                                  hint=exc.hint or "download the latest snapshot again; "
                                  "nothing was installed") from exc
        except sqlite3.Error as exc:
            raise SnapshotError(f"staging the snapshot in {self.path} failed: {exc}",
                                hint="check free space in the data directory and run the "
                                "restore again; it resumes") from exc

    def _stage(self, snapshot: Path, keyring: Keyring, directory: SiteDirectory,
               on_progress: Progress | None, batch_records: int) -> Staged:
        size = snapshot.stat().st_size
        opener = SnapshotOpener(keyring, directory)
        conn: sqlite3.Connection | None = None
        done = 0
        resumed_from = 0
        index = 0
        meta: SnapshotMeta | None = None
        pending: dict[str, list[Any]] = {RESOURCE: [], HISTORY: [], CONFLICT: [], BATCH: []}
        tokens: list[tuple[str, str, str, str]] = []
        read = 0
        pending_bytes = 0
        try:
            with snapshot.open("rb") as src:
                while chunk := src.read(READ_BYTES):
                    read += len(chunk)
                    for record in opener.feed(chunk):
                        index += 1
                        if meta is None:
                            assert opener.header is not None
                            label = f"snapshot {opener.header.snapshot_id}"
                            meta = SnapshotMeta.from_record(record, label=label)
                            conn, done = self._open_for(str(opener.header.snapshot_id))
                            resumed_from = done
                            continue
                        kind, row = check_row(record, label=label)
                        if index <= done:
                            continue
                        pending[kind].append(row[1:])
                        if kind == RESOURCE and row[7] is not None:
                            tokens.extend(_tokens(row))
                        elif kind == BATCH:
                            pending_bytes += len(row[5])
                        if index - done >= batch_records or pending_bytes >= BATCH_BYTES:
                            pending_bytes = 0
                            assert conn is not None and meta is not None
                            done = _flush(conn, pending, tokens, index)
                            if on_progress is not None:
                                on_progress(read, size, done, meta.records)
                    if on_progress is not None and meta is not None:
                        on_progress(read, size, max(index, done), meta.records)
            header = opener.finish()
            if meta is None or conn is None:
                raise SnapshotRefused(f"snapshot {header.snapshot_id} holds no records",
                                      hint="download the latest snapshot again")
            done = _flush(conn, pending, tokens, index)
            if index != meta.records:
                raise SnapshotRefused(
                    f"snapshot {header.snapshot_id} holds {index} records, its meta record "
                    f"announces {meta.records}", hint="the writer site is faulty; tell its "
                    "administrator and use an older snapshot")
            _build_indexes(conn)
            conn.execute("UPDATE restore_state SET verified = 1")
            if on_progress is not None:
                on_progress(read, size, done, meta.records)
            return Staged(self.path, header, meta, resumed_from)
        finally:
            if conn is not None:
                conn.close()

    def _open_for(self, snapshot_id: str) -> tuple[sqlite3.Connection, int]:
        found = self.progress()
        if found is not None and found[0] != snapshot_id:
            self.discard()
        conn = _connect(self.path)
        if found is not None and found[0] == snapshot_id and not _sound(conn):
            conn.close()
            self.discard()  # damaged by a power cut (synchronous=OFF): start over
            conn = _connect(self.path)
        migrate(conn, self.path)
        conn.execute(_STATE)
        row = conn.execute("SELECT records_done FROM restore_state").fetchone()
        if row is None:
            _defer_indexes(conn)
            conn.execute("INSERT INTO restore_state (one, snapshot_id, records_done) "
                         "VALUES (1, ?, 1)", (snapshot_id,))
            return conn, 1
        return conn, int(row[0])


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


def _flush(conn: sqlite3.Connection, pending: dict[str, list[Any]],
           tokens: list[tuple[str, str, str, str]], index: int) -> int:
    with write_transaction(conn):
        for kind, rows in pending.items():
            if rows:
                conn.executemany(_INSERT[kind], rows)
                rows.clear()
        if tokens:
            conn.executemany(_TOKENS, tokens)
            tokens.clear()
        conn.execute("UPDATE restore_state SET records_done = ?", (index,))
    return index


__all__ = ["Progress", "Staged", "Staging"]
