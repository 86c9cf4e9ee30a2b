"""記録の確定: confirmed records are never changed in place; corrections are new versions.

A record moves from draft to confirmed through its status; from then on a write
may only

* move it along its lifecycle (status, and the few elements listed in
  `_LIFECYCLE`) without touching its content; or
* be a **correction** (Observation, DiagnosticReport, MedicationRequest): a new
  version whose status says so (amended / corrected / appended; a
  MedicationRequest keeps its status) and that carries a `CORRECTION_REASON`
  extension with a reason of its own (not the previous correction's).  The edge
  records who confirmed it (`stamp_confirmer`), and the version history links it to
  the original.

A note (DocumentReference) is append-only: once it is not a draft
(`docStatus` preliminary) its content is never edited; an amendment is a new
DocumentReference whose `relatesTo` says `appends` or `replaces` the original.

When a record counts as confirmed:

    Observation          status final, amended, corrected
    DiagnosticReport     status final, amended, corrected, appended
    MedicationRequest    issued: any status but draft (and unknown); an order is
                         changed by stopping it and issuing a new one with
                         priorPrescription, or by a correction with a reason
    DocumentReference    docStatus anything but preliminary (absent counts as final)

Pure: resources in, a `Refusal` (or None) out.  The edge calls `check_update` on
its local write path; changes from other sites were checked where they were made.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sync_protocol.canonical import canonical_json

#: Extension carrying the reason of a correction (valueString).
CORRECTION_REASON: Final = "http://chartsync.example/fhir/StructureDefinition/correction-reason"
#: Extension the edge adds to a correction: the user who confirmed it (valueString).
CORRECTION_CONFIRMER: Final = (
    "http://chartsync.example/fhir/StructureDefinition/correction-confirmer")

#: Statuses at which a record is confirmed, per kind (see the module docstring).
CONFIRMED_STATUS: Final[Mapping[str, frozenset[str]]] = {
    "Observation": frozenset({"final", "amended", "corrected"}),
    "DiagnosticReport": frozenset({"final", "amended", "corrected", "appended"}),
    "MedicationRequest": frozenset({"active", "on-hold", "cancelled", "completed",
                                    "entered-in-error", "stopped"}),
}
#: Statuses a correction carries, per kind (MedicationRequest: any; the reason marks it).
CORRECTION_STATUS: Final[Mapping[str, frozenset[str]]] = {
    "Observation": frozenset({"amended", "corrected"}),
    "DiagnosticReport": frozenset({"amended", "corrected", "appended"}),
}
#: Elements a confirmed record may change in place: its lifecycle, never its content.
_ALWAYS_FREE: Final = frozenset({"resourceType", "id", "meta", "text"})
_LIFECYCLE: Final[Mapping[str, frozenset[str]]] = {
    "Observation": frozenset({"status"}),
    "DiagnosticReport": frozenset({"status"}),
    "MedicationRequest": frozenset({"status", "statusReason"}),
    "DocumentReference": frozenset({"status", "securityLabel", "relatesTo"}),
}


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a write to a confirmed record is refused, and how to correct it instead."""

    message: str
    hint: str


def is_confirmed(resource: Mapping[str, Any]) -> bool:
    """Whether `resource` is a confirmed record (see the module docstring)."""
    rtype = resource.get("resourceType")
    if rtype == "DocumentReference":
        return resource.get("docStatus") != "preliminary"
    statuses = CONFIRMED_STATUS.get(rtype) if isinstance(rtype, str) else None
    return statuses is not None and resource.get("status") in statuses


def correction_reason(resource: Mapping[str, Any]) -> str | None:
    """The non-blank reason of `resource`'s `CORRECTION_REASON` extension, or None."""
    extensions = resource.get("extension")
    if not isinstance(extensions, list):
        return None
    for ext in extensions:
        if isinstance(ext, dict) and ext.get("url") == CORRECTION_REASON:
            reason = ext.get("valueString")
            if isinstance(reason, str) and reason.strip():
                return reason
    return None


def _changed(prior: Mapping[str, Any], resource: Mapping[str, Any]) -> set[str]:
    keys = (prior.keys() | resource.keys()) - _ALWAYS_FREE
    return {k for k in keys if k not in prior or k not in resource
            or canonical_json(prior[k]) != canonical_json(resource[k])}


def _how_to_correct(rtype: str, rid: str) -> str:
    if rtype == "DocumentReference":
        return ("POST a new DocumentReference with relatesTo [{\"code\": \"appends\" or "
                f"\"replaces\", \"target\": {{\"reference\": \"DocumentReference/{rid}\"}}}}]")
    status = ("" if rtype == "MedicationRequest"
              else " with status " + " or ".join(
                  f"'{s}'" for s in sorted(CORRECTION_STATUS.get(rtype, ()))))
    extra = (" (or stop it and POST a new MedicationRequest with priorPrescription)"
             if rtype == "MedicationRequest" else "")
    return (f"create a correction: PUT {rtype}/{rid}{status} and an extension "
            f"{{\"url\": \"{CORRECTION_REASON}\", \"valueString\": \"<reason>\"}}{extra}")


def check_update(prior: Mapping[str, Any] | None, resource: Mapping[str, Any],
                 *, free: frozenset[str] = frozenset()) -> Refusal | None:
    """Whether writing `resource` over `prior` (the record as it reads) is allowed.

    None when allowed: no prior, a prior that is not confirmed, a change of
    lifecycle elements only (a retraction to entered-in-error / cancelled, a
    stopped order), or a correction with a reason of its own.  Otherwise the
    `Refusal` names the changed elements (never their values) and the way to
    correct instead.  `free` names elements the caller may change in place besides
    the lifecycle (a patient merge re-pointing the patient reference).
    """
    if prior is None or not is_confirmed(prior):
        return None
    rtype, rid = str(prior.get("resourceType")), str(prior.get("id"))
    changed = _changed(prior, resource)
    content = changed - _LIFECYCLE.get(rtype, frozenset()) - free
    if rtype == "DocumentReference" and resource.get("docStatus") == "entered-in-error":
        content -= {"docStatus"}
    if not content:
        return None
    if rtype != "DocumentReference":
        reason = correction_reason(resource)
        fresh = reason is not None and reason != correction_reason(prior)
        statuses = CORRECTION_STATUS.get(rtype)
        status_ok = statuses is None or resource.get("status") in statuses
        if fresh and status_ok:
            return None
    names = ", ".join(sorted(content)[:6])
    what = "a note is append-only" if rtype == "DocumentReference" else "it is confirmed"
    return Refusal(
        f"{rtype}/{rid} cannot be changed in place ({names}): {what}",
        _how_to_correct(rtype, rid)
        + (" with a reason of its own" if correction_reason(prior) is not None
           and rtype != "DocumentReference" else ""),
    )


def stamp_confirmer(resource: Mapping[str, Any], user: str) -> dict[str, Any]:
    """`resource` with its `CORRECTION_CONFIRMER` extension set to `user`.

    For a correction (a resource with a correction reason); any confirmer the
    client sent is replaced: the confirmer is whoever writes the correction.
    """
    extensions = [ext for ext in resource.get("extension", ())
                  if not (isinstance(ext, dict) and ext.get("url") == CORRECTION_CONFIRMER)]
    extensions.append({"url": CORRECTION_CONFIRMER, "valueString": user})
    return {**resource, "extension": extensions}
