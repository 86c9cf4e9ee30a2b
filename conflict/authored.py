"""What the author of a change saw and saved: the version of the resource it wrote.

A change writes only the registers its author changed (`plan.plan_set`); the rest of
the resource is what the author saw shown at that moment, carried with the change as
its `base` (protocol 1.1).  Together they are the author's version of the resource,
which every site keeps in history under the change's dot, whatever it merges it
with: the merged state a site shows is that site's view, and never replaces what
an author wrote (docs/history.md).

Pure: values in, values out.
"""

from __future__ import annotations

from collections.abc import Mapping

from conflict.materialize import json_of_registers
from conflict.rules import rules_for
from conflict.state import ResourceState, register_value
from sync_protocol.models import DELETED, DELETED_VALUE, Change


def base_of(state: ResourceState | None, written: Mapping[str, bytes | None]
            ) -> dict[str, bytes]:
    """The shown value of every register of `state` that `written` does not write.

    Registers shown as absent (value None) and `@deleted` are left out; keys sorted.
    This is a change's `base` when `state` is what its author saw.
    """
    if state is None:
        return {}
    rules = rules_for(state.resource_type)
    out: dict[str, bytes] = {}
    for name in sorted(state.registers):
        if name == DELETED or name in written:
            continue
        heads = state.registers[name].heads
        if not heads:
            continue
        value = register_value(rules, name, heads, state.registers)
        if value is not None:
            out[name] = value
    return out


def authored_json(change: Change, base: Mapping[str, bytes]) -> bytes | None:
    """Canonical JSON of the resource as the author of `change` saved it; None: a delete.

    `base` is the change's own `base`, or for a change without one (protocol 1.0) the
    caller's best stand-in (`base_of` the state the change arrived on).
    """
    if change.elements.get(DELETED) == DELETED_VALUE:
        return None
    values: dict[str, bytes | None] = dict(base)
    for name, value in change.elements.items():
        if name != DELETED:
            values[name] = value
    return json_of_registers(change.resource_type, change.resource_id, values)
