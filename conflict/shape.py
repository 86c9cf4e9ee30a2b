"""FHIR resource JSON ↔ registers: splitting a resource, checking element values.

`split_resource` turns a resource into register → canonical JSON bytes; it is
the inverse of `materialize.materialize`.  Which top-level keys become which
register:

* `resourceType`, `id` and `meta` are not registers: the type and id are the
  resource's key, and `meta` (versionId, lastUpdated) is written by each edge;
* a member of a choice group (`valueQuantity`) is stored in the group register
  (`value[x]`) as a one-key object `{"valueQuantity": ...}`;
* a primitive-extension sibling (`_birthDate`, `_valueString`) is a register of
  its own (`_birthDate`, `_value[x]`), next to the value it extends;
* an element with a keyed-list rule (`rules.KindRules.keyed`: Patient
  `telecom`) becomes one register per item key, `telecom[<key>]`, holding the
  canonical JSON array of the items with that key, sorted by their bytes;
* every other key is its own register.

`check_elements` checks element bytes that arrive from another site, so that
what a replica stores always has this form (and `materialize_json` can build
the resource by concatenating bytes).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from conflict.errors import ShapeError
from conflict.rules import KEYED_REGISTER, KeyedList, KindRules, rules_for
from sync_protocol.canonical import canonical_json, parse_json
from sync_protocol.errors import MalformedInput
from sync_protocol.models import (
    DELETED,
    DELETED_VALUE,
    LIVE_VALUE,
    REGISTER_PATTERN,
    RESOURCE_TYPE_PATTERN,
)

#: Top-level keys that are not registers.
NOT_REGISTERS: Final = frozenset({"resourceType", "id", "meta"})
#: A top-level JSON key that can be a register (or a choice-group member).
_KEY: Final = re.compile(r"_?[a-z][A-Za-z0-9]{0,63}")
_REGISTER: Final = re.compile(REGISTER_PATTERN)
_RESOURCE_TYPE: Final = re.compile(RESOURCE_TYPE_PATTERN)


def _show_key(key: object) -> str:
    # Keys are schema names, but a malformed one could hold anything: keep it short.
    text = repr(key)
    return text if len(text) <= 40 else text[:37] + "..."


def resource_type_of(resource: Mapping[str, Any]) -> str:
    """The `resourceType` of `resource`; raises `ShapeError` if missing or malformed."""
    rtype = resource.get("resourceType") if isinstance(resource, Mapping) else None
    if not isinstance(rtype, str) or not _RESOURCE_TYPE.fullmatch(rtype):
        raise ShapeError(
            "a FHIR resource is a JSON object with a resourceType such as \"Patient\"",
            hint="send the resource as JSON with its resourceType",
        )
    return rtype


def split_resource(resource: Mapping[str, Any]) -> dict[str, bytes]:
    """Return the registers of `resource`: register name → canonical JSON of its value.

    Names are sorted.  Raises `ShapeError` for a missing resourceType, a key
    that cannot be an element name, a JSON null, a value with no JSON form, or
    two members of one choice group (`valueQuantity` with `valueString`).
    """
    rtype = resource_type_of(resource)
    rules = rules_for(rtype)
    out: dict[str, bytes] = {}
    members: dict[str, str] = {}
    for key, value in resource.items():
        if key in NOT_REGISTERS:
            continue
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ShapeError(
                f"{rtype}: {_show_key(key)} is not a FHIR element name",
                hint="top-level keys are element names such as \"birthDate\" or \"_birthDate\"",
            )
        if value is None:
            raise ShapeError(
                f"{rtype}.{key} is null",
                hint="FHIR JSON leaves an absent element out instead of writing null",
            )
        keyed = rules.keyed.get(key)
        if keyed is not None:
            out.update(_split_list(rtype, key, keyed, value))
            continue
        register = rules.register_of(key)
        if register != key:
            if register in members:
                raise ShapeError(
                    f"{rtype} carries both {members[register]} and {key}, "
                    f"two members of the choice element {register}",
                    hint=f"keep one of them: {register} holds one type at a time",
                )
            members[register] = key
            value = {key: value}
        try:
            out[register] = canonical_json(value)
        except MalformedInput as exc:
            raise ShapeError(
                f"{rtype}.{key} has no JSON form",
                hint="element values are JSON objects, arrays, strings, numbers or booleans",
            ) from exc
    return dict(sorted(out.items()))


def _split_list(rtype: str, name: str, keyed: KeyedList, value: Any) -> dict[str, bytes]:
    """The item registers of keyed list element `name` (see the module docstring)."""
    if not isinstance(value, list) or not value \
            or not all(isinstance(item, dict) for item in value):
        raise ShapeError(f"{rtype}.{name} is not a non-empty list of objects",
                         hint=f"send {name} as a JSON array of objects, or leave it out")
    groups: dict[str, list[bytes]] = {}
    for item in value:
        try:
            raw = canonical_json(item)
        except MalformedInput as exc:
            raise ShapeError(f"{rtype}.{name} has an item with no JSON form",
                             hint="items are JSON objects without nulls") from exc
        groups.setdefault(keyed.key_of(item), []).append(raw)
    return {f"{name}[{key}]": b"[" + b",".join(sorted(set(items))) + b"]"
            for key, items in groups.items()}


def check_elements(resource_type: str, elements: Mapping[str, bytes | None]) -> None:
    """Check that `elements` (of a change for `resource_type`) have the register form.

    Each name is a register name; `@deleted` holds b"true" or b"false"; any
    other value is None or the canonical JSON (sorted keys, no spaces) of a
    non-null value; a choice register (`value[x]`) holds a one-key object whose
    key is a member of that group; a member name (`valueQuantity`) is never a
    register itself.  Raises `ShapeError` naming the first fault; returns None.
    """
    rules = rules_for(resource_type)
    for name, value in elements.items():
        if not _REGISTER.fullmatch(name) or name in NOT_REGISTERS:
            raise ShapeError(
                f"{resource_type}: {_show_key(name)} is not a register name",
                hint="registers are element names, choice groups such as value[x], or @deleted",
            )
        if name == DELETED:
            if value not in (DELETED_VALUE, LIVE_VALUE):
                raise ShapeError(
                    f"{resource_type}: @deleted must hold true or false",
                    hint="the origin site wrote a malformed change; report it",
                )
            continue
        _check_register(resource_type, rules, name, value)


def _check_item_register(rtype: str, rules: KindRules, name: str, value: bytes | None
                         ) -> None:
    """An item register `telecom[<key>]`: a keyed element, items that all have `key`."""
    match = KEYED_REGISTER.fullmatch(name)
    keyed = rules.keyed_list(name)
    if match is None or keyed is None:
        raise ShapeError(f"{rtype} has no keyed list register {_show_key(name)}",
                         hint="keyed lists per kind are listed in conflict/rules.py")
    if value is None:
        return
    try:
        parsed = parse_json(value)
    except MalformedInput as exc:
        raise ShapeError(f"{rtype}.{name} does not hold JSON",
                         hint="the origin site wrote a malformed change; report it") from exc
    ok = (isinstance(parsed, list) and bool(parsed)
          and all(isinstance(item, dict) and keyed.key_of(item) == match.group(2)
                  for item in parsed))
    if not ok or _split_list(rtype, match.group(1), keyed, parsed) != {name: value}:
        raise ShapeError(f"{rtype}.{name} does not hold the sorted canonical items of its key",
                         hint="the origin site wrote a malformed change; report it")


def _check_register(rtype: str, rules: KindRules, name: str, value: bytes | None) -> None:
    if name[-1:] == "]" and name[-3:] != "[x]":
        _check_item_register(rtype, rules, name, value)
        return
    if rules.register_of(name) != name:
        raise ShapeError(
            f"{rtype}: {name} is written as a register of its own",
            hint=f"it belongs in the choice register {rules.register_of(name)}",
        )
    if name.endswith("[x]") and (name[:-3].lstrip("_") not in rules.choices):
        raise ShapeError(
            f"{rtype} has no choice element {name}",
            hint="choice groups per kind are listed in conflict/rules.py",
        )
    if value is None:
        return
    try:
        parsed = parse_json(value)
    except MalformedInput as exc:
        raise ShapeError(f"{rtype}.{name} does not hold JSON",
                         hint="the origin site wrote a malformed change; report it") from exc
    if parsed is None or canonical_json(parsed) != value:
        raise ShapeError(f"{rtype}.{name} does not hold canonical non-null JSON",
                         hint="the origin site wrote a malformed change; report it")
    if name.endswith("[x]") and not _one_member(rules, name, parsed):
        raise ShapeError(
            f"{rtype}.{name} must hold one member of the choice group",
            hint="the origin site wrote a malformed change; report it",
        )


def _one_member(rules: KindRules, register: str, parsed: Any) -> bool:
    """Whether `parsed` is a one-key object whose key is a member of choice `register`."""
    if not isinstance(parsed, dict) or len(parsed) != 1:
        return False
    (key,) = parsed
    return isinstance(key, str) and bool(_KEY.fullmatch(key)) and rules.register_of(key) == register
