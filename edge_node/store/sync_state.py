"""The site's sync settings and secrets in `sync_state` (schema 2), sealed at rest.

The hub credential and the practice keyring are sealed (XSalsa20-Poly1305)
under the data directory's `site.key`, like the site keys (`store.site`): a
copy of the database alone holds neither.  Synchronous functions on an open
`sqlite3` connection; the sync loop calls them through `asyncio.to_thread` or
its reader, commands call them directly.  The changes the running sync loop makes
to the row are `LedgerOp`s (`store.ledger`) the writer applies in its group
transaction: `AdvanceCursor`, `SetLogId`, `SetEnrolledStatus`, `StoreKeyring`,
`SaveDigest`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import nacl.exceptions
import nacl.secret
import nacl.utils

from edge_node.errors import StoreError
from edge_node.store.connection import open_sync
from edge_node.store.site import read_key_file
from edge_node.store.transaction import write_transaction
from sync_protocol.canonical import pack_plain, unpack
from sync_protocol.errors import MalformedInput
from sync_protocol.keys import Keyring, PracticeKey


@dataclass(frozen=True, slots=True)
class SyncState:
    """What the site knows of its hub and practice."""

    hub_url: str
    hub_ca: Path | None
    insecure_http: bool
    practice_id: UUID
    credential: str
    hub_verify_key: bytes
    enrolled_status: str
    keyring: Keyring | None
    log_id: UUID | None
    cursor: int
    digest: str | None

    def __repr__(self) -> str:  # never the credential or keys
        return (f"SyncState(hub={self.hub_url}, practice={self.practice_id}, "
                f"status={self.enrolled_status}, cursor={self.cursor})")


def _box(data_dir: Path) -> nacl.secret.SecretBox:
    return nacl.secret.SecretBox(read_key_file(data_dir))


def seal_at_rest(data_dir: Path, plain: bytes) -> bytes:
    return bytes(_box(data_dir).encrypt(plain, nacl.utils.random(24)))


def open_at_rest(data_dir: Path, sealed: bytes, what: str) -> bytes:
    try:
        return bytes(_box(data_dir).decrypt(sealed))
    except nacl.exceptions.CryptoError as exc:
        raise StoreError(f"site.key in {data_dir} does not open the stored {what}",
                         hint="put back the site.key that belongs to this data directory"
                         ) from exc


def save_enrollment(conn: sqlite3.Connection, data_dir: Path, *, hub_url: str,
                    hub_ca: Path | None, insecure_http: bool, practice_id: UUID,
                    credential: str, hub_verify_key: bytes, status: str,
                    log_id: UUID | None) -> None:
    conn.execute(
        "INSERT INTO sync_state (one, hub_url, hub_ca, insecure_http, practice_id, "
        "credential_sealed, hub_verify_key, enrolled_status, log_id) "
        "VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)",
        (hub_url, str(hub_ca) if hub_ca else None, int(insecure_http), str(practice_id),
         seal_at_rest(data_dir, credential.encode()), hub_verify_key, status,
         str(log_id) if log_id else None))


def keyring_row(data_dir: Path, keyring: Keyring) -> bytes:
    return seal_at_rest(data_dir, pack_plain(keyring.to_wire()))


def save_keyring(conn: sqlite3.Connection, data_dir: Path, keyring: Keyring) -> None:
    conn.execute("UPDATE sync_state SET keyring_sealed = ?", (keyring_row(data_dir, keyring),))


def add_key_epochs(conn: sqlite3.Connection, data_dir: Path,
                   keys: Iterable[PracticeKey]) -> Keyring:
    """Add `keys` to the keyring as stored now (another process may have added epochs since
    the caller read it); return the keyring saved.  Call inside a write transaction."""
    row = stored_keyring_row(conn)
    keyring = None if row is None else keyring_of_row(data_dir, row)
    for key in keys:
        keyring = (Keyring(require_sync_state(conn, data_dir).practice_id, {key.epoch: key})
                   if keyring is None else keyring.with_key(key))
    if keyring is None:
        raise StoreError("there is no practice key to store",
                         hint="pass at least one key epoch")
    save_keyring(conn, data_dir, keyring)
    return keyring


def save_pending_epoch(conn: sqlite3.Connection, data_dir: Path,
                       key: PracticeKey | None) -> None:
    """Keep `key` (None: forget it) as the epoch a revocation made and has not announced;
    it is never used to seal until `edge revoke` makes it current."""
    sealed = None if key is None else seal_at_rest(data_dir, pack_plain([key.epoch,
                                                                           key.secret]))
    conn.execute("UPDATE sync_state SET pending_key_sealed = ?", (sealed,))


def pending_epoch(conn: sqlite3.Connection, data_dir: Path) -> PracticeKey | None:
    """The key epoch a revocation made and did not announce yet (`save_pending_epoch`)."""
    row = conn.execute("SELECT pending_key_sealed FROM sync_state WHERE one = 1").fetchone()
    if row is None or row[0] is None:
        return None
    raw = unpack(open_at_rest(data_dir, bytes(row[0]), "pending key epoch"),
                 what="pending key epoch", max_len=1024)
    try:
        return PracticeKey(int(raw[0]), bytes(raw[1]))
    except (TypeError, ValueError, IndexError, MalformedInput) as exc:
        raise StoreError("the stored pending key epoch does not decode",
                         hint="run `chartsync edge revoke` again") from exc


@dataclass(frozen=True, slots=True)
class AdvanceCursor:
    """Move the cursor to `hub_seq` (never back: a lower one changes nothing)."""

    hub_seq: int

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE sync_state SET cursor = max(cursor, ?)", (self.hub_seq,))


@dataclass(frozen=True, slots=True)
class SetLogId:
    """Remember the hub's log id."""

    log_id: UUID

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE sync_state SET log_id = ?", (str(self.log_id),))


@dataclass(frozen=True, slots=True)
class SetEnrolledStatus:
    """Remember the site's status at the hub (pending, approved, revoked)."""

    status: str

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE sync_state SET enrolled_status = ?", (self.status,))


@dataclass(frozen=True, slots=True)
class StoreKeyring:
    """Replace the practice keyring with `sealed` (made by `keyring_row`)."""

    sealed: bytes

    def __repr__(self) -> str:  # sealed, yet no need to print it
        return "StoreKeyring(...)"

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE sync_state SET keyring_sealed = ?", (self.sealed,))


@dataclass(frozen=True, slots=True)
class SaveDigest:
    """Remember the state digest of every record and how many records it covers."""

    hexdigest: str
    count: int

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE sync_state SET digest = ?, digest_count = ?",
                     (self.hexdigest, self.count))


def rebind_hub(conn: sqlite3.Connection, data_dir: Path, *, hub_url: str,
               hub_ca: Path | None, insecure_http: bool, credential: str,
               hub_verify_key: bytes, status: str, log_id: UUID | None) -> None:
    """Point the site at another hub (a rebuilt one): address, credential, key, status."""
    conn.execute(
        "UPDATE sync_state SET hub_url = ?, hub_ca = ?, insecure_http = ?, "
        "credential_sealed = ?, hub_verify_key = ?, enrolled_status = ?, log_id = ?",
        (hub_url, str(hub_ca) if hub_ca else None, int(insecure_http),
         seal_at_rest(data_dir, credential.encode()), hub_verify_key, status,
         str(log_id) if log_id else None))


def load_sync_state(conn: sqlite3.Connection, data_dir: Path) -> SyncState | None:
    """The site's sync state, or None for a site that never enrolled with a hub."""
    row = conn.execute(
        "SELECT hub_url, hub_ca, insecure_http, practice_id, credential_sealed, "
        "hub_verify_key, enrolled_status, keyring_sealed, log_id, cursor, digest "
        "FROM sync_state WHERE one = 1").fetchone()
    if row is None:
        return None
    keyring = None if row[7] is None else keyring_of_row(data_dir, bytes(row[7]))
    credential = open_at_rest(data_dir, bytes(row[4]), "hub credential").decode()
    return SyncState(row[0], Path(row[1]) if row[1] else None, bool(row[2]), UUID(row[3]),
                     credential, bytes(row[5]), row[6], keyring,
                     UUID(row[8]) if row[8] else None, int(row[9]), row[10])


def stored_keyring_row(conn: sqlite3.Connection) -> bytes | None:
    """The keyring as stored (sealed at rest), to notice a change by another process."""
    row = conn.execute("SELECT keyring_sealed FROM sync_state WHERE one = 1").fetchone()
    return None if row is None or row[0] is None else bytes(row[0])


def keyring_of_row(data_dir: Path, sealed: bytes) -> Keyring:
    """Decode a row of `stored_keyring_row`; raises `StoreError` if it does not decode."""
    raw = open_at_rest(data_dir, sealed, "practice keyring")
    try:
        return Keyring.from_wire(unpack(raw, what="keyring", max_len=1 << 20))
    except MalformedInput as exc:
        raise StoreError("the stored practice keyring does not decode",
                         hint="restore the data directory from a backup, or restore "
                         "the keys from the recovery kit") from exc


def require_sync_state(conn: sqlite3.Connection, data_dir: Path) -> SyncState:
    state = load_sync_state(conn, data_dir)
    if state is None:
        raise StoreError(f"{data_dir} is not enrolled with a hub",
                         hint="create it with `chartsync edge init --hub URL --token TOKEN`")
    return state


def keep_keyring(data_dir: Path, keyring: Keyring) -> SyncState:
    """The enrolled data directory's sync state; `keyring` is saved first if it holds none.

    The state returned is the one read before saving (a restore uses it for the hub
    link only).  Raises `StoreError` for a directory not enrolled with a hub.
    """
    conn = open_sync(data_dir)
    try:
        state = require_sync_state(conn, data_dir)
        if state.keyring is None:
            with write_transaction(conn):
                save_keyring(conn, data_dir, keyring)
    finally:
        conn.close()
    return state


def merge_keyring(data_dir: Path, keyring: Keyring) -> Keyring:
    """Add `keyring`'s epochs to the stored ones (a restore gathering keys); return all.

    Raises `StoreError` for a directory not enrolled with a hub."""
    conn = open_sync(data_dir)
    try:
        require_sync_state(conn, data_dir)
        with write_transaction(conn):
            return add_key_epochs(conn, data_dir, keyring.keys.values())
    finally:
        conn.close()


__all__ = [
    "AdvanceCursor",
    "SaveDigest",
    "SetEnrolledStatus",
    "SetLogId",
    "StoreKeyring",
    "SyncState",
    "add_key_epochs",
    "keep_keyring",
    "keyring_of_row",
    "keyring_row",
    "load_sync_state",
    "merge_keyring",
    "pending_epoch",
    "rebind_hub",
    "require_sync_state",
    "save_enrollment",
    "save_keyring",
    "save_pending_epoch",
    "stored_keyring_row",
]
