"""Apply one change to a resource's stored form: the rows a merge produces.

The one place that turns (prior stored resource, change) into the rows of the
`resources`, `history`, `search_tokens` and `conflicts` tables.  Local writes
(`writer.Writer`) and remote changes pulled by the sync loop both use it, so
both paths store exactly the same thing.  Pure: the caller
passes `now_ms` and collects the rows in a `Rows`, then writes them in its own
transaction.

History keeps what each author wrote (docs/history.md).  Every change adds an
**author version**: the resource as its author saved it (`conflict.authored_json`,
from the change's elements and the `base` it carries), with `meta.versionId` derived
from the change's dot (`fhir.version.version_id`) and `meta.lastUpdated` the author's
clock, so the version reads byte for byte the same at every site.  When what this
site now shows (`conflict.materialize_json` of the merged state) is not that author
version — concurrent edits merged, or a conflict open — the site adds a **view
version** of its own: the shown resource, tagged as a merged view (and as in
conflict when one is open), never credited to another site's user; its id is a hash
of its content (`fhir.version.view_id`), so equal views have equal ids everywhere.
The `resources` row serves the current one of the two.  A resource with an open
conflict carries `meta.tag` {system CONFLICT_TAG_SYSTEM, code "conflict"} so a FHIR
client can show a banner that the record needs review; its registers are listed in
the `conflicts` table.

`history.version` (and `Stored.version`) is only this site's row counter per
resource (row order and paging); clients see version ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from conflict import (
    authored_json,
    base_of,
    canonical_state,
    conflicts,
    materialize,
    materialize_json,
    merge,
)
from conflict.materialize import element_json
from conflict.state import ResourceState
from edge_node.fhir.instant import iso_instant
from edge_node.fhir.search_index import index_tokens, patient_ref
from edge_node.fhir.types import PATIENT_ELEMENT
from edge_node.fhir.version import AUTHOR, VIEW, version_id, view_id
from sync_protocol.hlc import physical_ms
from sync_protocol.models import Change

Key = tuple[str, str]
CONFLICT_TAG_SYSTEM: Final = "urn:chartsync:tag"
_CONFLICT_TAG: Final = {"system": CONFLICT_TAG_SYSTEM, "code": "conflict",
                        "display": "open conflict: a clinician must review this record"}
_VIEW_TAG: Final = {"system": CONFLICT_TAG_SYSTEM, "code": "merged-view",
                    "display": "this site's merged view of concurrent edits; each author's "
                               "own version is in the history"}
_LEGACY_TAG: Final = {"system": CONFLICT_TAG_SYSTEM, "code": "author-base-unknown",
                      "display": "written by a site before protocol 1.1: the elements it "
                                 "changed, shown on the state this site held when it arrived"}


@dataclass(frozen=True, slots=True)
class Stored:
    """What the writer knows of a resources row."""

    state: ResourceState
    #: This site's history row counter of the resource (not a version id).
    version: int
    deleted: bool
    #: `meta.lastUpdated` of the current version (its author's clock, or the view's).
    last_updated_ms: int
    #: The current version id (`meta.versionId`, ETag).
    vid: str


@dataclass(frozen=True, slots=True)
class Applied:
    """The outcome of one applied change, as the API reports it.

    `version`, `last_updated_ms` and `json` are the change's own (author) version: what
    the writer of a local change saved, even where this site shows a merged view.
    """

    resource_type: str
    resource_id: str
    version: str
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


def with_meta(body: bytes, version: str, last_updated_ms: int, *,
              tags: tuple[dict[str, str], ...] = ()) -> bytes:
    """`body` (a JSON object) with a server `meta` as its first member."""
    if tags:
        meta: dict[str, Any] = {"versionId": version,
                                "lastUpdated": iso_instant(last_updated_ms),
                                "tag": list(tags)}
        return b'{"meta":' + orjson.dumps(meta) + b"," + body[1:]
    # Byte-identical to orjson.dumps of the two-member meta: a version id is [A-Za-z0-9.-]
    # and the instant ASCII digits, '-', ':', '.', 'T' and 'Z', which JSON never escapes.
    return b'{"meta":{"versionId":"%s","lastUpdated":"%s"},%s' % (
        version.encode("ascii"), iso_instant(last_updated_ms).encode("ascii"), body[1:])


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


def _view_ms(state: ResourceState) -> int:
    """`meta.lastUpdated` of a view: the latest author clock among the kept values."""
    return max((h.hlc for reg in state.registers.values() for h in reg.heads),
               default=0) >> 16


def apply_change(prior: Stored | None, change: Change, now_ms: int, rows: Rows
                 ) -> tuple[Stored, Applied]:
    """Merge `change` into `prior` and add the resulting rows to `rows`.

    Raises what `conflict.merge` raises (`MergeError`); `rows` is untouched then.
    """
    rtype, rid = change.resource_type, change.resource_id
    prior_state = prior.state if prior is not None else None
    state = merge(prior_state, change)
    row_no = (prior.version if prior is not None else 0) + 1
    records = conflicts(state)
    body = materialize_json(state)
    key = (rtype, rid)

    # The author's version: identical bytes at every site (docs/history.md).
    base = change.base
    authored = authored_json(change, base if base is not None
                             else base_of(prior_state, change.elements))
    vid = version_id(change.origin, change.seq)
    author_ms = physical_ms(change.hlc)
    author_json = None if authored is None else with_meta(
        authored, vid, author_ms, tags=() if base is not None else (_LEGACY_TAG,))
    origin = str(change.origin)
    rows.history.append((rtype, rid, row_no, origin, change.seq, change.user, change.device,
                         change.hlc, now_ms, int(authored is None), author_json, vid, AUTHOR))

    if body == authored and not records and base is not None:
        current_vid, current_ms, json = vid, author_ms, author_json
    else:
        # This site's own view: tagged, content-addressed, credited to no user.
        current_ms = _view_ms(state)
        tags = (_VIEW_TAG, _CONFLICT_TAG) if records else (_VIEW_TAG,)
        current_vid = view_id(body, current_ms, tags)
        json = None if body is None else with_meta(body, current_vid, current_ms, tags=tags)
        if prior is None or prior.vid != current_vid:
            row_no += 1
            rows.history.append((rtype, rid, row_no, "", 0, "", "", current_ms << 16, now_ms,
                                 int(body is None), json, current_vid, VIEW))
    if body is None:
        pref, tokens = prior_patient(prior), []
    else:
        parsed = _indexed_elements(state)
        pref = patient_ref(rtype, rid, parsed)
        tokens = [(rtype, p, v, rid) for p, v in index_tokens(rtype, parsed)]
    deleted = body is None
    rows.resources[key] = (rtype, rid, row_no, current_ms, int(deleted), canonical_state(state),
                           json, pref, current_vid)
    rows.tokens[key] = tokens
    rows.conflicts[key] = [
        (rtype, rid, r.register, len(r.heads), str(r.shown.dot.site), r.shown.dot.seq)
        for r in records
    ]
    stored = Stored(state, row_no, deleted, current_ms, current_vid)
    applied = Applied(rtype, rid, vid, author_ms, authored is None, author_json, pref,
                      prior is None)
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
