"""The resource as it now reads: each register's shown value, put back together.

The inverse of `shape.split_resource`: `resourceType` and `id` from the state's
key, every register's shown value (a choice register contributes its one inner
key), registers shown as removed left out, and `@deleted` never.  A deleted
resource reads as None.  `meta` is the edge's to add (versionId, lastUpdated).

A keyed list (`rules.KindRules.keyed`, e.g. Patient `telecom`) is rebuilt from
its item registers: every item of every live item register (and of a
whole-element register an older build wrote), sorted by canonical bytes.

`materialize_json` gives the same resource as canonical JSON without parsing
anything but keyed lists, by concatenating the stored canonical value bytes in
key order; this is what the edge serves and stores.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from conflict.rules import KindRules, element_of, rules_for
from conflict.state import ResourceState, is_deleted, register_value, union_items
from sync_protocol.canonical import canonical_json, parse_json
from sync_protocol.models import DELETED


def _shown_values(state: ResourceState) -> list[tuple[str, bytes]]:
    """(element, shown value) for every element shown with a value, except `@deleted`."""
    rules = rules_for(state.resource_type)
    values: list[tuple[str, bytes | None]] = []
    for name, reg in state.registers.items():
        heads = reg.heads
        if name == DELETED or not heads:
            continue
        values.append((name, heads[0].value if len(heads) == 1 else register_value(
            rules, name, heads, state.registers)))
    return _folded(rules, values)


def _folded(rules: KindRules, values: Iterable[tuple[str, bytes | None]]
            ) -> list[tuple[str, bytes]]:
    """Register values as element values: a keyed list's item registers become the list."""
    keyed = rules.keyed
    out: list[tuple[str, bytes]] = []
    lists: dict[str, list[bytes | None]] = {}
    for name, value in values:
        if keyed and element_of(name) in keyed and (name in keyed or name[-1:] == "]"):
            lists.setdefault(element_of(name), []).append(value)
        elif value is not None:
            out.append((name, value))
    for element, items in lists.items():
        joined = union_items(items)
        if joined is not None:
            out.append((element, joined))
    return out


def json_of_registers(resource_type: str, resource_id: str,
                      values: Mapping[str, bytes | None]) -> bytes:
    """Canonical JSON of a resource whose registers hold `values` (None: absent).

    What `materialize_json` builds from a state's shown values, built from any
    register values instead (an author's version, `authored.authored_json`).
    """
    return json_of_values(resource_type, resource_id,
                          _folded(rules_for(resource_type), values.items()))


def element_json(state: ResourceState, element: str) -> bytes | None:
    """The canonical JSON of one element as the resource reads, or None if absent.

    A keyed list is rebuilt from its items; a choice group is asked for by its
    register name (`value[x]`) and comes back as the one-key object.  Ignores
    whether the resource is deleted.
    """
    rules = rules_for(state.resource_type)
    if element not in rules.keyed:
        reg = state.registers.get(element)
        return None if reg is None or not reg.heads else register_value(
            rules, element, reg.heads, state.registers)
    return union_items([register_value(rules, name, reg.heads, state.registers)
                        for name, reg in state.registers.items()
                        if reg.heads and element_of(name) == element])


def materialize(state: ResourceState) -> dict[str, Any] | None:
    """The FHIR resource `state` reads as, with keys sorted; None if it is deleted.

    Assumes the stored values have the register form (`shape.check_elements`).
    """
    if is_deleted(state):
        return None
    resource: dict[str, Any] = {"resourceType": state.resource_type, "id": state.resource_id}
    for name, value in _shown_values(state):
        parsed = parse_json(value)
        if name.endswith("[x]"):
            resource.update(parsed)
        else:
            resource[name] = parsed
    return dict(sorted(resource.items()))


def materialize_json(state: ResourceState) -> bytes | None:
    """`canonical_json(materialize(state))`, built from the stored bytes; None if deleted.

    Equal to the slow path whenever the stored values have the register form
    (canonical JSON; a choice register holds a one-key object), which
    `shape.split_resource` produces and `shape.check_elements` checks.
    """
    if is_deleted(state):
        return None
    return json_of_values(state.resource_type, state.resource_id, _shown_values(state))


def json_of_values(resource_type: str, resource_id: str,
                   values: Iterable[tuple[str, bytes]]) -> bytes:
    """Canonical JSON of a resource whose registers hold `values` (register → bytes).

    The builder behind `materialize_json`: equal (type, id, values) give equal bytes,
    whichever order `values` come in.  `@deleted` must not be among them.
    """
    parts: list[tuple[str, bytes]] = [
        ("id", b'"id":' + canonical_json(resource_id)),
        ("resourceType", b'"resourceType":' + canonical_json(resource_type)),
    ]
    for name, value in values:
        if name.endswith("[x]"):
            # b'{"valueQuantity":{...}}' → key valueQuantity, member b'"valueQuantity":{...}'
            # (member names are plain ASCII, so the key ends at the next quote).
            key = value[2:value.index(b'"', 2)].decode("ascii")
            parts.append((key, value[1:-1]))
        else:
            parts.append((name, b'"' + name.encode("ascii") + b'":' + value))
    parts.sort()
    return b"{" + b",".join(member for _, member in parts) + b"}"
