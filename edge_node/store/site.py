"""The site's identity: its id, key pair (sealed at rest) and creation time.

`edge init` creates it once (`create_site_database`, with the first admin);
the server reads it on every start.  The site's
secret keys are stored in the database sealed (XSalsa20-Poly1305) under a
32-byte key kept next to the database in `site.key`, mode 0600.  A copy of the
database alone (a backup on a USB stick) therefore holds no usable site key;
keep `site.key` with the machine, and back it up separately.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from uuid import UUID

import nacl.exceptions
import nacl.secret

from edge_node.errors import StoreError
from edge_node.store.connection import connect, open_sync
from edge_node.store.schema import migrate
from edge_node.store.transaction import write_transaction
from edge_node.store.users import Role, User, add_user
from sync_protocol.canonical import pack_plain, unpack
from sync_protocol.errors import MalformedInput
from sync_protocol.ids import SiteId, uuid7
from sync_protocol.keys import SiteKeyPair

SITE_KEY_FILE: Final = "site.key"


@dataclass(frozen=True, slots=True)
class Site:
    """Who this edge is.  `keys` repr as a fingerprint only."""

    site_id: SiteId
    created_ms: int
    practice_id: UUID | None
    keys: SiteKeyPair


def write_key_file(data_dir: Path, secret: bytes) -> Path:
    """Create `site.key` holding `secret`, readable by the owner only; never overwrites."""
    path = data_dir / SITE_KEY_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secret)
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def read_key_file(data_dir: Path) -> bytes:
    """The 32-byte key in `site.key`; raises `StoreError` if missing, short or too open."""
    path = data_dir / SITE_KEY_FILE
    try:
        mode = path.stat().st_mode
        secret = path.read_bytes()
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror}",
                         hint="restore site.key from where you backed it up; without it the "
                         "site keys cannot be opened") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise StoreError(f"{path} is readable by other users",
                         hint=f"run `chmod 600 {path}`")
    if len(secret) != nacl.secret.SecretBox.KEY_SIZE:
        raise StoreError(f"{path} does not hold a 32-byte key",
                         hint="restore the original site.key of this data directory")
    return secret


def insert_site(conn: sqlite3.Connection, *, site_id: SiteId, created_ms: int,
                keys: SiteKeyPair, file_key: bytes, nonce: bytes) -> None:
    """Write the one site row (keys sealed under `file_key` with `nonce`)."""
    box = nacl.secret.SecretBox(file_key)
    sealed = bytes(box.encrypt(pack_plain(keys.to_wire()), nonce))
    conn.execute(
        "INSERT INTO site (one, site_id, created_ms, practice_id, keys_sealed, key_fingerprint)"
        " VALUES (1, ?, ?, NULL, ?, ?)",
        (str(site_id), created_ms, sealed, keys.fingerprint),
    )


def set_practice_id(conn: sqlite3.Connection, practice_id: UUID) -> None:
    """Note the practice this site belongs to (an enrolled site knows it at `edge init`)."""
    conn.execute("UPDATE site SET practice_id = ?", (str(practice_id),))


def create_site_database(data_dir: Path, path: Path, *, site_id: SiteId, created_ms: int,
                         keys: SiteKeyPair, file_key: bytes, nonce: bytes,
                         practice_id: UUID | None, admin_name: str,
                         admin_random: bytes) -> tuple[Site, User, str]:
    """Create the database at `path`: schema, the site row and a first admin, in one go.

    The site row, its practice id and the admin commit in one transaction.
    Returns the site (keys opened with `site.key`, which must already exist),
    the admin and the admin's token.
    """
    conn = connect(path)
    try:
        migrate(conn, path)
        with write_transaction(conn):
            insert_site(conn, site_id=site_id, created_ms=created_ms, keys=keys,
                        file_key=file_key, nonce=nonce)
            if practice_id is not None:
                set_practice_id(conn, practice_id)
            admin, token = add_user(conn, name=admin_name, role=Role.ADMIN, now_ms=created_ms,
                                    random_bytes=admin_random)
        site = load_site(conn, data_dir)
    finally:
        conn.close()
    return site, admin, token


def load_site(conn: sqlite3.Connection, data_dir: Path) -> Site:
    """Read the site row and open its keys with `site.key`; raises `StoreError`."""
    row = conn.execute(
        "SELECT site_id, created_ms, practice_id, keys_sealed FROM site WHERE one = 1"
    ).fetchone()
    if row is None:
        raise StoreError(f"{data_dir} has no site identity",
                         hint=f"run `chartsync edge init --data {data_dir}` first")
    box = nacl.secret.SecretBox(read_key_file(data_dir))
    try:
        keys = SiteKeyPair.from_wire(
            unpack(box.decrypt(row[3]), what="site keys", max_len=1024))
    except (nacl.exceptions.CryptoError, MalformedInput) as exc:
        raise StoreError(f"site.key in {data_dir} does not open this database's site keys",
                         hint="put back the site.key that belongs to this data directory"
                         ) from exc
    return Site(SiteId(UUID(row[0])), int(row[1]),
                UUID(row[2]) if row[2] else None, keys)


def site_identity(data_dir: Path) -> tuple[SiteId, SiteKeyPair]:
    """The site's id and key pair, read on a connection of its own."""
    conn = open_sync(data_dir)
    try:
        site = load_site(conn, data_dir)
    finally:
        conn.close()
    return site.site_id, site.keys


def new_site_id(now_ms: int, random_bytes: bytes) -> SiteId:
    """A fresh time-ordered site id."""
    return SiteId(uuid7(now_ms, random_bytes))
