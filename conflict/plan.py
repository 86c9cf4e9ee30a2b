"""Plan a local edit: which registers to write, and which heads each write replaces.

The edge turns a FHIR write into a change in two steps: `plan_set` /
`plan_delete` here decide `elements` and `replaces` from the local state (pure),
then the edge adds its HLC stamp, origin, sequence number and user to build a
`sync_protocol.models.Change` and merges it like any other change.

What an edit replaces is what its writer saw.  Two modes:

* `resolve=True` (default) — the writer saw every head, as a conflict-aware
  screen shows them.  A written register replaces all its heads, and a
  register with several heads is written even when its shown value is what
  the writer wants: **saving on top of a conflict resolves it** (keeping the
  shown value), so only use this mode when the user was shown the conflict.
* `resolve=False` — the writer saw only the shown values (a plain FHIR client
  doing read-modify-write).  On a guarded register in conflict, a write replaces
  only the heads holding the shown value, and an unchanged register is not
  written; the conflict stays open with the new value among its heads.

A keyed list (`rules.KindRules.keyed`) is planned item register by item
register: an item the resource no longer has is written None, a new one gets a
register of its own, and the order of the list is not an edit.

In both modes `@deleted` is always written (every change writes it), and a
coupled group (`rules.KindRules.coupled`) is written whole as soon as one
member is, absent members as None, so the members keep identical heads and a
reader sees all of them from the same edit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from conflict.errors import WrongResource
from conflict.rules import KindRules, rules_for
from conflict.shape import resource_type_of, split_resource
from conflict.state import Head, Register, ResourceState, has_distinct_values, register_value
from sync_protocol.models import DELETED, DELETED_VALUE, LIVE_VALUE, Dot

#: `Change.elements` and `Change.replaces` of a planned edit.
Plan = tuple[dict[str, bytes | None], dict[str, tuple[Dot, ...]]]

_NO_HEADS: tuple[Head, ...] = ()


def _replaced_by_write(
    heads: Sequence[Head], want: bytes | None, *, must: bool, resolve: bool,
    rules: KindRules, name: str, registers: Mapping[str, Register] | None = None,
) -> tuple[Dot, ...] | None:
    """Dots a write of `want` to a register with `heads` replaces; None: do not write."""
    if not heads:
        return () if (want is not None or must) else None
    have = register_value(rules, name, heads, registers)
    if not resolve and len(heads) > 1 and rules.is_guarded(name) and has_distinct_values(heads):
        if want == have and not must:
            return None
        return tuple(h.dot for h in heads if h.value == have)
    if want == have and len(heads) == 1 and not must:
        return None
    return tuple(h.dot for h in heads)


def plan_set(state: ResourceState | None, resource: Mapping[str, Any], *,
             resolve: bool = True) -> Plan:
    """Elements and replaces of an edit after which the resource reads as `resource`.

    Writes every register whose shown value differs (None for an element the
    resource no longer has), each replacing the heads the writer saw (see the
    module docstring for `resolve`), plus `@deleted` → b"false" — so a save on a
    deleted resource brings it back.  An edit that changes nothing writes only
    `@deleted`; the edge may skip it.  Both dicts have sorted keys and dots in
    canonical order.  Raises `ShapeError` for a resource with no register form
    and `WrongResource` if `resource` is not the state's resource.
    """
    target = split_resource(resource)
    rtype = resource_type_of(resource)
    registers: Mapping[str, Register] = {}
    if state is not None:
        rid = resource.get("id", state.resource_id)
        if rtype != state.resource_type or rid != state.resource_id:
            raise WrongResource(
                f"an edit of {rtype}/{rid} cannot be planned on {state.resource_type}/"
                f"{state.resource_id}",
                hint="plan each edit on the state of the resource it writes",
            )
        registers = state.registers
    rules = rules_for(rtype)

    def heads(name: str) -> tuple[Head, ...]:
        reg = registers.get(name)
        return _NO_HEADS if reg is None else reg.heads

    elements: dict[str, bytes | None] = {}
    replaces: dict[str, tuple[Dot, ...]] = {}

    def write(name: str, want: bytes | None, *, must: bool) -> None:
        dots = _replaced_by_write(heads(name), want, must=must, resolve=resolve,
                                  rules=rules, name=name, registers=registers)
        if dots is None:
            return
        elements[name] = want
        if dots:
            replaces[name] = dots

    for name in sorted((registers.keys() | target.keys()) - {DELETED}):
        write(name, target.get(name), must=False)
    for group in rules.coupled:
        if not group.isdisjoint(elements):
            for name in sorted(group - elements.keys()):
                write(name, target.get(name), must=True)
    write(DELETED, LIVE_VALUE, must=True)
    return dict(sorted(elements.items())), dict(sorted(replaces.items()))


def plan_delete(state: ResourceState, *, resolve: bool = True) -> Plan:
    """Elements and replaces of a delete: `@deleted` → b"true", replacing what was seen.

    With `resolve=True` it replaces every `@deleted` head (a delete on top of an
    edit-versus-delete conflict settles it as deleted); with `resolve=False` only
    the heads holding the shown value.  Other registers are kept as they are
    (a tombstone, readable in history).
    """
    rules = rules_for(state.resource_type)
    reg = state.registers.get(DELETED)
    dots = _replaced_by_write(reg.heads if reg else _NO_HEADS, DELETED_VALUE, must=True,
                              resolve=resolve, rules=rules, name=DELETED)
    return {DELETED: DELETED_VALUE}, ({DELETED: dots} if dots else {})
