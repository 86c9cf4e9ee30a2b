"""Apply one change to a resource's stored form: the rows a merge produces.

The one place that turns (prior stored resource, change) into the rows of the
`resources`, `history`, `search_tokens` and `conflicts` tables.  Local writes
(`writer.Writer`) and remote changes pulled by the sync loop both use it, so
both paths store exactly the same thing.  Pure: the caller
passes `now_ms` and collects the rows in a `Rows`, then writes them in its own
transaction.

What the served JSON looks like: `conflict.materialize_json` plus a `meta`
with `versionId` (the per-resource version counter at this site) and
`lastUpdated` (the time this site stored the version); a resource with an open
conflict also carries `meta.tag` {system CONFLICT_TAG_SYSTEM, code "conflict"}
so a FHIR client can show a banner that the record needs review; its registers are
listed in the `conflicts` table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from conflict import canonical_state, conflicts, materialize, materialize_json, merge
from conflict.materialize import element_json
from conflict.state import ResourceState
from edge_node.fhir.instant import iso_instant
from edge_node.fhir.search_index import index_tokens, patient_ref
from edge_node.fhir.types import PATIENT_ELEMENT
from sync_protocol.models import Change

Key = tuple[str, str]
CONFLICT_TAG_SYSTEM: Final = "urn:chartsync:tag"
_CONFLICT_TAG: Final = {"system": CONFLICT_TAG_SYSTEM, "code": "conflict",
                        "display": "open conflict: a clinician must review this record"}


@dataclass(frozen=True, slots=True)
class Stored:
    """What the writer knows of a resources row."""

    state: ResourceState
    version: int
    deleted: bool
    last_updated_ms: int


@dataclass(frozen=True, slots=True)
class Applied:
    """The outcome of one applied change, as the API reports it."""

    resource_type: str
    resource_id: str
    version: int
    last_updated_ms: int
    deleted: bool
    json: bytes | None
    patient_ref: str | None
    created: bool


@dataclass(slots=True)
class Rows:
    """Rows of applied changes, to be written in one transaction.

    `resources`, `tokens` and `conflicts` hold the final row per resource (a
    later change to the same resource replaces the earlier one's); `history`
    and `outbox` keep every row in order.
    """

    resources: dict[Key, tuple[Any, ...]] = field(default_factory=dict)
    history: list[tuple[Any, ...]] = field(default_factory=list)
    outbox: list[tuple[int, bytes, int]] = field(default_factory=list)
    tokens: dict[Key, list[tuple[str, str, str, str]]] = field(default_factory=dict)
    conflicts: dict[Key, list[tuple[Any, ...]]] = field(default_factory=dict)

    def absorb(self, other: Rows) -> None:
        """Append `other`'s rows after this one's."""
        self.resources.update(other.resources)
        self.history.extend(other.history)
        self.outbox.extend(other.outbox)
        self.tokens.update(other.tokens)
        self.conflicts.update(other.conflicts)

    def __bool__(self) -> bool:
        return bool(self.history)


def with_meta(body: bytes, version: int, last_updated_ms: int, *, conflicted: bool) -> bytes:
    """`body` (a JSON object) with a server `meta` as its first member."""
    if conflicted:
        meta: dict[str, Any] = {"versionId": str(version),
                                "lastUpdated": iso_instant(last_updated_ms),
                                "tag": [_CONFLICT_TAG]}
        return b'{"meta":' + orjson.dumps(meta) + b"," + body[1:]
    # Byte-identical to orjson.dumps of the two-member meta: both values are ASCII
    # digits, '-', ':', '.', 'T' and 'Z', which JSON never escapes.
    return b'{"meta":{"versionId":"%d","lastUpdated":"%s"},%s' % (
        version, iso_instant(last_updated_ms).encode("ascii"), body[1:])


#: Elements `index_tokens`/`patient_ref` read, per resource type (the rest of a
#: resource is never parsed on the apply path).
_INDEXED: Final[dict[str, tuple[str, ...]]] = {"Patient": ("identifier", "name", "birthDate")}


def _indexed_elements(state: ResourceState) -> dict[str, Any]:
    """The parts of the materialized resource that search tokens are made of.

    Equal, for `index_tokens` and `patient_ref`, to parsing the whole resource:
    each listed element is its register's shown value (none of them is a choice
    element), parsed.
    """
    rtype = state.resource_type
    names: tuple[str, ...] | None = _INDEXED.get(rtype)
    if names is None:
        element = PATIENT_ELEMENT.get(rtype)
        names = (element,) if element is not None else ()
    out: dict[str, Any] = {"resourceType": rtype, "id": state.resource_id}
    for name in names:
        value = element_json(state, name)  # a keyed list (identifier) is rebuilt
        if value is not None:
            out[name] = orjson.loads(value)
    return out


def apply_change(prior: Stored | None, change: Change, now_ms: int, rows: Rows
                 ) -> tuple[Stored, Applied]:
    """Merge `change` into `prior` and add the resulting rows to `rows`.

    Raises what `conflict.merge` raises (`MergeError`); `rows` is untouched then.
    """
    rtype, rid = change.resource_type, change.resource_id
    state = merge(prior.state if prior is not None else None, change)
    version = (prior.version if prior is not None else 0) + 1
    records = conflicts(state)
    body = materialize_json(state)
    key = (rtype, rid)
    if body is None:
        json, pref, tokens = None, prior_patient(prior), []
    else:
        parsed = _indexed_elements(state)
        json = with_meta(body, version, now_ms, conflicted=bool(records))
        pref = patient_ref(rtype, rid, parsed)
        tokens = [(rtype, p, v, rid) for p, v in index_tokens(rtype, parsed)]
    deleted = body is None
    rows.resources[key] = (rtype, rid, version, now_ms, int(deleted), canonical_state(state),
                           json, pref)
    rows.history.append((rtype, rid, version, str(change.origin), change.seq, change.user,
                         change.device, change.hlc, now_ms, int(deleted), json))
    rows.tokens[key] = tokens
    rows.conflicts[key] = [
        (rtype, rid, r.register, len(r.heads), str(r.shown.dot.site), r.shown.dot.seq)
        for r in records
    ]
    stored = Stored(state, version, deleted, now_ms)
    applied = Applied(rtype, rid, version, now_ms, deleted, json, pref, prior is None)
    return stored, applied


def prior_patient(prior: Stored | None) -> str | None:
    """The patient of a resource before it was deleted (for audit and the tombstone row)."""
    if prior is None:
        return None
    state = prior.state
    if state.resource_type == "Patient":
        return f"Patient/{state.resource_id}"
    live = {name: reg for name, reg in state.registers.items() if name != "@deleted"}
    resource = materialize(ResourceState(state.resource_type, state.resource_id, live))
    return patient_ref(state.resource_type, state.resource_id, resource)
