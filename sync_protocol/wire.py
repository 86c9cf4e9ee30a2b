"""Compact wire forms of change lists and per-change header metadata.

Opening a batch must run at well over 100,000 changes/s in Python, so the
forms keep the object count per change small and every check cheap:

* sites are listed once per batch (`sites`, sorted 16-byte ids) and dots are
  flat integer lists `[site_index, seq, site_index, seq, ...]` in canonical order;
* a change's `replaces` is a few groups `[flat_dots, [register, ...]]`, since
  an edit usually replaces the same heads in every register it writes;
* a change's origin and seq are not repeated: they are the batch's site and
  `seq_from + index`.

Content (inside the ciphertext):
    {"sites": [site16...], "changes": [[type, id, op, {register: bytes|nil},
                                        [[flat_dots, [register...]]...], hlc, user, device,
                                        {register: bytes}]...]}

The last field, `base` (the values the author saw in the registers the change does
not write), is new in protocol 1.1; a 1.0 change has 8 fields and decodes with
`base` None.
Header metadata (plaintext): `sites` plus `changes: [[token16, flat_dots]...]`
(`sync_protocol.change_meta`).

Decoders check exactly what the pydantic models enforce, by hand, and raise
`MalformedInput` only; a property test holds them to the models' verdicts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final
from uuid import UUID

from sync_protocol.dots import Dot, DotTable, flat_dots, site_table, sorted_dots
from sync_protocol.errors import MalformedInput
from sync_protocol.models import (
    DELETED,
    REGISTER_PATTERN,
    RESOURCE_ID_PATTERN,
    RESOURCE_TYPE_PATTERN,
    Change,
    ChangeOp,
)

_TYPE_RE: Final = re.compile(RESOURCE_TYPE_PATTERN)
_ID_RE: Final = re.compile(RESOURCE_ID_PATTERN)
_REGISTER_RE: Final = re.compile(REGISTER_PATTERN)
_OPS: Final = {op.value: op for op in ChangeOp}
_MAX_U64: Final = 1 << 64


_NONE_TYPE: Final = type(None)
_VALUE_TYPES: Final = frozenset({bytes, _NONE_TYPE})


class _Decoder(DotTable):
    """Per-batch decoding state: the site table and names already checked.

    Checks run as set operations in C where they can (names already seen,
    value types), falling back to a per-item check only for what is new.
    """

    __slots__ = ("names", "types")

    def __init__(self, raw_sites: Any) -> None:
        super().__init__(raw_sites)
        self.names: set[str] = set()
        self.types: set[str] = set()

    def check_names(self, names: Any) -> None:
        try:
            if self.names.issuperset(names):
                return
        except TypeError:  # an unhashable item cannot be a name
            raise MalformedInput("register names must be strings") from None
        for name in names:
            if name not in self.names:
                if not (type(name) is str and name.isascii() and _REGISTER_RE.match(name)):
                    raise MalformedInput(f"invalid register name {str(name)[:70]!r}")
                self.names.add(name)


# --- change lists (inside the ciphertext) ----------------------------------------------


def encode_changes(changes: Sequence[Change]) -> dict[str, Any]:
    """Wire form of consecutive changes of one origin (see the module docstring).

    Relies on `Change` keeping each dot list in canonical order (its validator
    sorts them; the decoder refuses unsorted ones).
    """
    sites, index = site_table(c.all_replaced for c in changes)
    out = []
    for c in changes:
        # Group registers by identical dot lists.  A linear scan: a change has one
        # or a few groups, and tuple equality short-cuts on identical items.
        groups: list[tuple[tuple[Dot, ...], list[str]]] = []
        for name in sorted(c.replaces):
            dots = c.replaces[name]
            for group in groups:
                if group[0] == dots:
                    group[1].append(name)
                    break
            else:
                groups.append((dots, [name]))
        row: list[Any] = [
            c.resource_type, c.resource_id, c.op.value, c.elements,
            sorted([flat_dots(dots, index), names] for dots, names in groups),
            c.hlc, c.user, c.device,
        ]
        if c.base is not None:
            row.append(c.base)
        out.append(row)
    return {"sites": sites, "changes": out}


def decode_changes(raw: Any, *, origin: UUID, seq_from: int) -> list[Change]:
    """Rebuild the changes of a batch from `origin` starting at `seq_from`."""
    if not isinstance(raw, dict) or set(raw) != {"sites", "changes"}:
        raise MalformedInput("batch content must be a map of sites and changes")
    decoder = _Decoder(raw["sites"])
    listed = raw["changes"]
    if not isinstance(listed, list):
        raise MalformedInput("batch content: changes must be a list")
    return [_decode_change(decoder, item, origin, seq_from + i) for i, item in enumerate(listed)]


def _decode_change(dec: _Decoder, raw: Any, origin: UUID, seq: int) -> Change:
    if type(raw) is not list or not 8 <= len(raw) <= 9:
        raise MalformedInput(f"change {seq}: must be an array of 8 or 9 fields")
    rtype, rid, op, elements, groups, hlc, user, device = raw[:8]
    base = raw[8] if len(raw) == 9 else None
    if type(rtype) is not str or rtype not in dec.types:
        if not (type(rtype) is str and rtype.isascii() and _TYPE_RE.match(rtype)):
            raise MalformedInput(f"change {seq}: resource type is not a FHIR type name")
        dec.types.add(rtype)
    if not (type(rid) is str and rid.isascii() and _ID_RE.match(rid)):
        raise MalformedInput(f"change {seq}: resource id is not a FHIR id")
    op_value = _OPS.get(op) if type(op) is str else None
    if op_value is None:
        raise MalformedInput(f"change {seq}: op must be 'set' or 'delete'")
    if type(elements) is not dict:
        raise MalformedInput(f"change {seq}: elements must be a map")
    dec.check_names(elements)
    if not _VALUE_TYPES.issuperset(map(type, elements.values())):
        raise MalformedInput(f"change {seq}: element values are bytes or nil")
    if DELETED not in elements:
        raise MalformedInput(f"change {seq}: must write the @deleted register")
    if op_value is ChangeOp.DELETE and len(elements) != 1:
        raise MalformedInput(f"change {seq}: a delete writes only the @deleted register")
    if type(groups) is not list:
        raise MalformedInput(f"change {seq}: replaces must be a list of groups")
    replaces: dict[str, tuple[Dot, ...]] = {}
    all_replaced: tuple[Dot, ...] = ()
    for group in groups:
        if type(group) is not list or len(group) != 2 or type(group[1]) is not list:
            raise MalformedInput(f"change {seq}: a replaces group is [dots, [register...]]")
        dots, names = dec.dots(group[0]), group[1]
        dec.check_names(names)
        before = len(replaces)
        replaces.update(dict.fromkeys(names, dots))
        if len(replaces) != before + len(names) or not elements.keys() >= replaces.keys():
            raise MalformedInput(f"change {seq}: replaces names a register twice or "
                                 "one the change does not write")
        all_replaced = dots if not all_replaced else all_replaced + dots
    if len(groups) > 1:
        all_replaced = sorted_dots(all_replaced)
    if all_replaced and (origin, seq) in all_replaced:
        raise MalformedInput(f"change {seq}: a change cannot replace its own dot")
    if not (type(hlc) is int and 0 <= hlc < _MAX_U64):
        raise MalformedInput(f"change {seq}: hlc out of range")
    if not (type(user) is str and 1 <= len(user) <= 128):
        raise MalformedInput(f"change {seq}: user must be 1-128 characters")
    if not (type(device) is str and len(device) <= 128):
        raise MalformedInput(f"change {seq}: device must be at most 128 characters")
    if base is not None:
        _check_base(dec, base, elements, op_value, seq)
    return _checked_change({
        "resource_type": rtype, "resource_id": rid, "op": op_value, "elements": elements,
        "replaces": replaces, "hlc": hlc, "origin": origin, "seq": seq, "user": user,
        "device": device, "base": base, "all_replaced": all_replaced})


def _check_base(dec: _Decoder, base: Any, elements: dict[str, Any], op: ChangeOp,
                seq: int) -> None:
    if type(base) is not dict:
        raise MalformedInput(f"change {seq}: base must be a map")
    dec.check_names(base)
    if not all(type(v) is bytes for v in base.values()):
        raise MalformedInput(f"change {seq}: base values are bytes")
    if DELETED in base or not elements.keys().isdisjoint(base):
        raise MalformedInput(f"change {seq}: base names @deleted or a written register")
    if op is ChangeOp.DELETE and base:
        raise MalformedInput(f"change {seq}: a delete carries no base")


def _checked_change(fields: dict[str, Any]) -> Change:
    """Build a `Change` from fields this module has already checked.

    `model_construct` costs about 10 µs per object on this path, a third of the
    budget of opening a change; this does the same assignment pydantic's
    `model_construct` does for a model without defaults left unset, private
    attributes or extras.  `tests/sync_protocol/test_wire.py` holds it equal
    to validated construction.
    """
    change = object.__new__(Change)
    # `all_replaced` is a cached_property: pre-filling its slot in __dict__ is how
    # functools caches it, so the decoder's value is what the property returns.
    _set(change, "__dict__", fields)
    _set(change, "__pydantic_fields_set__", _ALL_FIELDS)
    _set(change, "__pydantic_extra__", None)
    _set(change, "__pydantic_private__", None)
    return change


_set = object.__setattr__
_ALL_FIELDS: Final = frozenset(Change.model_fields)
