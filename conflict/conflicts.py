"""Conflict records: derived from state, never stored on their own.

A guarded register (`rules.KindRules.guarded`) whose heads hold two or more
different values is a conflict: every value is kept and listed until a change
that saw all heads (a resolving change) replaces them.  Because records are a
pure function of the state, every site that holds the same state lists the same
conflicts, in the same order, without exchanging anything about them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from conflict.rules import rules_for
from conflict.state import Head, ResourceState, displayed, has_distinct_values


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
        shown = displayed(heads, rules.precedence.get(name, ()))
        found.append(ConflictRecord(state.resource_type, state.resource_id, name, heads, shown))
    return tuple(found)


def all_conflicts(states: Iterable[ResourceState]) -> tuple[ConflictRecord, ...]:
    """The open conflicts of every state, ordered by (resource type, id, register)."""
    ordered = sorted(states, key=lambda s: (s.resource_type, s.resource_id))
    return tuple(record for state in ordered for record in conflicts(state))
