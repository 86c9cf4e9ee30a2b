"""The merged state of one resource: a multi-value register per element.

A resource is a set of registers — one per FHIR top-level element (a choice
element such as `value[x]` is one register) plus `@deleted`.  A register keeps

* `heads` — the writes no applied change has superseded, sorted by dot; and
* `replaced` — every dot any applied change said it superseded there.

Keeping `replaced` is what makes a merge independent of arrival order and of
duplicates: a change that arrives after one that superseded it never becomes a
head.  The heads of a register are exactly "dots of the applied changes that
write it, minus the dots they replace", a function of the set of changes only.

Orders used here:

* dots sort by `(site, seq)`.  `uuid.UUID` compares by its 128-bit integer,
  which is the order of its 16 big-endian bytes, so a `Dot` tuple compares
  exactly like `(site.bytes, seq)` (`sorted_dots`) without building bytes;
* the shown head is the greatest `(hlc, site)` — `hlc.order_key` — after any
  value precedence of the kind (`rules.KindRules.precedence`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from conflict.rules import KindRules, rules_for
from sync_protocol.canonical import canonical_json, parse_json
from sync_protocol.models import DELETED, DELETED_VALUE, Dot


class Head(NamedTuple):
    """One current write of a register: its dot, its HLC, and the value (None: removed).

    A tuple, so it is immutable, cheap to build in the merge loop, and sorts by dot
    first (dots are unique within a register, so the later fields never decide).
    """

    dot: Dot
    hlc: int
    value: bytes | None


class Register(NamedTuple):
    """A multi-value register: `heads` sorted by dot, `replaced` the superseded dots.

    Invariant: no head's dot is in `replaced`, and no two heads share a dot.  A
    tuple for the same reason as `Head`: the merge loop builds one per write.
    """

    heads: tuple[Head, ...]
    replaced: frozenset[Dot]


@dataclass(frozen=True, slots=True)
class ResourceState:
    """Merged state of one resource, keyed by register name.

    Values, not objects: `merge` returns a new state and never changes one it was
    given, and callers must not change `registers` either.  Two states are equal
    when their registers are; `canonical.canonical_state` gives the same bytes
    for equal states.
    """

    resource_type: str
    resource_id: str
    registers: Mapping[str, Register]


def _display_key(head: Head) -> tuple[int, object]:
    return (head.hlc, head.dot.site)  # same order as hlc.order_key(hlc, site)


def displayed(heads: Sequence[Head], precedence: Sequence[bytes | None] = ()) -> Head:
    """The head a reader sees: the greatest `(hlc, site)`; the site settles every tie.

    With `precedence` (values, strongest first), a head holding one of those
    values is shown ahead of any head that does not, and a stronger one ahead of
    a weaker one; `(hlc, site)` orders the rest.  Deterministic for any order of
    `heads`.  Raises `ValueError` for no heads.
    """
    if len(heads) == 1:
        return heads[0]
    if not heads:
        raise ValueError("a register with no heads has no displayed value")
    if not precedence:
        return max(heads, key=_display_key)
    rank = {value: len(precedence) - i for i, value in enumerate(precedence)}
    return max(heads, key=lambda h: (rank.get(h.value, 0), h.hlc, h.dot.site))


def union_items(values: Sequence[bytes | None]) -> bytes | None:
    """The canonical JSON array of every item in `values` (JSON arrays; None skipped).

    Items are deduplicated and sorted by their canonical bytes; None when no
    item is left.  A single array is returned as it is: item registers hold
    their items sorted and unique already (`shape.check_elements`).
    """
    present = [value for value in values if value is not None]
    if len(present) == 1 and present[0] != b"[]":
        return present[0]  # a register value is already canonical, sorted and unique
    items = sorted({canonical_json(item) for value in present for item in parse_json(value)})
    return b"[" + b",".join(items) + b"]" if items else None


def _lead_of(rules: KindRules, name: str) -> str | None:
    """The member of `name`'s coupled group whose precedence decides the group's display."""
    for group in rules.coupled:
        if name in group:
            lead = next((m for m in rules.precedence if m in group), None)
            return None if lead == name else lead
    return None


def displayed_head(rules: KindRules, name: str, heads: Sequence[Head],
                   registers: Mapping[str, Register] | None = None) -> Head:
    """The head a reader sees in register `name` with `heads` (at least one).

    `displayed` with the register's precedence; and, given the state's
    `registers`, a member of a coupled group shows the head of the same edit as
    the group's precedence member (a stopped order shows the stop's dose, not the
    dose of the concurrent modify), as long as both hold the same edits.
    """
    if len(heads) > 1 and registers is not None and rules.coupled:
        lead = _lead_of(rules, name)
        lead_reg = registers.get(lead) if lead is not None else None
        if lead is not None and lead_reg is not None and len(lead_reg.heads) == len(heads) \
                and {h.dot for h in lead_reg.heads} == {h.dot for h in heads}:
            dot = displayed(lead_reg.heads, rules.precedence[lead]).dot
            return next(h for h in heads if h.dot == dot)
    return displayed(heads, rules.precedence.get(name, ()))


def register_value(rules: KindRules, name: str, heads: Sequence[Head],
                   registers: Mapping[str, Register] | None = None) -> bytes | None:
    """The value a reader sees in register `name` with `heads` (at least one).

    The displayed head's value (`displayed_head`), except for a keyed-list
    register with `union` (identifiers) whose heads differ: the union of their
    items, so no value a site wrote is hidden while the conflict is open.
    """
    if len(heads) > 1:
        keyed = rules.keyed_list(name)
        if keyed is not None and keyed.union and has_distinct_values(heads):
            return union_items([h.value for h in heads])
    return displayed_head(rules, name, heads, registers).value


def shown(state: ResourceState, register: str) -> Head | None:
    """The displayed head of `register` under the rules of the state's kind.

    None when the state has no such register, or it has no heads (possible only
    with changes whose `replaces` contradict each other).
    """
    reg = state.registers.get(register)
    if reg is None or not reg.heads:
        return None
    return displayed_head(rules_for(state.resource_type), register, reg.heads,
                          state.registers)


def is_deleted(state: ResourceState) -> bool:
    """Whether the resource reads as deleted: the shown `@deleted` value is b"true"."""
    head = shown(state, DELETED)
    return head is not None and head.value == DELETED_VALUE


def has_distinct_values(heads: Sequence[Head]) -> bool:
    """Whether `heads` hold two or more different values (None counts as a value)."""
    first = heads[0].value if heads else None
    return any(h.value != first for h in heads[1:])
