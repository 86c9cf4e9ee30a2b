"""The edge's SQLite schema: numbered migrations, run on open; newer files are refused.

SCHEMA_VERSION changelog (kept in `PRAGMA user_version`):

    1  site, resources, history, search_tokens, outbox, audit, users, conflicts
    2  sync with a hub: sync_state (hub, credential and keyring sealed at rest, cursor, log id,
       state digest, guard decision), pushed_batches (sealed own batches + receipts),
       origin_chains, received_batches (kept to rebuild a lost hub), held_batches,
       dead_letters
    3  history_recent index on history (origin, recorded_ms): the blast-radius guard
       counts this site's changes of the last hour on every pusher round; with only
       (origin, seq) that scan grew with the site's whole history (24 ms at 100,000
       rows, now well under 1 ms)
    4  relay_queue: other sites' batches to push back to a hub that lost them (rebuilt,
       or restored from an older backup), queued in the transaction that decides it, so
       a dropped line or a crash mid-relay loses none (they were only in memory);
       practice_sites: the practice's sites and public keys as last seen at the hub, so
       a rebuilt hub can register a site lost with it and take its relayed batches
    5  account_events: account changes made by `chartsync edge user` (a process that
       cannot append to the audit chain while `serve` owns its head), kept until the
       writer chains them into `audit` and deletes them in the same transaction
    6  roster: the practice roster's signed entries as this site verified them
       (`sync_protocol.roster`), in chain order; the site trusts members from here,
       never from the hub's registry.  sync_state.pending_key_sealed: the key epoch a
       revocation made and has not announced yet (sealed at rest; never used to seal)
    7  history keeps what each author wrote: history.vid (version id: `<seq>-<origin>` for
       an author version, `v-<hash>` for this site's merged view) and history.kind
       (author / view); resources.vid, the current version id.  Rows written before
       keep their counter as id ("1", "2", ...), so ids clients hold still read

`check_version` reads the file read-only first, so a file written by a newer
chartsync is refused before anything (WAL switch, migration) touches it.
Migrations run in one transaction each and set `user_version` in it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final

from edge_node.errors import SchemaTooNew, StoreError
from edge_node.store.transaction import write_transaction

SCHEMA_VERSION: Final = 7
DB_NAME: Final = "edge.sqlite3"

_V1: Final = """
CREATE TABLE site (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    site_id TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    practice_id TEXT,
    keys_sealed BLOB NOT NULL,
    key_fingerprint TEXT NOT NULL
);
CREATE TABLE resources (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_updated_ms INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    state BLOB NOT NULL,
    json BLOB,
    patient_ref TEXT,
    PRIMARY KEY (type, id)
);
CREATE INDEX resources_updated ON resources (type, last_updated_ms);
CREATE TABLE history (
    hid INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    origin TEXT NOT NULL,
    seq INTEGER NOT NULL,
    user TEXT NOT NULL,
    device TEXT NOT NULL,
    hlc INTEGER NOT NULL,
    recorded_ms INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    json BLOB,
    UNIQUE (type, id, version)
);
CREATE INDEX history_origin ON history (origin, seq);
CREATE TABLE search_tokens (
    type TEXT NOT NULL,
    param TEXT NOT NULL,
    value TEXT NOT NULL,
    id TEXT NOT NULL
);
CREATE INDEX search_tokens_lookup ON search_tokens (type, param, value, id);
CREATE INDEX search_tokens_resource ON search_tokens (type, id);
CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY,
    change BLOB NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    user TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    resource_type TEXT,
    resource_id TEXT,
    patient_ref TEXT,
    outcome INTEGER NOT NULL,
    client TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE INDEX audit_user ON audit (user, at_ms);
CREATE INDEX audit_patient ON audit (patient_ref, at_ms);
CREATE INDEX audit_resource ON audit (resource_type, resource_id, at_ms);
CREATE INDEX audit_at ON audit (at_ms);
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE conflicts (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    register TEXT NOT NULL,
    heads INTEGER NOT NULL,
    shown_origin TEXT NOT NULL,
    shown_seq INTEGER NOT NULL,
    PRIMARY KEY (type, id, register)
);
"""

_V2: Final = """
CREATE TABLE sync_state (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    hub_url TEXT NOT NULL,
    hub_ca TEXT,
    insecure_http INTEGER NOT NULL DEFAULT 0,
    practice_id TEXT NOT NULL,
    credential_sealed BLOB NOT NULL,
    hub_verify_key BLOB NOT NULL,
    enrolled_status TEXT NOT NULL,
    keyring_sealed BLOB,
    log_id TEXT,
    cursor INTEGER NOT NULL DEFAULT 0,
    digest TEXT,
    digest_count INTEGER NOT NULL DEFAULT 0,
    guard_decision TEXT,
    guard_from_seq INTEGER
);
CREATE TABLE pushed_batches (
    seq_from INTEGER PRIMARY KEY,
    seq_to INTEGER NOT NULL,
    batch_hash BLOB NOT NULL,
    prev_hash BLOB NOT NULL,
    key_epoch INTEGER NOT NULL,
    sealed BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    hub_seq INTEGER,
    receipt BLOB
);
CREATE TABLE origin_chains (
    origin TEXT PRIMARY KEY,
    next_seq INTEGER NOT NULL,
    last_hash BLOB NOT NULL
);
CREATE TABLE received_batches (
    hub_seq INTEGER PRIMARY KEY,
    origin TEXT NOT NULL,
    seq_from INTEGER NOT NULL,
    seq_to INTEGER NOT NULL,
    sealed BLOB NOT NULL
);
CREATE INDEX received_origin ON received_batches (origin, seq_from);
CREATE TABLE held_batches (
    origin TEXT NOT NULL,
    seq_from INTEGER NOT NULL,
    seq_to INTEGER NOT NULL,
    hub_seq INTEGER NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    since_ms INTEGER NOT NULL,
    PRIMARY KEY (origin, seq_from)
);
CREATE TABLE dead_letters (
    id INTEGER PRIMARY KEY,
    seq_from INTEGER NOT NULL,
    seq_to INTEGER NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    hint TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    resolved_ms INTEGER
)
"""

_V3: Final = """
CREATE INDEX history_recent ON history (origin, recorded_ms)
"""

_V4: Final = """
CREATE TABLE relay_queue (
    id INTEGER PRIMARY KEY,
    sealed BLOB NOT NULL,
    queued_ms INTEGER NOT NULL
);
CREATE TABLE practice_sites (
    site_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    verify_key BLOB NOT NULL,
    box_key BLOB NOT NULL,
    seen_ms INTEGER NOT NULL
)
"""

_V5: Final = """
CREATE TABLE account_events (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    action TEXT NOT NULL,
    account TEXT NOT NULL,
    role TEXT NOT NULL,
    by_whom TEXT NOT NULL
)
"""

_V6: Final = """
CREATE TABLE roster (
    seq INTEGER PRIMARY KEY,
    entry BLOB NOT NULL
);
ALTER TABLE sync_state ADD COLUMN pending_key_sealed BLOB
"""

_V7: Final = """
ALTER TABLE history ADD COLUMN vid TEXT NOT NULL DEFAULT '';
ALTER TABLE history ADD COLUMN kind TEXT NOT NULL DEFAULT 'author';
UPDATE history SET vid = CAST(version AS TEXT);
CREATE UNIQUE INDEX history_vid ON history (type, id, vid);
ALTER TABLE resources ADD COLUMN vid TEXT NOT NULL DEFAULT '';
UPDATE resources SET vid = CAST(version AS TEXT)
"""

#: MIGRATIONS[n - 1] takes a file from version n - 1 to n.
MIGRATIONS: Final[tuple[str, ...]] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7)


def db_path(data_dir: Path) -> Path:
    """The SQLite file inside a data directory."""
    return data_dir / DB_NAME


def read_version(path: Path) -> int:
    """The schema version of the file at `path`, read without changing it.

    Raises `StoreError` if it is not a readable SQLite file.
    """
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = conn.execute("PRAGMA user_version").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StoreError(f"{path} is not a readable chartsync edge database: {exc}",
                         hint="check the --data directory, or restore it from a backup") from exc
    return int(row[0])


def check_version(path: Path) -> int:
    """Return the file's schema version; raise `SchemaTooNew` (touching nothing) if newer."""
    version = read_version(path)
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"{path} has edge schema version {version}; this chartsync knows up to "
            f"{SCHEMA_VERSION}",
            hint="run the newer chartsync that wrote it, or restore a backup made by this one; "
            "the file was not changed",
        )
    return version


def configure(conn: sqlite3.Connection) -> None:
    """Per-connection settings: WAL, fsync on every commit (power-cut safe), FK-free."""
    conn.execute("PRAGMA journal_mode=WAL")
    # FULL: a commit is acknowledged only after the WAL is fsynced; a power cut
    # cannot lose a write a client saw succeed.
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=10000")


def migrate(conn: sqlite3.Connection, path: Path) -> int:
    """Run every migration the file lacks; return the version it ends at.

    `conn` must be in autocommit mode (isolation_level=None).  Raises
    `SchemaTooNew` before any change if the file is newer than this build.
    """
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"{path} has edge schema version {version}; this chartsync knows up to "
            f"{SCHEMA_VERSION}",
            hint="run the newer chartsync that wrote it; the file was not changed",
        )
    for number in range(version + 1, SCHEMA_VERSION + 1):
        with write_transaction(conn):
            for statement in MIGRATIONS[number - 1].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
    return SCHEMA_VERSION
