"""Merging two records of one patient, and undoing it: the writes, planned purely.

`plan_merge` and `plan_unmerge` take the current resources (as the store read them)
and return the `WriteOp`s the writer applies in one atomic request; the API
(`api.patient_merge`) reads, plans, submits.  docs/design.md, "Duplicate patients",
explains the choices; in short:

* **The survivor is the record with the smaller id**, whichever way the merge was
  asked (`survivor`).  Ids are UUIDv7 minted at registration, so this is the record
  registered first (its registration time is in the id; the id itself settles
  ties), known identically at every site without reading history.  Two sites that
  merge the same pair concurrently, in either direction, therefore write the same
  values, and the registers converge with no conflict.
* **Merge**: the source gets ``active: false`` and a ``link`` ``replaced-by`` the
  target; the target a ``link`` ``replaces`` the source; every resource whose patient
  reference (`fhir.types.PATIENT_ELEMENT`) is the source is re-pointed to the target.
* **The undo record** is a ``Basic`` resource with id `record_id(source, target)` —
  the same id at every site, so concurrent merges of a pair write one record.  Its
  extensions name source, target, the source's ``active`` before the merge, the
  status (``merged`` / ``unmerged``) and every re-pointed reference.  It syncs like
  any resource; when two sites merged concurrently, its ``extension`` register holds
  both sites' values and an undo takes the union of their re-pointed lists.
* **Unmerge** removes both links, gives the source its ``active`` back, and points
  back every re-pointed resource that still names the target; one that a user has
  since pointed elsewhere (or deleted) is left alone and reported.

Nothing is deleted: every step is an update, kept in each resource's history.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from edge_node.errors import BadRequest, Gone, NotFound, WrongState
from edge_node.fhir.search_index import patient_ref
from edge_node.fhir.types import PATIENT_ELEMENT
from edge_node.fhir.write_op import WriteOp

RECORD_TYPE: Final = "Basic"
CODE_SYSTEM: Final = "urn:chartsync:code"
MERGE_CODE: Final = "patient-merge"
EXT: Final = "urn:chartsync:patient-merge:"
#: The most resources one merge re-points (each is a write of the atomic request).
MAX_REPOINT: Final = 5000

Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Found:
    """A resource as stored now: its version and its JSON (None once deleted)."""

    resource_type: str
    resource_id: str
    version: str
    resource: dict[str, Any] | None

    @property
    def ref(self) -> str:
        return f"{self.resource_type}/{self.resource_id}"


@dataclass(frozen=True, slots=True)
class Plan:
    """The writes of a merge or an unmerge, and what they do to clinical resources."""

    source: str
    target: str
    ops: list[WriteOp]
    #: "Type/id" pointed at the other patient by this plan.
    moved: list[str]
    #: "Type/id" → why an unmerge left it alone.
    kept: dict[str, str] = field(default_factory=dict)


def survivor(a: str, b: str) -> tuple[str, str]:
    """(source, target) of a merge of patients `a` and `b`: the smaller id survives."""
    return (b, a) if a < b else (a, b)


def record_id(source: str, target: str) -> str:
    """The id of the undo record of merging `source` into `target` (same at every site)."""
    digest = hashlib.sha256(f"Patient/{source}|Patient/{target}".encode()).hexdigest()
    return f"merge-{digest[:40]}"


def _links(patient: Mapping[str, Any]) -> list[dict[str, Any]]:
    links = patient.get("link")
    return [link for link in links if isinstance(link, dict)] if isinstance(links, list) else []


def _other(link: Mapping[str, Any]) -> str | None:
    other = link.get("other")
    ref = other.get("reference") if isinstance(other, dict) else None
    return ref.removeprefix("Patient/") if isinstance(ref, str) else None


def replaced_by(patient: Mapping[str, Any]) -> str | None:
    """The id of the patient this one was merged into, if any."""
    for link in _links(patient):
        if link.get("type") == "replaced-by" and _other(link) is not None:
            return _other(link)
    return None


def _link(other: str, kind: str) -> dict[str, Any]:
    return {"other": {"reference": f"Patient/{other}"}, "type": kind}


def _with_links(patient: dict[str, Any], drop: str, add: dict[str, Any] | None
                ) -> dict[str, Any]:
    links = [link for link in _links(patient) if _other(link) != drop]
    if add is not None:
        links.append(add)
    out = {k: v for k, v in patient.items() if k not in ("meta", "link")}
    if links:
        out["link"] = links
    return out


def _live(found: Found | None, pid: str, role: str) -> dict[str, Any]:
    if found is None:
        raise NotFound(f"the {role} Patient/{pid} does not exist",
                       hint="check the id; list likely duplicates at "
                       "GET /fhir/Patient/$duplicates")
    if found.resource is None:
        raise Gone(f"the {role} Patient/{pid} was deleted",
                   hint="only live patients can be merged or unmerged")
    return found.resource


def repointed(found: Found, to_patient: str) -> dict[str, Any]:
    """`found`'s resource with its patient reference set to Patient/`to_patient`."""
    assert found.resource is not None
    element = PATIENT_ELEMENT[found.resource_type]
    resource = {k: v for k, v in found.resource.items() if k != "meta"}
    old = resource.get(element)
    resource[element] = {**(old if isinstance(old, dict) else {}),
                         "reference": f"Patient/{to_patient}"}
    return resource


def _update(found: Found, resource: dict[str, Any]) -> WriteOp:
    return WriteOp("update", found.resource_type, found.resource_id, resource, found.version,
                   repoints_patient=True)


def _changed(found: Found, resource: dict[str, Any]) -> bool:
    assert found.resource is not None
    return {k: v for k, v in found.resource.items() if k != "meta"} != resource


def _ext(name: str, **value: Any) -> dict[str, Any]:
    return {"url": EXT + name, **value}


def record_fields(values: Iterable[Any]) -> tuple[str | None, str | None, set[str]]:
    """(status, source's prior active, re-pointed refs) from the undo record's
    ``extension`` values (one per register head: several after concurrent merges).

    The status and prior ``active`` come from the first value holding them;
    re-pointed references are the union over values with status ``merged``.
    """
    status = active = None
    moved: set[str] = set()
    for value in values:
        fields: dict[str, list[Any]] = {}
        for ext in value if isinstance(value, list) else ():
            if isinstance(ext, dict) and isinstance(ext.get("url"), str) \
                    and ext["url"].startswith(EXT):
                fields.setdefault(ext["url"][len(EXT):], []).append(ext)
        head_status = next((e.get("valueCode") for e in fields.get("status", ())), None)
        status = status or head_status
        active = active or next((e.get("valueCode") for e in fields.get("source-active", ())),
                                None)
        if head_status == "merged":
            moved.update(e["valueReference"]["reference"] for e in fields.get("repointed", ())
                         if isinstance(e.get("valueReference"), dict)
                         and isinstance(e["valueReference"].get("reference"), str))
    return status, active, moved


def _record(source: str, target: str, status: str, active: str, moved: Iterable[str],
            kept: Mapping[str, str]) -> dict[str, Any]:
    ext = [_ext("source", valueReference={"reference": f"Patient/{source}"}),
           _ext("target", valueReference={"reference": f"Patient/{target}"}),
           _ext("status", valueCode=status), _ext("source-active", valueCode=active)]
    ext += [_ext("repointed", valueReference={"reference": ref}) for ref in sorted(moved)]
    ext += [_ext("kept", valueReference={"reference": ref}, valueString=why)
            for ref, why in sorted(kept.items())]
    return {"resourceType": RECORD_TYPE, "id": record_id(source, target),
            "code": {"coding": [{"system": CODE_SYSTEM, "code": MERGE_CODE}]},
            "subject": {"reference": f"Patient/{target}"}, "extension": ext}


def _record_op(record: Found | None, body: dict[str, Any]) -> WriteOp:
    rid = body["id"]
    if record is None:
        return WriteOp("update", RECORD_TYPE, rid, body)
    return WriteOp("update", RECORD_TYPE, rid, body, record.version)


def plan_merge(source: str, target: str, found: Mapping[str, Found | None],
               referencing: Sequence[Found], record: Found | None,
               record_values: Sequence[Any]) -> Plan:
    """The writes that merge Patient/`source` into Patient/`target` (see the module doc).

    `found`: the two patients by id; `referencing`: live resources whose patient is
    the source; `record`, `record_values`: the undo record and its ``extension``
    values (every head).  A merge already done that finds resources still naming the
    source (written at a site that had not seen the merge) re-points them.  Raises
    `BadRequest` (itself), `NotFound`, `Gone`, `WrongState` (merged elsewhere, or
    already merged with nothing left to move).
    """
    if source == target:
        raise BadRequest("a patient cannot be merged with itself",
                         hint="name two different patients as source-patient and "
                         "target-patient")
    src = _live(found.get(source), source, "source")
    tgt = _live(found.get(target), target, "target")
    for pid, patient, role in ((source, src, "source"), (target, tgt, "target")):
        into = replaced_by(patient)
        if into is not None and not (role == "source" and into == target):
            raise WrongState(f"the {role} Patient/{pid} was already merged into "
                             f"Patient/{into}",
                             hint=f"merge into Patient/{into} instead, or undo that merge "
                             "with POST /fhir/Patient/$unmerge")
    if len(referencing) > MAX_REPOINT:
        raise WrongState(f"Patient/{source} has {len(referencing)} resources to move; one "
                         f"merge moves at most {MAX_REPOINT}",
                         hint="ask the administrator to move them in parts")
    status, prior_active, moved_before = record_fields(record_values)
    if status != "merged":
        moved_before = set()
        have = src.get("active")
        prior_active = "absent" if have is None else ("true" if have else "false")
    new_src = _with_links(src, target, _link(target, "replaced-by"))
    new_src["active"] = False
    new_tgt = _with_links(tgt, source, _link(source, "replaces"))
    src_found, tgt_found = found[source], found[target]
    assert src_found is not None and tgt_found is not None
    ops = [_update(f, body) for f, body in ((src_found, new_src), (tgt_found, new_tgt))
           if _changed(f, body)]
    moves = [f for f in referencing if f.resource is not None
             and patient_ref(f.resource_type, f.resource_id, f.resource) == f"Patient/{source}"]
    if not ops and not moves:
        raise WrongState(f"Patient/{source} is already merged into Patient/{target} and "
                         "nothing names it any more",
                         hint="nothing to do; to undo the merge use POST "
                         "/fhir/Patient/$unmerge")
    ops += [_update(f, repointed(f, target)) for f in moves]
    moved = [f.ref for f in moves]
    body = _record(source, target, "merged", prior_active or "absent",
                   moved_before | set(moved), {})
    ops.append(_record_op(record, body))
    return Plan(source, target, ops, moved)


def plan_unmerge(source: str, target: str, found: Mapping[str, Found | None],
                 moved: Mapping[str, Found | None], record: Found | None,
                 record_values: Sequence[Any]) -> Plan:
    """The writes that undo merging Patient/`source` into Patient/`target`.

    `moved`: the current form of every reference the record lists as re-pointed
    (`record_fields`), None for one not stored here.  Raises `NotFound`, `Gone`,
    `WrongState` (the pair is not merged).
    """
    src = _live(found.get(source), source, "source")
    tgt = _live(found.get(target), target, "target")
    if replaced_by(src) != target:
        raise WrongState(f"Patient/{source} is not merged into Patient/{target}",
                         hint="name the merged record as source-patient and the record it "
                         "was merged into as target-patient; see Patient.link")
    _, prior_active, _ = record_fields(record_values)
    new_src = _with_links(src, target, None)
    new_src.pop("active", None)
    if prior_active in ("true", "false"):
        new_src["active"] = prior_active == "true"
    elif prior_active is None:  # no record (a merge made by hand): active again
        new_src["active"] = True
    new_tgt = _with_links(tgt, source, None)
    src_found, tgt_found = found[source], found[target]
    assert src_found is not None and tgt_found is not None
    ops = [_update(f, body) for f, body in ((src_found, new_src), (tgt_found, new_tgt))
           if _changed(f, body)]
    back: list[str] = []
    kept: dict[str, str] = {}
    for ref, now in sorted(moved.items()):
        if now is None or now.resource is None:
            kept[ref] = "deleted" if now is not None else "not stored at this site"
            continue
        if patient_ref(now.resource_type, now.resource_id, now.resource) != f"Patient/{target}":
            kept[ref] = "pointed elsewhere since the merge"
            continue
        ops.append(_update(now, repointed(now, source)))
        back.append(ref)
    body = _record(source, target, "unmerged", prior_active or "absent", moved.keys(), kept)
    ops.append(_record_op(record, body))
    return Plan(source, target, ops, back, kept)


def record_key(source: str, target: str) -> Key:
    return RECORD_TYPE, record_id(source, target)


__all__ = ["CODE_SYSTEM", "EXT", "MAX_REPOINT", "MERGE_CODE", "RECORD_TYPE", "Found", "Plan",
           "plan_merge", "plan_unmerge", "record_fields", "record_id", "record_key",
           "replaced_by", "repointed", "survivor"]
