"""The resource as it now reads: each register's shown value, put back together.

The inverse of `shape.split_resource`: `resourceType` and `id` from the state's
key, every register's shown value (a choice register contributes its one inner
key), registers shown as removed left out, and `@deleted` never.  A deleted
resource reads as None.  `meta` is the edge's to add (versionId, lastUpdated).

`materialize_json` gives the same resource as canonical JSON without parsing
anything, by concatenating the stored canonical value bytes in key order; this
is what the edge serves and stores.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from conflict.rules import rules_for
from conflict.state import ResourceState, displayed, is_deleted
from sync_protocol.canonical import canonical_json, parse_json
from sync_protocol.models import DELETED


def _shown_values(state: ResourceState) -> list[tuple[str, bytes]]:
    """(register, shown value) for every register shown with a value, except `@deleted`."""
    precedence = rules_for(state.resource_type).precedence
    out: list[tuple[str, bytes]] = []
    for name, reg in state.registers.items():
        heads = reg.heads
        if name == DELETED or not heads:
            continue
        value = (heads[0] if len(heads) == 1
                 else displayed(heads, precedence.get(name, ()))).value
        if value is not None:
            out.append((name, value))
    return out


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
