"""PostgreSQL hub store (asyncpg): production; several hub processes may share one database.

A connection pool serves requests; a dedicated connection LISTENs on
`chartsync_batches` so a batch pushed through one hub process wakes the
subscribers of every other.  The push transaction NOTIFYs with
`practice_id:hub_seq`, which PostgreSQL delivers only on commit.

Hub sequences: `UPDATE practice_seq ... RETURNING` inside the push
transaction takes the practice's row lock until commit, so pushes of one
practice commit in sequence order (visible order = sequence order).  Lock
order is always site_chain row → record heads (in token order) → practice_seq
row, so concurrent pushers do not deadlock (should PostgreSQL ever detect one,
the push answers 503 and the site retries).

Surviving a database restart: every lost-connection error becomes
`StoreUnavailable` (503, retryable) and the pool replaces dead connections on
the next acquire; the listener reconnects with backoff.

Distribution (Citus): every table has practice_id first in its primary key and
every query filters by it; see README "Hub" for the two statements.

Schema versions: the changelog in `base` (both stores share one schema history).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final
from uuid import UUID, uuid4

import asyncpg
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from cloud_hub.chain import check_continues
from cloud_hub.enrollment import check_token_row
from cloud_hub.errors import AlreadyExists, ChainMismatch, SchemaTooNew, StoreUnavailable
from cloud_hub.heads import DOT_BYTES, advance_heads
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
from sync_protocol.models import GENESIS_HASH, TOKEN_BYTES

log = logging.getLogger(__name__)

CHANNEL: Final = "chartsync_batches"
#: How often the listener proves its connection is alive when nothing arrives.
LISTENER_KEEPALIVE_S: Final = 2.0
_MIGRATION_LOCK: Final = 0x63736862  # advisory lock id: two hubs starting at once migrate once

MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {
    1: (
        """CREATE TABLE hub_key (id int PRIMARY KEY CHECK (id = 1),
               signing_seed bytea NOT NULL, created_ms bigint NOT NULL)""",
        """CREATE TABLE operators (credential_hash bytea PRIMARY KEY,
               created_ms bigint NOT NULL)""",
        """CREATE TABLE practices (practice_id uuid PRIMARY KEY, name text NOT NULL,
               created_ms bigint NOT NULL)""",
        """CREATE TABLE practice_seq (practice_id uuid PRIMARY KEY,
               last_hub_seq bigint NOT NULL)""",
        """CREATE TABLE enrollment_tokens (practice_id uuid NOT NULL, token_hash bytea NOT NULL,
               expires_ms bigint NOT NULL, used_ms bigint, created_ms bigint NOT NULL,
               PRIMARY KEY (practice_id, token_hash))""",
        """CREATE TABLE sites (practice_id uuid NOT NULL, site_id uuid NOT NULL,
               name text NOT NULL, verify_key bytea NOT NULL, box_key bytea NOT NULL,
               credential_hash bytea NOT NULL,
               status text NOT NULL CHECK (status IN ('pending', 'approved', 'revoked')),
               approved_by uuid, created_ms bigint NOT NULL,
               PRIMARY KEY (practice_id, site_id))""",
        """CREATE TABLE site_chain (practice_id uuid NOT NULL, site_id uuid NOT NULL,
               next_seq bigint NOT NULL, last_hash bytea NOT NULL,
               batches bigint NOT NULL DEFAULT 0, changes bigint NOT NULL DEFAULT 0,
               PRIMARY KEY (practice_id, site_id))""",
        """CREATE TABLE batches (practice_id uuid NOT NULL, hub_seq bigint NOT NULL,
               site_id uuid NOT NULL, seq_from bigint NOT NULL, seq_to bigint NOT NULL,
               batch_id uuid NOT NULL, batch_hash bytea NOT NULL, prev_hash bytea NOT NULL,
               key_epoch int NOT NULL, max_hlc bigint NOT NULL, sealed bytea NOT NULL,
               received_ms bigint NOT NULL,
               PRIMARY KEY (practice_id, hub_seq),
               UNIQUE (practice_id, site_id, seq_from),
               UNIQUE (practice_id, batch_hash))""",
        # Ciphertext does not compress: skip TOAST's pglz pass.
        "ALTER TABLE batches ALTER COLUMN sealed SET STORAGE EXTERNAL",
        """CREATE TABLE record_heads (practice_id uuid NOT NULL, key_epoch int NOT NULL,
               token bytea NOT NULL, heads bytea NOT NULL,
               PRIMARY KEY (practice_id, key_epoch, token)) WITH (fillfactor = 80)""",
        """CREATE TABLE concurrency_stats (practice_id uuid NOT NULL, site_id uuid NOT NULL,
               concurrent_edits bigint NOT NULL, PRIMARY KEY (practice_id, site_id))""",
        """CREATE TABLE mailbox (practice_id uuid NOT NULL, to_site uuid NOT NULL,
               mail_id uuid NOT NULL, from_site uuid NOT NULL, sealed bytea NOT NULL,
               created_ms bigint NOT NULL, PRIMARY KEY (practice_id, to_site, mail_id))""",
        """CREATE TABLE snapshots (practice_id uuid NOT NULL, hub_seq bigint NOT NULL,
               site_id uuid NOT NULL, key_epoch int NOT NULL, blob bytea NOT NULL,
               created_ms bigint NOT NULL, PRIMARY KEY (practice_id, hub_seq, site_id))""",
        "ALTER TABLE snapshots ALTER COLUMN blob SET STORAGE EXTERNAL",
    ),
    2: (
        # The log id itself is inserted by `_migrate` (a value made by the caller).
        """CREATE TABLE hub_meta (id int PRIMARY KEY CHECK (id = 1), log_id uuid NOT NULL,
               created_ms bigint NOT NULL)""",
        "ALTER TABLE practice_seq ADD COLUMN trimmed_through bigint NOT NULL DEFAULT 0",
        "ALTER TABLE site_chain ADD COLUMN last_push_ms bigint",
        "ALTER TABLE snapshots ADD COLUMN snapshot_id uuid",
        "UPDATE snapshots SET snapshot_id = gen_random_uuid()",
        "ALTER TABLE snapshots ALTER COLUMN snapshot_id SET NOT NULL",
        """CREATE TABLE heartbeats (practice_id uuid NOT NULL, site_id uuid NOT NULL,
               report bytea NOT NULL, received_ms bigint NOT NULL,
               PRIMARY KEY (practice_id, site_id))""",
        """CREATE TABLE push_rejections (practice_id uuid NOT NULL, site_id uuid NOT NULL,
               code text NOT NULL, count bigint NOT NULL, last_ms bigint NOT NULL,
               PRIMARY KEY (practice_id, site_id, code))""",
        """CREATE TABLE operator_actions (practice_id uuid NOT NULL, action_id uuid NOT NULL,
               site_id uuid, action text NOT NULL, operator_ref text NOT NULL,
               at_ms bigint NOT NULL, PRIMARY KEY (practice_id, action_id))""",
    ),
    3: (
        # hub_key (schema 1) keeps its seed until the hub has moved it to its key file.
        """CREATE TABLE hub_identity (id int PRIMARY KEY CHECK (id = 1),
               verify_key bytea NOT NULL, created_ms bigint NOT NULL)""",
    ),
    4: (
        """CREATE TABLE roster (practice_id uuid NOT NULL, seq int NOT NULL,
               entry bytea NOT NULL, created_ms bigint NOT NULL,
               PRIMARY KEY (practice_id, seq))""",
        """CREATE TABLE kit_epochs (practice_id uuid NOT NULL, epoch int NOT NULL,
               kit_fingerprint text NOT NULL, sealed bytea NOT NULL, created_ms bigint NOT NULL,
               PRIMARY KEY (practice_id, epoch, kit_fingerprint))""",
    ),
    5: (
        # Rows from before stay unverified (false): never listed, served or a reason to trim.
        "ALTER TABLE snapshots ADD COLUMN digest bytea",
        "ALTER TABLE snapshots ADD COLUMN signature bytea",
        "ALTER TABLE snapshots ADD COLUMN verified boolean NOT NULL DEFAULT false",
        """CREATE TABLE snapshot_marks (practice_id uuid NOT NULL, site_id uuid NOT NULL,
               hub_seq bigint NOT NULL, PRIMARY KEY (practice_id, site_id))""",
    ),
}

#: The order of "newest snapshot": a total order, so every query picks the same one when
#: two sites uploaded at the same position in the same millisecond.
_NEWEST_FIRST: Final = "ORDER BY hub_seq DESC, created_ms DESC, snapshot_id DESC"
_SNAPSHOT_INFO: Final = ("SELECT snapshot_id, hub_seq, site_id, key_epoch, octet_length(blob), "
                         "created_ms, digest, signature FROM snapshots WHERE practice_id = $1 "
                         "AND verified")
#: Raise the site's mark to this snapshot's position; no row back if it is behind the mark
#: (the row lock also orders two concurrent uploads of one site).
_MARK: Final = (
    "INSERT INTO snapshot_marks (practice_id, site_id, hub_seq) VALUES ($1, $2, $3) "
    "ON CONFLICT (practice_id, site_id) DO UPDATE SET hub_seq = EXCLUDED.hub_seq "
    "WHERE snapshot_marks.hub_seq <= EXCLUDED.hub_seq RETURNING hub_seq")

#: Errors that mean "the database is not reachable right now" (restart, network, shutdown).
_UNAVAILABLE: Final = (OSError, TimeoutError, asyncpg.InterfaceError,
                       asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
                       asyncpg.OperatorInterventionError)

#: Lock the site's chain row; also find the batch if it is stored already.
_LOCK_CHAIN: Final = (
    "SELECT c.next_seq, c.last_hash, (SELECT b.hub_seq FROM batches b WHERE "
    "b.practice_id = $1 AND b.batch_hash = $3) FROM site_chain c "
    "WHERE c.practice_id = $1 AND c.site_id = $2 FOR UPDATE OF c")
_FIND_BATCH: Final = "SELECT hub_seq FROM batches WHERE practice_id = $1 AND batch_hash = $2"
#: Take the practice's next hub sequence (its row stays locked until commit), store the
#: batch, advance the site's chain, count concurrent edits and NOTIFY: one round trip.
_APPEND: Final = """
WITH seq AS (
    UPDATE practice_seq SET last_hub_seq = last_hub_seq + 1 WHERE practice_id = $1
    RETURNING last_hub_seq),
stored AS (
    INSERT INTO batches (practice_id, hub_seq, site_id, seq_from, seq_to, batch_id,
                         batch_hash, prev_hash, key_epoch, max_hlc, sealed, received_ms)
    SELECT $1, seq.last_hub_seq, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM seq
    RETURNING hub_seq),
chain AS (
    INSERT INTO site_chain (practice_id, site_id, next_seq, last_hash, batches, changes,
                            last_push_ms)
    VALUES ($1, $2, $4::bigint + 1, $6, 1, $12, $11)
    ON CONFLICT (practice_id, site_id) DO UPDATE SET next_seq = EXCLUDED.next_seq,
        last_hash = EXCLUDED.last_hash, batches = site_chain.batches + 1,
        changes = site_chain.changes + EXCLUDED.changes,
        last_push_ms = EXCLUDED.last_push_ms),
stats AS (
    INSERT INTO concurrency_stats (practice_id, site_id, concurrent_edits)
    SELECT $1, $2, $13::bigint WHERE $13::bigint > 0
    ON CONFLICT (practice_id, site_id) DO UPDATE SET
        concurrent_edits = concurrency_stats.concurrent_edits + EXCLUDED.concurrent_edits)
SELECT hub_seq, pg_notify($15, $14::text || hub_seq::text) FROM stored
"""

#: Insert new records' heads, lock known records' rows (no-op update) in token order and
#: return the known records' current heads.  `xmax = 0` marks a row inserted here.
_LOCK_HEADS_RETURN: Final = """
    ON CONFLICT (practice_id, key_epoch, token) DO UPDATE SET heads = record_heads.heads
    RETURNING token, heads, xmax = 0 AS inserted)
SELECT token, heads FROM upserted WHERE NOT inserted"""
_LOCK_HEADS: Final = """
WITH upserted AS (
    INSERT INTO record_heads (practice_id, key_epoch, token, heads)
    SELECT $1, $2, t, h FROM unnest($3::bytea[], $4::bytea[]) AS u(t, h)""" + _LOCK_HEADS_RETURN
#: The same with tokens (16 bytes) and single-dot heads (24 bytes) packed end to end.
_LOCK_HEADS_FLAT: Final = f"""
WITH upserted AS (
    INSERT INTO record_heads (practice_id, key_epoch, token, heads)
    SELECT $1, $2, substring($3::bytea FROM i * {TOKEN_BYTES} + 1 FOR {TOKEN_BYTES}),
           substring($4::bytea FROM i * {DOT_BYTES} + 1 FOR {DOT_BYTES})
    FROM generate_series(0, $5::int - 1) AS i""" + _LOCK_HEADS_RETURN

#: octet_length reads a stored value's size from its TOAST pointer: a batch's bytes
#: are loaded only if the batch is sent.
_BATCHES_AFTER: Final = """
SELECT hub_seq, site_id, sealed FROM (
    SELECT hub_seq, site_id, sealed,
           sum(octet_length(sealed)) OVER (ORDER BY hub_seq) AS upto,
           row_number() OVER (ORDER BY hub_seq) AS n
    FROM batches WHERE practice_id = $1 AND hub_seq > $2 ORDER BY hub_seq LIMIT $3) AS s
WHERE n = 1 OR upto <= $4 ORDER BY hub_seq"""

_SITE_COLUMNS: Final = ("practice_id, site_id, name, verify_key, box_key, credential_hash, "
                        "status, approved_by, created_ms")


def _site(row: Any) -> SiteRecord:
    return SiteRecord(PracticeId(row[0]), SiteId(row[1]), row[2], bytes(row[3]), bytes(row[4]),
                      bytes(row[5]), SiteStatus(row[6]),
                      SiteId(row[7]) if row[7] else None, row[8])


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    """Turn a lost database into `StoreUnavailable`; keep the cause."""
    try:
        yield
    except _UNAVAILABLE as exc:
        raise StoreUnavailable(f"database unavailable ({type(exc).__name__})",
                               hint="retry shortly; if it persists, check PostgreSQL") from exc
    except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
        raise StoreUnavailable("concurrent pushes collided; nothing was stored",
                               hint="retry; the request is idempotent") from exc
    except asyncpg.UniqueViolationError as exc:
        # Only a concurrent twin of the same push gets here; a retry sees the winner.
        raise StoreUnavailable("a concurrent request stored the same item first",
                               hint="retry; the request is idempotent") from exc


#: PostgreSQL's binary COPY: signature, flags, header extension length.
_COPY_HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + bytes(8)


async def _copy_body(snapshot: NewSnapshot) -> AsyncIterator[bytes]:
    """One row of one bytea field in COPY's binary format, the body read in pieces."""
    yield _COPY_HEADER + (1).to_bytes(2, "big") + snapshot.size.to_bytes(4, "big")
    body = snapshot.open_body()
    try:
        while piece := await asyncio.to_thread(body.read, SNAPSHOT_PIECE_BYTES):
            yield piece
    finally:
        body.close()
    yield (-1).to_bytes(2, "big", signed=True)


def _snapshot_info(row: Sequence[Any]) -> SnapshotInfo:
    return SnapshotInfo(row[0], HubSeq(row[1]), SiteId(row[2]), KeyEpoch(row[3]), int(row[4]),
                        row[5], bytes(row[6]), bytes(row[7]))


class PostgresStore:
    """`HubStore` on PostgreSQL.  Open with `PostgresStore.open(dsn)`."""

    schema_version = SCHEMA_VERSION

    def __init__(self, dsn: str, pool: asyncpg.Pool) -> None:
        self._dsn = dsn
        self._pool = pool
        self.log_id = UUID(int=0)  # set by `_migrate`

    @classmethod
    @asynccontextmanager
    async def open(cls, dsn: str, *, min_size: int = 2, max_size: int = 10,
                   new_log_id: UUID | None = None,
                   now_ms: int = 0) -> AsyncIterator[PostgresStore]:
        """Connect, create or migrate the schema; raises `SchemaTooNew`/`StoreUnavailable`.

        A store without a log id gets `new_log_id` (a random one if None), once.
        """
        async with _translated():
            pool = await asyncpg.create_pool(dsn, min_size=min(min_size, max_size),
                                             max_size=max_size,
                                             command_timeout=60, server_settings={
                                                 "plan_cache_mode": "force_custom_plan"})
        try:
            store = cls(dsn, pool)
            await store._migrate(new_log_id or uuid4(), now_ms)
            yield store
        finally:
            await pool.close()

    async def close(self) -> None:
        await self._pool.close()

    async def _migrate(self, new_log_id: UUID, now_ms: int) -> None:
        async with _translated(), self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_meta "
                               "(id int PRIMARY KEY CHECK (id = 1), version int NOT NULL)")
            current = await conn.fetchval("SELECT version FROM schema_meta") or 0
            if current > SCHEMA_VERSION:
                raise SchemaTooNew(
                    f"database has hub schema version {current}; this hub knows up to "
                    f"{SCHEMA_VERSION}", hint="run a hub release at least as new as the one "
                    "that last wrote this database")
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version]:
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_meta (id, version) VALUES (1, $1) ON CONFLICT (id) "
                    "DO UPDATE SET version = EXCLUDED.version", version)
                log.info("hub schema migrated", extra={"schema_version": version})
            await conn.execute("INSERT INTO hub_meta VALUES (1, $1, $2) ON CONFLICT (id) "
                               "DO NOTHING", new_log_id, now_ms)
            self.log_id = await conn.fetchval("SELECT log_id FROM hub_meta WHERE id = 1")

    async def _fetchrow(self, sql: str, *args: Any) -> Any:
        async with _translated():
            return await self._pool.fetchrow(sql, *args)

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        async with _translated():
            return list(await self._pool.fetch(sql, *args))

    async def _execute(self, sql: str, *args: Any) -> str:
        async with _translated():
            return str(await self._pool.execute(sql, *args))

    async def legacy_hub_seed(self) -> bytes | None:
        row = await self._fetchrow("SELECT signing_seed FROM hub_key WHERE id = 1")
        return None if row is None else bytes(row[0])

    async def bind_hub_key(self, verify_key: bytes, now_ms: int) -> bytes:
        async with _translated(), self._pool.acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO hub_identity VALUES (1, $1, $2) ON CONFLICT (id) "
                               "DO NOTHING", verify_key, now_ms)
            recorded = bytes(await conn.fetchval(
                "SELECT verify_key FROM hub_identity WHERE id = 1"))
            if recorded == verify_key:
                await conn.execute("DELETE FROM hub_key")
        return recorded

    async def add_operator(self, credential_hash: bytes, now_ms: int) -> None:
        await self._execute("INSERT INTO operators VALUES ($1, $2)", credential_hash, now_ms)

    async def operator_exists(self, credential_hash: bytes) -> bool:
        return await self._fetchrow("SELECT 1 FROM operators WHERE credential_hash = $1",
                                    credential_hash) is not None

    async def create_practice(self, practice_id: PracticeId, name: str, now_ms: int) -> None:
        async with _translated(), self._pool.acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO practices VALUES ($1, $2, $3)",
                               practice_id, name, now_ms)
            await conn.execute("INSERT INTO practice_seq (practice_id, last_hub_seq) "
                             "VALUES ($1, 0)", practice_id)

    async def list_practices(self) -> list[PracticeRecord]:
        rows = await self._fetch("SELECT practice_id, name, created_ms FROM practices "
                                 "ORDER BY created_ms, practice_id")
        return [PracticeRecord(PracticeId(p), n, c) for p, n, c in rows]

    async def practice_exists(self, practice_id: PracticeId) -> bool:
        return await self._fetchrow("SELECT 1 FROM practices WHERE practice_id = $1",
                                    practice_id) is not None

    async def add_enrollment_token(self, practice_id: PracticeId, token_hash: bytes,
                                   expires_ms: int, now_ms: int) -> None:
        await self._execute("INSERT INTO enrollment_tokens VALUES ($1, $2, $3, NULL, $4)",
                            practice_id, token_hash, expires_ms, now_ms)

    async def enroll_site(self, practice_id: PracticeId, token_hash: bytes, site: NewSite,
                          now_ms: int) -> SiteRecord:
        async with _translated(), self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT expires_ms, used_ms FROM enrollment_tokens WHERE practice_id = $1 "
                "AND token_hash = $2 FOR UPDATE", practice_id, token_hash)
            check_token_row(row[0] if row else None, row[1] if row else None, now_ms)
            await conn.execute("UPDATE enrollment_tokens SET used_ms = $3 WHERE "
                               "practice_id = $1 AND token_hash = $2",
                               practice_id, token_hash, now_ms)
            # Serialise enrollments of one practice so exactly one site is "first".
            await conn.execute("SELECT 1 FROM practice_seq WHERE practice_id = $1 FOR UPDATE",
                               practice_id)
            first = await conn.fetchval("SELECT count(*) FROM sites WHERE practice_id = $1",
                                        practice_id) == 0
            status = SiteStatus.APPROVED if first else SiteStatus.PENDING
            await conn.execute(
                f"INSERT INTO sites ({_SITE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, "
                "NULL, $8)", practice_id, site.site_id, site.name, site.verify_key,
                site.box_key, site.credential_hash, status.value, now_ms)
            await conn.execute("INSERT INTO site_chain (practice_id, site_id, next_seq, "
                               "last_hash) VALUES ($1, $2, 1, $3)",
                               practice_id, site.site_id, GENESIS_HASH)
        return SiteRecord(practice_id, site.site_id, site.name, site.verify_key, site.box_key,
                          site.credential_hash, status, None, now_ms)

    async def register_former_site(self, practice_id: PracticeId, site: NewSite,
                                   now_ms: int) -> SiteRecord:
        async with _translated(), self._pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                f"INSERT INTO sites ({_SITE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, "
                "'revoked', NULL, $7) ON CONFLICT (practice_id, site_id) DO NOTHING "
                "RETURNING 1", practice_id, site.site_id, site.name, site.verify_key,
                site.box_key, site.credential_hash, now_ms)
            if inserted is None:
                raise AlreadyExists(f"practice {practice_id} already has site {site.site_id}",
                                    hint="list the practice's sites; register each once")
            await conn.execute("INSERT INTO site_chain (practice_id, site_id, next_seq, "
                               "last_hash) VALUES ($1, $2, 1, $3) ON CONFLICT DO NOTHING",
                               practice_id, site.site_id, GENESIS_HASH)
        return SiteRecord(practice_id, site.site_id, site.name, site.verify_key, site.box_key,
                          site.credential_hash, SiteStatus.REVOKED, None, now_ms)

    async def get_site(self, practice_id: PracticeId, site_id: SiteId) -> SiteRecord | None:
        row = await self._fetchrow(f"SELECT {_SITE_COLUMNS} FROM sites WHERE practice_id = $1 "
                                   "AND site_id = $2", practice_id, site_id)
        return _site(row) if row else None

    async def list_sites(self, practice_id: PracticeId) -> list[SiteRecord]:
        rows = await self._fetch(f"SELECT {_SITE_COLUMNS} FROM sites WHERE practice_id = $1 "
                                 "ORDER BY created_ms, site_id", practice_id)
        return [_site(r) for r in rows]

    async def set_site_status(self, practice_id: PracticeId, site_id: SiteId,
                              status: SiteStatus, by: SiteId | None) -> SiteRecord | None:
        async with _translated(), self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE sites SET status = $3, approved_by = coalesce($4, approved_by) "
                "WHERE practice_id = $1 AND site_id = $2 AND status <> 'revoked'",
                practice_id, site_id, status.value,
                by if status is SiteStatus.APPROVED else None)
            row = await conn.fetchrow(f"SELECT {_SITE_COLUMNS} FROM sites WHERE "
                                      "practice_id = $1 AND site_id = $2", practice_id, site_id)
            # Hub sequence 0: "registry changed"; other processes re-check their streams.
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"{practice_id}:0")
        return _site(row) if row else None

    async def append_batch(self, batch: IncomingBatch, now_ms: int) -> Appended:
        p, s = batch.practice_id, batch.site_id
        async with _translated(), self._pool.acquire() as conn, conn.transaction():
            chain = await conn.fetchrow(_LOCK_CHAIN, p, s, batch.batch_hash)
            if chain is not None and chain[2] is not None:
                return Appended(HubSeq(chain[2]), duplicate=True)
            next_seq, last_hash = (chain[0], bytes(chain[1])) if chain else (1, GENESIS_HASH)
            try:
                check_continues(batch, next_seq=next_seq, last_hash=last_hash)
            except ChainMismatch:
                # A twin of this push may have committed while we waited for the site's
                # lock; that statement's snapshot predates it, this one's does not.
                dup = await conn.fetchval(_FIND_BATCH, p, batch.batch_hash)
                if dup is not None:
                    return Appended(HubSeq(dup), duplicate=True)
                raise
            # Heads before the practice lock: pushes of one practice track heads in
            # parallel (token rows are locked in token order), and only the one
            # statement below runs one push at a time.
            concurrent = await self._track_heads(conn, batch)
            hub_seq = HubSeq(await conn.fetchval(
                _APPEND, p, s, batch.seq_from, batch.seq_to, batch.batch_id, batch.batch_hash,
                batch.prev_hash, batch.key_epoch, batch.max_hlc, batch.sealed, now_ms,
                len(batch.metas), concurrent, f"{p}:", CHANNEL))
        return Appended(hub_seq, duplicate=False)

    async def _track_heads(self, conn: asyncpg.Connection, batch: IncomingBatch) -> int:
        """Lock-and-read, then write, the batch's record heads: one statement each.

        The first statement inserts new tokens with their final heads and locks
        every existing token row of the batch (a no-op update), in token order so
        concurrent pushes of the same practice do not deadlock, returning the
        current heads; the second rewrites only the tokens that existed.
        (`xmax = 0` in RETURNING tells an inserted row from an updated one.)
        """
        # Heads as if every token were new: exactly right for the tokens inserted here.
        as_new = advance_heads({}, batch.site_id, batch.seq_from, batch.metas)
        fresh = as_new.heads
        tokens = sorted(fresh)
        values = [fresh[t] for t in tokens]
        if all(len(v) == DOT_BYTES for v in values):
            # The usual case (one head per new record): two flat byte strings, which
            # asyncpg sends without per-element work (500-element arrays cost ~2 ms).
            rows = await conn.fetch(_LOCK_HEADS_FLAT, batch.practice_id, batch.key_epoch,
                                    b"".join(tokens), b"".join(values), len(tokens))
        else:
            rows = await conn.fetch(_LOCK_HEADS, batch.practice_id, batch.key_epoch, tokens,
                                    values)
        existing = {bytes(t): bytes(h) for t, h in rows}
        # A new record edited twice in one batch without the second edit seeing the first.
        concurrent = sum(n for t, n in as_new.concurrent_by_token.items() if t not in existing)
        if existing:
            concurrent += await self._update_existing_heads(conn, batch, existing)
        return concurrent

    async def _update_existing_heads(self, conn: asyncpg.Connection, batch: IncomingBatch,
                                     existing: dict[bytes, bytes]) -> int:
        """Rewrite the heads of records that had some; return their concurrent edits."""
        update = advance_heads(existing, batch.site_id, batch.seq_from, batch.metas,
                               only=existing)
        await conn.execute(
            "UPDATE record_heads SET heads = u.h FROM unnest($3::bytea[], $4::bytea[]) "
            "AS u(t, h) WHERE practice_id = $1 AND key_epoch = $2 AND token = u.t",
            batch.practice_id, batch.key_epoch, list(existing),
            [update.heads[t] for t in existing])
        return update.concurrent_edits

    async def batches_after(self, practice_id: PracticeId, after: int, limit: int,
                            max_bytes: int = MAX_PULL_BYTES) -> list[StoredBatch]:
        rows = await self._fetch(_BATCHES_AFTER, practice_id, after, limit, max_bytes)
        return [StoredBatch(HubSeq(h), SiteId(s), bytes(b)) for h, s, b in rows]

    async def head(self, practice_id: PracticeId) -> int:
        row = await self._fetchrow("SELECT last_hub_seq FROM practice_seq WHERE "
                                   "practice_id = $1", practice_id)
        return int(row[0]) if row else 0

    async def roster_entries(self, practice_id: PracticeId, after: int) -> list[bytes]:
        rows = await self._fetch("SELECT entry FROM roster WHERE practice_id = $1 AND "
                                 "seq > $2 ORDER BY seq", practice_id, after)
        return [bytes(r[0]) for r in rows]

    async def append_roster_entry(self, practice_id: PracticeId, seq: int, raw: bytes,
                                  now_ms: int, change: RosterStatusChange | None) -> bool:
        async with _translated(), self._pool.acquire() as conn, conn.transaction():
            status = await conn.execute("INSERT INTO roster VALUES ($1, $2, $3, $4) "
                                        "ON CONFLICT DO NOTHING", practice_id, seq, raw, now_ms)
            if status == "INSERT 0 0":
                return False
            if change is not None:
                await conn.execute(
                    "UPDATE sites SET status = $3, approved_by = coalesce($4, approved_by) "
                    "WHERE practice_id = $1 AND site_id = $2 AND status <> 'revoked'",
                    practice_id, change.site_id, change.status.value, change.by)
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"{practice_id}:0")
        return True

    async def put_kit_epoch(self, practice_id: PracticeId, record: KitEpochRecord) -> None:
        await self._execute("INSERT INTO kit_epochs VALUES ($1, $2, $3, $4, $5) ON CONFLICT "
                            "(practice_id, epoch, kit_fingerprint) DO UPDATE SET "
                            "sealed = EXCLUDED.sealed, created_ms = EXCLUDED.created_ms",
                            practice_id, record.epoch, record.kit_fingerprint, record.sealed,
                            record.created_ms)

    async def kit_epochs(self, practice_id: PracticeId) -> list[KitEpochRecord]:
        rows = await self._fetch("SELECT epoch, kit_fingerprint, sealed, created_ms FROM "
                                 "kit_epochs WHERE practice_id = $1 ORDER BY epoch, created_ms",
                                 practice_id)
        return [KitEpochRecord(KeyEpoch(e), f, bytes(b), c) for e, f, b, c in rows]

    async def post_mail(self, practice_id: PracticeId, to_site: SiteId, from_site: SiteId,
                        mail_id: UUID, sealed: bytes, now_ms: int) -> None:
        await self._execute("INSERT INTO mailbox VALUES ($1, $2, $3, $4, $5, $6)",
                            practice_id, to_site, mail_id, from_site, sealed, now_ms)

    async def list_mail(self, practice_id: PracticeId, site_id: SiteId) -> list[MailItem]:
        rows = await self._fetch("SELECT mail_id, from_site, sealed, created_ms FROM mailbox "
                                 "WHERE practice_id = $1 AND to_site = $2 ORDER BY created_ms, "
                                 "mail_id", practice_id, site_id)
        return [MailItem(m, SiteId(f), bytes(b), c) for m, f, b, c in rows]

    async def mail_usage(self, practice_id: PracticeId, site_id: SiteId) -> tuple[int, int]:
        row = await self._fetchrow("SELECT count(*), coalesce(sum(length(sealed)), 0) FROM "
                                   "mailbox WHERE practice_id = $1 AND to_site = $2",
                                   practice_id, site_id)
        return int(row[0]), int(row[1])

    async def delete_mail(self, practice_id: PracticeId, site_id: SiteId,
                          mail_id: UUID) -> bool:
        status = await self._execute("DELETE FROM mailbox WHERE practice_id = $1 AND "
                                     "to_site = $2 AND mail_id = $3",
                                     practice_id, site_id, mail_id)
        return status != "DELETE 0"

    async def put_snapshot(self, snapshot: NewSnapshot, now_ms: int, *, keep: int) -> None:
        p, site = snapshot.practice_id, snapshot.site_id
        async with _translated(), self._pool.acquire() as conn, conn.transaction():
            head = int(await conn.fetchval("SELECT last_hub_seq FROM practice_seq WHERE "
                                           "practice_id = $1", p) or 0)
            check_position(snapshot, head, None)
            if await conn.fetchval(_MARK, p, site, snapshot.hub_seq) is None:
                check_position(snapshot, head, await conn.fetchval(
                    "SELECT hub_seq FROM snapshot_marks WHERE practice_id = $1 AND "
                    "site_id = $2", p, site))
            # The body streams in with COPY (binary) into a table of this transaction, then
            # moves server-side: the hub never holds it whole.
            await conn.execute("CREATE TEMP TABLE snapshot_body (blob bytea NOT NULL) "
                               "ON COMMIT DROP")
            await conn.copy_to_table("snapshot_body", source=_copy_body(snapshot),
                                     format="binary")
            await conn.execute(
                "INSERT INTO snapshots (practice_id, hub_seq, site_id, key_epoch, blob, "
                "created_ms, snapshot_id, digest, signature, verified) SELECT $1, $2, $3, $4, "
                "blob, $5, $6, $7, $8, true FROM snapshot_body ON CONFLICT (practice_id, "
                "hub_seq, site_id) DO UPDATE SET key_epoch = EXCLUDED.key_epoch, "
                "blob = EXCLUDED.blob, created_ms = EXCLUDED.created_ms, "
                "snapshot_id = EXCLUDED.snapshot_id, digest = EXCLUDED.digest, "
                "signature = EXCLUDED.signature, verified = true",
                p, snapshot.hub_seq, site, snapshot.key_epoch, now_ms, snapshot.snapshot_id,
                snapshot.digest, snapshot.signature)
            await conn.execute(
                "DELETE FROM snapshots WHERE practice_id = $1 AND (hub_seq, site_id) NOT IN "
                "(SELECT hub_seq, site_id FROM snapshots WHERE practice_id = $1 AND verified "
                f"{_NEWEST_FIRST} LIMIT $2)", p, max(keep, 1))

    async def latest_snapshot_info(self, practice_id: PracticeId) -> SnapshotInfo | None:
        # octet_length reads the size from the TOAST pointer: the blob is not loaded.
        row = await self._fetchrow(f"{_SNAPSHOT_INFO} {_NEWEST_FIRST} "
                                   "LIMIT 1", practice_id)
        return None if row is None else _snapshot_info(row)

    async def snapshot_info(self, practice_id: PracticeId,
                            snapshot_id: UUID) -> SnapshotInfo | None:
        row = await self._fetchrow(f"{_SNAPSHOT_INFO} AND snapshot_id = $2", practice_id,
                                   snapshot_id)
        return None if row is None else _snapshot_info(row)

    async def list_snapshots(self, practice_id: PracticeId) -> list[SnapshotInfo]:
        rows = await self._fetch(f"{_SNAPSHOT_INFO} {_NEWEST_FIRST}",
                                 practice_id)
        return [_snapshot_info(r) for r in rows]

    async def snapshot_chunk(self, practice_id: PracticeId, snapshot_id: UUID, offset: int,
                             length: int) -> bytes | None:
        # EXTERNAL storage (no compression): substring reads only the TOAST chunks it needs.
        row = await self._fetchrow(
            "SELECT substring(blob FROM $3::int + 1 FOR $4::int) FROM snapshots "
            "WHERE practice_id = $1 AND snapshot_id = $2", practice_id, snapshot_id,
            offset, length)
        return bytes(row[0]) if row is not None else None

    async def count_snapshots(self, practice_id: PracticeId) -> int:
        row = await self._fetchrow("SELECT count(*) FROM snapshots WHERE practice_id = $1",
                                   practice_id)
        return int(row[0])

    async def log_bounds(self, practice_id: PracticeId) -> LogBounds:
        row = await self._fetchrow("SELECT last_hub_seq, trimmed_through FROM practice_seq "
                                   "WHERE practice_id = $1", practice_id)
        return LogBounds(int(row[0]), int(row[1])) if row else LogBounds(0, 0)

    async def trim(self, practice_id: PracticeId, keep_batches: int) -> int:
        async with _translated(), self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow("SELECT last_hub_seq, trimmed_through FROM practice_seq "
                                      "WHERE practice_id = $1 FOR UPDATE", practice_id)
            if row is None:
                return 0
            covered = await conn.fetchval("SELECT max(hub_seq) FROM snapshots "
                                          "WHERE practice_id = $1 AND verified",
                                          practice_id) or 0
            through = trim_point(int(row[0]), int(row[1]), int(covered), keep_batches)
            if through > row[1]:
                await conn.execute("DELETE FROM batches WHERE practice_id = $1 AND "
                                   "hub_seq <= $2", practice_id, through)
                await conn.execute("UPDATE practice_seq SET trimmed_through = $2 "
                                   "WHERE practice_id = $1", practice_id, through)
            return through

    async def received_ms(self, practice_id: PracticeId,
                          hub_seqs: Sequence[int]) -> dict[int, int]:
        rows = await self._fetch("SELECT hub_seq, received_ms FROM batches WHERE "
                                 "practice_id = $1 AND hub_seq = ANY($2::bigint[])",
                                 practice_id, list(hub_seqs))
        return {int(h): int(r) for h, r in rows}

    async def put_heartbeat(self, practice_id: PracticeId, site_id: SiteId, report: bytes,
                            now_ms: int) -> None:
        await self._execute(
            "INSERT INTO heartbeats VALUES ($1, $2, $3, $4) ON CONFLICT (practice_id, site_id) "
            "DO UPDATE SET report = EXCLUDED.report, received_ms = EXCLUDED.received_ms",
            practice_id, site_id, report, now_ms)

    async def count_rejection(self, practice_id: PracticeId, site_id: SiteId, code: str,
                              now_ms: int) -> None:
        await self._execute(
            "INSERT INTO push_rejections VALUES ($1, $2, $3, 1, $4) ON CONFLICT "
            "(practice_id, site_id, code) DO UPDATE SET count = push_rejections.count + 1, "
            "last_ms = EXCLUDED.last_ms", practice_id, site_id, code, now_ms)

    async def site_activity(self, practice_id: PracticeId) -> list[SiteActivity]:
        sites = await self._fetch(
            "SELECT s.site_id, c.last_push_ms, h.report, h.received_ms FROM sites s "
            "LEFT JOIN site_chain c ON c.practice_id = s.practice_id AND c.site_id = s.site_id "
            "LEFT JOIN heartbeats h ON h.practice_id = s.practice_id AND h.site_id = s.site_id "
            "WHERE s.practice_id = $1 ORDER BY s.created_ms, s.site_id", practice_id)
        refused = await self._fetch("SELECT site_id, code, count FROM push_rejections "
                                    "WHERE practice_id = $1", practice_id)
        return activities([(SiteId(r[0]), r[1], bytes(r[2]) if r[2] is not None else None,
                            r[3]) for r in sites],
                          [(SiteId(r[0]), r[1], int(r[2])) for r in refused])

    async def record_operator_action(self, action: OperatorAction) -> None:
        await self._execute("INSERT INTO operator_actions VALUES ($1, $2, $3, $4, $5, $6)",
                            action.practice_id, action.action_id, action.site_id, action.action,
                            action.operator_ref, action.at_ms)

    async def operator_actions(self, practice_id: PracticeId) -> list[OperatorAction]:
        rows = await self._fetch("SELECT action_id, practice_id, site_id, action, operator_ref, "
                                 "at_ms FROM operator_actions WHERE practice_id = $1 "
                                 "ORDER BY at_ms, action_id", practice_id)
        return [OperatorAction(a, PracticeId(p), SiteId(s) if s else None, act, ref, at)
                for a, p, s, act, ref, at in rows]

    async def practice_stats(self, practice_id: PracticeId) -> PracticeStats:
        head = await self.head(practice_id)
        tracked = await self._fetchrow("SELECT count(*) FROM record_heads WHERE "
                                       "practice_id = $1", practice_id)
        rows = await self._fetch(
            "SELECT c.site_id, c.batches, c.changes, coalesce(s.concurrent_edits, 0), "
            "c.next_seq FROM site_chain c LEFT JOIN concurrency_stats s ON "
            "s.practice_id = c.practice_id AND s.site_id = c.site_id "
            "WHERE c.practice_id = $1 ORDER BY c.site_id", practice_id)
        return PracticeStats(head, int(tracked[0]), tuple(
            SiteStats(SiteId(s), b, c, k, n) for s, b, c, k, n in rows))

    async def watch_commits(self, listener: CommitListener,
                            on_reconnect: Callable[[], None]) -> None:
        def on_notify(_conn: object, _pid: int, _channel: str, payload: str) -> None:
            practice, _, seq = payload.partition(":")
            try:
                listener(PracticeId(UUID(practice)), HubSeq(int(seq)))
            except ValueError:
                log.warning("ignoring a malformed notification on %s; another program "
                            "writes to this channel", CHANNEL)

        retrying = AsyncRetrying(wait=wait_exponential(multiplier=0.05, max=1.0),
                                 retry=retry_if_exception_type(_UNAVAILABLE), reraise=True)
        first = True
        while True:
            async for attempt in retrying:
                with attempt:
                    conn = await asyncpg.connect(self._dsn, timeout=5)
            try:
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, on_notify)
                if not first:
                    log.info("listener reconnected; waking waiters to re-check")
                on_reconnect()  # batches committed while we were not listening
                first = False
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), LISTENER_KEEPALIVE_S)
                    except TimeoutError:
                        await conn.fetchval("SELECT 1", timeout=LISTENER_KEEPALIVE_S)
            except _UNAVAILABLE:
                log.warning("lost the LISTEN connection; reconnecting (check PostgreSQL "
                            "if this repeats)")
            finally:
                conn.terminate()
