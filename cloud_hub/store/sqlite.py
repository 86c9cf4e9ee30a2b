"""SQLite hub store (aiosqlite): the embedded default for one machine and the demo.

One connection in WAL mode; an `asyncio.Lock` makes each method one
serialised transaction, which also serialises hub sequence assignment (the
ordering contract of `base.HubStore`).  Only one hub process may use a file.

Schema versions: the changelog in `base` (both stores share one schema history).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final
from uuid import UUID, uuid4

import aiosqlite

from cloud_hub.chain import check_continues
from cloud_hub.enrollment import check_token_row
from cloud_hub.errors import (
    AlreadyExists,
    SchemaTooNew,
    StoreUnavailable,
)
from cloud_hub.heads import advance_heads
from cloud_hub.store.base import (
    MAX_PULL_BYTES,
    SCHEMA_VERSION,
    SNAPSHOT_PIECE_BYTES,
    Appended,
    CommitListener,
    IncomingBatch,
    KitEpochRecord,
    LogBounds,
    MailItem,
    NewSite,
    NewSnapshot,
    OperatorAction,
    PracticeRecord,
    PracticeStats,
    RosterStatusChange,
    SiteActivity,
    SiteRecord,
    SiteStats,
    SiteStatus,
    SnapshotInfo,
    StoredBatch,
    activities,
    check_position,
    trim_point,
)
from sync_protocol.ids import HubSeq, KeyEpoch, PracticeId, SiteId
from sync_protocol.models import GENESIS_HASH

MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {
    1: (
        """CREATE TABLE hub_key (id INTEGER PRIMARY KEY CHECK (id = 1),
               signing_seed BLOB NOT NULL, created_ms INTEGER NOT NULL)""",
        """CREATE TABLE operators (credential_hash BLOB PRIMARY KEY,
               created_ms INTEGER NOT NULL)""",
        """CREATE TABLE practices (practice_id BLOB PRIMARY KEY, name TEXT NOT NULL,
               created_ms INTEGER NOT NULL)""",
        """CREATE TABLE practice_seq (practice_id BLOB PRIMARY KEY,
               last_hub_seq INTEGER NOT NULL)""",
        """CREATE TABLE enrollment_tokens (practice_id BLOB NOT NULL, token_hash BLOB NOT NULL,
               expires_ms INTEGER NOT NULL, used_ms INTEGER, created_ms INTEGER NOT NULL,
               PRIMARY KEY (practice_id, token_hash))""",
        """CREATE TABLE sites (practice_id BLOB NOT NULL, site_id BLOB NOT NULL,
               name TEXT NOT NULL, verify_key BLOB NOT NULL, box_key BLOB NOT NULL,
               credential_hash BLOB NOT NULL,
               status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'revoked')),
               approved_by BLOB, created_ms INTEGER NOT NULL,
               PRIMARY KEY (practice_id, site_id))""",
        """CREATE TABLE site_chain (practice_id BLOB NOT NULL, site_id BLOB NOT NULL,
               next_seq INTEGER NOT NULL, last_hash BLOB NOT NULL,
               batches INTEGER NOT NULL DEFAULT 0, changes INTEGER NOT NULL DEFAULT 0,
               PRIMARY KEY (practice_id, site_id))""",
        """CREATE TABLE batches (practice_id BLOB NOT NULL, hub_seq INTEGER NOT NULL,
               site_id BLOB NOT NULL, seq_from INTEGER NOT NULL, seq_to INTEGER NOT NULL,
               batch_id BLOB NOT NULL, batch_hash BLOB NOT NULL, prev_hash BLOB NOT NULL,
               key_epoch INTEGER NOT NULL, max_hlc INTEGER NOT NULL, sealed BLOB NOT NULL,
               received_ms INTEGER NOT NULL,
               PRIMARY KEY (practice_id, hub_seq),
               UNIQUE (practice_id, site_id, seq_from),
               UNIQUE (practice_id, batch_hash))""",
        """CREATE TABLE record_heads (practice_id BLOB NOT NULL, key_epoch INTEGER NOT NULL,
               token BLOB NOT NULL, heads BLOB NOT NULL,
               PRIMARY KEY (practice_id, key_epoch, token)) WITHOUT ROWID""",
        """CREATE TABLE concurrency_stats (practice_id BLOB NOT NULL, site_id BLOB NOT NULL,
               concurrent_edits INTEGER NOT NULL, PRIMARY KEY (practice_id, site_id))""",
        """CREATE TABLE mailbox (practice_id BLOB NOT NULL, to_site BLOB NOT NULL,
               mail_id BLOB NOT NULL, from_site BLOB NOT NULL, sealed BLOB NOT NULL,
               created_ms INTEGER NOT NULL, PRIMARY KEY (practice_id, to_site, mail_id))""",
        """CREATE TABLE snapshots (practice_id BLOB NOT NULL, hub_seq INTEGER NOT NULL,
               site_id BLOB NOT NULL, key_epoch INTEGER NOT NULL, blob BLOB NOT NULL,
               created_ms INTEGER NOT NULL, PRIMARY KEY (practice_id, hub_seq, site_id))""",
    ),
    2: (
        # The log id itself is inserted by `_migrate` (a value made by the caller).
        """CREATE TABLE hub_meta (id INTEGER PRIMARY KEY CHECK (id = 1), log_id BLOB NOT NULL,
               created_ms INTEGER NOT NULL)""",
        "ALTER TABLE practice_seq ADD COLUMN trimmed_through INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE site_chain ADD COLUMN last_push_ms INTEGER",
        "ALTER TABLE snapshots ADD COLUMN snapshot_id BLOB",
        "UPDATE snapshots SET snapshot_id = randomblob(16)",
        "CREATE UNIQUE INDEX snapshots_by_id ON snapshots (practice_id, snapshot_id)",
        """CREATE TABLE heartbeats (practice_id BLOB NOT NULL, site_id BLOB NOT NULL,
               report BLOB NOT NULL, received_ms INTEGER NOT NULL,
               PRIMARY KEY (practice_id, site_id))""",
        """CREATE TABLE push_rejections (practice_id BLOB NOT NULL, site_id BLOB NOT NULL,
               code TEXT NOT NULL, count INTEGER NOT NULL, last_ms INTEGER NOT NULL,
               PRIMARY KEY (practice_id, site_id, code))""",
        """CREATE TABLE operator_actions (practice_id BLOB NOT NULL, action_id BLOB NOT NULL,
               site_id BLOB, action TEXT NOT NULL, operator_ref TEXT NOT NULL,
               at_ms INTEGER NOT NULL, PRIMARY KEY (practice_id, action_id))""",
    ),
    3: (
        # hub_key (schema 1) keeps its seed until the hub has moved it to its key file.
        """CREATE TABLE hub_identity (id INTEGER PRIMARY KEY CHECK (id = 1),
               verify_key BLOB NOT NULL, created_ms INTEGER NOT NULL)""",
    ),
    4: (
        """CREATE TABLE roster (practice_id BLOB NOT NULL, seq INTEGER NOT NULL,
               entry BLOB NOT NULL, created_ms INTEGER NOT NULL,
               PRIMARY KEY (practice_id, seq))""",
        """CREATE TABLE kit_epochs (practice_id BLOB NOT NULL, epoch INTEGER NOT NULL,
               kit_fingerprint TEXT NOT NULL, sealed BLOB NOT NULL, created_ms INTEGER NOT NULL,
               PRIMARY KEY (practice_id, epoch, kit_fingerprint))""",
    ),
    5: (
        # Rows from before stay unverified (0): never listed, served or a reason to trim.
        "ALTER TABLE snapshots ADD COLUMN digest BLOB",
        "ALTER TABLE snapshots ADD COLUMN signature BLOB",
        "ALTER TABLE snapshots ADD COLUMN verified INTEGER NOT NULL DEFAULT 0",
        """CREATE TABLE snapshot_marks (practice_id BLOB NOT NULL, site_id BLOB NOT NULL,
               hub_seq INTEGER NOT NULL, PRIMARY KEY (practice_id, site_id))""",
    ),
}

#: The order of "newest snapshot": a total order, so every query picks the same one when
#: two sites uploaded at the same position in the same millisecond.
_NEWEST_FIRST: Final = "ORDER BY hub_seq DESC, created_ms DESC, snapshot_id DESC"
_SNAPSHOT_INFO: Final = ("SELECT snapshot_id, hub_seq, site_id, key_epoch, length(blob), "
                         "created_ms, digest, signature FROM snapshots WHERE practice_id = ? "
                         "AND verified = 1")

#: Sizes are read without loading the blobs; a blob is loaded only if it is sent.
_BATCHES_AFTER: Final = """
SELECT hub_seq, site_id, sealed FROM (
    SELECT hub_seq, site_id, sealed,
           sum(length(sealed)) OVER (ORDER BY hub_seq) AS upto,
           row_number() OVER (ORDER BY hub_seq) AS n
    FROM batches WHERE practice_id = ? AND hub_seq > ? ORDER BY hub_seq LIMIT ?)
WHERE n = 1 OR upto <= ? ORDER BY hub_seq"""

_SITE_COLUMNS: Final = ("practice_id, site_id, name, verify_key, box_key, credential_hash, "
                        "status, approved_by, created_ms")


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    """sqlite3 errors stop here (disk full, file locked by another process, ...)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"embedded store unavailable ({type(exc).__name__})",
                               hint="check the disk and that one hub process uses the file"
                               ) from exc


def _read_blob(path: Path, practice_id: PracticeId, snapshot_id: UUID, offset: int,
               length: int) -> bytes | None:
    """Bytes [offset, offset+length) of a snapshot through incremental blob I/O."""
    with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro",
                                            uri=True, isolation_level=None)) as db:
        db.execute("BEGIN")  # one read snapshot: the row cannot go between look and read
        row = db.execute("SELECT rowid FROM snapshots WHERE practice_id = ? AND "
                         "snapshot_id = ?", (practice_id.bytes, snapshot_id.bytes)).fetchone()
        if row is None:
            return None
        with db.blobopen("snapshots", "blob", row[0], readonly=True) as blob:
            blob.seek(min(offset, len(blob)))
            return blob.read(length)


def _write_snapshot(path: Path, snapshot: NewSnapshot, now_ms: int, keep: int) -> None:
    """`put_snapshot` in one write transaction of its own connection (blocking)."""
    p, site = snapshot.practice_id.bytes, snapshot.site_id.bytes
    with contextlib.closing(sqlite3.connect(path, isolation_level=None, timeout=5.0)) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            head, mark = db.execute(
                "SELECT (SELECT last_hub_seq FROM practice_seq WHERE practice_id = ?), "
                "(SELECT hub_seq FROM snapshot_marks WHERE practice_id = ? AND site_id = ?)",
                (p, p, site)).fetchone()
            check_position(snapshot, int(head or 0), mark)
            rowid = db.execute(
                "INSERT OR REPLACE INTO snapshots (practice_id, hub_seq, site_id, key_epoch, "
                "blob, created_ms, snapshot_id, digest, signature, verified) VALUES "
                "(?, ?, ?, ?, zeroblob(?), ?, ?, ?, ?, 1)",
                (p, snapshot.hub_seq, site, snapshot.key_epoch, snapshot.size, now_ms,
                 snapshot.snapshot_id.bytes, snapshot.digest, snapshot.signature)).lastrowid
            assert rowid is not None
            with db.blobopen("snapshots", "blob", rowid) as blob, \
                    snapshot.open_body() as body:
                while piece := body.read(SNAPSHOT_PIECE_BYTES):
                    blob.write(piece)  # ValueError past `size`: the staging file grew
                if blob.tell() != snapshot.size:
                    raise ValueError(f"snapshot body is {blob.tell()} bytes, not {snapshot.size}")
            db.execute("INSERT INTO snapshot_marks (practice_id, site_id, hub_seq) "
                       "VALUES (?, ?, ?) ON CONFLICT (practice_id, site_id) DO UPDATE "
                       "SET hub_seq = max(hub_seq, excluded.hub_seq)",
                       (p, site, snapshot.hub_seq))
            db.execute("DELETE FROM snapshots WHERE practice_id = ? AND snapshot_id NOT IN "
                       "(SELECT snapshot_id FROM snapshots WHERE practice_id = ? AND "
                       f"verified = 1 {_NEWEST_FIRST} LIMIT ?)",
                       (p, p, max(keep, 1)))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def _snapshot_info(row: Sequence[Any]) -> SnapshotInfo:
    i, h, s, e, n, c, digest, signature = row
    return SnapshotInfo(UUID(bytes=i), HubSeq(h), SiteId(UUID(bytes=s)), KeyEpoch(e), int(n),
                        c, bytes(digest), bytes(signature))


def _site(row: Iterable[Any]) -> SiteRecord:
    p, s, name, vk, bk, ch, status, by, created = row
    return SiteRecord(PracticeId(UUID(bytes=p)), SiteId(UUID(bytes=s)), name, vk, bk, ch,
                      SiteStatus(status), SiteId(UUID(bytes=by)) if by else None, created)


class SqliteStore:
    """`HubStore` on one SQLite file.  Open with `SqliteStore.open(path)`."""

    schema_version = SCHEMA_VERSION

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self._path = path
        self._lock = asyncio.Lock()
        self.log_id = UUID(int=0)  # set by `_migrate`

    @classmethod
    @asynccontextmanager
    async def open(cls, path: Path, *, new_log_id: UUID | None = None,
                   now_ms: int = 0) -> AsyncIterator[SqliteStore]:
        """Open (creating and migrating) the store at `path`; raises `SchemaTooNew`.

        A store without a log id gets `new_log_id` (a random one if None), once.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(str(path), isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute("PRAGMA busy_timeout=5000")
            store = cls(db, path)
            await store._migrate(path, new_log_id or uuid4(), now_ms)
            yield store
        finally:
            await db.close()

    async def close(self) -> None:
        await self._db.close()

    async def _migrate(self, path: Path, new_log_id: UUID, now_ms: int) -> None:
        await self._db.execute("CREATE TABLE IF NOT EXISTS schema_meta "
                               "(id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)")
        async with self._db.execute("SELECT version FROM schema_meta") as cur:
            row = await cur.fetchone()
        current = row[0] if row else 0
        if current > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"store {path} has schema version {current}; this hub knows up to "
                f"{SCHEMA_VERSION}", hint="run a hub release at least as new as the one "
                "that last wrote this store")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            await self._db.execute("BEGIN IMMEDIATE")
            for statement in MIGRATIONS[version]:
                await self._db.execute(statement)
            await self._db.execute("INSERT INTO schema_meta (id, version) VALUES (1, ?) "
                                   "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
                                   (version,))
            await self._db.execute("COMMIT")
        await self._db.execute("INSERT INTO hub_meta VALUES (1, ?, ?) ON CONFLICT (id) "
                               "DO NOTHING", (new_log_id.bytes, now_ms))
        async with self._db.execute("SELECT log_id FROM hub_meta WHERE id = 1") as cur:
            meta = await cur.fetchone()
        assert meta is not None
        self.log_id = UUID(bytes=bytes(meta[0]))

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        """One serialised write transaction; sqlite errors become `StoreUnavailable`."""
        async with self._lock, _translated():
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            else:
                await self._db.execute("COMMIT")

    async def _one(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        async with self._lock, _translated(), self._db.execute(sql, args) as cur:
            return await cur.fetchone()

    async def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        async with self._lock, _translated(), self._db.execute(sql, args) as cur:
            return list(await cur.fetchall())

    async def legacy_hub_seed(self) -> bytes | None:
        row = await self._one("SELECT signing_seed FROM hub_key WHERE id = 1")
        return None if row is None else bytes(row[0])

    async def bind_hub_key(self, verify_key: bytes, now_ms: int) -> bytes:
        async with self._tx() as db:
            await db.execute("INSERT INTO hub_identity (id, verify_key, created_ms) VALUES "
                             "(1, ?, ?) ON CONFLICT (id) DO NOTHING", (verify_key, now_ms))
            async with db.execute("SELECT verify_key FROM hub_identity WHERE id = 1") as cur:
                row = await cur.fetchone()
            assert row is not None
            recorded = bytes(row[0])
            if recorded == verify_key:
                # secure_delete: the freed page is zeroed, not left readable in the file.
                await db.execute("PRAGMA secure_delete = ON")
                await db.execute("DELETE FROM hub_key")
                await db.execute("PRAGMA secure_delete = OFF")
        return recorded

    async def add_operator(self, credential_hash: bytes, now_ms: int) -> None:
        async with self._tx() as db:
            await db.execute("INSERT INTO operators VALUES (?, ?)", (credential_hash, now_ms))

    async def operator_exists(self, credential_hash: bytes) -> bool:
        row = await self._one("SELECT 1 FROM operators WHERE credential_hash = ?",
                              (credential_hash,))
        return row is not None

    async def create_practice(self, practice_id: PracticeId, name: str, now_ms: int) -> None:
        async with self._tx() as db:
            await db.execute("INSERT INTO practices VALUES (?, ?, ?)",
                             (practice_id.bytes, name, now_ms))
            await db.execute("INSERT INTO practice_seq (practice_id, last_hub_seq) "
                             "VALUES (?, 0)", (practice_id.bytes,))

    async def list_practices(self) -> list[PracticeRecord]:
        rows = await self._all("SELECT practice_id, name, created_ms FROM practices "
                               "ORDER BY created_ms, practice_id")
        return [PracticeRecord(PracticeId(UUID(bytes=p)), n, c) for p, n, c in rows]

    async def practice_exists(self, practice_id: PracticeId) -> bool:
        row = await self._one("SELECT 1 FROM practices WHERE practice_id = ?",
                              (practice_id.bytes,))
        return row is not None

    async def add_enrollment_token(self, practice_id: PracticeId, token_hash: bytes,
                                   expires_ms: int, now_ms: int) -> None:
        async with self._tx() as db:
            await db.execute("INSERT INTO enrollment_tokens VALUES (?, ?, ?, NULL, ?)",
                             (practice_id.bytes, token_hash, expires_ms, now_ms))

    async def enroll_site(self, practice_id: PracticeId, token_hash: bytes, site: NewSite,
                          now_ms: int) -> SiteRecord:
        p = practice_id.bytes
        async with self._tx() as db:
            async with db.execute("SELECT expires_ms, used_ms FROM enrollment_tokens "
                                  "WHERE practice_id = ? AND token_hash = ?",
                                  (p, token_hash)) as cur:
                row = await cur.fetchone()
            check_token_row(row[0] if row else None, row[1] if row else None, now_ms)
            await db.execute("UPDATE enrollment_tokens SET used_ms = ? "
                             "WHERE practice_id = ? AND token_hash = ?", (now_ms, p, token_hash))
            async with db.execute("SELECT count(*) FROM sites WHERE practice_id = ?",
                                  (p,)) as cur:
                first = (await cur.fetchone() or (0,))[0] == 0
            status = SiteStatus.APPROVED if first else SiteStatus.PENDING
            await db.execute(
                f"INSERT INTO sites ({_SITE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                (p, site.site_id.bytes, site.name, site.verify_key, site.box_key,
                 site.credential_hash, status.value, now_ms))
            await db.execute("INSERT INTO site_chain (practice_id, site_id, next_seq, last_hash)"
                             " VALUES (?, ?, 1, ?)", (p, site.site_id.bytes, GENESIS_HASH))
        return SiteRecord(practice_id, site.site_id, site.name, site.verify_key, site.box_key,
                          site.credential_hash, status, None, now_ms)

    async def register_former_site(self, practice_id: PracticeId, site: NewSite,
                                   now_ms: int) -> SiteRecord:
        p = practice_id.bytes
        async with self._tx() as db:
            async with db.execute(
                    f"INSERT INTO sites ({_SITE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 'revoked', "
                    "NULL, ?) ON CONFLICT (practice_id, site_id) DO NOTHING",
                    (p, site.site_id.bytes, site.name, site.verify_key, site.box_key,
                     site.credential_hash, now_ms)) as cur:
                inserted = cur.rowcount > 0
            if not inserted:
                raise AlreadyExists(f"practice {practice_id} already has site {site.site_id}",
                                    hint="list the practice's sites; register each once")
            await db.execute("INSERT OR IGNORE INTO site_chain (practice_id, site_id, next_seq, "
                             "last_hash) VALUES (?, ?, 1, ?)", (p, site.site_id.bytes,
                                                                GENESIS_HASH))
        return SiteRecord(practice_id, site.site_id, site.name, site.verify_key, site.box_key,
                          site.credential_hash, SiteStatus.REVOKED, None, now_ms)

    async def get_site(self, practice_id: PracticeId, site_id: SiteId) -> SiteRecord | None:
        row = await self._one(f"SELECT {_SITE_COLUMNS} FROM sites "
                              "WHERE practice_id = ? AND site_id = ?",
                              (practice_id.bytes, site_id.bytes))
        return _site(row) if row else None

    async def list_sites(self, practice_id: PracticeId) -> list[SiteRecord]:
        rows = await self._all(f"SELECT {_SITE_COLUMNS} FROM sites WHERE practice_id = ? "
                               "ORDER BY created_ms, site_id", (practice_id.bytes,))
        return [_site(r) for r in rows]

    async def set_site_status(self, practice_id: PracticeId, site_id: SiteId,
                              status: SiteStatus, by: SiteId | None) -> SiteRecord | None:
        async with self._tx() as db:
            await db.execute(
                "UPDATE sites SET status = ?, approved_by = coalesce(?, approved_by) "
                "WHERE practice_id = ? AND site_id = ? AND status <> 'revoked'",
                (status.value, by.bytes if by and status is SiteStatus.APPROVED else None,
                 practice_id.bytes, site_id.bytes))
            async with db.execute(f"SELECT {_SITE_COLUMNS} FROM sites "
                                  "WHERE practice_id = ? AND site_id = ?",
                                  (practice_id.bytes, site_id.bytes)) as cur:
                row = await cur.fetchone()
        return _site(row) if row else None

    async def append_batch(self, batch: IncomingBatch, now_ms: int) -> Appended:
        p, s = batch.practice_id.bytes, batch.site_id.bytes
        async with self._tx() as db:
            async with db.execute("SELECT hub_seq FROM batches WHERE practice_id = ? AND "
                                  "batch_hash = ?", (p, batch.batch_hash)) as cur:
                dup = await cur.fetchone()
            if dup is not None:
                return Appended(HubSeq(dup[0]), duplicate=True)
            async with db.execute("SELECT next_seq, last_hash FROM site_chain "
                                  "WHERE practice_id = ? AND site_id = ?", (p, s)) as cur:
                chain = await cur.fetchone()
            next_seq, last_hash = chain if chain else (1, GENESIS_HASH)
            check_continues(batch, next_seq=next_seq, last_hash=bytes(last_hash))
            async with db.execute("UPDATE practice_seq SET last_hub_seq = last_hub_seq + 1 "
                                  "WHERE practice_id = ? RETURNING last_hub_seq", (p,)) as cur:
                row = await cur.fetchone()
            assert row is not None, "practice_seq row exists for every practice"
            hub_seq = HubSeq(row[0])
            await db.execute(
                "INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (p, hub_seq, s, batch.seq_from, batch.seq_to, batch.batch_id.bytes,
                 batch.batch_hash, batch.prev_hash, batch.key_epoch, batch.max_hlc,
                 batch.sealed, now_ms))
            await db.execute(
                "INSERT INTO site_chain VALUES (?, ?, ?, ?, 1, ?, ?) ON CONFLICT "
                "(practice_id, site_id) DO UPDATE SET next_seq = excluded.next_seq, "
                "last_hash = excluded.last_hash, batches = batches + 1, "
                "changes = changes + excluded.changes, last_push_ms = excluded.last_push_ms",
                (p, s, batch.seq_to + 1, batch.batch_hash, len(batch.metas), now_ms))
            await self._track_heads(db, batch)
        return Appended(hub_seq, duplicate=False)

    async def _track_heads(self, db: aiosqlite.Connection, batch: IncomingBatch) -> None:
        p = batch.practice_id.bytes
        tokens = sorted({m.token for m in batch.metas})
        current: dict[bytes, bytes] = {}
        for start in range(0, len(tokens), 500):  # SQLite's bound-variable limit
            chunk = tokens[start:start + 500]
            marks = ",".join("?" * len(chunk))
            async with db.execute(
                    f"SELECT token, heads FROM record_heads WHERE practice_id = ? AND "
                    f"key_epoch = ? AND token IN ({marks})",
                    (p, batch.key_epoch, *chunk)) as cur:
                current.update({bytes(t): bytes(h) for t, h in await cur.fetchall()})
        update = advance_heads(current, batch.site_id, batch.seq_from, batch.metas)
        await db.executemany(
            "INSERT INTO record_heads VALUES (?, ?, ?, ?) ON CONFLICT "
            "(practice_id, key_epoch, token) DO UPDATE SET heads = excluded.heads",
            [(p, batch.key_epoch, t, h) for t, h in update.heads.items()])
        await db.execute(
            "INSERT INTO concurrency_stats VALUES (?, ?, ?) ON CONFLICT (practice_id, site_id) "
            "DO UPDATE SET concurrent_edits = concurrent_edits + excluded.concurrent_edits",
            (p, batch.site_id.bytes, update.concurrent_edits))

    async def batches_after(self, practice_id: PracticeId, after: int, limit: int,
                            max_bytes: int = MAX_PULL_BYTES) -> list[StoredBatch]:
        rows = await self._all(_BATCHES_AFTER, (practice_id.bytes, after, limit, max_bytes))
        return [StoredBatch(HubSeq(h), SiteId(UUID(bytes=s)), bytes(b)) for h, s, b in rows]

    async def head(self, practice_id: PracticeId) -> int:
        row = await self._one("SELECT last_hub_seq FROM practice_seq WHERE practice_id = ?",
                              (practice_id.bytes,))
        return int(row[0]) if row else 0

    async def roster_entries(self, practice_id: PracticeId, after: int) -> list[bytes]:
        rows = await self._all("SELECT entry FROM roster WHERE practice_id = ? AND seq > ? "
                               "ORDER BY seq", (practice_id.bytes, after))
        return [bytes(r[0]) for r in rows]

    async def append_roster_entry(self, practice_id: PracticeId, seq: int, raw: bytes,
                                  now_ms: int, change: RosterStatusChange | None) -> bool:
        async with self._tx() as db:
            async with db.execute("INSERT OR IGNORE INTO roster VALUES (?, ?, ?, ?)",
                                  (practice_id.bytes, seq, raw, now_ms)) as cur:
                if cur.rowcount == 0:
                    return False
            if change is not None:
                await db.execute(
                    "UPDATE sites SET status = ?, approved_by = coalesce(?, approved_by) "
                    "WHERE practice_id = ? AND site_id = ? AND status <> 'revoked'",
                    (change.status.value, change.by.bytes if change.by else None,
                     practice_id.bytes, change.site_id.bytes))
        return True

    async def put_kit_epoch(self, practice_id: PracticeId, record: KitEpochRecord) -> None:
        async with self._tx() as db:
            await db.execute("INSERT OR REPLACE INTO kit_epochs VALUES (?, ?, ?, ?, ?)",
                             (practice_id.bytes, record.epoch, record.kit_fingerprint,
                              record.sealed, record.created_ms))

    async def kit_epochs(self, practice_id: PracticeId) -> list[KitEpochRecord]:
        rows = await self._all("SELECT epoch, kit_fingerprint, sealed, created_ms FROM "
                               "kit_epochs WHERE practice_id = ? ORDER BY epoch, created_ms",
                               (practice_id.bytes,))
        return [KitEpochRecord(KeyEpoch(e), f, bytes(b), c) for e, f, b, c in rows]

    async def post_mail(self, practice_id: PracticeId, to_site: SiteId, from_site: SiteId,
                        mail_id: UUID, sealed: bytes, now_ms: int) -> None:
        async with self._tx() as db:
            await db.execute("INSERT INTO mailbox VALUES (?, ?, ?, ?, ?, ?)",
                             (practice_id.bytes, to_site.bytes, mail_id.bytes, from_site.bytes,
                              sealed, now_ms))

    async def list_mail(self, practice_id: PracticeId, site_id: SiteId) -> list[MailItem]:
        rows = await self._all("SELECT mail_id, from_site, sealed, created_ms FROM mailbox "
                               "WHERE practice_id = ? AND to_site = ? ORDER BY created_ms, "
                               "mail_id", (practice_id.bytes, site_id.bytes))
        return [MailItem(UUID(bytes=m), SiteId(UUID(bytes=f)), bytes(b), c)
                for m, f, b, c in rows]

    async def mail_usage(self, practice_id: PracticeId, site_id: SiteId) -> tuple[int, int]:
        row = await self._one("SELECT count(*), coalesce(sum(length(sealed)), 0) FROM mailbox "
                              "WHERE practice_id = ? AND to_site = ?",
                              (practice_id.bytes, site_id.bytes))
        return int(row[0]), int(row[1])

    async def delete_mail(self, practice_id: PracticeId, site_id: SiteId,
                          mail_id: UUID) -> bool:
        async with self._tx() as db, db.execute(
                "DELETE FROM mailbox WHERE practice_id = ? AND to_site = ? AND mail_id = ?",
                (practice_id.bytes, site_id.bytes, mail_id.bytes)) as cur:
            return cur.rowcount > 0

    async def put_snapshot(self, snapshot: NewSnapshot, now_ms: int, *, keep: int) -> None:
        # The body goes in through incremental blob I/O, a piece at a time, on a connection
        # of its own in a worker thread; holding the lock keeps the shared connection out
        # of the way for that one write transaction.
        async with self._lock:
            try:
                await asyncio.to_thread(_write_snapshot, self._path, snapshot, now_ms, keep)
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"embedded store unavailable ({type(exc).__name__})",
                                       hint="check the disk") from exc

    async def latest_snapshot_info(self, practice_id: PracticeId) -> SnapshotInfo | None:
        # length() of a BLOB reads its size from the record header, not the bytes.
        row = await self._one(f"{_SNAPSHOT_INFO} {_NEWEST_FIRST} "
                              "LIMIT 1", (practice_id.bytes,))
        return None if row is None else _snapshot_info(row)

    async def snapshot_info(self, practice_id: PracticeId,
                            snapshot_id: UUID) -> SnapshotInfo | None:
        row = await self._one(f"{_SNAPSHOT_INFO} AND snapshot_id = ?",
                              (practice_id.bytes, snapshot_id.bytes))
        return None if row is None else _snapshot_info(row)

    async def list_snapshots(self, practice_id: PracticeId) -> list[SnapshotInfo]:
        rows = await self._all(f"{_SNAPSHOT_INFO} {_NEWEST_FIRST}",
                               (practice_id.bytes,))
        return [_snapshot_info(r) for r in rows]

    async def snapshot_chunk(self, practice_id: PracticeId, snapshot_id: UUID, offset: int,
                             length: int) -> bytes | None:
        # substr() would load the whole blob for every chunk; incremental blob I/O reads
        # only the pages asked for.  A short-lived read-only connection in a thread (WAL
        # lets it read beside the writer) keeps the shared connection free.
        try:
            return await asyncio.to_thread(_read_blob, self._path, practice_id, snapshot_id,
                                           offset, length)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"embedded store unavailable ({type(exc).__name__})",
                                   hint="check the disk") from exc

    async def count_snapshots(self, practice_id: PracticeId) -> int:
        row = await self._one("SELECT count(*) FROM snapshots WHERE practice_id = ?",
                              (practice_id.bytes,))
        return int(row[0])

    async def log_bounds(self, practice_id: PracticeId) -> LogBounds:
        row = await self._one("SELECT last_hub_seq, trimmed_through FROM practice_seq "
                              "WHERE practice_id = ?", (practice_id.bytes,))
        return LogBounds(int(row[0]), int(row[1])) if row else LogBounds(0, 0)

    async def trim(self, practice_id: PracticeId, keep_batches: int) -> int:
        p = practice_id.bytes
        async with self._tx() as db:
            async with db.execute("SELECT last_hub_seq, trimmed_through FROM practice_seq "
                                  "WHERE practice_id = ?", (p,)) as cur:
                row = await cur.fetchone()
            if row is None:
                return 0
            async with db.execute("SELECT max(hub_seq) FROM snapshots WHERE practice_id = ? "
                                  "AND verified = 1", (p,)) as cur:
                covered = (await cur.fetchone() or (0,))[0] or 0
            through = trim_point(int(row[0]), int(row[1]), int(covered), keep_batches)
            if through > row[1]:
                await db.execute("DELETE FROM batches WHERE practice_id = ? AND hub_seq <= ?",
                                 (p, through))
                await db.execute("UPDATE practice_seq SET trimmed_through = ? "
                                 "WHERE practice_id = ?", (through, p))
            return through

    async def received_ms(self, practice_id: PracticeId,
                          hub_seqs: Sequence[int]) -> dict[int, int]:
        wanted = list(hub_seqs)[:500]  # SQLite's bound-variable limit; callers ask for few
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        rows = await self._all(f"SELECT hub_seq, received_ms FROM batches WHERE practice_id = ? "
                               f"AND hub_seq IN ({marks})", (practice_id.bytes, *wanted))
        return {int(h): int(r) for h, r in rows}

    async def put_heartbeat(self, practice_id: PracticeId, site_id: SiteId, report: bytes,
                            now_ms: int) -> None:
        async with self._tx() as db:
            await db.execute("INSERT OR REPLACE INTO heartbeats VALUES (?, ?, ?, ?)",
                             (practice_id.bytes, site_id.bytes, report, now_ms))

    async def count_rejection(self, practice_id: PracticeId, site_id: SiteId, code: str,
                              now_ms: int) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO push_rejections VALUES (?, ?, ?, 1, ?) ON CONFLICT "
                "(practice_id, site_id, code) DO UPDATE SET count = count + 1, "
                "last_ms = excluded.last_ms", (practice_id.bytes, site_id.bytes, code, now_ms))

    async def site_activity(self, practice_id: PracticeId) -> list[SiteActivity]:
        p = practice_id.bytes
        sites = await self._all(
            "SELECT s.site_id, c.last_push_ms, h.report, h.received_ms FROM sites s "
            "LEFT JOIN site_chain c ON c.practice_id = s.practice_id AND c.site_id = s.site_id "
            "LEFT JOIN heartbeats h ON h.practice_id = s.practice_id AND h.site_id = s.site_id "
            "WHERE s.practice_id = ? ORDER BY s.created_ms, s.site_id", (p,))
        refused = await self._all("SELECT site_id, code, count FROM push_rejections "
                                  "WHERE practice_id = ?", (p,))
        return activities([(SiteId(UUID(bytes=r[0])), r[1],
                            bytes(r[2]) if r[2] is not None else None, r[3]) for r in sites],
                          [(SiteId(UUID(bytes=r[0])), r[1], int(r[2])) for r in refused])

    async def record_operator_action(self, action: OperatorAction) -> None:
        async with self._tx() as db:
            await db.execute("INSERT INTO operator_actions VALUES (?, ?, ?, ?, ?, ?)",
                             (action.practice_id.bytes, action.action_id.bytes,
                              action.site_id.bytes if action.site_id else None, action.action,
                              action.operator_ref, action.at_ms))

    async def operator_actions(self, practice_id: PracticeId) -> list[OperatorAction]:
        rows = await self._all("SELECT action_id, practice_id, site_id, action, operator_ref, "
                               "at_ms FROM operator_actions WHERE practice_id = ? "
                               "ORDER BY at_ms, action_id", (practice_id.bytes,))
        return [OperatorAction(UUID(bytes=a), PracticeId(UUID(bytes=p)),
                               SiteId(UUID(bytes=s)) if s else None, act, ref, at)
                for a, p, s, act, ref, at in rows]

    async def practice_stats(self, practice_id: PracticeId) -> PracticeStats:
        p = practice_id.bytes
        head = await self.head(practice_id)
        tracked = await self._one("SELECT count(*) FROM record_heads WHERE practice_id = ?",
                                  (p,))
        rows = await self._all(
            "SELECT c.site_id, c.batches, c.changes, coalesce(s.concurrent_edits, 0), "
            "c.next_seq FROM site_chain c LEFT JOIN concurrency_stats s ON "
            "s.practice_id = c.practice_id AND s.site_id = c.site_id "
            "WHERE c.practice_id = ? ORDER BY c.site_id", (p,))
        return PracticeStats(head, int(tracked[0]), tuple(
            SiteStats(SiteId(UUID(bytes=s)), b, c, k, n) for s, b, c, k, n in rows))

    async def watch_commits(self, listener: CommitListener,
                            on_reconnect: Callable[[], None]) -> None:
        # One process per SQLite file: every commit is already announced in-process.
        await asyncio.Event().wait()

