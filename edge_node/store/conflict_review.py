"""What the clinician's review queue reads: open conflicts with their resources, and
who wrote each competing value, when (`history`, looked up by dot).

`open_conflicts` joins the `conflicts` table (one row per open conflict, kept by
`apply`) to the resource's row for its patient and merged state.  `dot_records` is
the one place the review reads `history`: a dot `(origin, seq)` names the change
that wrote a value, and its history row says who (user, device), when (HLC,
recorded here) and what this site stored then.  Both are bounded reads for
`Reader.call`; no writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from conflict import ResourceState
from conflict.decode import state_from_canonical
from sync_protocol.models import Dot

#: The most open conflicts one listing reads (a clinic's queue holds tens or hundreds;
#: past this the newest by resource id are not seen until older ones are resolved).
MAX_SCANNED: Final = 5000


@dataclass(frozen=True, slots=True)
class OpenConflict:
    """One open conflict, with the resource's patient and merged state."""

    resource_type: str
    resource_id: str
    register: str
    heads: int
    patient_ref: str | None
    state: ResourceState


@dataclass(frozen=True, slots=True)
class DotRecord:
    """Who wrote the change of one dot and when; `json` is the resource as this site
    stored it after applying the change (None: deleted)."""

    user: str
    device: str
    hlc: int
    recorded_ms: int
    deleted: bool
    json: bytes | None


def open_conflicts(conn: sqlite3.Connection, *, resource_type: str | None = None,
                   patient: str | None = None, resource_id: str | None = None,
                   register: str | None = None) -> list[OpenConflict]:
    """Open conflicts (up to `MAX_SCANNED`), by type, id and register, filtered as given."""
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("c.type", resource_type), ("r.patient_ref", patient),
                          ("c.id", resource_id), ("c.register", register)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql = ("SELECT c.type, c.id, c.register, c.heads, r.patient_ref, r.state "
           "FROM conflicts AS c JOIN resources AS r ON r.type = c.type AND r.id = c.id"
           + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY c.type, c.id, c.register LIMIT ?")
    states: dict[tuple[str, str], ResourceState] = {}
    out: list[OpenConflict] = []
    for rtype, rid, register_name, heads, pref, blob in conn.execute(
            sql, [*params, MAX_SCANNED]):
        state = states.get((rtype, rid))
        if state is None:
            state = states[(rtype, rid)] = state_from_canonical(bytes(blob))
        out.append(OpenConflict(rtype, rid, register_name, int(heads), pref, state))
    return out


def dot_records(conn: sqlite3.Connection, resource_type: str, resource_id: str,
                dots: Iterable[Dot]) -> dict[Dot, DotRecord]:
    """The history of the changes `dots` made to one resource, where this site has it.

    A dot without a history row here (history not kept, or the change not applied
    here) is left out: the caller says "unknown".
    """
    out: dict[Dot, DotRecord] = {}
    for dot in dots:
        row = conn.execute(
            "SELECT user, device, hlc, recorded_ms, deleted, json FROM history "
            "WHERE origin = ? AND seq = ? AND type = ? AND id = ? LIMIT 1",
            (str(dot.site), dot.seq, resource_type, resource_id)).fetchone()
        if row is not None:
            out[dot] = DotRecord(row[0], row[1], int(row[2]), int(row[3]), bool(row[4]),
                                 None if row[5] is None else bytes(row[5]))
    return out


__all__ = ["MAX_SCANNED", "DotRecord", "OpenConflict", "dot_records", "open_conflicts"]
