"""Reads behind duplicate detection and patient merges (`api.patient_merge`).

Functions of a sqlite3 connection, run by the caller on a read connection
(`store.connection.call_on_new_connection`); they only read.  The writes of a
merge go through the writer like every other write.

* `duplicate_candidates` — the live patients sharing an ``identifier`` or a
  ``name-birthdate`` search token with another patient (the index narrows; the
  pure `fhir.patient_match.duplicate_pairs` decides);
* `found` — the current row of given resources;
* `naming_patient` — the live resources whose patient reference is a patient;
* `register_values` — every kept value (head) of one register of one resource;
* `merge_inputs` / `unmerge_inputs` — all a merge or an unmerge plans on, in one
  read transaction, so the plan sees one committed state.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from conflict.decode import state_from_canonical
from edge_node.fhir.patient_match import NAME_BIRTHDATE_PARAM
from edge_node.fhir.patient_merge import Found, record_fields, record_key
from edge_node.fhir.types import PATIENT_ELEMENT

Key = tuple[str, str]
#: Ids per `IN (...)` list (SQLite's default limit on variables is far above it).
_CHUNK: Final = 500

_CANDIDATES: Final = f"""
SELECT DISTINCT t.id FROM search_tokens AS t
JOIN (SELECT param, value FROM search_tokens
      WHERE type = 'Patient' AND param IN ('identifier', '{NAME_BIRTHDATE_PARAM}')
      GROUP BY param, value HAVING count(DISTINCT id) > 1) AS g
  ON t.param = g.param AND t.value = g.value
WHERE t.type = 'Patient'
ORDER BY t.id LIMIT ?"""


def duplicate_candidates(conn: sqlite3.Connection, limit: int
                         ) -> list[tuple[str, dict[str, Any]]]:
    """(id, Patient) of up to `limit` live patients that share a match token."""
    ids = [r[0] for r in conn.execute(_CANDIDATES, (limit,))]
    out = []
    for i in range(0, len(ids), _CHUNK):
        part = ids[i:i + _CHUNK]
        rows = conn.execute(
            "SELECT id, json FROM resources WHERE type = 'Patient' AND deleted = 0 AND id IN "
            f"({','.join('?' * len(part))}) ORDER BY id", part)
        out += [(rid, orjson.loads(js)) for rid, js in rows if js is not None]
    return out


def _found(row: Sequence[Any]) -> Found:
    rtype, rid, vid, deleted, js = row
    return Found(rtype, rid, vid, None if deleted or js is None else orjson.loads(js))


def found(conn: sqlite3.Connection, keys: Iterable[Key]) -> dict[Key, Found]:
    """The current row of each of `keys` that is stored (deleted ones with no resource)."""
    out: dict[Key, Found] = {}
    for rtype, rid in sorted(set(keys)):
        row = conn.execute("SELECT type, id, vid, deleted, json FROM resources "
                           "WHERE type = ? AND id = ?", (rtype, rid)).fetchone()
        if row is not None:
            out[(rtype, rid)] = _found(row)
    return out


def naming_patient(conn: sqlite3.Connection, patient_id: str, limit: int) -> list[Found]:
    """Up to `limit` live resources (not Patients) whose patient is Patient/`patient_id`."""
    types = sorted(PATIENT_ELEMENT)
    rows = conn.execute(
        "SELECT r.type, r.id, r.vid, r.deleted, r.json FROM search_tokens AS t "
        "JOIN resources AS r ON r.type = t.type AND r.id = t.id "
        f"WHERE t.type IN ({','.join('?' * len(types))}) AND t.param = 'patient' "
        "AND t.value = ? AND r.deleted = 0 ORDER BY r.type, r.id LIMIT ?",
        (*types, f"Patient/{patient_id}", limit))
    return [_found(r) for r in rows]


def register_values(conn: sqlite3.Connection, key: Key, register: str) -> list[Any]:
    """The parsed value of every head of `register` of resource `key` (none if absent)."""
    row = conn.execute("SELECT state FROM resources WHERE type = ? AND id = ?", key).fetchone()
    if row is None:
        return []
    reg = state_from_canonical(bytes(row[0])).registers.get(register)
    if reg is None:
        return []
    return [orjson.loads(h.value) for h in reg.heads if h.value is not None]


@dataclass(frozen=True, slots=True)
class PairInputs:
    """What a merge or an unmerge of (source, target) plans on."""

    patients: dict[str, Found | None]
    #: Merge: live resources naming the source.  Unmerge: the record's re-pointed ones.
    resources: list[Found]
    #: Unmerge: every reference the record lists → its current row (None: not here).
    moved: dict[str, Found | None]
    record: Found | None
    record_values: list[Any]


def _pair_inputs(conn: sqlite3.Connection, source: str, target: str, limit: int,
                 *, merging: bool) -> PairInputs:
    rows = found(conn, [("Patient", source), ("Patient", target), record_key(source, target)])
    patients = {pid: rows.get(("Patient", pid)) for pid in (source, target)}
    record = rows.get(record_key(source, target))
    values = register_values(conn, record_key(source, target), "extension")
    if merging:
        return PairInputs(patients, naming_patient(conn, source, limit), {}, record, values)
    _, _, refs = record_fields(values)
    keys = [(ref.split("/", 1)[0], ref.split("/", 1)[1]) for ref in refs if "/" in ref]
    now = found(conn, keys)
    moved = {f"{t}/{i}": now.get((t, i)) for t, i in keys}
    return PairInputs(patients, [f for f in moved.values() if f is not None], moved, record,
                      values)


def merge_inputs(conn: sqlite3.Connection, source: str, target: str, limit: int
                 ) -> PairInputs:
    """The two patients, up to `limit` resources naming the source, the undo record."""
    conn.execute("BEGIN")
    try:
        return _pair_inputs(conn, source, target, limit, merging=True)
    finally:
        conn.execute("COMMIT")


def unmerge_inputs(conn: sqlite3.Connection, source: str, target: str) -> PairInputs:
    """The two patients, the undo record, and each resource it lists as re-pointed."""
    conn.execute("BEGIN")
    try:
        return _pair_inputs(conn, source, target, 0, merging=False)
    finally:
        conn.execute("COMMIT")


__all__ = ["PairInputs", "duplicate_candidates", "found", "merge_inputs", "naming_patient",
           "register_values", "unmerge_inputs"]
