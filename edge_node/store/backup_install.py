"""Bringing a site back from a backup file, with no hub: decrypt, check, install in one rename.

`read_backup_header` says what a backup file is (encrypted: its header, read
without a key; plaintext: None).  `install_backup` then writes the database
into a temporary file in the new data directory (0600 from creation),
decrypting it chunk by chunk for an encrypted backup, and checks it before
anything goes live:

1. the stream is complete and unaltered (`sync_protocol.backup_file`);
2. SQLite's `quick_check` is ok and the schema is one this build knows;
3. the database's site and practice are the ones the header names, at the
   schema version it names;
4. the given `site.key` opens the site keys sealed in it (so `edge serve`
   starts on the result).

Only then are `site.key` and `edge.sqlite3` put in place (the database last,
by an atomic rename).  Anything refused leaves the directory as it was: the
temporary file and a `site.key` written for this attempt are removed, and a
directory made for it is removed again.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from uuid import UUID

from edge_node.errors import BackupRefused, SchemaTooNew, StoreError
from edge_node.store.durable_files import fsync_path
from edge_node.store.file_modes import FILE_MODE, make_private_dir
from edge_node.store.schema import check_version, db_path
from edge_node.store.site import SITE_KEY_FILE, load_site, write_key_file
from sync_protocol.backup_file import (
    MAGIC,
    PRELUDE_BYTES,
    BackupHeader,
    BackupOpener,
    header_length,
    parse_header,
)
from sync_protocol.errors import ProtocolError

_SQLITE_MAGIC: Final = b"SQLite format 3\0"
_READ_BYTES: Final = 1 << 20
_RESTORING: Final = ".restoring"


@dataclass(frozen=True, slots=True)
class InstalledBackup:
    """What `install_backup` put in place (counts for the command's summary)."""

    site_id: UUID
    practice_id: UUID | None
    resources: int
    history: int
    schema_version: int
    #: The hub this site syncs with (None: a site without a hub).
    hub_url: str | None


def _refused(exc: ProtocolError, path: Path) -> BackupRefused:
    return BackupRefused(f"{path}: {exc.message}", hint=exc.hint or
                         "use another copy of the backup; nothing was installed")


def is_encrypted_backup(path: Path) -> bool:
    """Whether the file at `path` starts as an encrypted backup does (False if unreadable)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def read_backup_header(path: Path) -> BackupHeader | None:
    """The header of an encrypted backup; None for a plaintext one (an SQLite file).

    Raises `BackupRefused` for anything else (not a backup, damaged header) and
    `StoreError` for a file that cannot be read.
    """
    try:
        with open(path, "rb") as f:
            prelude = f.read(PRELUDE_BYTES)
            if prelude.startswith(_SQLITE_MAGIC[:PRELUDE_BYTES]) \
                    and (prelude + f.read(len(_SQLITE_MAGIC) - PRELUDE_BYTES)) == _SQLITE_MAGIC:
                return None
            need = header_length(prelude)
            return parse_header(prelude + f.read(need))
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}",
                         hint="check the --from-backup path") from exc
    except ProtocolError as exc:
        raise _refused(exc, path) from exc


def _write_plain(source: Path, header: BackupHeader | None, file_key: bytes | None,
                 out_fd: int) -> None:
    with open(source, "rb") as f, os.fdopen(out_fd, "wb") as out:
        if header is None:
            while block := f.read(_READ_BYTES):
                out.write(block)
            return
        if file_key is None:
            raise BackupRefused(f"{source} is encrypted and no key was given",
                                hint="pass --backup-passphrase-file or --recovery-kit")
        f.seek(header.size)
        opener = BackupOpener(header, file_key)
        while block := f.read(_READ_BYTES):
            out.write(opener.feed(block))
        opener.finish()


def _check(tmp: Path, data_dir: Path, header: BackupHeader | None) -> InstalledBackup:
    try:
        version = check_version(tmp)
    except SchemaTooNew:
        raise
    except StoreError as exc:
        raise BackupRefused("the backup does not hold a readable edge database",
                            hint="use another copy of the backup") from exc
    conn = sqlite3.connect(f"file:{tmp}?mode=ro", uri=True)
    try:
        problems = [line for (line,) in conn.execute("PRAGMA quick_check") if line != "ok"]
        if problems:
            raise BackupRefused(f"the database in the backup fails SQLite's quick_check: "
                                f"{problems[0]}", hint="use another copy of the backup")
        row = conn.execute("SELECT site_id, practice_id FROM site WHERE one = 1").fetchone()
        if row is None:
            raise BackupRefused("the database in the backup has no site identity",
                                hint="use a backup written by `chartsync edge backup`")
        site_id, practice_id = UUID(row[0]), UUID(row[1]) if row[1] else None
        if header is not None and (site_id, practice_id, version) != (
                header.about.site_id, header.about.practice_id, header.about.schema_version):
            raise BackupRefused(
                f"the backup's header names site {header.about.site_id} (practice "
                f"{header.about.practice_id}, schema {header.about.schema_version}), its "
                f"database holds site {site_id} (practice {practice_id}, schema {version})",
                hint="the file was altered or assembled from two backups; use another copy")
        try:
            load_site(conn, data_dir)  # site.key must open the sealed site keys
        except StoreError as exc:
            raise BackupRefused(f"the given site key does not open the keys of site {site_id} "
                                "in the backup", hint="pass --site-key with the site.key of "
                                "the data directory this backup was made from") from exc
        counts = [int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])
                  for t in ("resources", "history")]
        hub = None
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sync_state'").fetchone():
            hub = conn.execute("SELECT hub_url FROM sync_state WHERE one = 1").fetchone()
    except sqlite3.Error as exc:
        raise BackupRefused(f"the database in the backup cannot be read: {exc}",
                            hint="use another copy of the backup") from exc
    finally:
        conn.close()
    return InstalledBackup(site_id, practice_id, counts[0], counts[1], version,
                           None if hub is None else str(hub[0]))


def _put_site_key(data_dir: Path, site_key: bytes) -> bool:
    """Write `site.key`; True if this call wrote it (False: the same key was there)."""
    path = data_dir / SITE_KEY_FILE
    if path.exists():
        if path.read_bytes() != site_key:
            raise StoreError(f"{path} exists and holds another key",
                             hint="restore into a new, empty directory")
        return False
    write_key_file(data_dir, site_key)
    return True


def install_backup(source: Path, data_dir: Path, *, header: BackupHeader | None,
                   file_key: bytes | None, site_key: bytes) -> InstalledBackup:
    """Restore the backup at `source` into `data_dir` (new, or without a database).

    `header` is `read_backup_header(source)`; `file_key` opens it (None for a
    plaintext backup); `site_key` is the 32 bytes of the old site's `site.key`.
    Raises `StoreError` (the directory already holds a database) or
    `BackupRefused` (truncated, altered, another site's key, fails quick_check),
    leaving `data_dir` as it was.
    """
    target = db_path(data_dir)
    if target.exists():
        raise StoreError(f"{data_dir} already holds an edge database",
                         hint="restore into a new, empty directory (--data NEWDIR)")
    made_dir = not data_dir.exists()
    make_private_dir(data_dir)
    tmp = target.with_name(target.name + _RESTORING)
    wrote_key = False
    try:
        try:
            tmp.unlink(missing_ok=True)  # left by a restore killed mid-way: ours by its name
            out_fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            try:
                _write_plain(source, header, file_key, out_fd)
            except ProtocolError as exc:
                raise _refused(exc, source) from exc
            fsync_path(tmp)
            wrote_key = _put_site_key(data_dir, site_key)
            installed = _check(tmp, data_dir, header)
            os.replace(tmp, target)
            fsync_path(data_dir)
        except OSError as exc:
            raise StoreError(f"restore into {data_dir} failed: {exc.strerror}",
                             hint="check free space and permissions there, and retry") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        if wrote_key:
            (data_dir / SITE_KEY_FILE).unlink(missing_ok=True)
        if made_dir and not any(data_dir.iterdir()):
            data_dir.rmdir()
        raise
    return installed


__all__ = ["InstalledBackup", "install_backup", "is_encrypted_backup", "read_backup_header"]
