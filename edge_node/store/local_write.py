"""The rows of one local write (create, update, delete) and the audit records of a request.

`plan_local_op` turns a `WriteOp` into the change it makes (`conflict.plan_set` /
`plan_delete`, stamped with the site's clock and the next sequence number), its rows
(`store.apply.apply_change`) and its outbox row; the writer (`store.writer`) owns
the sequence counter and the clock it passes in.  Pure apart from the clock's tick.

An update of a confirmed record (記録の確定) first passes `conflict.check_update`:
an in-place change is refused (422 `RecordConfirmed`, saying how to correct), and a
correction is stamped with its confirmer (the writing user).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgpack

from conflict import (
    CoreError,
    Plan,
    ResourceState,
    base_of,
    check_update,
    materialize,
    plan_delete,
    plan_set,
    rules_for,
    stamp_confirmer,
)
from conflict.confirmation import correction_reason
from conflict.shape import split_resource
from edge_node.errors import (
    BadRequest,
    ConflictChanged,
    EdgeError,
    InvalidResource,
    NotFound,
    PreconditionRequired,
    RecordConfirmed,
    VersionConflict,
)
from edge_node.fhir.types import PATIENT_ELEMENT
from edge_node.fhir.write_op import Action, Actor, RegisterResolve, WriteOp
from edge_node.store.apply import Applied, Rows, Stored, apply_change
from edge_node.store.audit import AuditRecord
from edge_node.store.group_rows import Overlay
from sync_protocol.hlc import HybridClock
from sync_protocol.ids import SiteId
from sync_protocol.models import DELETED, LIVE_VALUE, Change, ChangeOp, Dot
from sync_protocol.wire import encode_changes

_STATUS: Final[dict[Action, int]] = {"create": 201, "update": 200, "delete": 204}


def plan_local_op(op: WriteOp, view: Overlay, rows: Rows, now_ms: int, actor: Actor, *,
                  site_id: SiteId, seq: int, hlc: HybridClock, require_if_match: bool
                  ) -> Applied:
    """Compute the rows of one local write into `rows` and its new state into `view`.

    A write that changes something gets outbox sequence number `seq` (one outbox row
    added); deleting a deleted resource changes nothing and adds none.  Raises the
    `EdgeError` that refuses it (412, 404, 428, a merge refusal); `rows` and `view`
    may then hold part of it (the caller drops both).
    """
    key = (op.resource_type, op.resource_id)
    prior = view.get(key)
    ref = f"{op.resource_type}/{op.resource_id}"
    if op.if_match is not None and (prior is None or prior.vid != op.if_match):
        have = "does not exist" if prior is None else f"is at version {prior.vid}"
        raise VersionConflict(f"{ref} {have}, not version {op.if_match} (If-Match)",
                              hint="read the resource again, reapply the edit, and "
                              "send it with the new ETag")
    try:
        if op.action == "create":
            if prior is not None:
                raise BadRequest(f"{ref} already exists",
                                 hint="update it with PUT instead")
            assert op.resource is not None
            elements, replaces = plan_set(None, op.resource, resolve=False)
            kind, base = ChangeOp.SET, {}
        elif op.action == "update":
            if op.if_match is None and require_if_match and prior is not None:
                raise PreconditionRequired(
                    f"updating {ref} needs an If-Match header",
                    hint='read it first and send If-Match: W/"<versionId>"')
            assert op.resource is not None
            if op.resolves is not None:
                state = _still_seen(prior, op.resolves, ref)
                elements, replaces = plan_register_resolve(state, op.resource,
                                                           op.resolves.register)
            else:
                resource = _confirmed_write(prior.state if prior and not prior.deleted else None,
                                            op, actor)
                elements, replaces = plan_set(prior.state if prior else None, resource,
                                              resolve=op.resolve)
            kind, base = ChangeOp.SET, base_of(prior.state if prior else None, elements)
        else:
            if prior is None:
                raise NotFound(f"{ref} does not exist",
                               hint="check the id; nothing was deleted")
            if op.resolves is not None:
                elements, replaces = plan_delete(_still_seen(prior, op.resolves, ref),
                                                 resolve=True)
            elif prior.deleted:
                return Applied(op.resource_type, op.resource_id, prior.vid,
                               prior.last_updated_ms, True, None, None, False)
            else:
                elements, replaces = plan_delete(prior.state, resolve=False)
            kind, base = ChangeOp.DELETE, {}
        change = Change(
            resource_type=op.resource_type, resource_id=op.resource_id, op=kind,
            elements=elements, replaces=replaces, hlc=hlc.now(now_ms),
            origin=site_id, seq=seq, user=actor.user_id, device=actor.device, base=base)
        stored, applied = apply_change(prior, change, now_ms, rows)
    except CoreError as exc:
        raise InvalidResource(f"{ref}: {exc.message}", hint=exc.hint) from exc
    rows.outbox.append((seq, msgpack.packb(encode_changes([change]), use_bin_type=True),
                        now_ms))
    view.changes[key] = stored
    return applied


def _still_seen(prior: Stored | None, resolves: RegisterResolve, ref: str) -> ResourceState:
    """The prior state, if `resolves.register` still has exactly the heads the clinician
    saw; raises `ConflictChanged` (409) otherwise."""
    reg = prior.state.registers.get(resolves.register) if prior is not None else None
    heads = reg.heads if reg is not None else ()
    if prior is None or frozenset(h.dot for h in heads) != resolves.seen:
        raise ConflictChanged(
            f"the conflict on {ref} {resolves.register} changed since it was read (it holds "
            f"{len(heads)} value{'s' if len(heads) != 1 else ''} now); nothing was written",
            hint="read GET /conflicts/{id} again and decide on the values it shows now")
    return prior.state


def plan_register_resolve(state: ResourceState, resource: dict[str, object],
                          register: str) -> Plan:
    """The change that closes the conflict on `register`: it and its coupled registers
    take their values from `resource`, replacing every head; `@deleted` is written as a
    plain save writes it (or, resolving `@deleted` itself, replaces all its heads);
    nothing else is written, so other open conflicts of the resource stay open."""
    base_elements, base_replaces = plan_set(state, resource, resolve=False)
    names = {register}
    for group in rules_for(state.resource_type).coupled:
        if register in group:
            names |= group
    target: dict[str, bytes | None] = {**split_resource(resource), DELETED: LIVE_VALUE}
    elements: dict[str, bytes | None] = {DELETED: base_elements[DELETED]}
    replaces: dict[str, tuple[Dot, ...]] = (
        {DELETED: base_replaces[DELETED]} if DELETED in base_replaces else {})
    for name in names:
        reg = state.registers.get(name)
        heads = reg.heads if reg is not None else ()
        want = target.get(name)
        if not heads and want is None:
            continue
        elements[name] = want
        if heads:
            replaces[name] = tuple(h.dot for h in heads)
        else:
            replaces.pop(name, None)
    return dict(sorted(elements.items())), dict(sorted(replaces.items()))


def _confirmed_write(prior: ResourceState | None, op: WriteOp, actor: Actor
                     ) -> dict[str, Any]:
    """`op.resource` as it may be written over `prior`: refused if it changes a confirmed
    record in place, stamped with its confirmer if it is a correction."""
    resource = op.resource
    assert resource is not None
    before = materialize(prior) if prior is not None else None
    element = PATIENT_ELEMENT.get(op.resource_type) if op.repoints_patient else None
    refusal = check_update(before, resource,
                           free=frozenset({element}) if element else frozenset())
    if refusal is not None:
        raise RecordConfirmed(refusal.message, hint=refusal.hint)
    reason = correction_reason(resource)
    if reason is not None and (before is None or reason != correction_reason(before)):
        return stamp_confirmer(resource, actor.user_id)
    return resource


def audit_records(ops: Sequence[WriteOp], out: Sequence[Applied | EdgeError], actor: Actor,
                  label: str, now_ms: int) -> list[AuditRecord]:
    """One audit record per op of a request: what was done (or refused), by whom."""
    records = []
    for op, result in zip(ops, out, strict=True):
        if isinstance(result, Applied):
            status = _STATUS[op.action] if op.action != "update" else (
                201 if result.created else 200)
            pref = result.patient_ref
        else:
            status, pref = result.http_status, None
        detail: dict[str, object] = {"bundle": label} if label else {}
        if op.resolves is not None:
            # The clinician's decision is part of the record (who, which value, why).
            detail.update(resolved=op.resolves.register, chose=op.resolves.chose,
                          reason=op.resolves.reason)
        records.append(AuditRecord(now_ms, actor.user_id, actor.role, op.action,
                                   op.resource_type, op.resource_id, pref, status,
                                   actor.client, detail))
    return records


__all__ = ["audit_records", "plan_local_op"]
