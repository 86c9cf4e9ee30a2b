"""`edge check`: do rows, history, outbox and audit agree?  Read-only.

Checks, each reported as a sentence naming ids (never chart data):

1. SQLite's own `quick_check`.
2. The audit hash chain (`store.audit.verify_chain`): edited or deleted rows.
3. Every resources row matches the newest history row of that resource
   (version, deleted flag, JSON), and each resource's versions are 1..n.
4. The outbox holds sequence numbers without gaps, each matching a history
   row written at this site with that sequence number, and every local
   history row is in the outbox (except entries the sync loop trimmed once
   the hub acknowledged them).
5. Replaying the outbox onto an empty state reproduces the stored merged
   state of every resource byte for byte.
6. Every local write has its audit row (counted per resource).
7. For a data directory: nothing in it is readable beyond its owner
   (`store.file_modes`).

`check_path` runs them on a data directory or a database file (a backup),
opened read-only.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from uuid import UUID

from conflict import canonical_state, merge_all
from edge_node.errors import StoreError
from edge_node.store.audit import verify_chain
from edge_node.store.file_modes import wider_than_private
from edge_node.store.schema import check_version, db_path
from sync_protocol.canonical import unpack
from sync_protocol.errors import MalformedInput
from sync_protocol.wire import decode_changes

_WRITES = ("create", "update", "delete")


@dataclass(frozen=True, slots=True)
class CheckReport:
    problems: tuple[str, ...]
    resources: int
    history: int
    outbox: int
    audit: int

    @property
    def ok(self) -> bool:
        return not self.problems


def _site_id(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT site_id FROM site WHERE one = 1").fetchone()
    return None if row is None else str(row[0])


def _problems(conn: sqlite3.Connection) -> Iterator[str]:
    for (line,) in conn.execute("PRAGMA quick_check"):
        if line != "ok":
            yield f"sqlite quick_check: {line}"
    site = _site_id(conn)
    if site is None:
        yield "the site row is missing"
        return
    yield from verify_chain(conn.execute(
        "SELECT seq, at_ms, user, role, action, resource_type, resource_id, patient_ref, "
        "outcome, client, detail, prev_hash, hash FROM audit ORDER BY seq"))
    for rtype, rid, version in conn.execute(
            "SELECT r.type, r.id, r.vid FROM resources AS r LEFT JOIN history AS h "
            "ON h.type = r.type AND h.id = r.id AND h.vid = r.vid "
            "WHERE h.hid IS NULL OR h.deleted != r.deleted OR h.json IS NOT r.json"):
        yield f"{rtype}/{rid}: resources row (version {version}) differs from its history"
    # A view version shown twice is kept once (store.group_rows), so counters may skip.
    for rtype, rid, n, top in conn.execute(
            "SELECT type, id, count(*), max(version) FROM history GROUP BY type, id "
            "HAVING count(*) > max(version) OR min(version) != 1"):
        yield f"{rtype}/{rid}: history holds {n} versions but the newest is {top}"
    for rtype, rid, top in conn.execute(
            "SELECT h.type, h.id, max(h.version) FROM history AS h GROUP BY h.type, h.id "
            "HAVING max(h.version) != (SELECT r.version FROM resources AS r "
            "WHERE r.type = h.type AND r.id = h.id)"):
        yield f"{rtype}/{rid}: history reaches version {top}, the resources row does not"
    yield from _check_outbox(conn, site)
    yield from _check_write_audits(conn, site)


def _check_outbox(conn: sqlite3.Connection, site: str) -> Iterator[str]:
    origin = UUID(site)
    local = {seq: (t, i) for t, i, seq in conn.execute(
        "SELECT type, id, seq FROM history WHERE origin = ?", (site,))}
    changes = []
    expected = None
    for seq, raw in conn.execute("SELECT seq, change FROM outbox ORDER BY seq"):
        if expected is not None and seq != expected:
            yield f"outbox sequence jumps from {expected - 1} to {seq}"
        expected = seq + 1
        try:
            [change] = decode_changes(unpack(bytes(raw), what="outbox change",
                                             max_len=1 << 26), origin=origin, seq_from=seq)
        except (MalformedInput, ValueError) as exc:
            yield f"outbox change {seq} does not decode: {exc}"
            continue
        if local.get(seq) != (change.resource_type, change.resource_id):
            yield f"outbox change {seq} has no matching history row at this site"
        changes.append(change)
    missing = set(local) - {c.seq for c in changes}
    if missing:
        yield f"{len(missing)} local history rows have no outbox change (first seq " \
              f"{min(missing)})"
    states = merge_all(changes)
    stored = {(t, i): bytes(s) for t, i, s in conn.execute(
        "SELECT type, id, state FROM resources")}
    remote = {(t, i) for t, i in conn.execute(
        "SELECT DISTINCT type, id FROM history WHERE origin NOT IN (?, '')", (site,))}
    for key, state in states.items():
        if key in remote:
            continue  # also holds changes from other sites: the outbox alone cannot replay it
        if stored.get(key) != canonical_state(state):
            yield f"{key[0]}/{key[1]}: replaying the outbox does not reproduce its state"
    for key in stored.keys() - states.keys() - remote:
        yield f"{key[0]}/{key[1]}: stored but no change in the outbox or history made it"


def _check_write_audits(conn: sqlite3.Connection, site: str) -> Iterator[str]:
    writes = Counter({(t, i): n for t, i, n in conn.execute(
        "SELECT type, id, count(*) FROM history WHERE origin = ? GROUP BY type, id", (site,))})
    audited = Counter({(t, i): n for t, i, n in conn.execute(
        "SELECT resource_type, resource_id, count(*) FROM audit WHERE action IN "
        "('create', 'update', 'delete') AND outcome < 400 GROUP BY resource_type, "
        "resource_id")})
    for key, n in writes.items():
        if audited[key] < n:
            yield f"{key[0]}/{key[1]}: {n} writes but {audited[key]} audit rows of writes " \
                  "(audit rows removed?)"


def check_store(conn: sqlite3.Connection) -> CheckReport:
    """Run every check on an open database; never writes."""
    problems = tuple(_problems(conn))
    counts = [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("resources", "history", "outbox", "audit")]
    return CheckReport(problems, *counts)


def check_path(path: Path) -> CheckReport:
    """Check the database in a data directory, or a database file (a backup), read-only.

    Raises `StoreError` if there is none or it cannot be read, `SchemaTooNew`
    for a file of a newer chartsync.
    """
    file = db_path(path) if path.is_dir() else path
    if not file.exists():
        raise StoreError(f"{path} holds no edge database", hint="check the --data path")
    check_version(file)
    try:
        conn = sqlite3.connect(f"file:{file}?mode=ro", uri=True)
        try:
            report = check_store(conn)
        finally:
            conn.close()
        if path.is_dir():
            modes = tuple(wider_than_private(path))
            report = replace(report, problems=report.problems + modes)
        return report
    except sqlite3.Error as exc:
        raise StoreError(f"{file} could not be read: {exc}",
                         hint="restore it from a backup") from exc
