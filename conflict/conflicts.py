"""Conflict records: derived from state, never stored on their own.

A guarded register (`rules.KindRules.guarded`) whose heads hold two or more
different values is a conflict: every value is kept and listed until a change
that saw all heads (a resolving change) replaces them.  Because records are a
pure function of the state, every site that holds the same state lists the same
conflicts, in the same order, without exchanging anything about them.

Each record names the `rule` that raised it, derived from the state alone:

    identifier             an item register of `identifier` (two values of one system)
    stop-vs-modify         a MedicationRequest order unit where one head stops the order
                           (stopped / cancelled / entered-in-error) and another does not;
                           `addressed_to` is the order's `requester` (the prescriber)
    confirmed-correction   a confirmed record (`confirmation`) with a correction among
                           the heads of its status
    note-text              the text of a note (`note`, DocumentReference `content`)
    guarded                any other guarded register
    no-known-allergies     spans two resources: `patient_rules.cross_resource_conflicts`
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from conflict.confirmation import CORRECTION_REASON, CORRECTION_STATUS
from conflict.rules import element_of, rules_for
from conflict.state import Head, ResourceState, displayed, displayed_head, has_distinct_values
from sync_protocol.canonical import parse_json
from sync_protocol.errors import MalformedInput

#: MedicationRequest statuses that end an order.
STOPPED: Final = frozenset({b'"stopped"', b'"cancelled"', b'"entered-in-error"'})
_NOTE_TEXT: Final = frozenset({"note", "content"})


@dataclass(frozen=True, slots=True)
class ConflictRecord:
    """An open conflict on one register of one resource.

    `heads` lists every concurrent write in dot order; `shown` is the one the
    resource currently displays (flagged as in conflict).
    """

    resource_type: str
    resource_id: str
    register: str
    heads: tuple[Head, ...]
    shown: Head
    #: The rule that raised it (see the module docstring).
    rule: str = "guarded"
    #: Reference of who must review it (the prescriber of an order), if the rule says.
    addressed_to: str | None = None
    #: Other resources the conflict is about ("AllergyIntolerance/a1"), sorted.
    related: tuple[str, ...] = ()


def _reference(state: ResourceState, register: str) -> str | None:
    """The `reference` of the single-valued Reference element `register`, if shown."""
    reg = state.registers.get(register)
    if reg is None or not reg.heads:
        return None
    value = displayed(reg.heads).value
    try:
        parsed = None if value is None else parse_json(value)
    except MalformedInput:
        return None
    ref = parsed.get("reference") if isinstance(parsed, dict) else None
    return ref if isinstance(ref, str) else None


def _has_correction(state: ResourceState) -> bool:
    """Whether a head of the state's status (or extension) is a correction."""
    statuses = CORRECTION_STATUS.get(state.resource_type, frozenset())
    status = state.registers.get("status")
    if status is not None and any(
            h.value is not None and h.value[1:-1].decode(errors="replace") in statuses
            for h in status.heads):
        return True
    extension = state.registers.get("extension")
    marker = CORRECTION_REASON.encode()
    return (state.resource_type == "MedicationRequest" and extension is not None
            and any(h.value is not None and marker in h.value for h in extension.heads))


def _rule_of(state: ResourceState, register: str) -> tuple[str, str | None]:
    """(rule, addressed_to) of a conflict on `register` (see the module docstring)."""
    rtype = state.resource_type
    if register != element_of(register) and element_of(register) == "identifier":
        return "identifier", None
    rules = rules_for(rtype)
    if rtype == "MedicationRequest" and any(register in g for g in rules.coupled):
        status = state.registers.get("status")
        values = {h.value for h in status.heads} if status is not None else set()
        if values & STOPPED and values - STOPPED:
            return "stop-vs-modify", _reference(state, "requester")
    if _has_correction(state):
        return "confirmed-correction", None
    if register in _NOTE_TEXT and (register == "note" or rtype == "DocumentReference"):
        return "note-text", None
    return "guarded", None


def conflicts(state: ResourceState) -> tuple[ConflictRecord, ...]:
    """The open conflicts of `state`, ordered by register name.

    Deterministic: equal states give equal records.  Kinds outside
    `rules.SUPPORTED_TYPES` have no guarded registers, hence no records.
    """
    rules = rules_for(state.resource_type)
    found: list[ConflictRecord] = []
    for name in sorted(state.registers):
        heads = state.registers[name].heads
        if len(heads) < 2 or not rules.is_guarded(name) or not has_distinct_values(heads):
            continue
        shown = displayed_head(rules, name, heads, state.registers)
        rule, addressed_to = _rule_of(state, name)
        found.append(ConflictRecord(state.resource_type, state.resource_id, name, heads, shown,
                                    rule, addressed_to))
    return tuple(found)


def all_conflicts(states: Iterable[ResourceState]) -> tuple[ConflictRecord, ...]:
    """The open conflicts of every state, ordered by (resource type, id, register)."""
    ordered = sorted(states, key=lambda s: (s.resource_type, s.resource_id))
    return tuple(record for state in ordered for record in conflicts(state))
