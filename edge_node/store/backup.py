"""`edge backup`: a consistent copy of the live database, taken online, encrypted by default.

Uses SQLite's online backup API (a snapshot consistent at one commit, while
the server keeps writing).  An encrypted backup (`backup_encrypted`, the
default) first copies into a private temporary file inside the data directory
(0600 in a 0700 directory: the plaintext never leaves it), then streams that
copy through `sync_protocol.backup_file` into the target, one chunk at a time,
so a multi-GB database never sits in memory; the temporary copy is removed
however the backup ends (a process killed mid-way leaves a `.backup-*.sqlite3`
file in the data directory, private like the database; the next backup does
not need it and it may be deleted).  A plaintext backup (`backup`) is the
copy itself.

Either way the target is written to a temporary file next to it, fsynced and
renamed into place, so a crash never leaves a half-written backup under the
target name; it is 0600 from creation.  The copy holds the site keys sealed:
restoring it needs this data directory's `site.key` as well (keep one copy of
that file apart from the backups).
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final
from uuid import UUID

from edge_node.errors import StoreError
from edge_node.store.account_events import record_backup_event
from edge_node.store.durable_files import fsync_path
from edge_node.store.file_modes import FILE_MODE, make_private_file
from edge_node.store.roster_store import load_roster
from edge_node.store.schema import check_version, db_path
from sync_protocol.backup_file import DEFAULT_CHUNK_BYTES, BackupAbout, BackupSealer, Slot
from sync_protocol.kit_keys import KitPublicKeys


@dataclass(frozen=True, slots=True)
class BackupWritten:
    """What `backup_encrypted` wrote (for the command's summary line)."""

    path: Path
    about: BackupAbout
    plain_bytes: int
    file_bytes: int


_READ_BYTES: Final = 1 << 20


def backup_kit_key(conn: sqlite3.Connection) -> KitPublicKeys | None:
    """The recovery kit this site seals its backups to, or None if it knows none.

    The kit is the one the practice's verified roster (`store.roster_store`)
    names now, so a replaced kit takes over from the next backup.  A site that
    never joined a practice, or holds no roster yet, answers None.  Raises
    `StoreError` if the stored roster no longer verifies.
    """
    row = conn.execute("SELECT practice_id FROM site WHERE one = 1").fetchone()
    if row is None or not row[0]:
        return None
    roster = load_roster(conn, UUID(row[0]))
    return None if roster is None else roster.kit


def _source(data_dir: Path, target: Path) -> Path:
    source = db_path(data_dir)
    if not source.exists():
        raise StoreError(f"{data_dir} holds no edge database",
                         hint="check --data; it is the directory given to `edge init`")
    check_version(source)
    if target.exists():
        raise StoreError(f"{target} already exists", hint="choose a new file name")
    return source


def _online_copy(source: Path, dest: Path) -> None:
    """Copy `source` into the (new or empty) database file `dest`; raises `StoreError`."""
    src = sqlite3.connect(source)
    try:
        dst = sqlite3.connect(dest)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise StoreError(f"backup of {source} failed: {exc}",
                         hint="check free space at the target and in the data directory, "
                         "and retry") from exc
    finally:
        src.close()


def _install(tmp: Path, target: Path) -> None:
    fsync_path(tmp)
    make_private_file(tmp)
    os.replace(tmp, target)
    fsync_path(target.parent)


def _audit_backup(source: Path, target: Path, *, encrypted: bool, now_ms: int,
                  by_whom: str) -> None:
    """Queue the backup's audit record in the source database (an export of every chart)."""
    conn = sqlite3.connect(source, isolation_level=None, timeout=10)
    try:
        record_backup_event(conn, file_name=target.name, encrypted=encrypted, now_ms=now_ms,
                            by_whom=by_whom)
    except sqlite3.Error as exc:
        raise StoreError(f"the backup {target} was written but its audit record was not: "
                         f"{exc}", hint="retry the backup; the file itself is complete") from exc
    finally:
        conn.close()


def backup(data_dir: Path, target: Path, *, now_ms: int = 0, by_whom: str = "") -> Path:
    """Copy the data directory's database to `target` in plaintext; return it.

    Raises `StoreError` if the source is missing or newer than this build, or
    the target exists.  Audited as an export (`store.account_events`).
    """
    source = _source(data_dir, target)
    tmp = target.with_name(target.name + ".partial")
    try:
        _online_copy(source, tmp)
        _install(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _audit_backup(source, target, encrypted=False, now_ms=now_ms, by_whom=by_whom)
    return target


def _about(copy: Path, now_ms: int) -> BackupAbout:
    conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT site_id, practice_id FROM site WHERE one = 1").fetchone()
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()
    if row is None:
        raise StoreError(f"{copy} has no site identity",
                         hint="run `chartsync edge init` on this data directory first")
    return BackupAbout(practice_id=UUID(row[1]) if row[1] else None, site_id=UUID(row[0]),
                       created_ms=now_ms, schema_version=version)


def _stream(copy: Path, out: BinaryIO, sealer: BackupSealer) -> None:
    out.write(sealer.begin())
    with open(copy, "rb") as plain:
        while block := plain.read(_READ_BYTES):
            out.write(sealer.add(block))
    out.write(sealer.finish())


def backup_encrypted(data_dir: Path, target: Path, slots: Sequence[Slot], *, now_ms: int,
                     chunk_bytes: int = DEFAULT_CHUNK_BYTES, by_whom: str = ""
                     ) -> BackupWritten:
    """Write an encrypted backup of the data directory's database to `target`.

    `slots` say who can open it (a passphrase, the recovery kit, or both).
    Raises `StoreError` (no database, target exists, copy failed) or
    `ValueError` (no slot, a passphrase shorter than 13 characters) before
    anything is left at `target`.
    """
    source = _source(data_dir, target)
    fd, name = tempfile.mkstemp(dir=data_dir, prefix=".backup-", suffix=".sqlite3")
    os.close(fd)
    copy = Path(name)
    tmp = target.with_name(target.name + ".partial")
    try:
        _online_copy(source, copy)
        about = _about(copy, now_ms)
        sealer = BackupSealer(about, slots, chunk_bytes=chunk_bytes)
        try:
            out_fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError as exc:
            raise StoreError(f"{tmp} exists: another backup to {target} is running, or one "
                             "was interrupted", hint=f"if none is running, delete {tmp}") from exc
        try:
            with os.fdopen(out_fd, "wb") as out:
                _stream(copy, out, sealer)
            _install(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise StoreError(f"backup to {target} failed: {exc.strerror}",
                         hint="check free space and permissions at the target, and retry"
                         ) from exc
    finally:
        copy.unlink(missing_ok=True)
    _audit_backup(source, target, encrypted=True, now_ms=now_ms, by_whom=by_whom)
    return BackupWritten(target, about, sealer.plain_bytes, target.stat().st_size)


__all__ = ["BackupWritten", "backup", "backup_encrypted", "backup_kit_key"]
