"""Read queries on the replica: read, vread, history, search, provenance, audit, status.

Reads use their own connections (WAL: readers never wait for the writer and
see only committed data), opened `query_only`.  Every method is one query.
Rows come back as small frozen records; turning them into FHIR JSON is the
API's job.

Bounded queries (a primary-key read, a version, a page of history or search
results, a token lookup) run inline on the event loop through a plain sqlite3
connection: they take 5-50 µs, while a hop to an aiosqlite thread costs about
100 µs plus GIL handoffs, which halved read throughput in `bench/edge_bench.py`.
Its busy timeout is short (WAL readers only wait during WAL recovery); a busy
database answers 503.  Unbounded queries (audit log, counts) go through
aiosqlite so they never stall the loop.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Concatenate, Final, ParamSpec, TypeVar

import aiosqlite

from conflict import ResourceState
from conflict.decode import state_from_canonical
from edge_node.errors import StoreUnavailable
from edge_node.fhir.search import SearchQuery
from edge_node.fhir.version import Version
from edge_node.store.users import USER_BY_HASH

T = TypeVar("T")
P = ParamSpec("P")
_UPDATED_OPS: Final = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
INLINE_BUSY_MS: Final = 200


@dataclass(frozen=True, slots=True)
class Current:
    """The resources row of one resource."""

    #: The current version id.
    version: str
    deleted: bool
    json: bytes | None
    last_updated_ms: int
    patient_ref: str | None


_VERSION_COLUMNS: Final = ("type, id, version, origin, seq, user, device, hlc, recorded_ms, "
                           "deleted, json, hid, vid, kind")


def _version(row: Sequence[Any]) -> Version:
    return Version(row[0], row[1], int(row[2]), row[3], int(row[4]), row[5], row[6],
                   int(row[7]), int(row[8]), bool(row[9]), row[10], int(row[11]), row[12],
                   row[13])


@dataclass(frozen=True, slots=True)
class AuditFilter:
    user: str | None = None
    patient: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    after_seq: int = 0
    limit: int = 1000


class Reader:
    """A small pool of read-only connections, used round-robin."""

    def __init__(self, conns: Sequence[aiosqlite.Connection], inline: sqlite3.Connection
                 ) -> None:
        self._conns = list(conns)
        self._next = itertools.cycle(self._conns)
        self._inline = inline

    @classmethod
    @asynccontextmanager
    async def open(cls, path: Path, count: int) -> AsyncIterator[Reader]:
        conns: list[aiosqlite.Connection] = []
        inline = sqlite3.connect(path, isolation_level=None)
        try:
            inline.execute("PRAGMA query_only = 1")
            inline.execute(f"PRAGMA busy_timeout = {INLINE_BUSY_MS}")
            for _ in range(count):
                conn = await aiosqlite.connect(path, isolation_level=None)
                conns.append(conn)
                await conn.execute("PRAGMA query_only = 1")
                await conn.execute("PRAGMA busy_timeout = 10000")
            yield cls(conns, inline)
        finally:
            inline.close()
            for conn in conns:
                await conn.close()

    async def _quick(self, sql: str, params: Sequence[Any]) -> list[Any]:
        """A bounded query, inline (see the module docstring)."""
        try:
            return self._inline.execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"the edge database is busy ({exc})",
                                   hint="retry in a moment") from exc

    async def call(self, fn: Callable[Concatenate[sqlite3.Connection, P], T],
                   *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(connection, *args, **kwargs)` on the inline read connection: for store read
        functions of bounded queries only (module docstring); a busy database raises
        `StoreUnavailable`."""
        try:
            return fn(self._inline, *args, **kwargs)
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"the edge database is busy ({exc})",
                                   hint="retry in a moment") from exc

    async def _all(self, sql: str, params: Sequence[Any]) -> list[Any]:
        conn = next(self._next)
        rows = await conn.execute_fetchall(sql, params)
        return list(rows)

    async def origin_chains(self) -> dict[str, tuple[int, bytes]]:
        """Every origin's chain position: origin → (next seq, last batch hash).

        One small table (a row per site of the practice); read inline by the
        puller once per group of pulled batches.
        """
        rows = await self._quick("SELECT origin, next_seq, last_hash FROM origin_chains", ())
        return {r[0]: (int(r[1]), bytes(r[2])) for r in rows}

    async def current(self, rtype: str, rid: str) -> Current | None:
        rows = await self._quick(
            "SELECT vid, deleted, json, last_updated_ms, patient_ref FROM resources "
            "WHERE type = ? AND id = ?", (rtype, rid))
        if not rows:
            return None
        r = rows[0]
        return Current(r[0], bool(r[1]), r[2], int(r[3]), r[4])

    async def state(self, rtype: str, rid: str) -> ResourceState | None:
        """The merged state (every kept value) of one resource, or None."""
        rows = await self._quick("SELECT state FROM resources WHERE type = ? AND id = ?",
                                 (rtype, rid))
        return state_from_canonical(bytes(rows[0][0])) if rows else None

    async def patient_states(self, rtype: str, patient: str, limit: int
                             ) -> list[ResourceState]:
        """Merged states of up to `limit` live `rtype` resources of `patient` ("Patient/x"),
        by id (through the patient search tokens)."""
        rows = await self._quick(
            "SELECT state FROM resources WHERE type = ? AND deleted = 0 AND id IN "
            "(SELECT id FROM search_tokens WHERE type = ? AND param = 'patient' AND value = ?) "
            "ORDER BY id LIMIT ?", (rtype, rtype, patient, limit))
        return [state_from_canonical(bytes(r[0])) for r in rows]

    async def version(self, rtype: str, rid: str, vid: str) -> Version | None:
        """The version with id `vid` of one resource, or None."""
        rows = await self._quick(
            f"SELECT {_VERSION_COLUMNS} FROM history WHERE type = ? AND id = ? AND vid = ?",
            (rtype, rid, vid))
        return _version(rows[0]) if rows else None

    async def history(self, rtype: str, rid: str, *, count: int, before: int | None
                      ) -> list[Version]:
        """Versions newest first, `count` of them, before row counter `before` if given."""
        rows = await self._quick(
            f"SELECT {_VERSION_COLUMNS} FROM history WHERE type = ? AND id = ? AND version < ? "
            "ORDER BY version DESC LIMIT ?", (rtype, rid, before or 1 << 62, count))
        return [_version(r) for r in rows]

    async def versions_by_hid(self, hids: Sequence[int]) -> list[Version]:
        rows = await self._quick(
            f"SELECT {_VERSION_COLUMNS} FROM history WHERE hid IN "
            f"({','.join('?' * len(hids))}) ORDER BY hid", list(hids))
        return [_version(r) for r in rows]

    async def search(self, q: SearchQuery) -> list[tuple[str, bytes]]:
        """(id, json) of up to `q.count + 1` matches after `q.cursor`, ordered by id."""
        sql = ["SELECT r.id, r.json FROM resources AS r WHERE r.type = ? AND r.deleted = 0"]
        params: list[Any] = [q.resource_type]
        for clause in q.clauses:
            ors: list[str] = []
            local: list[Any] = [q.resource_type]
            for rng in clause.ranges:
                cond = ["param = ?"]
                local.append(rng.param)
                if rng.exact is not None:
                    cond.append("value = ?")
                    local.append(rng.exact)
                if rng.low is not None:
                    cond.append("value >= ?")
                    local.append(rng.low)
                if rng.high is not None:
                    cond.append("value < ?")
                    local.append(rng.high)
                ors.append("(" + " AND ".join(cond) + ")")
            sql.append("AND r.id IN (SELECT id FROM search_tokens WHERE type = ? AND "
                       f"({' OR '.join(ors)}))")
            params += local
        if q.conflicted:  # the conflicts table's key (type, id, register) answers this
            sql.append("AND EXISTS (SELECT 1 FROM conflicts AS c WHERE c.type = r.type "
                       "AND c.id = r.id)")
        for op, ms in q.updated:
            sql.append(f"AND r.last_updated_ms {_UPDATED_OPS[op]} ?")
            params.append(ms)
        if q.cursor is not None:
            sql.append("AND r.id > ?")
            params.append(q.cursor)
        sql.append("ORDER BY r.id LIMIT ?")
        params.append(q.count + 1)
        rows = await self._quick(" ".join(sql), params)
        return [(r[0], r[1]) for r in rows]

    async def audit(self, f: AuditFilter) -> list[tuple[Any, ...]]:
        """Audit rows (seq, at_ms, user, role, action, type, id, patient, outcome, client,
        detail) matching `f`, oldest first."""
        where: list[str] = ["seq > ?"]
        params: list[Any] = [f.after_seq]
        for column, value in (("user", f.user), ("patient_ref", f.patient),
                              ("resource_type", f.resource_type),
                              ("resource_id", f.resource_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if f.since_ms is not None:
            where.append("at_ms >= ?")
            params.append(f.since_ms)
        if f.until_ms is not None:
            where.append("at_ms < ?")
            params.append(f.until_ms)
        rows = await self._all(
            "SELECT seq, at_ms, user, role, action, resource_type, resource_id, patient_ref, "
            f"outcome, client, detail FROM audit WHERE {' AND '.join(where)} "
            "ORDER BY seq LIMIT ?", [*params, f.limit])
        return [tuple(r) for r in rows]

    async def user_row(self, digest: bytes) -> tuple[str, str, str, bytes] | None:
        """(id, name, role, token_hash) of the enabled account with this token hash."""
        rows = await self._quick(USER_BY_HASH, (digest,))
        return (rows[0][0], rows[0][1], rows[0][2], bytes(rows[0][3])) if rows else None

    async def status_counts(self) -> tuple[int, int, int]:
        """(outbox rows, resources, open conflicts)."""
        rows = await self._all(
            "SELECT (SELECT count(*) FROM outbox), (SELECT count(*) FROM resources), "
            "(SELECT count(*) FROM conflicts)", ())
        return int(rows[0][0]), int(rows[0][1]), int(rows[0][2])

